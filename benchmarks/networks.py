"""The comparison the paper makes (issue 12): Winograd-SRBS against dense Winograd and stock FINN
on VGG and ResNet networks, each at the fastest folding that fits its board.

Networks (``NETWORKS``; ``--quick``: ``QUICK_NETWORKS``, two tiny ones):

* Fashion-MNIST (28x28x1) on PYNQ-Z2: the VGG student of ``benchmarks/hw_estimates.py``
  (32,32,M,64,64,M,128,128,M) and the ResNet-8 student of
  ``configs/fmnist_distill_w4a4_srbs25_resnet.toml`` (widths 16/32/64).
* CIFAR-10-sized (32x32x3) on ZCU104: a VGG-nagadomi-style conv stack, ResNet-20 (CIFAR, widths
  16/32/64; 2x2 max-pooling between stages as every winoforge ResNet) and VGG16-CIFAR.

Every network is a *hardware-cost reference* with untrained weights (``hw.flow.reference_student``:
random weights, SRBS-pruned, BatchNorm statistics from calibration images): real Fashion-MNIST
images for the Fashion-MNIST networks, and -- CIFAR-10 is not on these machines -- *random*
32x32x3 uint8 images for the CIFAR-sized ones (``"calibration"`` in each row says which).  Cycles
and resources depend on shapes, widths and sparsity, not on trained values.

Flows per network (all W4A4 with 8-bit input, F(2,3), power-of-two scales):

* ``finn``: stock FINN with direct 3x3 convolutions (``hw.baseline.direct_baseline`` of the dense
  student: ConvolutionInputGenerator + MVAU);
* ``winograd_dense``: our WinogradSRBS layer at density 1 (no SRBS, sub_row 0);
* ``srbs`` density 1/2 (4 of 8) and 1/4 (2 of 8) -- SubRow 8, the pattern of the shipped students;
* ``srbs`` density 1/4 as 1 of 4 (SubRow 4 Keep 1: 4:1 index muxes, which Yosys measured at 1.00-1.24x
  the dense layer's LUT at 4x its speed, against 1.42x for 2 of 8; ``benchmarks/rtl_calibration.py``);
  each row records its ``sub_row`` and ``keep``;
* ``srbs`` density 1/4 with mixed precision (``mixed: true``), in both patterns: per-layer widths chosen by
  ``model.mixed_precision.choose_under_budget`` under a BOPs budget of ``MIXED_BOPS_FRACTION`` of
  the W4A4 BOPs, over the candidates ``MIXED_CANDIDATES`` (those exact in float32).  An untrained
  network has no measurable sensitivity, so the search uses a documented *proxy*:
  ``Delta_l(w, a) = 4^-w + 4^-a``, the relative noise power of uniform w- and a-bit quantizers,
  the same for every layer -- the knapsack then narrows the layers that cost the most BOPs.  It is
  a hardware-cost proxy, not an accuracy claim.

Weights in UltraRAM: on a board with URAM (ZCU104), where a folding's BRAM estimate does not fit,
``hw.build.step_weights_to_uram`` moves the largest weight memories -- FINN's MVAUs and our
WinogradSRBS layers alike -- to URAM, which takes no contents from a bitstream: those weights are
written at run time (``runtime_writeable_weights``; our layers' weight stream is simulated bit-exact
and written by the runtime, FINN's AXI-lite MVAU weights are not -- in the open-RTL flow the step
finds none: the classifier and projections are our ``MVAU_lut_rtl`` by then).  ``uram`` in each row
counts them: the estimate's, or Yosys's URAM288 on an ``rtl`` row (``benchmarks/rtl.py --rows``
rebuilds such a row with these steps, :func:`uram_back`).

Folding: each flow's front (import .. specialize) runs once; the back (folding, estimates) runs
for target FPS on a geometric grid (ratio 2^(1/12), ``GRID``), searched by bisection for the fastest point
that fits the board *and* the resources of the flows it is compared with ("at equal resources"):
``finn`` is the fastest folding that fits the board; ``winograd_dense`` the fastest with no more
LUT and DSP than the ``finn`` row; every ``srbs`` row the fastest with no more LUT and DSP than the
``winograd_dense`` row (and so than ``finn``) -- the reference row's *final* figures: Yosys's where
``make bench-rtl`` built it (:func:`reference_cap`), else its estimates.  The speed-ups are then
plain FPS ratios of the rows (``speedup_vs_dense_winograd = fps / fps(winograd_dense)``,
``speedup_vs_finn = fps / fps(finn)``).  A flow with no folding inside its limits gets a row with
``fps: null`` and the reason -- never an invented figure.  The bisection assumes resources grow with the target FPS (they do, up to
folding steps); ``grid_points`` records every folding it built.

Source: a row is ``"rtl"`` where ``make bench-rtl`` built, simulated and synthesized its network at
its folding (:func:`apply_rtl`: FPS from the Verilator-simulated cycles, resources by Yosys; the
estimates kept under ``estimate``), else ``"estimate"`` (FINN's estimates for FINN's HLS layers;
ours for WinogradSRBS, our pooling/classifier RTL and FINN's RTL layers, calibrated against Yosys
in ``benchmarks/rtl_calibration.py``; our WinogradSRBS cycle model equals the Verilator-simulated
cycles, ``benchmarks/rtl.py``).  ``make bench-rtl`` builds the PYNQ-Z2 benchmark network
(``rtl.json``); ``python benchmarks/rtl.py --rows NETWORK:FLOW,...`` rebuilds any row of our flows
on the Fashion-MNIST networks at its folding (``rtl_rows.json``; about 15 min a row), and
``NETWORK:FLOW@FPS`` a candidate folding of a row's flow past the estimate's cap: the row takes the
fastest build of its flow that Yosys measures within its reference's final LUT and DSP
(:func:`apply_rtl`, in ``network_rows.py``; the estimates err by a few per cent either way).  The
CIFAR-sized rows simulate random 32x32x3 images (as their rows' calibration; ``--no-whole`` skips the
hours-long one-piece synthesis of such a design, its LUT the sum of its parts).  The
``finn`` rows stay estimates: FINN's HLS layers need Vitis HLS for RTL.

Targets (``targets`` in the JSON, pass/fail per network): density 1/4 at least 3x the FPS of dense
Winograd at no more LUT and DSP; and how far mixed precision takes it.

Writes ``benchmarks/results/networks.json``, ``networks.png`` and ``networks_steps.png`` (each SRBS flow's
folding steps, estimated and built, against the dense design: :func:`plot_steps`); prints the table.
Run: ``make bench-networks`` (part of ``make bench``; 11-25 min per network on 2 shared cores);
``--quick``: two tiny networks, a coarse grid (about a minute; the test runs it);
``--apply-rtl``: only the RTL results applied again to the recorded rows (after ``bench-rtl``).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
if str(ROOT) not in sys.path:  # network_rows beside this file, also where the tests run it by path
    sys.path.insert(0, str(ROOT))

from network_rows import (  # noqa: E402 -- after the path above; re-exported: the tests and rtl.py take them here
    CLOCK_HZ, REFERENCE_FLOW, RTL_FILES, RTL_ROWS, SUB_ROW, apply_rtl, build_bram18, built_on_current_rtl,
    row_key, row_pattern, row_sub_row, rtl_networks, stale_builds, winograd_layer_parameters)

#: FINN's cap on an MVAU's weight-stream width per PE, as in benchmarks/hw_estimates.py (its reason there).
MVAU_WWIDTH_MAX = 1024
#: (flow, sub_row, keep -- None for dense -- mixed precision)
FLOWS = (("finn", None, None, False), ("winograd_dense", None, None, False), ("srbs", 8, 4, False),
         ("srbs", 8, 2, False), ("srbs", 8, 2, True), ("srbs", 4, 1, False), ("srbs", 4, 1, True))


def flow_label(flow: str, sub_row: int | None, keep: int | None, mixed: bool) -> str:
    """A flow's name in ``networks.<name>.flows`` and ``--flows``: ``finn``, ``winograd_dense``,
    ``srbs_2of8``, ``srbs_1of4_mixed``..."""
    return flow if flow != "srbs" else f"srbs_{keep}of{sub_row}" + ("_mixed" if mixed else "")


FLOW_LABELS = [flow_label(*f) for f in FLOWS]
MIXED_BOPS_FRACTION = 0.6
#: calibration images per network (``--calibration``; ``benchmarks/rtl.py --rows`` rebuilds rows with it)
CALIBRATION = 64
MIXED_CANDIDATES = [(w, a) for w in (2, 3, 4) for a in (2, 3, 4)]

VGG_PYNQ = [32, 32, "M", 64, 64, "M", 128, 128, "M"]
VGG_NAGADOMI = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"]
VGG16_CIFAR = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
NETWORKS = {
    "fmnist-vgg": {"data": "fashion-mnist", "board": "PYNQ-Z2", "arch": "vgg", "widths": VGG_PYNQ},
    "fmnist-resnet8": {"data": "fashion-mnist", "board": "PYNQ-Z2", "arch": "resnet", "depth": 8, "width": 16},
    "cifar-vgg-nagadomi": {"data": "random-32x32x3", "board": "ZCU104", "arch": "vgg", "widths": VGG_NAGADOMI},
    "cifar-resnet20": {"data": "random-32x32x3", "board": "ZCU104", "arch": "resnet", "depth": 20, "width": 16},
    "cifar-vgg16": {"data": "random-32x32x3", "board": "ZCU104", "arch": "vgg", "widths": VGG16_CIFAR},
}
QUICK_NETWORKS = {
    "tiny-vgg": {"data": "fashion-mnist", "board": "PYNQ-Z2", "arch": "vgg", "widths": [16, "M", 16, "M"]},
    "tiny-resnet-cifar": {"data": "random-32x32x3", "board": "PYNQ-Z2", "arch": "resnet", "depth": 8, "width": 8},
}
#: Target FPS, geometric with ratio 2^(1/12) (folding is discrete: a fine grid finds its steps -- with
#: 2^(1/6), fmnist-vgg's 1 of 4 went from 13,312 cycles a frame at 7,184 FPS to 11,008 at 8,063, past its
#: 12,544-cycle folding; the bisection takes one step more for twice the points).
GRID = [int(round(25 * 2 ** (k / 12))) for k in range(0, 205)]  # 25 .. ~3.2 M
QUICK_GRID = GRID[::24]

#: BISWSRBS (Yang et al., ACM TRETS 14(4), 2021), abstract (DESIGN.md, shared/seeds): speed-ups of
#: their SRBS accelerator with mixed precision over the dense Winograd accelerator of their ref. [20].
PAPER = [
    {"network": "VGG16", "dataset": "CIFAR-10", "speedup_vs_dense_winograd": 11.8},
    {"network": "VGG-nagadomi", "dataset": "CIFAR-10", "speedup_vs_dense_winograd": 8.67},
    {"network": "ResNet-18", "dataset": "ImageNet", "speedup_vs_dense_winograd": 8.17},
    {"network": "ResNet-34", "dataset": "ImageNet", "speedup_vs_dense_winograd": 8.31},
    {"network": "ResNet-50", "dataset": "ImageNet", "speedup_vs_dense_winograd": 10.6},
    {"network": "VGG16", "dataset": "CIFAR-10", "speedup_vs_sparse_winograd": 4.11},
]
#: which of our networks each paper figure sits beside
PAPER_BESIDE = {"cifar-vgg16": "VGG16", "cifar-vgg-nagadomi": "VGG-nagadomi", "cifar-resnet20": "ResNet-18",
                "fmnist-resnet8": "ResNet-18", "fmnist-vgg": "VGG16"}


# ------------------------------------------------------------------ networks


def calibration_images(data: str, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """``(float images in [0, 1], raw uint8 as float32, description)`` for a network's data."""
    if data == "fashion-mnist":
        from winoforge.hw.flow import golden_images

        x, raw, _ = golden_images(count)
        return x, raw, f"{count} Fashion-MNIST test images"
    if data == "random-32x32x3":
        raw = np.random.default_rng(seed).integers(0, 256, size=(count, 3, 32, 32)).astype(np.float32)
        return raw / 255.0, raw, f"{count} random uniform 32x32x3 uint8 images (CIFAR-10 is not on this machine)"
    raise ValueError(f"data={data!r} is not known; allowed: 'fashion-mnist', 'random-32x32x3'")


