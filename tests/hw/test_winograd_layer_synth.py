"""benchmarks/winograd_layer_synth.py's named layers: cifar-vgg-nagadomi's dense 128 -> 256 layer and its
uniform 2 of 8 256 -> 256 layer on 8x8, each alone at its rtl row's folding (``--family xcup``, ZCU104's).
Both took 1.6-2.2x their estimated LUT in the network builds until session 26: a weight ROM deeper than
one block RAM is split by depth behind a LUT mux, and with that mux in front of the LUT multipliers ABC
mapped the lanes for depth. The RTL now registers the ROM's line twice (the ROM reads one issue ahead).
The committed records hold both measurements -- ``layers`` on the current RTL, ``history`` before the
second register -- and these tests keep the records the rows' layers and the README's reading of them
true."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

from winoforge.hw.rtl import rtl_file_digests
from winoforge.hw.rtl.winograd_layer import LAYER_SOURCES, layer_parameters

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


def _current(rec: dict, script: dict) -> bool:
    """Whether a layer record was measured on the layer's current sources, generated with the parameters the
    current Python gives its shape (``layer_parameters``: a generator rule such as ``ROM_PIPE`` counts too)."""
    return (rec.get("rtl_files") == rtl_file_digests(LAYER_SOURCES)
            and rec.get("rtl") == layer_parameters(script["shape_params"](rec["params"])))


def _records(name: str) -> tuple[dict, dict]:
    """``(current, before the second ROM register)`` records of a result file, by layer name."""
    rows = json.loads((RESULTS / name).read_text())
    assert "-family xcup" in rows["tool"]  # ZCU104's family, as the rows were synthesized
    before = rows["history"]["before_rom_register"]["layers"]
    return {r["name"]: r for r in rows["layers"]}, {r["name"]: r for r in before}


def test_the_named_shapes_are_the_rows_layer_and_not_calibration_points(script, row_layer):
    folding, _ = row_layer
    for name in ("nagadomi_dense_l4", "nagadomi_dense_l4_dsp"):
        kw = script["NAMED_SHAPES"][name]
        assert name not in script["SHAPES"]  # rtl_calibration.py takes SHAPES as its points
        assert (kw["pe"], kw["pos"], kw["simd"], kw["isimd"]) == tuple(folding[k] for k in ("PE", "POS", "SIMD", "ISIMD"))
        assert (kw["ifm_channels"], kw["ofm_channels"], kw["ifm_dim"], kw["sub_row"]) == (128, 256, (8, 8), 0)
    assert script["FAMILY_PARTS"]["xcup"] == "xczu7ev-ffvc1156-2-e"  # ZCU104's part (winoforge.hw.boards)


def test_the_dense_layers_multipliers_map_for_area_behind_the_second_rom_register(row_layer, script):
    """The dense 128 -> 256 layer (a 3,328-word ROM in 159 RAMB18): on the current RTL its 160 LUT multipliers
    take about what the estimate counts (area-mapped, ~51 LUT each), and the record reproduces the row's layer;
    before the second register they took ~90 each, with thousands of LUT1 feed-throughs (mapped for depth) --
    not the ROM's read-out (the DSP variant has neither)."""
    _, layer = row_layer
    now, before = _records("winograd_layer_synth_nagadomi_l4.json")
    for recs in (now, before):
        lut, dsp = recs["nagadomi_dense_l4"], recs["nagadomi_dense_l4_dsp"]
        assert lut["mult_style"] == "lut" and dsp["mult_style"] == "dsp"
        assert lut["yosys"]["BRAM"] == dsp["yosys"]["BRAM"] == 159  # the ROM: block RAM alike
        assert lut["yosys"]["DSP"] == 0 and dsp["yosys"]["DSP"] == 160  # POS 4 x PE 5 x SIMD 8 multipliers
        assert dsp["yosys_cells"]["LUT1"] < 100
    lut, dsp = now["nagadomi_dense_l4"], now["nagadomi_dense_l4_dsp"]
    assert _current(lut, script) and _current(dsp, script)
    # the layer alone counts within 3 % of the layer in the stitched design (other weights, same RTL)
    assert abs(lut["yosys"]["LUT"] / layer["yosys"]["lut"] - 1) < 0.03 and layer["yosys"]["bram"] == 159
    estimated = lut["est"]["breakdown"]["multipliers"] / 160
    assert (lut["yosys"]["LUT"] - dsp["yosys"]["LUT"]) / 160 < 1.1 * estimated
    assert lut["yosys_cells"]["LUT1"] < 100
    old, old_dsp = before["nagadomi_dense_l4"], before["nagadomi_dense_l4_dsp"]
    assert not _current(old, script)
    assert (old["yosys"]["LUT"] - old_dsp["yosys"]["LUT"]) / 160 > 1.5 * estimated  # ~90 LUT a multiplier
    assert old["yosys_cells"]["LUT1"] > 5000


