"""benchmarks/winograd_layer_synth.py's named layers: cifar-vgg-nagadomi's dense 128 -> 256 layer, which
Yosys counts at 1.56x its estimate in the network's rtl row. The README says where those LUTs go (the
layer's LUT multipliers, mapped for depth) from the committed record of that layer alone; these tests keep
the record the row's layer and the README's reading of it true."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
LAYER = "WinogradSRBS_rtl_4"


@pytest.fixture(scope="module")
def script():
    return runpy.run_path(str(ROOT / "benchmarks" / "winograd_layer_synth.py"))


@pytest.fixture(scope="module")
def row_layer():
    nets = json.loads((RESULTS / "rtl_rows.json").read_text())["networks"]
    net = next(n for n in nets if n["name"] == "cifar-vgg-nagadomi-winograd_dense")
    return net["folding"][LAYER], next(lay for lay in net["layers"] if lay["name"] == LAYER)


@pytest.fixture(scope="module")
def record():
    rows = json.loads((RESULTS / "winograd_layer_synth_nagadomi_l4.json").read_text())
    assert "-family xcup" in rows["tool"]  # ZCU104's family, as the row was synthesized
    return {r["name"]: r for r in rows["layers"]}


def test_the_named_shapes_are_the_rows_layer_and_not_calibration_points(script, row_layer):
    folding, _ = row_layer
    for name in ("nagadomi_dense_l4", "nagadomi_dense_l4_dsp"):
        kw = script["NAMED_SHAPES"][name]
        assert name not in script["SHAPES"]  # rtl_calibration.py takes SHAPES as its points
        assert (kw["pe"], kw["pos"], kw["simd"], kw["isimd"]) == tuple(folding[k] for k in ("PE", "POS", "SIMD", "ISIMD"))
        assert (kw["ifm_channels"], kw["ofm_channels"], kw["ifm_dim"], kw["sub_row"]) == (128, 256, (8, 8), 0)
    assert script["FAMILY_PARTS"]["xcup"] == "xczu7ev-ffvc1156-2-e"  # ZCU104's part (winoforge.hw.boards)


def test_the_record_reproduces_the_rows_layer_and_puts_its_excess_in_the_multipliers(record, row_layer):
    _, layer = row_layer
    lut, dsp = record["nagadomi_dense_l4"], record["nagadomi_dense_l4_dsp"]
    assert lut["mult_style"] == "lut" and dsp["mult_style"] == "dsp"
    # the layer alone counts within 3 % of the layer in the stitched design (other weights, same RTL)
    assert abs(lut["yosys"]["LUT"] / layer["yosys"]["lut"] - 1) < 0.03
    assert lut["yosys"]["BRAM"] == dsp["yosys"]["BRAM"] == layer["yosys"]["bram"]  # the ROM: block RAM alike
    assert lut["yosys"]["DSP"] == 0 and dsp["yosys"]["DSP"] == 160  # POS 4 x PE 5 x SIMD 8 multipliers
    per_multiplier = (lut["yosys"]["LUT"] - dsp["yosys"]["LUT"]) / 160
    estimated = lut["est"]["breakdown"]["multipliers"] / 160
    assert per_multiplier > 1.5 * estimated  # mapped for depth: ~90 LUT against the area map's ~51
    # the LUT1 feed-throughs and the MUXF tree come with the LUT multipliers, not with the ROM
    assert lut["yosys_cells"]["LUT1"] > 5000 > 100 > dsp["yosys_cells"]["LUT1"]


def test_the_2of8_record_is_the_rows_layer_mapped_for_depth_and_its_bram_in_ramb18s(script):
    """cifar-vgg-nagadomi's uniform 2 of 8 row (session 25): its 256 -> 256 layers on 8x8 take 2.2x their
    estimated LUT by Yosys.  The layer alone (the committed record) reproduces that, and its cells say
    why: ABC maps the SubRow-8 lanes (8:1 index mux before a 4-bit LUT multiplier) for depth -- LUT1
    feed-throughs and MUXF7/8/9 trees -- where the estimate counts them area-mapped on images up to 8
    wide (measured on xc7).  Its block RAM is 68 RAMB36 + 6 RAMB18: the build recorded 74 (a RAMB36 as
    one RAMB18, the count before session 25), the record 142 RAMB18s, the estimate's 143."""
    nets = json.loads((RESULTS / "rtl_rows.json").read_text())["networks"]
    net = next(n for n in nets if n["name"] == "cifar-vgg-nagadomi-srbs_2of8")
    layer = next(lay for lay in net["layers"] if lay["name"] == "WinogradSRBS_rtl_5")
    kw = script["NAMED_SHAPES"]["nagadomi_2of8_l5"]
    assert "nagadomi_2of8_l5" not in script["SHAPES"]
    assert (kw["pe"], kw["pos"], kw["simd"], kw["isimd"]) == tuple(
        net["folding"]["WinogradSRBS_rtl_5"][k] for k in ("PE", "POS", "SIMD", "ISIMD"))
    recs = {r["name"]: r for r in json.loads((RESULTS / "winograd_layer_synth_nagadomi_2of8_l5.json").read_text())["layers"]}
    rec = recs["nagadomi_2of8_l5"]
    assert rec["mult_style"] == "lut"
    y, cells = rec["yosys"], rec["yosys_cells"]
    assert abs((y["LUT"] + y["LUTRAM"]) / layer["yosys"]["lut"] - 1) < 0.03
    assert y["LUT"] + y["LUTRAM"] > 2 * rec["est"]["lut"]
    assert cells["LUT1"] > 10_000 and y["MUXF"] > 20_000  # the depth map's feed-throughs and mux trees
    cells_one_each = cells["RAMB36E2"] + cells["RAMB18E2"]  # the count before session 25 (no bram_unit)
    assert layer["yosys"]["bram"] == (y["BRAM"] if net.get("bram_unit") else cells_one_each)
    assert y["BRAM"] == 2 * cells["RAMB36E2"] + cells["RAMB18E2"] and abs(y["BRAM"] - rec["est"]["bram18"]) <= 1
    # the ROM in block RAM either way (rom_style "block" too) maps so; the same layer with its weights in
    # URAM (runtime-writeable) does not: about its estimate, few LUT1s
    block, uram = recs["nagadomi_2of8_l5_block"], recs["nagadomi_2of8_l5_uram"]
    assert block["params"]["ram_style"] == "block" and uram["params"]["runtime_weights"] == 1
    assert abs(block["yosys"]["LUT"] / y["LUT"] - 1) < 0.02 and block["yosys"]["BRAM"] == y["BRAM"]
    assert uram["yosys"]["URAM"] > 0 and uram["yosys"]["LUT"] + uram["yosys"]["LUTRAM"] < 1.15 * uram["est"]["lut"]
    assert uram["yosys_cells"]["LUT1"] < cells["LUT1"] / 3