def _student(spec: dict, x: np.ndarray, keep: int | None, layer_bits: dict | None = None,
             sub_row: int | None = SUB_ROW):
    """The flow's reference student: SRBS ``keep`` of ``sub_row``, dense Winograd where ``keep`` is None."""
    from winoforge.hw.flow import reference_student

    kwargs = {"widths": spec["widths"]} if spec["arch"] == "vgg" else {"depth": spec["depth"], "width": spec["width"]}
    return reference_student(arch=spec["arch"], sub_row=sub_row if keep else None, keep=keep or SUB_ROW,
                             calibration=x, in_channels=x.shape[1], layer_bits=layer_bits, **kwargs)


def proxy_sensitivity(pair: tuple[int, int]) -> float:
    """The mixed-precision proxy of an untrained network (module docstring): ``4^-w + 4^-a``."""
    w, a = pair
    return 4.0 ** -w + 4.0 ** -a


def mixed_widths(spec: dict, x: np.ndarray, keep: int, sub_row: int = SUB_ROW) -> dict:
    """Per-layer widths at SRBS ``keep`` of ``sub_row`` under ``MIXED_BOPS_FRACTION`` of the W4A4 BOPs
    (``choose_under_budget`` on :func:`proxy_sensitivity`); returns the choice and its figures."""
    from winoforge.model.mixed_precision import (choose_under_budget, exact_candidates, layer_pairs,
                                                 mean_bits, pairs_to_layer_bits)
    from winoforge.model.students import StudentConfig, act_sources

    net = _student(spec, x, keep, sub_row=sub_row)
    shape = tuple(x.shape[1:])
    from winoforge.model.mixed_precision import layer_mults

    mults = layer_mults(net, shape)
    sources = act_sources(net)
    fixed = [n for n, src in sources.items() if src is None]
    # the first layer reads the 8-bit image: only its weight width is free
    options = {n: sorted({(w, 8) for w, _ in MIXED_CANDIDATES}) if n in fixed else list(MIXED_CANDIDATES)
               for n in sources}
    options = exact_candidates(net, options)
    costs = {n: {p: mults[n] * p[0] * p[1] for p in options[n]} for n in options}
    w4a4 = layer_pairs(StudentConfig(w_bits=4, a_bits=4), sources)
    budget = int(MIXED_BOPS_FRACTION * sum(mults[n] * w * a for n, (w, a) in w4a4.items()))
    sens = {n: {p: proxy_sensitivity(p) for p in options[n]} for n in options}
    pairs = choose_under_budget(sens, costs, budget, budget_name="mixed BOPs budget", unit=" BOPs")
    return {"layer_bits": pairs_to_layer_bits(pairs, sources, default_a=4),
            "pairs": {n: list(p) for n, p in pairs.items()}, "bops": sum(costs[n][p] for n, p in pairs.items()),
            "budget_bops": budget, "mean_bits": mean_bits(pairs, mults, fixed)}


