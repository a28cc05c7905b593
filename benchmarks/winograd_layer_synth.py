"""Yosys ``synth_xilinx -family xc7`` (``--family xcup``) counts of the WinogradSRBS streaming layer
(hw/rtl/winograd_srbs_layer.sv) at several foldings, next to the op's estimate.

    python benchmarks/winograd_layer_synth.py [--only NAME ...] [--out FILE] [--family xc7|xcup]

Writes ``benchmarks/results/winograd_layer_synth.json``: per shape its parameters,
the RTL structure (transform units, V slots), Yosys counts (LUT = LUT1..6 logic,
LUTRAM, FF, DSP, BRAM) and the estimate (LUT incl. LUTRAM, RAMB18, DSP with its
breakdown), so the estimate formulas can be fitted to the measured counts.
Weights are random SRBS weights of the weight type (seed 0): the ROM contents
change the LUTs of ROMs mapped to logic.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hw"))

from rtl_layer_cases import random_weights, with_sound_output  # noqa: E402

from winoforge.hw.boards import get_board  # noqa: E402
from winoforge.hw.rtl import rtl_file_digests  # noqa: E402
from winoforge.hw.rtl.winograd_layer import LAYER_SOURCES, layer_parameters, layer_yosys_counts  # noqa: E402
from winoforge.hw.rtl_synth import yosys_family  # noqa: E402
from winoforge.hw.srbs_params import WinogradSRBSParams  # noqa: E402

#: Yosys family -> the part the estimate is asked for: PYNQ-Z2's (xc7) and ZCU104's (xcup)
FAMILY_PARTS = {yosys_family(b.part): b.part for b in map(get_board, ("PYNQ-Z2", "ZCU104"))}

#: name -> WinogradSRBSParams keywords (outputDataType: the smallest sound type)
SHAPES: dict[str, dict] = {
    # the fast test shape: m=2 SRBS 2/4, UINT4 x INT4 (DSP multipliers), POS=4 PE=2 SIMD=4
    "m2_srbs_pos4": dict(m=2, ifm_channels=8, ofm_channels=8, ifm_dim=(5, 7), input_datatype="UINT4",
                         weight_datatype="INT4", padding=1, sub_row=4, keep=2, pe=2, simd=4, pos=4),
    # the same layer folded serially: POS=1
    "m2_srbs_pos1": dict(m=2, ifm_channels=8, ofm_channels=8, ifm_dim=(5, 7), input_datatype="UINT4",
                         weight_datatype="INT4", padding=1, sub_row=4, keep=2, pe=2, simd=4, pos=1),
    # benchmark-network-like: 16x16x32 -> 32, SRBS 2/8, W4A4, PE=4 SIMD=8 POS=1
    "m2_srbs28_c32": dict(m=2, ifm_channels=32, ofm_channels=32, ifm_dim=(16, 16), input_datatype="UINT4",
                          weight_datatype="INT4", padding=1, sub_row=8, keep=2, pe=4, simd=8, pos=1),
    # LUT multipliers (3-bit): dense m=2, PE=4 SIMD=4 POS=2
    "m2_dense_lut": dict(m=2, ifm_channels=8, ofm_channels=8, ifm_dim=(8, 8), input_datatype="UINT3",
                         weight_datatype="INT3", padding=1, sub_row=0, keep=0, pe=4, simd=4, pos=2),
    # the fast m=4 shape: dense, INT3 x UINT3, POS=4 PE=3 SIMD=2
    "m4_dense_pos4": dict(m=4, ifm_channels=4, ofm_channels=6, ifm_dim=(7, 6), input_datatype="INT3",
                          weight_datatype="UINT3", padding=1, sub_row=0, keep=0, pe=3, simd=2, pos=4),
    # m=4 SRBS 1/4, UINT4 x INT4, POS=1
    "m4_srbs_pos1": dict(m=4, ifm_channels=8, ofm_channels=8, ifm_dim=(8, 8), input_datatype="UINT4",
                         weight_datatype="INT4", padding=1, sub_row=4, keep=1, pe=2, simd=4, pos=1),
    # a first layer: Cin=1, POS=16, SF=1 (output transforms at full rate)
    "m2_first_pos16": dict(m=2, ifm_channels=1, ofm_channels=8, ifm_dim=(8, 8), input_datatype="UINT8",
                           weight_datatype="INT4", padding=1, sub_row=0, keep=0, pe=4, simd=1, pos=16),
}

#: layers measured by name only (not calibration points: rtl_calibration.py takes SHAPES): cifar-vgg-nagadomi's
#: dense 128 -> 256 layer on 8x8 (WinogradSRBS_rtl_4 of its rtl row, 1.56x its estimate by Yosys) at that row's
#: folding, with LUT multipliers as built and with DSP ones: where its LUTs go (run with --family xcup, ZCU104's,
#: as the row was)
_NAGADOMI_L4 = dict(m=2, ifm_channels=128, ofm_channels=256, ifm_dim=(8, 8), input_datatype="UINT4",
                    weight_datatype="INT4", padding=1, sub_row=0, keep=0, pe=5, simd=8, pos=4, isimd=4,
                    ram_style="block")
#: cifar-vgg-nagadomi's uniform 2 of 8 256 -> 256 layer on 8x8 (WinogradSRBS_rtl_5 of that row's rtl build, 2.16x
#: its estimate by Yosys, where the mixed row's same layer is at 1.01x) at that row's folding, weights ROM as built
_NAGADOMI_2OF8_L5 = dict(m=2, ifm_channels=256, ofm_channels=256, ifm_dim=(8, 8), input_datatype="UINT4",
                         weight_datatype="INT4", padding=1, sub_row=8, keep=2, pe=3, simd=64, pos=4, isimd=4,
                         res_type="lut")
NAMED_SHAPES: dict[str, dict] = {"nagadomi_dense_l4": {**_NAGADOMI_L4, "res_type": "lut"},
                                 "nagadomi_dense_l4_dsp": {**_NAGADOMI_L4, "res_type": "dsp"},
                                 "nagadomi_2of8_l5": _NAGADOMI_2OF8_L5,
                                 "nagadomi_2of8_l5_block": {**_NAGADOMI_2OF8_L5, "ram_style": "block"},
                                 "nagadomi_2of8_l5_uram": {**_NAGADOMI_2OF8_L5, "ram_style": "ultra",
                                                           "runtime_weights": 1}}
ALL_SHAPES = {**SHAPES, **NAMED_SHAPES}


def shape_params(kw: dict) -> WinogradSRBSParams:
    """The layer of a shape's keywords (lists, as a JSON record holds them, taken as tuples): outputDataType
    the smallest sound type, as measured."""
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in kw.items()}
    return with_sound_output(WinogradSRBSParams(output_datatype="INT32", **kw))


def measure(name: str, kw: dict, family: str = "xc7") -> dict:
    p = shape_params(kw)
    U = random_weights(p, np.random.default_rng(0))
    t0 = time.perf_counter()
    counts = layer_yosys_counts(p, U, family=family)
    est = p.estimate_resources(FAMILY_PARTS[family])
    return {
        "name": name,
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()},
        "output_datatype": p.output_datatype.name,
        "mult_style": p.mult_style,
        "input_transform_units": p.input_transform_units,
        "output_transform_units": p.output_transform_units,
        "rtl": layer_parameters(p),
        "rtl_files": rtl_file_digests(LAYER_SOURCES),  # the sources measured (a test tells an older RTL's record)
        "yosys": {k: v for k, v in counts.items() if k != "cells"},
        "yosys_cells": counts["cells"],
        "est": {"lut": est.lut, "bram18": est.bram18, "dsp": est.dsp,
                "breakdown": {k: v.get("LUT", 0) for k, v in est.breakdown.items()}},
        "synth_s": round(time.perf_counter() - t0, 1),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=sorted(ALL_SHAPES), help="measure only these shapes")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "winograd_layer_synth.json")
    ap.add_argument("--label", default="", help="a note stored with the results (e.g. the commit)")
    ap.add_argument("--family", choices=sorted(FAMILY_PARTS), default="xc7",
                    help=f"Yosys's synth_xilinx family (the estimate for a part of it: {FAMILY_PARTS})")
    args = ap.parse_args(argv)
    rows = []
    for name in args.only or SHAPES:
        row = measure(name, ALL_SHAPES[name], args.family)
        y, e = row["yosys"], row["est"]
        print(f"{name:16s} LUT {y['LUT']:6d} +LUTRAM {y['LUTRAM']:5d} FF {y['FF']:6d} DSP {y['DSP']:3d} "
              f"BRAM {y['BRAM']:3d} | est LUT {e['lut']:6d} RAMB18 {e['bram18']:3d} DSP {e['dsp']:3d} "
              f"({row['synth_s']} s)", flush=True)
        rows.append(row)
    out = {"tool": f"yosys synth_xilinx -family {args.family} -flatten -noiopad -noclkbuf", "label": args.label,
           "layers": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
