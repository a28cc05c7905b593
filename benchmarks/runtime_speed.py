"""Runtime speed, measured side by side in one process (medians of interleaved repeats):

* **packing** -- ``winoforge.runtime.packing`` against FINN's ``finn.util.data_packing`` on the
  same arrays (FINN's driver packing: ``reverse_inner=True, reverse_endian=True``): the raw
  uint8 images of a batch, INT4 folded activations (sub-byte: FINN's general bit path), and the
  FLOAT32 logits unpacked.  Ratio = FINN time / ours; the outputs are checked to be equal.
* **execution** -- the integer program of ``notebooks/packages/fmnist-tiny`` run by
  ``winoforge.runtime.program.Program`` against FINN's Python execution of the package's
  ``dataflow_model.onnx`` (``winoforge.hw.build.execute_python``), same images, outputs equal.
  Also the end-to-end rate of the simulated device (``Accelerator``: packing, the register
  protocol, the program).  These are the simulator's speeds on this CPU, not the FPGA's.

Writes ``benchmarks/results/runtime_speed.json`` and ``.png``.

    python benchmarks/runtime_speed.py [--repeats 7] [--images 200] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "notebooks" / "packages" / "fmnist-tiny"


def _interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Run each function ``repeats`` times, alternating the order each round; seconds per call."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def _row(what: str, times: dict[str, list[float]], reference: str, ours: str, items: int) -> dict[str, Any]:
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"case": what, "items": items, "median_s": med, "all_s": times,
            "ratio": med[reference] / med[ours], "ratio_of": f"{reference} / {ours}"}


def bench_packing(repeats: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    from qonnx.core.datatype import DataType

    from finn.util import data_packing as finn_pack
    from winoforge.runtime import packing as ours

    rows = []
    cases = [
        ("pack UINT8 images (1000, 28, 28, 1, 1)", "UINT8", rng.integers(0, 256, (1000, 28, 28, 1, 1))),
        ("pack INT4 activations (64, 14, 14, 4, 8)", "INT4", rng.integers(-8, 8, (64, 14, 14, 4, 8))),
    ]
    for what, dt, x in cases:
        # FINN's float32 carrier (its Python execution's tensors) and the native integer container
        # (``uint8`` for UINT8 takes FINN's whole-byte fast path; ``int8`` for INT4 does not exist there)
        for container, xf in (("float32", x.astype(np.float32)), ("native", x.astype(DataType[dt].to_numpy_dt()))):
            outs = {}

            def finn_fn(xf=xf, dt=dt):
                outs["finn"] = finn_pack.finnpy_to_packed_bytearray(xf, DataType[dt], reverse_inner=True,
                                                                     reverse_endian=True)

            def ours_fn(xf=xf, dt=dt):
                outs["ours"] = ours.finnpy_to_packed_bytearray(xf, dt, reverse_inner=True, reverse_endian=True)

            times = _interleaved({"finn": finn_fn, "winoforge": ours_fn}, repeats)
            if not np.array_equal(outs["finn"], outs["ours"]):
                raise AssertionError(f"{what}: packed bytes differ from FINN's")
            rows.append(_row(f"{what}, {container} container", times, "finn", "winoforge", x.size))
    logits = rng.standard_normal((1000, 10, 1)).astype(np.float32)
    packed = ours.finnpy_to_packed_bytearray(logits, "FLOAT32", reverse_inner=True, reverse_endian=True)
    outs = {}

    def finn_unpack():
        outs["finn"] = finn_pack.packed_bytearray_to_finnpy(packed, DataType["FLOAT32"], logits.shape,
                                                            reverse_inner=True, reverse_endian=True)

    def ours_unpack():
        outs["ours"] = ours.packed_bytearray_to_finnpy(packed, "FLOAT32", logits.shape, reverse_inner=True,
                                                       reverse_endian=True)

    times = _interleaved({"finn": finn_unpack, "winoforge": ours_unpack}, repeats)
    if not np.array_equal(outs["finn"], outs["ours"]):
        raise AssertionError("FLOAT32 unpacking differs from FINN's")
    rows.append(_row("unpack FLOAT32 logits (1000, 10, 1)", times, "finn", "winoforge", logits.size))
    return rows


def bench_execution(repeats: int, images: int) -> list[dict[str, Any]]:
    from qonnx.core.modelwrapper import ModelWrapper

    from winoforge.hw.build import execute_python
    from winoforge.hw.finn_env import ensure_finn
    from winoforge.runtime import Accelerator
    from winoforge.runtime.idx import fashion_mnist_arrays
    from winoforge.runtime.program import Program

    x = fashion_mnist_arrays(split="test")[0][:images, :, :, None]
    model = ModelWrapper(str(PACKAGE / "dataflow_model.onnx"))
    program = Program.load(PACKAGE / "runtime")
    outs: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ensure_finn(Path(tmp) / "finn")

        def finn_fn():
            outs["finn"] = execute_python(model, x.transpose(0, 3, 1, 2), Path(tmp) / "views")["output"]

        def program_fn():
            outs["program"] = program.run(x)

        times = _interleaved({"finn_python": finn_fn, "program": program_fn}, repeats)
    if not np.array_equal(outs["finn"], outs["program"]):
        raise AssertionError("the program's outputs differ from FINN's Python execution")
    rows = [_row(f"execute {images} images: FINN Python execution vs integer program", times, "finn_python",
                 "program", images)]
    with Accelerator.load(PACKAGE, backend="sim", batch_size=100) as acc:
        sim = _interleaved({"sim_device": lambda: acc.execute(x)}, repeats)
    med = statistics.median(sim["sim_device"])
    rows.append({"case": f"simulated device end to end, {images} images, batch 100", "items": images,
                 "median_s": {"sim_device": med}, "all_s": sim, "images_per_s": images / med})
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratios = [r for r in rows if "ratio" in r]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.barh([r["case"] for r in ratios], [r["ratio"] for r in ratios], color="tab:blue")
    ax.axvline(1.0, color="gray", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("speed-up of winoforge.runtime (FINN time / ours, median; log scale)")
    for i, r in enumerate(ratios):
        ax.text(r["ratio"], i, f" {r['ratio']:.1f}x", va="center", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)
    load_before = os.getloadavg()[0]
    rows = bench_packing(args.repeats, np.random.default_rng(0)) + bench_execution(args.repeats, args.images)
    result = {"benchmark": "runtime_speed", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "repeats": args.repeats, "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
              "numpy": np.__version__, "load_avg_1min_before": load_before,
              "load_avg_1min_after": os.getloadavg()[0], "package": str(PACKAGE.relative_to(ROOT)), "results": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "runtime_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, args.out / "runtime_speed.png")
    for r in rows:
        if "ratio" in r:
            print(f"{r['case']:<72} {r['ratio']:8.1f}x ({r['ratio_of']})")
        else:
            print(f"{r['case']:<72} {r['images_per_s']:8.0f} images/s")
    print(f"-> {args.out / 'runtime_speed.json'}")
    return result


if __name__ == "__main__":
    main()
