"""The demo behind ``winoforge demo`` / ``make demo``: a trained student from the model registry,
exported, built for a board by our flow and by stock FINN (the baseline of the same weights), and
its package run on the simulated device over the Fashion-MNIST test set.

:func:`demo_student` picks the student: a registry model (:mod:`winoforge.model.pretrained`,
default ``fmnist-vgg-pynqz2-srbs75``; a missing one is refused, named -- never replaced by an
untrained network) or, with ``widths``, the untrained reference student, labelled as a
hardware-cost reference.  :func:`run_demo` does the rest and returns the report written to
``benchmarks/results/demo_report.json``: accelerator and torch accuracy, the number of images
whose integer logit codes differ between the accelerator and torch (the codes of
:func:`winoforge.hw.export.output_codes`, the export check's comparison; must be 0), both builds'
estimated FPS, LUT and DSP, and the wall time.  A confusion-matrix plot goes beside the report.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["DEFAULT_MODEL", "DemoStudent", "demo_student", "run_demo", "torch_logits", "accelerator_logits", "differing_images",
           "confusion_matrix", "plot_confusion"]

#: The registry model the demo shows.
DEFAULT_MODEL = "fmnist-vgg-pynqz2-srbs75"
#: Test images of the export check (torch against the qonnx executor, every quantizer's codes).
EXPORT_CHECK_IMAGES = 100
#: Golden images of the builds (every build step verified on them; the packages' self-test).
GOLDEN_IMAGES = 4


@dataclass
class DemoStudent:
    model: Any  # the torch student, eval mode
    name: str  # package name
    label: str  # what it is, printed and recorded
    trained: bool
    provenance: dict[str, Any] = field(default_factory=dict)


def demo_student(pretrained: str | None = DEFAULT_MODEL, widths=None, models_root=None, data_dir=None) -> DemoStudent:
    """The demo's student: registry model ``pretrained``, or (``widths`` given) the untrained
    reference student with BN statistics from 256 training images."""
    if widths is not None:
        from .flow import golden_images, reference_student

        calib = golden_images(256, data_dir, split="train")[0]
        model = reference_student(widths=widths, calibration=calib)
        text = ",".join(str(w) for w in widths)
        label = (f"reference student {text} (UNTRAINED weights, W4A4, F(2,3), SRBS 2/8): a hardware-cost "
                 "reference, its accuracy is meaningless")
        return DemoStudent(model, "reference-student", label, False, {"run": None, "reference": label})
    from winoforge.model.pretrained import load_pretrained

    model, card = load_pretrained(pretrained, root=models_root)
    if card["kind"] != "student":
        raise ValueError(f"pretrained model {pretrained!r} is a {card['kind']}; the demo needs a student")
    acc = card.get("test_accuracy")
    label = (f"trained student {pretrained}: {card.get('description')}"
             + (f"; torch test accuracy {acc:.2%} in its card" if acc is not None else ""))
    info = card["model"]
    return DemoStudent(model, pretrained, label, True, {
        "pretrained": pretrained, "sha256": card["sha256"], "torch_test_acc": acc, "density": info.get("density"),
        "mean_bits": info.get("mean_bits"), "git_commit": card.get("git_commit")})


def _batches(n: int, size: int, progress: bool, desc: str, position: int = 0):
    starts = range(0, n, size)
    if progress:
        from tqdm import tqdm

        return tqdm(starts, desc=desc, unit="batch", leave=False, position=position)
    return starts


def torch_logits(model, images: np.ndarray, batch: int = 250, progress: bool = True, position: int = 0) -> np.ndarray:
    """Float logits of ``images`` (N, 1, H, W) in [0, 1] through the torch student."""
    import torch

    out = []
    with torch.inference_mode():
        for i in _batches(len(images), batch, progress, "torch", position):
            out.append(model(torch.from_numpy(np.ascontiguousarray(images[i:i + batch]))).numpy())
    return np.concatenate(out)


def accelerator_logits(package: str | Path, raw: np.ndarray, batch: int = 100, progress: bool = True,
                       backend: str = "sim") -> np.ndarray:
    """The package's outputs for raw uint8 images (N, 1, H, W), through the runtime's ``backend``."""
    from winoforge.runtime import Accelerator

    x = np.asarray(raw, dtype=np.uint8).transpose(0, 2, 3, 1)  # the accelerator's NHWC
    out = []
    with Accelerator.load(package, backend=backend, batch_size=batch) as acc:
        test = acc.self_test()
        if not test["equal"]:
            raise AssertionError(f"{package}: the {backend} backend differs from the build on its golden images")
        for i in _batches(len(x), batch, progress, f"accelerator ({backend})"):
            out.append(acc.execute(x[i:i + batch]))
    return np.concatenate(out)


def differing_images(head: dict[str, list[float]], logits: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per image: do the classifier's integer accumulator codes (hw.export.output_codes) differ?"""
    from .export import output_codes

    return np.any(output_codes(head, logits) != output_codes(head, other), axis=1)