def _mean_bits_w4a4(spec: dict, x: np.ndarray, keep: int | None, sub_row: int | None = SUB_ROW) -> float:
    from winoforge.model.mixed_precision import layer_mults, layer_pairs, mean_bits
    from winoforge.model.students import StudentConfig, act_sources

    net = _student(spec, x, keep, sub_row=sub_row)
    sources = act_sources(net)
    pairs = layer_pairs(StudentConfig(w_bits=4, a_bits=4), sources)
    return mean_bits(pairs, layer_mults(net, tuple(x.shape[1:])), [n for n, s in sources.items() if s is None])


# ------------------------------------------------------------------ builds and the folding search


def _front_and_back(kind: str):
    """The build's front (import .. specialize) and its folding/estimate back, as the hardware
    benchmark splits them (one home: ``benchmarks/hw_estimates.py``).  ``"baseline_residual"``:
    stock FINN's steps with our flow's streamlining in place of FINN's ``step_streamline``
    (``winoforge.hw.build.baseline_steps(residual=True)``, as ``build_package`` takes for a
    residual graph)."""
    import sys

    sys.path.insert(0, str(ROOT))
    from hw_estimates import _front

    return _front(None, kind)


def _kind(model, layer: dict) -> str:
    """A layer's op type; a WinogradSRBS layer's with its pattern, ``WinogradSRBS_rtl (2of8)`` or
    ``(dense)`` (the stem on one input channel, and the dense flow)."""
    if not layer["op_type"].startswith("WinogradSRBS"):
        return layer["op_type"]
    from qonnx.custom_op.registry import getCustomOp

    params = getCustomOp(model.get_node_from_name(layer["name"])).params()
    return layer["op_type"] + (f" ({params.keep}of{params.sub_row})" if params.sparse else " (dense)")


def _point(result, board) -> dict:
    from winoforge.hw.boards import fits

    est = result.estimates
    totals = est["totals"]
    layers = est["layers"]
    lacking = [layer["name"] for layer in layers if "FF" not in layer["resources"]]
    ff_known = sum(layer["resources"]["FF"] for layer in layers if "FF" in layer["resources"])
    by_kind: dict[str, float] = {}  # where the LUTs go: our Winograd layers against everything else
    for kind, res in [*((_kind(result.model, layer), layer["resources"]) for layer in layers),
                      *(("width converters", conv["resources"]) for conv in est.get("converters", []))]:
        by_kind[kind] = by_kind.get(kind, 0) + res.get("LUT", 0)
    fit = fits(totals, board)
    return {"fps": est["fps"], "lut": totals.get("LUT", 0), "ff": None if lacking else ff_known,
            "ff_partial": ff_known, "ff_missing_layers": len(lacking), "bram": totals.get("BRAM_18K", 0) / 2,
            "dsp": totals.get("DSP", 0), "uram": totals.get("URAM", 0), "max_cycles": est["max_cycles"],
            "slowest": est["slowest"], "fits": fit.ok, "why_not": str(fit),
            "lut_by_op_type": dict(sorted(by_kind.items(), key=lambda kv: -kv[1]))}


def uram_back(back: list) -> list:
    """The back of a flow on a board with URAM: weights that do not fit the BRAM go to URAM, written at
    run time, in both flows alike -- FINN's MVAUs too (``step_weights_to_uram``, right before the
    estimates) in place of the default steps' ``step_winograd_weights_to_uram`` (our layers only)."""
    from winoforge.hw.build import step_weights_to_uram, step_winograd_weights_to_uram

    back = [s for s in back if s is not step_winograd_weights_to_uram]
    cut = back.index("step_generate_estimate_reports")
    return [*back[:cut], step_weights_to_uram, *back[cut:]]


