"""The hardware flow behind ``winoforge export`` / ``winoforge build``: student runs in,
QONNX models and deployment packages out.

* :func:`load_student` -- a finished ``winoforge distill`` run (weights checked against
  the sha256 in ``model.json``).
* :func:`reference_student` -- a student of a given architecture with the SRBS pattern
  applied to its (random) weights and BatchNorm statistics from real images: the
  hardware cost of a layer depends on its shape, widths and sparsity, not on the
  trained values, so estimates and the baseline comparison use it when no trained
  run is at hand (recorded as such in every result).
* :func:`export_run` -- QONNX export plus the equality check on real images.
* :func:`build_package` -- the FINN build and the deployment package
  ``bitstreams/<name>/`` (DESIGN.md, "Deployment packages"): ``manifest.json``
  with the sha256 of every file, the exported ``model.onnx``, the dataflow models,
  the reports, and ``.bit``/``.hwh`` only where Vivado built them.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

# packages are verified by the runtime's loader: the board checks them the same way
from winoforge.runtime.package import PACKAGE_FORMAT, CorruptPackageError, sha256_file, verify_package, write_manifest

__all__ = ["load_student", "reference_student", "golden_images", "export_run", "check_build_inputs", "build_package",
           "write_manifest", "verify_package", "PACKAGE_FORMAT", "CorruptPackageError"]

def load_student(run_dir: str | Path):
    """``(model, info)`` of a finished distillation run, in eval mode; refuses a corrupt weights file."""
    from winoforge.model.recipes import load_student as _load

    return _load(run_dir)


def golden_images(count: int, data_root: str | Path | None = None, split: str = "test"):
    """The first ``count`` Fashion-MNIST images of ``split``: ``(float images (N,1,28,28) in [0,1],
    raw uint8 as float32, labels)``."""
    from winoforge.model.data import load_fashion_mnist

    ds = load_fashion_mnist(data_root, split)
    raw = np.asarray(ds.images[:count], dtype=np.float32)
    if raw.ndim == 3:
        raw = raw[:, None]
    return raw / 255.0, raw, np.asarray(ds.labels[:count])


def reference_student(widths=None, m: int = 2, w_bits: int = 4, a_bits: int = 4, sub_row: int = 8, keep: int = 2,
                      weight_quant: str = "po2", act_quant: str = "po2", seed: int = 0, calibration: np.ndarray | None = None,
                      arch: str = "vgg", depth: int = 8, width: int = 16, in_channels: int = 1,
                      layer_bits: dict | None = None):
    """A VGG student (``arch="resnet"``: a ResNet of ``depth``, first-stage ``width``) with SRBS
    ``keep/sub_row`` applied and BN statistics from ``calibration`` images (N, in_channels, H, W)
    in [0, 1] -- see the module docstring for why this is a valid hardware-cost reference.
    ``layer_bits``: per-layer (weight, output activation) widths (``StudentConfig.layer_bits``)."""
    import torch

    from winoforge.model.students import StudentConfig, build_student, winograd_layers

    if sub_row is not None and not 1 <= keep <= sub_row:  # sub_row None: dense Winograd layers
        raise ValueError(f"keep={keep} is out of range; allowed: 1..{sub_row} (sub_row: non-zeros kept per sub-row)")
    torch.manual_seed(seed)
    kwargs = {} if widths is None else {"widths": list(widths)}
    if arch != "vgg":
        kwargs.update(arch=arch, depth=depth, width=width)
    cfg = StudentConfig(m=m, w_bits=w_bits, a_bits=a_bits, sub_row=sub_row, keep=sub_row,
                        weight_quant=weight_quant, act_quant=act_quant, layer_bits=dict(layer_bits or {}), **kwargs)
    model = build_student(cfg, in_channels, 10)
    for layer in winograd_layers(model).values():
        layer.update_mask(keep)
    if calibration is not None:
        model.train()
        with torch.no_grad():
            for batch in np.array_split(np.asarray(calibration, dtype=np.float32), max(1, len(calibration) // 64)):
                model(torch.from_numpy(batch))
    return model.eval()


def export_run(model, out: str | Path, image_shape=(1, 28, 28), check_images: np.ndarray | None = None,
               progress: bool = True) -> dict[str, Any]:
    """Export ``model`` to ``out`` (QONNX) and, given images, check it (see ``hw.export``).
    Writes ``<out>.check.json``; raises if the check finds a difference."""
    from .export import check_export, export_student

    out = Path(out)
    onnx_model = export_student(model, out, image_shape)
    report: dict[str, Any] = {"onnx": str(out), "nodes": len(onnx_model.graph.node)}
    if check_images is not None:
        result = check_export(model, onnx_model, check_images, progress=progress)
        report.update(images=result.images, quant_layers=result.quant_layers, exact=result.exact,
                      mismatches=result.mismatches, logits_equal_float=result.logits_equal_float,
                      max_float_logit_difference=result.max_logit_diff)
        out.with_suffix(".check.json").write_text(json.dumps(report, indent=2) + "\n")
        if not result.exact:
            raise AssertionError(f"the export differs from the torch student: {result.mismatches}")
    return report


def _git_commit() -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        out = subprocess.run([git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _repository_root() -> Path | None:
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def portable_paths(value: Any, package: Path) -> Any:
    """``value`` (a manifest entry) with every absolute path made relative: to the repository root
    when it lies inside the repository, else to the package folder -- never a build machine's
    absolute path (a package travels to a board)."""
    from .finn_env import FAKE_VIVADO

    if isinstance(value, dict):
        return {k: portable_paths(v, package) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable_paths(v, package) for v in value]
    if not isinstance(value, str) or not os.path.isabs(value):
        return value
    if value == FAKE_VIVADO:
        return "none: a placeholder path for FINN (no Vivado here)"
    path, root = Path(value).resolve(), _repository_root()
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return Path(os.path.relpath(path, Path(package).resolve())).as_posix()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("winoforge", "finn-plus", "qonnx", "brevitas", "torch", "onnx", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def check_build_inputs(onnx_path: str | Path, board: str = "pynq-z2", target_fps: float | None = None,
                       baseline: bool = False):
    """Refuse, before any work, what :func:`build_package` cannot build, in the user's terms
    (``ValueError``): an ONNX file that is not a ``winoforge export`` (naming what it lacks), a
    Winograd export given to the baseline flow, an unknown board, or a target FPS outside what the
    board's clock allows.  Returns the loaded ``ModelProto`` (without external data)."""
    import onnx

    from .boards import get_board
    from .export import HEAD_KEY, LAYERS_KEY

    path = Path(onnx_path)
    if not path.is_file():
        raise FileNotFoundError(2, "no such file", str(path))
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 -- protobuf raises its own DecodeError (and others) on junk
        raise ValueError(f"{path} is not an ONNX model ({type(err).__name__}: {err})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    missing = [k for k in (HEAD_KEY, LAYERS_KEY) if k not in meta]
    if missing:
        raise ValueError(f"{path} is not a winoforge export: it lacks the metadata {' and '.join(missing)} "
                         "(the classifier's output quantum and the Winograd layers' parameters) that "
                         "`winoforge export` writes; export the student with `winoforge export`")
    if len(proto.graph.input) != 1 or len(proto.graph.output) != 1:
        raise ValueError(f"{path}: a winoforge export has one input and one output, this model has "
                         f"{len(proto.graph.input)} and {len(proto.graph.output)}")
    if baseline and json.loads(meta[LAYERS_KEY]):
        raise ValueError(f"{path} holds Winograd layers ({', '.join(sorted(json.loads(meta[LAYERS_KEY])))}); "
                         "baseline=True builds a direct-convolution export (`winoforge export --baseline-out`)")
    spec = get_board(board)
    if target_fps is not None:
        clock_hz = spec.clock_mhz * 1e6
        if not (math.isfinite(target_fps) and target_fps >= 1):
            raise ValueError(f"target_fps={target_fps!r} is out of range; allowed: 1 .. {clock_hz:,.0f} frames "
                             f"per second on {spec.name}")
        if target_fps > clock_hz:
            raise ValueError(f"target_fps={target_fps:g} is more than {spec.name} can reach: its "
                             f"{spec.clock_mhz:g} MHz clock allows at most {clock_hz:,.0f} frames per second "
                             "(one frame per clock cycle), and a real model needs many cycles per frame")
    return proto


def _unreachable_target(err, target_fps: float | None, clock_mhz: float) -> ValueError | None:
    """A folding step that found no folding fast enough, said in frames per second (None: another error)."""
    import re

    needs = re.search(r"no folding reaches .*needs (\d+) cycles", str(err.cause))
    if err.step != "step_winograd_folding" or not isinstance(err.cause, ValueError) or not needs or not target_fps:
        return None
    cycles = int(needs.group(1))
    return ValueError(f"target_fps={target_fps:g} is more than this model reaches: even fully parallel, a "
                      f"Winograd layer needs {cycles} cycles per frame, i.e. at most {clock_mhz * 1e6 / cycles:,.0f} "
                      f"frames per second at {clock_mhz:g} MHz; lower the target")


#: the package folder of the runtime-writeable weight streams
WEIGHTS_DIR = "weights"


def write_runtime_weights(model, package: Path) -> list[dict[str, Any]]:
    """Write the weight stream of every layer with runtime-writeable weights into
    ``<package>/weights/<node>.npy`` (``uint64`` words, ``srbs_codegen.weight_stream_words``);
    the manifest's ``runtime_weights`` entries, in graph order, each layer with its own weight
    DMA named as FINN's shell names its further input DMAs (``idma1``, ``idma2``...)."""
    from .build import runtime_weight_layers
    from .srbs_codegen import weight_layout, weight_stream_words

    entries = []
    layers = runtime_weight_layers(model)
    if layers:
        (package / WEIGHTS_DIR).mkdir()
    for k, (node, params, U) in enumerate(layers, start=1):
        words = weight_stream_words(U, params)
        rel = f"{WEIGHTS_DIR}/{node}.npy"
        np.save(package / rel, words)
        entries.append({"node": node, "dma": f"idma{k}", "file": rel, "words": int(len(words)),
                        "layout": weight_layout(params)})
    return entries


def _check_weight_stream(package: Path, entries: list[dict[str, Any]]) -> None:
    """The stitched design's weight stream (``rtl/weights_stream.npy``) must be the layers' streams
    in the manifest's order: what the runtime's rtl backend sends through the router."""
    from winoforge.runtime.rtl_backend import RTL_DIR

    path = package / RTL_DIR / "weights_stream.npy"
    have = np.load(path) if path.is_file() else np.zeros(0, np.uint64)
    want = (np.concatenate([np.load(package / e["file"]) for e in entries]) if entries
            else np.zeros(0, np.uint64))
    if not np.array_equal(have, want):
        raise AssertionError(f"{path}: the stitched design's weight stream ({len(have)} words) is not the layers' "
                             f"streams in the manifest's order ({len(want)} words)")


def build_package(onnx_path: str | Path, name: str, board: str = "pynq-z2", target_fps: float | None = None,
                  out_root: str | Path = "bitstreams", work_root: str | Path = "build/finn", golden: np.ndarray | None = None,
                  codegen: bool = False, baseline: bool = False, provenance: dict | None = None,
                  progress: bool = True, rtl: bool = False, open_rtl: bool = True,
                  runtime_weights: bool = False, mvau_wwidth_max: int | None = None,
                  steps: list | None = None) -> dict[str, Any]:
    """Run the FINN build of ``onnx_path`` (``baseline=True``: stock FINN steps) and write the
    deployment package ``<out_root>/<name>/``.  Returns the package's manifest.

    ``rtl=True`` (implies ``codegen``; needs ``golden``): the stitched accelerator with FIFOs sized
    by simulation on the golden images goes into ``rtl/`` (:func:`winoforge.hw.rtl_sim.package_rtl`),
    checked bit-exact against the package's integer program, for the runtime's ``rtl`` backend.

    ``open_rtl=False`` (``winoforge build --vendor-layers``): pooling, global pooling and the
    classifier keep FINN's HLS/DSP variants (the vendor path, for Vivado + Vitis HLS) instead of
    our RTL layers (:func:`winoforge.hw.build.step_open_rtl_layers`); the manifest's ``layers``
    says which.  Such a build has no vendor-free RTL to stitch, so ``rtl=True`` is refused.

    ``runtime_weights=True`` (``winoforge build --runtime-weights``): the Winograd layers keep their
    weights in RAMs written at run time (:func:`winoforge.hw.build.step_runtime_weights`).  Every
    layer with runtime-writeable weights (also those ``step_weights_to_uram`` moved) gets its
    weight stream in ``weights/<node>.npy`` and an entry in the manifest's ``runtime_weights``
    (node, weight DMA ``idma1``..., file, words, layout), which the runtime writes on loading.

    ``mvau_wwidth_max``: FINN SetFolding's cap on an MVAU's SIMD times weight bits (``None``: FINN's
    default, 36), recorded in the manifest so that ``make bitfile`` folds the same way.  It bounds
    the width of a weight *stream*; the open-RTL layers embed their weights, and the networks
    benchmark raises it (``benchmarks/networks.py``), so its RTL row builds must too.

    ``steps``: the build's step list in place of the flow's (:func:`~winoforge.hw.build.winograd_steps`
    with ``codegen``/``open_rtl``/``runtime_weights`` as given): ``benchmarks/rtl.py`` rebuilds a
    networks benchmark row with the steps that estimated it (its URAM step)."""
    if steps is not None and (baseline or not steps):
        raise ValueError("steps: a non-empty step list of the Winograd flow (baseline=False); allowed: None (the "
                         "flow's own steps) or winograd_steps(...) changed")
    if runtime_weights and baseline:
        raise ValueError("runtime_weights=True applies to the Winograd flow; the stock-FINN baseline keeps "
                         "FINN's weights (drop --baseline or --runtime-weights)")
    if rtl and not open_rtl:
        raise ValueError("--rtl needs the open-RTL layers: drop --vendor-layers (open_rtl=False keeps FINN's "
                         "HLS/DSP pooling and classifier, which Verilator cannot simulate)")
    if rtl and golden is None:
        raise ValueError("rtl=True needs golden images (--verify-images >= 1): the FIFOs are sized on them")
    codegen = codegen or rtl
    from .build import (BuildStepError, baseline_steps, has_residual_add, make_build_config, run_build,
                        winograd_steps)
    from .finn_env import shims_active, vivado_available

    proto = check_build_inputs(onnx_path, board, target_fps, baseline)
    if not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"name={name!r} is not allowed; allowed: a folder name (it is replaced by the build)")
    work = Path(work_root) / name
    if work.exists():
        shutil.rmtree(work)
    cfg = make_build_config(work, board, target_fps, mvau_wwidth_max=mvau_wwidth_max)
    if steps is None:
        steps = (baseline_steps(open_rtl=open_rtl, residual=has_residual_add(proto)) if baseline
                 else winograd_steps(codegen=codegen, open_rtl=open_rtl, runtime_weights=runtime_weights))
    try:
        result = run_build(onnx_path, cfg, steps, golden=golden, progress=progress, name=name)
    except BuildStepError as err:
        unreachable = _unreachable_target(err, target_fps, 1000.0 / cfg.synth_clk_period_ns)
        if unreachable is None:
            raise
        raise unreachable from err
    package = Path(out_root) / name
    if package.exists():
        shutil.rmtree(package)
    (package / "reports").mkdir(parents=True)
    shutil.copy2(onnx_path, package / "model.onnx")
    # FINN's create_dataflow_partition continues with the accelerator's graph and writes the
    # graph around it (layout change of the input, float post-processing) as dataflow_parent.onnx
    result.model.save(str(package / "dataflow_model.onnx"))
    parent = work / "intermediate_models" / "dataflow_parent.onnx"
    if parent.is_file():
        shutil.copy2(parent, package / "dataflow_parent.onnx")
    # what the runtime needs (numpy only, see winoforge.runtime): the accelerator as an integer
    # program, and the golden images with the build's own Python execution of the final graph
    from .program import export_program

    export_program(result.model, package / "runtime")
    if golden is not None and result.golden_outputs is not None:
        raw = np.asarray(golden)
        if raw.ndim == 4 and raw.shape[1] in (1, 3):  # NCHW -> the accelerator's NHWC
            raw = raw.transpose(0, 2, 3, 1)
        np.savez(package / "runtime" / "golden.npz", input=raw.astype(np.uint8),
                 output=np.asarray(result.golden_outputs["output"]))
    weight_entries = write_runtime_weights(result.model, package)
    rtl_entry = None
    if rtl:
        from .rtl_sim import package_rtl

        raw = np.asarray(golden)
        if raw.ndim == 4 and raw.shape[1] in (1, 3):
            raw = raw.transpose(0, 2, 3, 1)
        rtl_entry = package_rtl(result.model, package, work, raw.astype(np.int64), fpgapart=cfg._resolve_fpga_part(),
                                clk_ns=cfg.synth_clk_period_ns, estimates=result.estimates,
                                build_root=Path(work_root) / "verilator")
        _check_weight_stream(package, weight_entries)
    if codegen:  # FINN's generated HDL and our WinogradSRBS parameter/weight files, per node
        from qonnx.custom_op.registry import getCustomOp

        for node in result.model.graph.node:
            try:
                src = getCustomOp(node).get_nodeattr("code_gen_dir_ipgen")
            except (AttributeError, KeyError):
                continue
            if src and Path(src).is_dir():
                shutil.copytree(src, package / "hdl" / node.name)
    (package / "reports" / "estimates.json").write_text(json.dumps(result.estimates, indent=2) + "\n")
    (package / "reports" / "build_steps.json").write_text(
        json.dumps([s.__dict__ for s in result.steps], indent=2, default=str) + "\n")
    finn_reports = work / "report"
    if finn_reports.is_dir():
        for path in finn_reports.glob("*.json"):
            shutil.copy2(path, package / "reports" / f"finn_{path.name}")
    iname = result.model.graph.input[0].name
    oname = result.model.graph.output[0].name
    info = {
        "name": name, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "board": cfg.board, "fpga_part": cfg._resolve_fpga_part(), "clock_mhz": 1000.0 / cfg.synth_clk_period_ns,
        "flow": "stock-finn-baseline" if baseline else "winograd-srbs",
        "layers": "open-rtl" if open_rtl else "vendor",
        "input": {"name": iname, "shape": result.model.get_tensor_shape(iname), "dtype": "uint8"},
        "output": {"name": oname, "shape": result.model.get_tensor_shape(oname), "dtype": "float32"},
        "estimated_fps": result.estimates.get("fps"), "bitfile": None, "rtl": rtl_entry,
        "runtime_weights": weight_entries,
        # every Winograd layer's weights written at run time (--runtime-weights), not only those moved to URAM
        "all_runtime_weights": bool(runtime_weights),
        # FINN's cap on SIMD x weight bits of an MVAU while folding (null: FINN's default)
        "mvau_wwidth_max": mvau_wwidth_max,
        "runtime": {"program": "runtime/program.json", "params": "runtime/params.npz",
                    "golden": "runtime/golden.npz" if (package / "runtime" / "golden.npz").is_file() else None},
        "provenance": portable_paths({
            "versions": _versions(), "git_commit": _git_commit(), "vivado": vivado_available(),
            "finn_shims": shims_active(), **(provenance or {}),
            "paths": "relative to the repository root where inside the repository, else to this package",
        }, package),
    }
    write_manifest(package, info)
    return verify_package(package)