def test_the_2of8_layer_is_at_its_estimate_behind_the_second_rom_register(script):
    """cifar-vgg-nagadomi's uniform 2 of 8 row: its 256 -> 256 layers on 8x8 (a 1,376-word ROM, 68 RAMB36 + 6
    RAMB18) took 2.2x their estimated LUT by Yosys before the second register -- ABC mapped the SubRow-8 lanes
    (8:1 index mux before a 4-bit LUT multiplier) for depth, LUT1 feed-throughs and MUXF7/8/9 trees, with the
    ROM in block RAM (auto or ``rom_style block``) and not with the weights in URAM.  On the current RTL the
    ROM variants take what the URAM one does, and the record reproduces the row's layer."""
    nets = json.loads((RESULTS / "rtl_rows.json").read_text())["networks"]
    net = next(n for n in nets if n["name"] == "cifar-vgg-nagadomi-srbs_2of8")
    layer = next(lay for lay in net["layers"] if lay["name"] == "WinogradSRBS_rtl_5")
    kw = script["NAMED_SHAPES"]["nagadomi_2of8_l5"]
    assert "nagadomi_2of8_l5" not in script["SHAPES"]
    assert (kw["pe"], kw["pos"], kw["simd"], kw["isimd"]) == tuple(
        net["folding"]["WinogradSRBS_rtl_5"][k] for k in ("PE", "POS", "SIMD", "ISIMD"))
    now, before = _records("winograd_layer_synth_nagadomi_2of8_l5.json")
    for recs in (now, before):
        rec, block, uram = recs["nagadomi_2of8_l5"], recs["nagadomi_2of8_l5_block"], recs["nagadomi_2of8_l5_uram"]
        y, cells = rec["yosys"], rec["yosys_cells"]
        assert rec["mult_style"] == "lut" and block["params"]["ram_style"] == "block"
        assert uram["params"]["runtime_weights"] == 1 and uram["yosys"]["URAM"] > 0
        # block RAM in RAMB18s (a RAMB36 two): the estimate's
        assert y["BRAM"] == 2 * cells["RAMB36E2"] + cells["RAMB18E2"] and abs(y["BRAM"] - rec["est"]["bram18"]) <= 1
        assert abs(block["yosys"]["LUT"] / y["LUT"] - 1) < 0.02 and block["yosys"]["BRAM"] == y["BRAM"]
        assert uram["yosys"]["LUT"] + uram["yosys"]["LUTRAM"] < 1.15 * uram["est"]["lut"]
    rec, uram = now["nagadomi_2of8_l5"], now["nagadomi_2of8_l5_uram"]
    y, cells = rec["yosys"], rec["yosys_cells"]
    assert all(_current(r, script) for r in now.values())
    # the row's layer holds the network's weights, not these random ones: its ROM takes 130 RAMB18 against 142
    assert net.get("bram_unit") and 0.9 * y["BRAM"] <= layer["yosys"]["bram"] <= y["BRAM"]
    assert abs((y["LUT"] + y["LUTRAM"]) / layer["yosys"]["lut"] - 1) < 0.03
    assert y["LUT"] + y["LUTRAM"] < 1.25 * rec["est"]["lut"]
    assert abs(y["LUT"] / uram["yosys"]["LUT"] - 1) < 0.1 and cells["LUT1"] < 5000 and y["MUXF"] < 6000
    old = before["nagadomi_2of8_l5"]
    assert not _current(old, script)
    assert old["yosys"]["LUT"] + old["yosys"]["LUTRAM"] > 2 * old["est"]["lut"]
    assert old["yosys_cells"]["LUT1"] > 10_000 and old["yosys"]["MUXF"] > 20_000  # the depth map
    assert before["nagadomi_2of8_l5_uram"]["yosys_cells"]["LUT1"] < old["yosys_cells"]["LUT1"] / 3