def confusion_matrix(labels: np.ndarray, pred: np.ndarray, classes: int = 10) -> np.ndarray:
    cm = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def plot_confusion(cm: np.ndarray, path: str | Path, title: str, class_names=None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = class_names or [str(i) for i in range(len(cm))]
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(cm)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(cm)), names, fontsize=8)
    ax.set_xlabel("predicted (accelerator)")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    for i in range(len(cm)):
        for j in range(len(cm)):
            if cm[i, j]:
                ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=6,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _estimates(package: Path) -> dict[str, Any]:
    est = json.loads((package / "reports" / "estimates.json").read_text())
    totals = est.get("totals", {})
    return {"fps": est["fps"], "lut": totals.get("LUT", 0.0), "dsp": totals.get("DSP", 0.0),
            "bram18": totals.get("BRAM_18K", 0.0)}


def run_demo(student: DemoStudent, work: str | Path = "build/demo", images: int = 10000, target_fps: float = 2500,
             board: str = "pynq-z2", data_dir=None, report: str | Path | None = "benchmarks/results/demo_report.json",
             plot: str | Path | None = None, progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Export ``student`` (checked against torch), build it and its stock-FINN baseline for
    ``board`` at ``target_fps``, run the package on the simulated device over the first ``images``
    Fashion-MNIST test images, compare its integer logit codes with torch's.  Returns the report
    (also written to ``report`` with the confusion plot beside it, ``plot`` overriding)."""
    from winoforge.model.data import FASHION_MNIST_CLASSES

    from .baseline import direct_baseline
    from .export import head_quantum
    from .flow import build_package, export_run, golden_images

    start = time.perf_counter()
    work = Path(work)
    x, raw, labels = golden_images(images, data_dir)
    if len(x) < images:
        raise ValueError(f"images={images} is more than the test set holds ({len(x)})")
    packages: dict[str, Path] = {}
    builds = (("Winograd-SRBS", student.model, student.name, False),
              ("stock FINN baseline (direct 3x3, same weights)", direct_baseline(student.model),
               f"{student.name}-baseline", True))
    for what, model, name, baseline in builds:
        onnx_path = work / name / "model.onnx"
        check = export_run(model, onnx_path, check_images=x[:EXPORT_CHECK_IMAGES], progress=progress)
        log(f"  export {what}: {check['nodes']} ONNX nodes; integer codes of every quantizer and of the logits "
            f"equal torch on {check['images']} test images: {check['exact']}")
        manifest = build_package(onnx_path, name, board=board, target_fps=target_fps, out_root=work / "bitstreams",
                                 work_root=work / "finn", golden=raw[:GOLDEN_IMAGES], baseline=baseline,
                                 provenance={"student": student.provenance}, progress=progress)
        packages[name] = work / "bitstreams" / name
        est = _estimates(packages[name])
        log(f"  FINN build {what}: estimated {est['fps']:,.0f} FPS on {manifest['board']} at "
            f"{manifest['clock_mhz']:g} MHz, LUT {est['lut']:,.0f}, DSP {est['dsp']:.0f} -> {packages[name]}")
    head = head_quantum(student.model, x.shape[1:])
    # torch and the simulated device side by side: both release the GIL in their array kernels
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(torch_logits, student.model, x, progress=progress, position=1)
        a_logits = accelerator_logits(packages[student.name], raw, progress=progress)
        t_logits = pending.result()
    mismatches = int(differing_images(head, t_logits, a_logits).sum())
    pred = np.argmax(a_logits, axis=1)
    accuracy = float((pred == labels).mean())
    torch_accuracy = float((np.argmax(t_logits, axis=1) == labels).mean())
    ours, base = _estimates(packages[student.name]), _estimates(packages[f"{student.name}-baseline"])
    result = {
        "accuracy": accuracy, "torch_accuracy": torch_accuracy, "images": int(len(labels)), "mismatches": mismatches,
        "fps_est": ours["fps"], "baseline_fps_est": base["fps"], "lut": ours["lut"], "baseline_lut": base["lut"],
        "dsp": ours["dsp"], "baseline_dsp": base["dsp"], "seconds": round(time.perf_counter() - start, 1),
        "model": student.name, "trained": student.trained, "label": student.label, "board": board,
        "target_fps": target_fps, "backend": "sim", "provenance": student.provenance,
    }
    cm = confusion_matrix(labels, pred)
    title = (f"{student.name} on the simulated accelerator: {accuracy:.2%} of {len(labels)} Fashion-MNIST test images"
             + ("" if student.trained else "\n(UNTRAINED reference student: hardware-cost reference only)"))
    if report is not None:
        report = Path(report)
        plot_path = plot_confusion(cm, plot or report.with_name(report.stem.replace("_report", "") + "_confusion.png"),
                                   title, list(FASHION_MNIST_CLASSES))
        result["confusion_plot"] = str(plot_path)
        result["confusion"] = cm.tolist()
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result, indent=2) + "\n")
    else:
        result["confusion"] = cm.tolist()
    return result
