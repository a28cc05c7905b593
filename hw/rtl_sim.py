"""The stitched accelerator under Verilator: whole-network runs, cycle figures, FIFO sizing.

* :func:`simulate` -- a batch of images through a stitched design (packed as the DMA
  delivers them, :mod:`winoforge.runtime.rtl_backend`), with optional random input
  bubbles and output back-pressure: the integer outputs, steady-state cycles per frame
  (the distance between the last output words of consecutive images, averaged over
  the batch), the latency of the first image (its first input word to its last output
  word), the FIFO occupancy peaks and the simulation speed.
* :func:`size_fifos` -- FINN's recipe on our harness: stitch with deep FIFOs (each
  holding a whole frame of its stream), simulate a batch, take each FIFO's maximum
  occupancy plus a margin, stitch again with those depths and simulate the batch
  again: it must finish (a deadlock raises) with the same outputs and no slower than
  ``slack`` times the deep design.  FIFOs that came out deeper than ``shrink_to`` are
  tried at ``shrink_to`` first (one more simulation): a FIFO that fills in front of a
  slower consumer only lets its producer run ahead, so where the pace holds the depth
  is wasted -- except a FIFO into a layer that joins two streams (a residual sum): the
  shortcut's FIFO must hold what the other branch has not matched yet.  A trial that
  deadlocks falls back to the measured depths.
* :func:`package_rtl` -- the sized design into a deployment package (``rtl/``), checked
  against the package's integer program, with its figures (``reports/rtl_sim.json``).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .rtl.stitch import (FIFO_REPORT_FILE, FIFO_REPORT_TAG, StitchedDesign, fabric_edges, split_fabric, stitch,
                         stream_order)
from .rtl.verilator import SimulationError

__all__ = ["NetworkRun", "simulate", "simulate_layers", "fabric_images", "fifo_peaks", "deep_fifo_depths", "size_fifos", "FifoSizing", "package_rtl",
           "RTL_REPORT"]

#: the input FIFO's depth: the DMA refills it every cycle it has room, so a deep one only
#: measures how far the DMA can run ahead
INPUT_FIFO_DEPTH = 32
#: the Verilog macro that makes the stitched top write its FIFO occupancy report
FIFO_REPORT_DEFINE = "WF_FIFO_REPORT"


@dataclass
class NetworkRun:
    outputs: np.ndarray          # (N, *oshape_normal[1:]) integers at the fabric's output
    images: int
    cycles: int                  # all cycles of the run
    cycles_per_frame: float      # steady state over the batch (N >= 2), else the latency
    latency_cycles: int          # first image: first word in -> last word out
    fifo_peaks: list[int]
    wall_s: float
    cycles_per_s: float
    options: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"images": self.images, "cycles": self.cycles, "cycles_per_frame": self.cycles_per_frame,
                "latency_cycles": self.latency_cycles, "fifo_peaks": self.fifo_peaks, "wall_s": self.wall_s,
                "verilator_cycles_per_s": self.cycles_per_s, **self.options}


def fifo_peaks(report: Path, count: int) -> list[int]:
    """The FIFO occupancy peaks the stitched top wrote (``WF_FIFO <i> <maxcount>`` lines)."""
    peaks: dict[int, int] = {}
    for line in report.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == FIFO_REPORT_TAG:
            peaks[int(parts[1])] = int(parts[2])
    if sorted(peaks) != list(range(count)):
        raise RuntimeError(f"the simulation reported FIFO occupancy for {sorted(peaks)}; expected 0..{count - 1}")
    return [peaks[i] for i in range(count)]


def simulate(design: StitchedDesign | str | Path, x: np.ndarray, *, seed: int = 0, bubbles: float = 0.0,
             backpressure: float = 0.0, build_root: str | Path = "build/verilator",
             fifo_report: bool = True) -> NetworkRun:
    """Run the batch ``x`` (N, *ishape_normal[1:]) of the fabric's integer input through ``design``;
    ``fifo_report``: the FIFO occupancy report is written into the design's folder and read back
    (off for a package's design, whose files must not change)."""
    from winoforge.runtime.rtl_backend import VerilatedFabric

    folder = design.folder if isinstance(design, StitchedDesign) else Path(design)
    fabric = VerilatedFabric(folder, build_root)
    defines = (FIFO_REPORT_DEFINE,) if fifo_report else ()
    fabric.build(defines)  # compile outside the timed run
    n = int(np.asarray(x).shape[0])
    t0 = time.perf_counter()
    # generous cycle limit from the estimates: a deadlock ends the run long before it
    est = [int(st["cycles_est"]) for st in fabric.spec["stages"]]
    limit = int((n + 2) * max(est) * 4 / (1 - max(bubbles, backpressure)) + 4 * sum(est) + 100_000)
    y, run = fabric.run(x, defines=defines, seed=seed, in_bubble=bubbles, out_stall=backpressure,
                        max_cycles=limit)
    wall = time.perf_counter() - t0
    beats_out = len(run.out_cycles) // n
    last = run.out_cycles[beats_out - 1::beats_out]
    latency = int(last[0] - run.in_cycles[0]) + 1
    per_frame = float(np.mean(np.diff(last))) if n > 1 else float(latency)
    return NetworkRun(outputs=y, images=n, cycles=run.cycles, cycles_per_frame=per_frame, latency_cycles=latency,
                      fifo_peaks=fifo_peaks(folder / FIFO_REPORT_FILE, len(fabric.spec["fifo_depths"]))
                      if fifo_report else [],
                      wall_s=wall, cycles_per_s=run.cycles / wall if wall > 0 else float("inf"),
                      options={"seed": seed, "bubbles": bubbles, "backpressure": backpressure})


def simulate_layers(design: StitchedDesign, tensors: dict[str, np.ndarray], inputs: list[str],
                    outputs: list[str], *, build_root: str | Path = "build/verilator") -> list[dict]:
    """Each layer of ``design`` alone under the harness on its own input tensor (``tensors[inputs[i]]``,
    N >= 2 frames, from the integer program): ``[{name, cycles_sim (steady state), equal}]`` with
    ``equal`` its output against ``tensors[outputs[i]]`` (``np.array_equal``).  The harness drives one
    input and one output stream: a fork (``DuplicateStreams``) or a stream join (the residual add)
    is not run alone (``cycles_sim`` and ``equal`` None, ``alone`` says why); the whole network's
    simulation checks them."""
    from winoforge.runtime.rtl_backend import VerilatedFabric

    rows = []
    for st, tin, tout in zip(design.stages, inputs, outputs):
        if len(st.in_ports) > 1 or len(st.out_ports) > 1:
            rows.append({"name": st.name, "op_type": st.op_type, "cycles_sim": None, "cycles_est": st.cycles_est,
                         "cycles_ideal": st.cycles_ideal, "equal": None, "verilator_cycles_per_s": None,
                         "alone": f"not run alone: {len(st.in_ports)} input / {len(st.out_ports)} output streams "
                                  "(the harness drives one of each); checked in the whole network"})
            continue
        spec = {"top": st.name, "sources": list(st.files), "in_width": st.in_width, "out_width": st.out_width,
                "io": st.io, "weight_stream": st.weight_file, "weight_words": st.weight_words}
        fabric = VerilatedFabric(design.folder, build_root, spec=spec)
        if st.weight_words:  # a package keeps the top's weight stream only: the layer's slice of it
            fabric.set_weights(design.stage_weights(st))
        x = stream_order(tensors[tin], st.io.get("in_order"))
        limit = int((len(x) + 2) * st.cycles_est * 4 + 100_000)
        y, run = fabric.run(x, max_cycles=limit)
        want = stream_order(tensors[tout], st.io.get("out_order"))
        beats = len(run.out_cycles) // len(x)
        last = run.out_cycles[beats - 1::beats]
        rows.append({"name": st.name, "op_type": st.op_type, "cycles_sim": float(np.mean(np.diff(last))),
                     "cycles_est": st.cycles_est, "cycles_ideal": st.cycles_ideal,
                     "equal": bool(np.array_equal(y, want)), "verilator_cycles_per_s": run.cycles_per_s})
    return rows


def deep_fifo_depths(model) -> list[int]:
    """One frame of its stream for every FIFO (:func:`fabric_edges` order) but the input one
    (:data:`INPUT_FIFO_DEPTH`)."""
    from qonnx.custom_op.registry import getCustomOp

    fabric, _ = split_fabric(model)
    depths = []
    for edge in fabric_edges(model, fabric):
        if edge["src"] < 0:
            depths.append(INPUT_FIFO_DEPTH)
            continue
        beats = int(np.prod(getCustomOp(fabric[edge["src"]]).get_folded_output_shape(edge["src_port"])[:-1]))
        depths.append(max(2, beats + 2))
    return depths


@dataclass
class FifoSizing:
    design: StitchedDesign
    deep: NetworkRun
    sized: NetworkRun
    deep_depths: list[int]
    depths: list[int]

    def summary(self) -> dict:
        return {"deep_depths": self.deep_depths, "depths": self.depths, "peaks": self.deep.fifo_peaks,
                "cycles_per_frame_deep": self.deep.cycles_per_frame,
                "cycles_per_frame_sized": self.sized.cycles_per_frame}


def sized_depth(peak: int, margin: float = 0.1, extra: int = 2) -> int:
    """A FIFO depth for an observed occupancy peak: ``ceil(peak * (1 + margin)) + extra``, >= 2."""
    return max(2, math.ceil(peak * (1.0 + margin)) + extra)


def size_fifos(model, out_dir: str | Path, x: np.ndarray, *, margin: float = 0.1, extra: int = 2,
               slack: float = 1.02, shrink_to: int = 32, fpgapart: str = "xc7z020clg400-1", clk_ns: float = 10.0,
               build_root: str | Path = "build/verilator") -> FifoSizing:
    """Size the FIFOs of ``model``'s fabric by simulating the batch ``x`` (module docstring) and
    leave the sized design in ``out_dir``.  Raises if the sized design deadlocks, computes
    different outputs, or is slower than ``slack`` x the deep design per frame."""
    out_dir = Path(out_dir)
    deep_depths = deep_fifo_depths(model)
    deep_design = stitch(model, out_dir.with_name(out_dir.name + "_deep"), deep_depths, fpgapart=fpgapart,
                         clk_ns=clk_ns)
    deep = simulate(deep_design, x, build_root=build_root)
    depths = [INPUT_FIFO_DEPTH] + [sized_depth(p, margin, extra) for p in deep.fifo_peaks[1:]]
    # a FIFO that fills up in front of a slower consumer only lets its producer run ahead: try
    # the large ones at ``shrink_to`` and keep that where the pace holds
    # (not a FIFO into a layer that joins streams, e.g. a residual sum: its shortcut FIFO holds
    # what the other branch has not yet matched, and less than that deadlocks)
    joins = {i for i, st in enumerate(deep_design.stages) if len(st.in_ports) > 1}
    trial = [d if i == 0 or d <= shrink_to or deep_design.edges[i]["dst"] in joins else shrink_to
             for i, d in enumerate(depths)]
    for candidate in ([trial, depths] if trial != depths else [depths]):
        design = stitch(model, out_dir, candidate, fpgapart=fpgapart, clk_ns=clk_ns)
        try:
            sized = simulate(design, x, build_root=build_root)
        except SimulationError:
            # a shortcut FIFO shrunk below what its branch holds deadlocks: try the measured depths
            if candidate is depths:
                raise
            continue
        if not np.array_equal(sized.outputs, deep.outputs):
            raise AssertionError(f"the design with FIFO depths {candidate} computes different outputs than the deep one")
        if sized.cycles_per_frame <= slack * deep.cycles_per_frame:
            return FifoSizing(design, deep, sized, deep_depths, candidate)
    raise AssertionError(f"the FIFO-sized design needs {sized.cycles_per_frame:.0f} cycles per frame, more than "
                         f"{slack} x the deep design's {deep.cycles_per_frame:.0f}; depths {depths}")


#: what a package records of its stitched RTL (``reports/rtl_sim.json``)
RTL_REPORT = "reports/rtl_sim.json"


def _fabric_reference(package: Path, x: np.ndarray, tensor: str) -> np.ndarray:
    """The package's integer program at the fabric's output tensor for the inputs ``x``."""
    from winoforge.runtime.program import Program

    return Program.load(package / "runtime").run(x, return_all=True)[tensor]


def package_rtl(model, package: str | Path, work: str | Path, x: np.ndarray, *, fpgapart: str, clk_ns: float,
                estimates: dict | None = None, build_root: str | Path = "build/verilator") -> dict:
    """Stitch ``model``'s fabric, size its FIFOs on the images ``x`` (NHWC, the accelerator's
    raw input; at least two frames are simulated), check the sized design against the package's
    integer program (``np.array_equal``), and put it into ``<package>/rtl/`` with its figures in
    :data:`RTL_REPORT`.  Returns the manifest's ``rtl`` entry."""
    from winoforge.runtime.rtl_backend import RTL_DIR, STITCHED_FILE

    package, work = Path(package), Path(work)
    x = np.asarray(x)
    if len(x) < 2:
        x = np.concatenate([x, x])[:2]
    sizing = size_fifos(model, work / "stitched", x, fpgapart=fpgapart, clk_ns=clk_ns, build_root=build_root)
    want = _fabric_reference(package, x, sizing.design.fabric_output)
    if not np.array_equal(sizing.sized.outputs, want):
        raise AssertionError(f"the stitched RTL differs from the package's integer program at "
                             f"{sizing.design.fabric_output} in {int((sizing.sized.outputs != want).sum())} values")
    dest = package / RTL_DIR
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    weights = [sizing.design.weight_stream] if sizing.design.weight_stream else []  # written by the runtime
    for name in [*sizing.design.sources, STITCHED_FILE, *weights,
                 *sorted(p.name for p in sizing.design.folder.iterdir() if p.suffix in (".dat", ".memh", ".mem", ".hex"))]:
        shutil.copy2(sizing.design.folder / name, dest / name)
    est_cycles = (estimates or {}).get("max_cycles")
    report = {"images": int(len(x)), "fabric_output": sizing.design.fabric_output, "tail_on_host": sizing.design.tail,
              "fifo": sizing.summary(), "sim": sizing.sized.summary(),
              "cycles_per_frame_est": est_cycles,
              "layers": [{"name": s.name, "op_type": s.op_type, "cycles_est": s.cycles_est}
                         for s in sizing.design.stages],
              "equal_to_program": True}
    (package / RTL_REPORT).write_text(json.dumps(report, indent=2) + "\n")
    return {"folder": RTL_DIR, "top": sizing.design.top, "report": RTL_REPORT,
            "fabric_output": sizing.design.fabric_output, "tail_on_host": sizing.design.tail,
            "cycles_per_frame_sim": sizing.sized.cycles_per_frame, "latency_cycles_sim": sizing.sized.latency_cycles}


def fabric_images(x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Raw images ``(N, C, H, W)`` (integer pixel values, as a data loader gives them before
    normalizing) as the fabric takes them: ``(N, H, W, C)`` int64 for a fabric input of ``shape``
    ``(H, W, C)``; a shape or a non-integer value is refused, naming what the package takes."""
    x = np.asarray(x)
    h, w, c = shape
    if x.ndim != 4 or x.shape[1:] != (c, h, w):
        raise ValueError(f"x: images of shape {x.shape}; this package takes (N, C, H, W) = (N, {c}, {h}, {w})")
    if not np.array_equal(x, np.round(x)) or x.min(initial=0) < 0 or x.max(initial=0) > 255:
        raise ValueError("x: raw pixels must be integers in 0..255 (uint8 values), not normalized floats")
    return x.transpose(0, 2, 3, 1).astype(np.int64)


def run_package(package: str | Path, images: int = 1000, *, seed: int = 0, bubbles: float = 0.0,
                backpressure: float = 0.0, data_dir: str | Path | None = None,
                build_root: str | Path = "build/verilator", x: np.ndarray | None = None) -> dict:
    """The first ``images`` Fashion-MNIST test images (or the images ``x``, ``(N, C, H, W)`` raw
    integer pixels, for a network of other data) through a package's stitched RTL, compared with
    ``np.array_equal`` to its integer program at the fabric's output; figures as a dict."""
    from winoforge.runtime.idx import fashion_mnist_arrays
    from winoforge.runtime.package import load_package
    from winoforge.runtime.rtl_backend import RTL_DIR, STITCHED_FILE

    package = load_package(package).path  # every sha256 checked first
    if not (package / RTL_DIR / STITCHED_FILE).is_file():
        raise FileNotFoundError(f"{package} has no stitched RTL ({RTL_DIR}/{STITCHED_FILE}); build it with "
                                "`winoforge build ... --rtl`")
    spec = json.loads((package / RTL_DIR / STITCHED_FILE).read_text())
    shape = tuple(spec["io"]["ishape_normal"][1:])  # (H, W, C): the fabric takes NHWC
    if x is None:
        x, _ = fashion_mnist_arrays(data_dir, "test")
        x = np.asarray(x[:images], dtype=np.int64).reshape(-1, *shape)
    else:
        x = fabric_images(x[:images], shape)
    want = _fabric_reference(package, x, spec["fabric_output"])
    run = simulate(package / RTL_DIR, x, seed=seed, bubbles=bubbles, backpressure=backpressure,
                   build_root=build_root, fifo_report=False)
    mismatches = int(np.sum(run.outputs != want))
    est = json.loads((package / "reports" / "estimates.json").read_text())
    return {"package": str(package), "images": len(x), "mismatches": mismatches,
            "equal": mismatches == 0 and run.outputs.shape == want.shape,
            "cycles_per_frame_est": est.get("max_cycles"), **run.summary()}


def main(argv: list[str] | None = None) -> int:
    """``python -m winoforge.hw.rtl_sim PACKAGE --images N`` (``make sim``)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m winoforge.hw.rtl_sim",
                                description="a package's stitched RTL on real test images under Verilator")
    p.add_argument("package")
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--bubbles", type=float, default=0.0, help="input bubble probability per cycle")
    p.add_argument("--backpressure", type=float, default=0.0, help="output stall probability per cycle")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON report (default build/rtl_sim/<package>.json)")
    args = p.parse_args(argv)
    try:
        report = run_package(args.package, args.images, seed=args.seed, bubbles=args.bubbles,
                             backpressure=args.backpressure)
    except (FileNotFoundError, ValueError) as err:
        print(f"make sim: {err}")
        return 1
    out = Path(args.out or Path("build") / "rtl_sim" / f"{Path(args.package).name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['images']} test images through the verilated accelerator: {report['mismatches']} mismatches "
          f"against the integer program; {report['cycles_per_frame']:.0f} cycles/frame simulated "
          f"(estimated {report['cycles_per_frame_est']}), latency {report['latency_cycles']} cycles; "
          f"Verilator {report['verilator_cycles_per_s'] / 1e6:.2f} M cycles/s -> {out}")
    return 0 if report["equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
