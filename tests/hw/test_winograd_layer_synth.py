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