class FoldingSearch:
    """One flow of one network: its front built once, its back built per target FPS (cached)."""

    def __init__(self, onnx: Path, kind: str, board, work: Path, grid: list[int]):
        from winoforge.hw.build import make_build_config, run_build

        self.board, self.work, self.grid, self.points = board, work, grid, {}
        front, self.back = _front_and_back(kind)
        if board.uram:
            self.back = uram_back(self.back)
        cfg = make_build_config(work / "front", board.name, None, mvau_wwidth_max=MVAU_WWIDTH_MAX)
        self.front = run_build(onnx, cfg, front, golden=None, progress=False, name=f"{work.name} front").steps[-1].model

    def at(self, target: int) -> dict:
        if target not in self.points:
            from winoforge.hw.build import make_build_config, run_build

            cfg = make_build_config(self.work / f"t{target}", self.board.name, target, mvau_wwidth_max=MVAU_WWIDTH_MAX)
            try:
                res = run_build(self.front, cfg, self.back, golden=None, progress=False, name=f"{self.work.name}@{target}")
                self.points[target] = {"target_fps": target, **_point(res, self.board)}
            except Exception as err:  # noqa: BLE001 -- an unreachable target is recorded, not fatal
                self.points[target] = {"target_fps": target, "error": str(err).splitlines()[0][:300]}
        return self.points[target]

    def fastest_within(self, lut_cap: float | None, dsp_cap: float | None) -> dict | None:
        """Bisection over the grid for the fastest point that fits the board and the caps."""

        def ok(p: dict) -> bool:
            return ("error" not in p and p["fits"] and (lut_cap is None or p["lut"] <= lut_cap)
                    and (dsp_cap is None or p["dsp"] <= dsp_cap))

        lo, hi = -1, len(self.grid)  # invariant: grid[lo] ok (or lo = -1), grid[hi] not ok (or hi = len)
        if not ok(self.at(self.grid[0])):
            return None
        lo = 0
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(self.at(self.grid[mid])):
                lo = mid
            else:
                hi = mid
        # several targets can land on one folding: take the fastest ok point built
        return max((p for p in self.points.values() if ok(p)), key=lambda p: p["fps"])


# ------------------------------------------------------------------ one network


def reference_cap(rows: list[dict], index: int, rtl=()) -> dict:
    """The LUT/DSP that the flows capped by ``rows[index]`` (``REFERENCE_FLOW``) must stay within: the
    row's *final* figures, Yosys's where ``make bench-rtl`` built it (:func:`apply_rtl` on a copy of
    ``rows``; the reference may then sit at another folding than its search chose), else its estimates."""
    final = copy.deepcopy(rows)
    apply_rtl(final, rtl)
    ref = final[index]
    return {"lut": ref["lut"], "dsp": ref["dsp"], "source": ref["source"]}


def run_network(name: str, spec: dict, work: Path, grid: list[int], calib: int,
                on_row=None, flows=FLOWS, rtl=()) -> tuple[list[dict], dict]:
    """The flows of one network (module docstring; ``flows``: some of :data:`FLOWS`, the references
    an SRBS flow is capped by among them); ``on_row(rows, info)`` after each flow; ``rtl``: the RTL
    builds (:func:`rtl_networks`) whose Yosys figures cap the flows of a reference they built."""
    from winoforge.hw.baseline import direct_baseline
    from winoforge.hw.boards import get_board
    from winoforge.hw.flow import export_run

    board = get_board(spec["board"])
    x, _, calib_text = calibration_images(spec["data"], calib)
    shape = tuple(x.shape[1:])
    rows, info = [], {"calibration": calib_text, "board": board.name, "flows": {}}
    caps: dict[str, dict] = {}
    for flow, sub_row, keep, mixed in flows:
        label = flow_label(flow, sub_row, keep, mixed)
        t0 = time.perf_counter()
        density = 1.0 if keep is None else keep / sub_row
        row = {"network": name, "board": board.name, "flow": flow, "density": density, "sub_row": sub_row,
               "keep": keep, "mean_bits": None,
               "mixed_precision": mixed, "fps": None, "lut": None, "ff": None, "bram": None, "dsp": None, "uram": None,
               "speedup_vs_dense_winograd": None, "speedup_vs_finn": None, "source": "estimate",
               "weights": "untrained reference (hardware cost only)", "calibration": calib_text}
        entry = info["flows"][label] = {}
        try:
            mp = mixed_widths(spec, x, keep, sub_row) if mixed else None
            row["mean_bits"] = mp["mean_bits"] if mp else _mean_bits_w4a4(spec, x, keep, sub_row)
            net = _student(spec, x, keep, mp["layer_bits"] if mp else None, sub_row)
            if flow == "finn":
                net = direct_baseline(net)
            onnx = work / name / label / "model.onnx"
            check = export_run(net, onnx, image_shape=shape, check_images=x[:4], progress=False)
            entry["export_check"] = {k: check.get(k) for k in ("images", "exact", "quant_layers")}
            kind = "winograd" if flow != "finn" else "baseline_residual" if spec["arch"] == "resnet" else "baseline"
            row["steps"] = {"winograd": "winoforge (WinogradSRBS)", "baseline": "stock FINN",
                            "baseline_residual": "stock FINN, streamlined with the residual rules"}[kind]
            search = FoldingSearch(onnx, kind, board, work / name / label, grid)
            # equal resources: finn is capped by the board; dense Winograd by finn; SRBS by dense (and so finn)
            ref_flow = REFERENCE_FLOW.get(flow)
            ref = caps.get(ref_flow)
            best = search.fastest_within(ref["lut"] if ref else None, ref["dsp"] if ref else None)
            if best is None and ref is not None:
                # the reference's resources admit no folding of this flow: the board's limits instead
                ref, best = None, search.fastest_within(None, None)
            row["limits"] = ("board" if ref is None else
                             f"board and no more LUT/DSP than {ref_flow} ({ref['lut']:.0f} LUT, {ref['source']})")
            if best is None:
                slowest = search.at(grid[0])
                row["note"] = ("no folding of the grid fits: at the slowest target "
                               f"{grid[0]} FPS: {slowest.get('error') or slowest['why_not']}")
            else:
                row.update({k: best[k] for k in ("fps", "lut", "ff", "bram", "dsp", "uram", "lut_by_op_type")},
                           target_fps=best["target_fps"],
                           ff_partial=best["ff_partial"], slowest_layer=best["slowest"],
                           max_cycles=best["max_cycles"])
            if mp:
                row["mixed"] = {k: mp[k] for k in ("pairs", "bops", "budget_bops")}
            entry["grid_points"] = sorted(search.points.values(), key=lambda p: p["target_fps"])
        except Exception as err:  # noqa: BLE001 -- a flow that cannot build this network is a row saying why
            row["note"] = f"build failed: {type(err).__name__}: {str(err).splitlines()[0][:400]}"
        entry["seconds"] = time.perf_counter() - t0
        fastest = max((p["fps"] for p in entry.get("grid_points", []) if "error" not in p), default=None)
        # saturated: no folding of this flow is faster at any resources (the gain is then in LUTs)
        row["saturated"] = bool(row["fps"] and fastest and row["fps"] >= fastest)
        rows.append(row)
        if flow in ("finn", "winograd_dense") and row["fps"]:
            caps[flow] = reference_cap(rows, len(rows) - 1, rtl)
        if on_row:
            on_row(rows, info)
        print(f"  {name:20s} {label:20s} "
              + (f"{row['fps']:10.0f} FPS  LUT {row['lut']:8.0f}" if row["fps"] else row["note"][:120])
              + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    add_speedups(rows)
    return rows, info


#: the row each flow's resources are capped by ("at equal resources")
def add_speedups(rows: list[dict]) -> None:
    """Fill each row's speed-ups from the rows of its network: FPS ratios to the ``winograd_dense``
    and ``finn`` rows (``None`` where either FPS is missing); and ``within_reference``: whether the
    row's final figures (Yosys where it is ``rtl``) still hold no more LUT and DSP than the row that
    capped its folding (the search compares estimates; ``None`` where either row is missing)."""
    by_flow = {}
    for row in rows:
        if row["flow"] in ("finn", "winograd_dense"):
            by_flow[(row["network"], row["flow"])] = row
    for row in rows:
        for key, flow in (("speedup_vs_dense_winograd", "winograd_dense"), ("speedup_vs_finn", "finn")):
            ref = by_flow.get((row["network"], flow), {}).get("fps")
            row[key] = row["fps"] / ref if row["fps"] and ref else None
        ref = by_flow.get((row["network"], REFERENCE_FLOW.get(row["flow"])))
        row["within_reference"] = (None if not ref or not ref.get("fps") or not row.get("fps") else
                                   bool(row["lut"] <= ref["lut"] and row["dsp"] <= ref["dsp"]))


#: the least LUT a 1 of 4 WinogradSRBS layer takes at 4x the speed of its dense counterpart with the same
#: multipliers, as a fraction of the dense layer's (``benchmarks/srbs_equal_lut.py``, fmnist-vgg's 32 -> 32
#: 28x28 layer over its foldings: ``subrow4_keep1_W4A4.equal_multipliers``, estimates; tested equal to the
#: recorded minimum)
SRBS_QUARTER_LUT_AT_4X = 0.98


def equal_lut_bound(dense: dict, lut_ratio_at_4x: float = SRBS_QUARTER_LUT_AT_4X) -> float | None:
    """An Amdahl-style bound on density 1/4's speed-up over dense Winograd at the dense row's LUT: with
    ``f`` the share of the dense row's LUT outside its WinogradSRBS layers (``lut_by_op_type``, estimated)
    -- thresholds, window generators, MVAUs, pooling, converters, which SRBS does not thin -- and ``c``
    the LUT of an SRBS layer at 4x the speed relative to its dense one, a speed-up ``s`` costs about
    ``s * (f + (1 - f) * c / 4)`` of the dense LUT if every layer's LUT grows in proportion to its speed,
    so ``s <= 1 / (f + (1 - f) * c / 4)``.  Optimistic: the stem (one or three input channels) stays dense
    in every flow but counts as Winograd here, and folding steps cost more than proportion.  ``None``
    without the dense row's split."""
    by_kind = dense.get("lut_by_op_type") or {}
    total = sum(by_kind.values())
    if not total:
        return None
    f = sum(v for k, v in by_kind.items() if not k.startswith("WinogradSRBS")) / total
    return 1.0 / (f + (1.0 - f) * lut_ratio_at_4x / 4.0)


def targets(rows: list[dict]) -> dict:
    """Density 1/4 (uniform W4A4) at >= 3x dense Winograd's FPS at no more LUT and DSP, per network
    (met by either sub-row pattern; ``by_pattern``: each pattern's figures); and what mixed precision
    adds (the fastest mixed row).  A row over dense Winograd's LUT or DSP counts as not met."""
    out = {}
    for net in dict.fromkeys(r["network"] for r in rows):
        mine = [r for r in rows if r["network"] == net]
        dense = next((r for r in mine if r["flow"] == "winograd_dense"), None)
        quarter = [r for r in mine if r["flow"] == "srbs" and r["density"] == 0.25]
        by_pattern = {}
        for r in quarter:
            ok = bool(dense and dense["fps"] and r["fps"] and r["lut"] <= dense["lut"] and r["dsp"] <= dense["dsp"]
                      and r["speedup_vs_dense_winograd"] >= 3.0)
            name = row_pattern(r) + ("_mixed" if r["mixed_precision"] else "")
            by_pattern[name] = {"speedup_vs_dense": r["speedup_vs_dense_winograd"], "met": ok,
                                "within_dense_lut_dsp": r.get("within_reference"), "mean_bits": r["mean_bits"]}

        def fastest(mixed: bool):
            return max((r for r in quarter if r["mixed_precision"] == mixed),
                       key=lambda r: r["speedup_vs_dense_winograd"] or 0.0, default=None)

        uniform, mixed = fastest(False), fastest(True)
        out[net] = {"density_quarter_speedup_vs_dense": uniform and uniform["speedup_vs_dense_winograd"],
                    "target": 3.0, "met": any(v["met"] for k, v in by_pattern.items() if not k.endswith("_mixed")),
                    "mixed_speedup_vs_dense": mixed and mixed["speedup_vs_dense_winograd"],
                    "mixed_mean_bits": mixed and mixed["mean_bits"], "by_pattern": by_pattern,
                    # how far equal LUT lets density 1/4 go at all (equal_lut_bound)
                    "equal_lut_bound": dense and equal_lut_bound(dense)}
    return out


# ------------------------------------------------------------------ output


def table(rows: list[dict]) -> str:
    head = (f"{'network':20s} {'board':8s} {'flow':15s} {'dens':>5s} {'bits':>5s} {'FPS':>9s} {'LUT':>8s} "
            f"{'FF':>8s} {'BRAM36':>7s} {'URAM':>5s} {'DSP':>5s} {'vs dense':>8s} {'vs FINN':>8s} src")
    lines = [head, "-" * len(head)]
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    for r in rows:
        flow = " ".join(filter(None, (r["flow"], row_pattern(r), "mixed" if r["mixed_precision"] else None)))
        lines.append(f"{r['network']:20s} {r['board']:8s} {flow:15s} {r['density']:5.2f} {fmt(r['mean_bits'], '5.2f')} "
                     f"{fmt(r['fps'], '9.0f')} {fmt(r['lut'], '8.0f')} {fmt(r['ff'], '8.0f')} {fmt(r['bram'], '7.1f')} "
                     f"{fmt(r.get('uram'), '5.0f')} "
                     f"{fmt(r['dsp'], '5.0f')} {fmt(r['speedup_vs_dense_winograd'], '7.2f') + ('x' if r.get('within_reference') is not False else '!') if r['speedup_vs_dense_winograd'] else '       -'} "
                     f"{fmt(r['speedup_vs_finn'], '7.2f') + 'x' if r['speedup_vs_finn'] else '       -'} {r['source']}"
                     + ("*" if r.get("rtl", {}).get("current_rtl") is False else ""))
    if any(r.get("rtl", {}).get("current_rtl") is False for r in rows):
        lines.append("rtl*: built on an RTL that has changed since (the same integers; its counts may have moved)")
    if any(r.get("within_reference") is False for r in rows):
        lines.append("!: the row's final (Yosys) LUT/DSP exceed those of the row that capped it: not at equal resources")
    lines.append("paper (BISWSRBS, Yang et al. TRETS 2021, SRBS + mixed precision vs dense Winograd): "
                 + ", ".join(f"{p['network']}/{p['dataset']} {p.get('speedup_vs_dense_winograd', p.get('speedup_vs_sparse_winograd'))}x"
                             + ("" if "speedup_vs_dense_winograd" in p else " (vs sparse Winograd)") for p in PAPER))
    return "\n".join(lines)


#: the README's table of the rows (``--markdown`` prints it; a test keeps the README's equal to it)
MARKDOWN_HEAD = ("| network (board) | flow | density | mean bits | FPS | LUT | FF | BRAM36 | URAM | DSP | "
                 "vs dense Winograd | vs FINN | source |")


def markdown_table(rows: list[dict]) -> str:
    """The rows as the README's Markdown table: FF as ``>=N`` where some layer has no FF estimate
    (FINN's HLS layers: ``ff_partial``, a lower bound); ``!`` where a row is not within the LUT/DSP
    of the row that capped it; ``rtl`` rows say whether they took a candidate build or one of an
    earlier RTL."""
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    lines = [MARKDOWN_HEAD, "|" + "---|" * MARKDOWN_HEAD.count(" | ") + "---|"]
    for r in rows:
        pattern = row_pattern(r)
        flow = r["flow"] if not pattern else (f"srbs {pattern.replace('of', ' of ')}"
                                              + (" mixed" if r.get("mixed_precision") else ""))
        speedup = {k: "-" if r.get(k) is None else f"{r[k]:.2f}x" for k in ("speedup_vs_dense_winograd",
                                                                            "speedup_vs_finn")}
        if r.get("within_reference") is False and r.get("speedup_vs_dense_winograd") is not None:
            speedup["speedup_vs_dense_winograd"] += "!"
        ff = fmt(r.get("ff"), ",.0f") if r.get("ff") is not None or r.get("fps") is None else \
            f"≥{r.get('ff_partial', 0):,.0f}"
        source = r["source"]
        if source == "rtl":
            notes = [n for n, on in (("candidate", r["rtl"].get("chosen")),
                                     ("previous RTL", r["rtl"].get("current_rtl") is False)) if on]
            source = "**rtl**" + (f" ({', '.join(notes)})" if notes else "")
        lines.append(f"| {r['network']} ({r['board']}) | {flow} | {r['density']:.2f} | {fmt(r['mean_bits'], '.2f')} | "
                     f"{fmt(r['fps'], ',.0f')} | {fmt(r['lut'], ',.0f')} | {ff} | {fmt(r['bram'], '.1f')} | "
                     f"{fmt(r.get('uram'), '.0f')} | {fmt(r['dsp'], '.0f')} | {speedup['speedup_vs_dense_winograd']} | "
                     f"{speedup['speedup_vs_finn']} | {source} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    nets = list(dict.fromkeys(r["network"] for r in rows))
    series = [("finn", 1.0, False, None, "stock FINN"), ("srbs", 0.5, False, 8, "SRBS 1/2 (4 of 8)"),
              ("srbs", 0.25, False, 8, "SRBS 1/4 (2 of 8)"), ("srbs", 0.25, True, 8, "SRBS 1/4 mixed (2 of 8)"),
              ("srbs", 0.25, False, 4, "SRBS 1/4 (1 of 4)"), ("srbs", 0.25, True, 4, "SRBS 1/4 mixed (1 of 4)")]
    fig, ax = plt.subplots(figsize=(max(9, 1.9 * len(nets) + 5), 4.8))
    width = 0.8 / (len(series) + 1)
    idx = np.arange(len(nets))
    handles = []
    for k, (flow, dens, mixed, sub_row, label) in enumerate(series):
        found = [next((r for r in rows if r["network"] == n and r["flow"] == flow and r["density"] == dens
                       and r["mixed_precision"] == mixed and row_sub_row(r) == sub_row), None) for n in nets]
        vals = [r["speedup_vs_dense_winograd"] if r and r["speedup_vs_dense_winograd"] else 0.0 for r in found]
        bars = ax.bar(idx + k * width, vals, width, color=f"C{k}")
        handles.append(Patch(color=f"C{k}", label=label))  # solid in the legend, whatever the first bar is
        for bar, r, v in zip(bars, found, vals):  # estimates pale and dotted, RTL-measured rows solid
            if r and r.get("source") != "rtl":
                bar.set(alpha=0.45, hatch="..")
            if v:
                ax.text(bar.get_x() + bar.get_width() / 2, v + 0.08, f"{v:.2f}" + ("" if r.get("within_reference",
                        True) is not False else "!"), ha="center", va="bottom", fontsize=6, rotation=90)
    for i, n in enumerate(nets):  # a network no flow fits: say so where its bars would be
        if not any(r.get("fps") for r in rows if r["network"] == n):
            ax.text(i + width * len(series) / 2, 1.5, "no flow fits\nthe board", ha="center", fontsize=8)
    handles.append(Patch(facecolor="C0", alpha=0.45, hatch="..", label="(pale, dotted: estimate)"))
    paper = {p["network"]: p["speedup_vs_dense_winograd"] for p in PAPER if "speedup_vs_dense_winograd" in p}
    pv = [paper.get(PAPER_BESIDE.get(n), 0.0) for n in nets]
    ax.bar(idx + len(series) * width, pv, width, color="grey", hatch="//")
    handles.append(Patch(facecolor="grey", hatch="//", label="paper (SRBS+mixed, beside)"))
    ax.axhline(1.0, color="k", lw=0.8)
    handles.insert(0, ax.axhline(3.0, color="r", ls=":", lw=0.8, label="target 3x (SRBS 1/4)"))
    ax.set_xticks(idx + width * len(series) / 2, [f"{n}\n{next(r['board'] for r in rows if r['network'] == n)}"
                                                   for n in nets], fontsize=8)
    ax.set(ylabel="FPS / FPS of dense Winograd (no more LUT, DSP)",
           title="Speed-up over dense Winograd, fastest folding that fits\n(untrained references; solid: "
                 "Verilator cycles + Yosys counts, pale: estimates; paper: nearest network)")
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside: bars reach the top
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


#: the SRBS flows of the steps plot, in the bar chart's colours
STEP_FLOWS = [("srbs_4of8", "C1", "SRBS 1/2 (4 of 8)"), ("srbs_2of8", "C2", "SRBS 1/4 (2 of 8)"),
              ("srbs_2of8_mixed", "C3", "SRBS 1/4 mixed (2 of 8)"), ("srbs_1of4", "C4", "SRBS 1/4 (1 of 4)"),
              ("srbs_1of4_mixed", "C5", "SRBS 1/4 mixed (1 of 4)")]


def step_points(result: dict, rtl) -> dict[str, dict]:
    """Per network with a dense Winograd row, against that row's final FPS and LUT (Verilator and
    Yosys where it is ``rtl``): each SRBS flow's folding steps as ``(LUT / dense LUT, FPS / dense
    FPS)`` -- ``estimated``, the search's grid points (FINN-style estimates), and ``built``, every RTL
    build of the flow's row (``row_key``; Yosys's LUT, Verilator's cycles; only bit-exact ones; third: built on the current
    RTL, :func:`built_on_current_rtl`) -- and the row's own point
    (``row``). What a row's speed-up stands on: the steps a folding takes and where they cross equal LUT."""
    out: dict[str, dict] = {}
    rows, details = result["rows"], result.get("networks") or {}
    for net in dict.fromkeys(r["network"] for r in rows):
        dense = next((r for r in rows if r["network"] == net and r["flow"] == "winograd_dense" and r.get("fps")
                      and r.get("lut")), None)
        if dense is None:
            continue
        ref_fps, ref_lut = dense["fps"], dense["lut"]
        srbs = {flow_label("srbs", row_sub_row(r), r.get("keep"), r["mixed_precision"]): r
                for r in rows if r["network"] == net and r["flow"] == "srbs"}
        flows = {}
        for label, row in ((label, srbs[label]) for label, _, _ in STEP_FLOWS if label in srbs):
            grid = (details.get(net, {}).get("flows", {}).get(label) or {}).get("grid_points", [])
            est = sorted({(p["lut"] / ref_lut, p["fps"] / ref_fps) for p in grid if "error" not in p and p.get("fits")},
                         key=lambda xy: xy[1])
            built = sorted((n["yosys"]["lut"] / ref_lut, CLOCK_HZ / n["cycles_per_frame_sim"] / ref_fps,
                            built_on_current_rtl(n) is True)
                           for key, n, _ in rtl
                           if key == row_key(row) and n.get("mismatches") == 0 and (n.get("yosys") or {}).get("lut"))
            flows[label] = {"estimated": est, "built": built,
                            "row": (row["lut"] / ref_lut, row["fps"] / ref_fps, row["source"])
                            if row.get("fps") and row.get("lut") else None}
        out[net] = {"board": dense["board"], "dense": {"fps": ref_fps, "lut": ref_lut, "source": dense["source"]},
                    "flows": flows}
    return out


def plot_steps(result: dict, rtl, path: Path) -> None:
    """``networks_steps.png``: :func:`step_points` of each network, one panel each -- why a row's
    speed-up is what it is: where each flow's next folding step lands against equal LUT (x = 1)
    and the 3x target (y = 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    steps = step_points(result, rtl)
    if not steps:
        return
    fig, axes = plt.subplots(1, len(steps), figsize=(4.2 * len(steps), 5.2), squeeze=False)
    for ax, (net, info) in zip(axes[0], steps.items()):
        for label, colour, _ in STEP_FLOWS:
            f = info["flows"].get(label)
            if f is None:
                continue
            if f["estimated"]:
                xs, ys = zip(*f["estimated"])
                ax.plot(xs, ys, "o--", color=colour, mfc="none", ms=4, lw=0.7, alpha=0.7)
            for current in (True, False):
                pts = [(x, y) for x, y, c in f["built"] if c is current]
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(xs, ys, "o" if current else "s", color=colour, ms=5 if current else 4,
                            mfc=colour if current else "none")
            if f["row"]:
                ax.plot(f["row"][0], f["row"][1], "*", color=colour, ms=13, mec="k", mew=0.6)
        ax.axvline(1.0, color="k", lw=0.8)
        ax.axhline(3.0, color="r", ls=":", lw=0.8)
        ax.set_xlim(0.4, 1.6)
        ax.set_ylim(0, 5)
        ax.set(title=f"{net} ({info['board']})", xlabel=f"LUT / dense Winograd's ({info['dense']['lut']:,.0f}, "
               f"{info['dense']['source']})")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("FPS / dense Winograd's")
    handles = [Line2D([], [], color=c, marker="o", ls="", label=lab) for _, c, lab in STEP_FLOWS]
    handles += [Line2D([], [], color="grey", marker="o", mfc="none", ls="--", lw=0.7, label="estimated folding steps"),
                Line2D([], [], color="grey", marker="o", ls="", label="built: Verilator + Yosys"),
                Line2D([], [], color="grey", marker="s", mfc="none", ls="", label="built on a previous RTL"),
                Line2D([], [], color="grey", marker="*", ms=12, mec="k", ls="", label="the row (no more LUT, DSP)"),
                Line2D([], [], color="k", lw=0.8, label="equal LUT"),
                Line2D([], [], color="r", ls=":", lw=0.8, label="target 3x")]
    fig.legend(handles=handles, fontsize=8, loc="lower center", ncol=5)
    fig.suptitle("Folding steps against the dense Winograd design (points past x = 1 or y = 5 are off the panel)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two tiny networks, a coarse grid (smoke test)")
    parser.add_argument("--networks", default=None, help="comma-separated subset of the networks")
    parser.add_argument("--work", default="build/bench_networks")
    parser.add_argument("--calibration", type=int, default=CALIBRATION, help="calibration images per network")
    parser.add_argument("--out", default=None)
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="combine results of runs over disjoint --networks (in this order) into --out")
    parser.add_argument("--flows", default=None,
                        help="comma-separated subset of the flows (" + ", ".join(FLOW_LABELS) + "); an SRBS flow "
                             "without winograd_dense is capped by the board only")
    parser.add_argument("--markdown", action="store_true",
                        help="only print the recorded rows (--out, default results/networks.json) as the README's table")
    parser.add_argument("--apply-rtl", action="store_true",
                        help="only apply the current bench-rtl results (rtl.json, rtl_rows.json) to the recorded rows")
    args = parser.parse_args(argv)
    if args.merge:
        return _merge(args)
    if args.apply_rtl:
        return _apply_rtl_only(args)
    if args.markdown:
        print(markdown_table(json.loads(Path(args.out or RESULTS / "networks.json").read_text())["rows"]))
        return 0

    nets = QUICK_NETWORKS if args.quick else NETWORKS
    if args.networks:
        wanted = args.networks.split(",")
        unknown = [n for n in wanted if n not in nets]
        if unknown:
            raise SystemExit(f"--networks: unknown {unknown}; allowed: {', '.join(nets)}")
        nets = {n: nets[n] for n in wanted}
    flows = FLOWS
    if args.flows:
        wanted = args.flows.split(",")
        unknown = [f for f in wanted if f not in FLOW_LABELS]
        if unknown:
            raise SystemExit(f"--flows: unknown {unknown}; allowed: {', '.join(FLOW_LABELS)}")
        flows = tuple(f for f in FLOWS if flow_label(*f) in wanted)
    grid = QUICK_GRID if args.quick else GRID
    out = Path(args.out) if args.out else RESULTS / ("networks_quick.json" if args.quick else "networks.json")
    t0 = time.perf_counter()
    rows, details = [], {}
    rtl = [] if args.quick else rtl_networks()
    for name, spec in nets.items():
        try:
            net_rows, details[name] = run_network(
                name, spec, Path(args.work), grid, args.calibration, flows=flows, rtl=rtl,
                on_row=lambda part, info, name=name: _write(out, rows + part, {**details, name: info}, args, grid, t0,
                                                            rtl))
        except Exception as err:  # noqa: BLE001 -- one network's failure is reported, the others still run
            details[name] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:400]}"}
            print(f"  {name}: FAILED ({details[name]['error']})", flush=True)
            continue
        rows.extend(net_rows)
        _write(out, rows, details, args, grid, t0, rtl)  # partial results survive a later failure
    result = _write(out, rows, details, args, grid, t0, rtl)
    print(table(rows))
    print(f"targets: {json.dumps(result['targets'])}")
    print(f"-> {out} ({result['wall_seconds']:.0f} s)")
    return 0


def _merge(args) -> int:
    """One results file from runs over disjoint subsets of the networks or flows (processes share the
    work); a network's rows in the order of :data:`FLOWS`."""
    parts = [json.loads(Path(p).read_text()) for p in args.merge]
    order = list(QUICK_NETWORKS if args.quick else NETWORKS)  # the table's order, whichever run had a network
    flows = [(f, sub_row, mixed) for f, sub_row, _, mixed in FLOWS]

    def place(r):
        flow = (r["flow"], row_sub_row(r), r["mixed_precision"])
        density = -r["density"]  # SubRow 8: 1/2 before 1/4
        return (order.index(r["network"]) if r["network"] in order else len(order),
                flows.index(flow) if flow in flows else len(flows), density)

    rows = sorted((r for part in parts for r in part["rows"]), key=place)
    keys = [row_key(r) for r in rows]
    clash = sorted({" ".join(map(str, k)) for k in keys if keys.count(k) > 1})
    if clash:
        raise SystemExit(f"--merge: rows {clash} appear in more than one file; allowed: runs over disjoint networks "
                         "or flows (--networks, --flows)")
    details: dict = {}
    for part in parts:  # a network run in several parts (other flows): its flows together
        for name, info in part["networks"].items():
            if name in details and "flows" in details[name] and "flows" in info:
                details[name] = {**details[name], **info, "flows": {**details[name]["flows"], **info["flows"]}}
            else:
                details[name] = info
    out = Path(args.out) if args.out else RESULTS / ("networks_quick.json" if args.quick else "networks.json")
    result = _write(out, rows, details, args, parts[0]["setup"]["grid"], time.perf_counter(),
                    [] if args.quick else rtl_networks())
    result["wall_seconds"] = sum(part["wall_seconds"] for part in parts)
    result["merged_from"] = [Path(p).name for p in args.merge]
    result["git_commit"] = [part.get("git_commit") for part in parts]  # the runs' commits, not the merge's
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(table(rows))
    print(f"targets: {json.dumps(result['targets'])}")
    print(f"-> {out} (merged {len(parts)} runs)")
    return 0


def _git_commit() -> str | None:
    from winoforge.hw.flow import _git_commit as commit

    return commit()


def _apply_rtl_only(args, results: Path = RESULTS) -> int:
    """``--apply-rtl``: the recorded rows again with the current RTL results in ``results``
    (:func:`apply_rtl`); builds, foldings and estimates stay those of the recorded runs."""
    out = Path(args.out) if args.out else results / "networks.json"
    result = json.loads(out.read_text())
    rows, rtl = result["rows"], rtl_networks(results)
    apply_rtl(rows, rtl)
    add_speedups(rows)
    result["targets"] = targets(rows)
    result["rtl_applied"] = {"git_commit": _git_commit(), "files": list(RTL_FILES),
                             "rows": [" ".join(filter(None, (r["network"], r["flow"], str(r["density"]), row_pattern(r),
                                                             "mixed" if r["mixed_precision"] else None)))
                                      for r in rows if r["source"] == "rtl"]}
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    plot(rows, out.with_suffix(".png"))
    plot_steps(result, rtl, out.with_name(out.stem + "_steps.png"))
    print(table(rows))
    print(f"targets: {json.dumps(result['targets'])}")
    print(f"-> {out} (RTL results applied)")
    return 0


def _write(out: Path, rows, details, args, grid, t0, rtl=()) -> dict:
    apply_rtl(rows, rtl)
    add_speedups(rows)
    result = {
        "rows": rows, "targets": targets(rows), "paper": PAPER, "paper_beside": PAPER_BESIDE,
        "networks": details,
        "setup": {"networks": {n: s for n, s in (QUICK_NETWORKS if args.quick else NETWORKS).items()},
                  "bits": "W4A4, 8-bit input, power-of-two scales, F(2,3)",
                  "sub_row": "per row (SRBS rows: sub_row, keep)",
                  "mixed_precision": {"bops_fraction_of_w4a4": MIXED_BOPS_FRACTION,
                                      "candidates": MIXED_CANDIDATES,
                                      "sensitivity": "proxy 4^-w + 4^-a per layer (untrained networks)"},
                  "grid": grid, "quick": args.quick, "clock_mhz": CLOCK_HZ / 1e6,
                  "equal_resources": "finn: board; winograd_dense: <= finn LUT/DSP; srbs: <= winograd_dense LUT/DSP",
                  "ff": "null where some layer has no FF estimate (FINN estimates none for its layers); "
                        "ff_partial sums the layers that have one"},
        "machine": {"python": platform.python_version(), "machine": platform.machine()},
        # the estimate models are code: rows are only comparable at one commit (and a clean tree)
        "git_commit": _git_commit(),
        "wall_seconds": time.perf_counter() - t0,
    }
    RESULTS.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    if rows:
        plot(rows, out.with_suffix(".png"))
        plot_steps(result, rtl, out.with_name(out.stem + "_steps.png"))
    return result


if __name__ == "__main__":
    raise SystemExit(main())
