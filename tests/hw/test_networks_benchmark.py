"""The networks benchmark (issue 12, "The comparison the paper makes") in quick mode: a tiny VGG
through all seven flows (stock FINN, dense Winograd, SRBS 1/2, 1/4 and 1/4 mixed precision as 2 of 8,
1/4 and 1/4 mixed as 1 of 4), real FINN builds on a coarse grid; the rows follow the promised schema
and the speed-ups are computed from them."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "networks.py"
KEYS = {"network", "board", "flow", "density", "mean_bits", "fps", "lut", "ff", "bram", "dsp",
        "speedup_vs_dense_winograd", "speedup_vs_finn", "source"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory, fmnist):
    tmp = tmp_path_factory.mktemp("networks")
    out = tmp / "networks.json"
    main = runpy.run_path(str(SCRIPT))["main"]
    assert main(["--quick", "--networks", "tiny-vgg", "--calibration", "16", "--work", str(tmp / "work"),
                 "--out", str(out)]) == 0
    return json.loads(out.read_text()), out


def test_rows_follow_the_schema(quick):
    result, out = quick
    rows = result["rows"]
    assert [(r["flow"], r["density"], r["mixed_precision"], r["sub_row"], r["keep"]) for r in rows] == [
        ("finn", 1.0, False, None, None), ("winograd_dense", 1.0, False, None, None), ("srbs", 0.5, False, 8, 4),
        ("srbs", 0.25, False, 8, 2), ("srbs", 0.25, True, 8, 2), ("srbs", 0.25, False, 4, 1), ("srbs", 0.25, True, 4, 1)]
    for r in rows:
        assert KEYS <= set(r), KEYS - set(r)
        assert r["source"] in ("rtl", "estimate") and r["board"] == "PYNQ-Z2"
        assert r["fps"] is not None, r.get("note")  # the tiny network fits PYNQ-Z2 in every flow
        assert r["fps"] > 0 and r["lut"] > 0 and r["bram"] >= 0 and r["dsp"] >= 0
        assert isinstance(r["saturated"], bool)
        # where the LUTs go: every layer and converter once, a Winograd layer named with its pattern
        assert sum(r["lut_by_op_type"].values()) == pytest.approx(r["lut"])
        if r["flow"] != "finn":
            pattern = "dense" if r["flow"] == "winograd_dense" else f"{r['keep']}of{r['sub_row']}"
            assert r["lut_by_op_type"][f"WinogradSRBS_rtl ({pattern})"] > 0
    uniform = [r for r in rows if not r["mixed_precision"]]
    assert all(r["mean_bits"] == pytest.approx(4.0) for r in uniform if r["flow"] != "finn")
    for mixed in (rows[4], rows[6]):
        assert mixed["mean_bits"] < 4.0 and mixed["mixed"]["bops"] <= mixed["mixed"]["budget_bops"]
    assert out.with_suffix(".png").is_file() and out.with_name("networks_steps.png").is_file()


def test_speedups_are_computed_from_the_rows(quick):
    rows = quick[0]["rows"]
    finn, dense = rows[0], rows[1]
    for r in rows:
        assert r["speedup_vs_dense_winograd"] == r["fps"] / dense["fps"]
        assert r["speedup_vs_finn"] == r["fps"] / finn["fps"]
    assert dense["speedup_vs_dense_winograd"] == 1.0 and finn["speedup_vs_finn"] == 1.0


def test_rows_respect_equal_resources_and_targets_follow(quick):
    result = quick[0]
    rows = result["rows"]
    finn, dense = rows[0], rows[1]
    if dense["limits"] != "board":
        assert dense["lut"] <= finn["lut"] and dense["dsp"] <= finn["dsp"]
    for r in rows[2:]:
        if r["limits"] != "board":
            assert r["lut"] <= dense["lut"] and r["dsp"] <= dense["dsp"]
    target = result["targets"]["tiny-vgg"]
    quarters = {"2of8": rows[3], "1of4": rows[5]}  # the uniform density-1/4 rows, one per sub-row pattern
    assert target["density_quarter_speedup_vs_dense"] == max(r["speedup_vs_dense_winograd"] for r in quarters.values())
    met = {k: r["speedup_vs_dense_winograd"] >= 3.0 and r["lut"] <= dense["lut"] and r["dsp"] <= dense["dsp"]
           for k, r in quarters.items()}
    assert {k: target["by_pattern"][k]["met"] for k in quarters} == met and target["met"] == any(met.values())
    assert target["mixed_speedup_vs_dense"] == max(r["speedup_vs_dense_winograd"] for r in (rows[4], rows[6]))
    assert target["equal_lut_bound"] == runpy.run_path(str(SCRIPT))["equal_lut_bound"](dense) > 1.0
    # every folding the search built is recorded, the chosen one among them
    for label, flow in result["networks"]["tiny-vgg"]["flows"].items():
        assert flow["export_check"]["exact"], label
        assert flow["grid_points"]


def test_rows_take_the_rtl_figures_where_bench_rtl_built_them(tmp_path):
    """apply_rtl: the row bench-rtl built at the same folding takes the simulated FPS and Yosys counts
    (source "rtl", estimates kept); another folding or flow stays an estimate; speed-ups follow.
    rtl_networks: rtl.json's benchmark network by name, rtl_rows.json's networks by their ``row``
    (which wins over rtl.json for the same row); re-applying starts again from the estimates."""
    import sys

    mod = runpy.run_path(str(SCRIPT))
    sys.path.insert(0, str(SCRIPT.parent))
    from hw_estimates import WIDTHS

    assert WIDTHS == mod["VGG_PYNQ"]  # bench-rtl's benchmark network is this benchmark's fmnist-vgg

    def row(flow, density, fps, cycles):
        return {"network": "fmnist-vgg", "board": "PYNQ-Z2", "flow": flow, "density": density,
                "mixed_precision": False, "fps": fps, "lut": 40_000.0, "ff": None, "bram": 50.0, "dsp": 0,
                "max_cycles": cycles, "source": "estimate"}

    from winoforge.hw.rtl import BRAM_UNIT

    def net(name, est, sim, lut, row=None, unit=BRAM_UNIT):
        return {"name": name, "cycles_per_frame_est": est, "cycles_per_frame_sim": sim, "yosys_complete": True,
                "yosys": {"lut": lut, "ff": 22_000, "bram": 104, "dsp": 0}, "est": {"lut": lut, "bram": 120},
                "images": 1000, "mismatches": 0, **({"row": row} if row else {}),
                **({"bram_unit": unit} if unit else {})}

    (tmp_path / "rtl.json").write_text(json.dumps({"networks": [net("pynq-z2-benchmark", 25_000, 25_100, 41_000),
                                                                net("fmnist-tiny", 50_176, 50_176, 7_000)]}))
    rtl = mod["rtl_networks"](tmp_path)
    assert [(key, origin) for key, _, origin in rtl] == [(("fmnist-vgg", "srbs", 0.25, False, 8),
                                                         "benchmarks/results/rtl.json")]
    rows = [row("winograd_dense", 1.0, 2000.0, 50_000), row("srbs", 0.25, 4000.0, 25_000),
            row("srbs", 0.5, 2000.0, 50_000)]
    mod["apply_rtl"](rows, rtl)
    mod["apply_rtl"](rows, rtl)  # re-applicable: the same figures again
    dense, quarter, half = rows
    assert quarter["source"] == "rtl" and quarter["fps"] == 100e6 / 25_100
    assert (quarter["lut"], quarter["ff"], quarter["bram"]) == (41_000, 22_000, 52.0)
    assert quarter["rtl"]["bram_from"] == "yosys"
    assert quarter["estimate"]["fps"] == 4000.0 and quarter["rtl"]["mismatches"] == 0
    # a build recorded before its BRAM counted a RAMB36 as two RAMB18 (no bram_unit): the build's estimate
    mod["apply_rtl"](rows, [(key, {k: v for k, v in n.items() if k != "bram_unit"}, o) for key, n, o in rtl])
    assert (quarter["lut"], quarter["bram"]) == (41_000, 60.0) and quarter["rtl"]["bram_from"].startswith("estimate")
    mod["apply_rtl"](rows, rtl)
    assert dense["source"] == half["source"] == "estimate" and "rtl" not in half
    mod["add_speedups"](rows)
    assert quarter["speedup_vs_dense_winograd"] == quarter["fps"] / 2000.0

    # rtl_rows.json: the dense row at its folding, and the density-1/4 row again (it wins over rtl.json)
    key = {"network": "fmnist-vgg", "density": 1.0, "mixed_precision": False}
    (tmp_path / "rtl_rows.json").write_text(json.dumps({"networks": [
        net("fmnist-vgg-winograd_dense", 50_000, 50_000, 45_000, {**key, "flow": "winograd_dense"}),
        net("fmnist-vgg-srbs_2of8", 25_000, 25_000, 39_000, {**key, "flow": "srbs", "density": 0.25}),
        net("fmnist-vgg-srbs_4of8", 12_500, 12_500, 46_000, {**key, "flow": "srbs", "density": 0.5})]}))
    mod["apply_rtl"](rows, mod["rtl_networks"](tmp_path))
    assert dense["source"] == "rtl" and dense["lut"] == 45_000 and dense["estimate"]["lut"] == 40_000.0
    assert quarter["fps"] == 100e6 / 25_000 and quarter["lut"] == 39_000
    assert quarter["rtl"]["from"] == "benchmarks/results/rtl_rows.json"
    # built at another folding (12,500 cycles, the row has 50,000) and over dense's 45,000 LUT by Yosys
    assert half["source"] == "estimate"
    (tmp_path / "rtl_rows.json").unlink()
    (tmp_path / "rtl.json").unlink()
    mod["apply_rtl"](rows, mod["rtl_networks"](tmp_path))  # no RTL results: every row its estimates again
    assert [r["source"] for r in rows] == ["estimate"] * 3 and quarter["fps"] == 4000.0 and "rtl" not in quarter


def test_apply_rtl_only_rewrites_the_recorded_rows(tmp_path):
    """``--apply-rtl``: the recorded rows take the RTL results now on disk; speed-ups and targets
    follow from the new figures, the rest of the record stays."""
    import argparse

    mod = runpy.run_path(str(SCRIPT))

    def row(flow, density, fps, lut, cycles):
        return {"network": "n", "board": "PYNQ-Z2", "flow": flow, "density": density, "mixed_precision": False,
                "mean_bits": 4.0, "fps": fps, "lut": lut, "ff": None, "bram": 10.0, "dsp": 0, "max_cycles": cycles,
                "source": "estimate", "speedup_vs_dense_winograd": None, "speedup_vs_finn": None}

    rows = [row("finn", 1.0, 1000.0, 50_000, 100_000), row("winograd_dense", 1.0, 1000.0, 40_000, 100_000),
            row("srbs", 0.25, 2000.0, 39_000, 50_000)]
    out = tmp_path / "networks.json"
    out.write_text(json.dumps({"rows": rows, "targets": {}, "networks": {"n": {"kept": True}}}))
    key = {"network": "n", "flow": "srbs", "density": 0.25, "mixed_precision": False}
    (tmp_path / "rtl_rows.json").write_text(json.dumps({"networks": [{
        "name": "n-srbs_2of8", "row": key, "cycles_per_frame_est": 50_000, "cycles_per_frame_sim": 25_000,
        "yosys_complete": True, "yosys": {"lut": 38_000, "ff": 20_000, "bram": 20, "dsp": 0}, "images": 200,
        "mismatches": 0}]}))
    args = argparse.Namespace(out=str(out))
    assert mod["_apply_rtl_only"](args, tmp_path) == 0
    result = json.loads(out.read_text())
    quarter = result["rows"][2]
    assert quarter["source"] == "rtl" and quarter["fps"] == 100e6 / 25_000 and quarter["lut"] == 38_000
    assert quarter["speedup_vs_dense_winograd"] == quarter["fps"] / 1000.0 == 4.0
    assert result["targets"]["n"]["met"] is True and result["networks"] == {"n": {"kept": True}}
    assert result["rtl_applied"]["rows"] == ["n srbs 0.25 2of8"] and out.with_suffix(".png").is_file()
    assert (tmp_path / "networks_steps.png").is_file()


def test_rows_beyond_their_reference_after_synthesis_are_marked():
    """The folding search caps each flow by its reference row's *estimates*; where a row's final
    figures (Yosys, once rebuilt in RTL) exceed the reference's LUT or DSP, ``within_reference`` is
    False, the table marks the speed-up with '!' and the density-1/4 target does not count it."""
    nb = runpy.run_path(str(SCRIPT))

    def row(flow, density, lut, fps, dsp=0):
        return {"network": "n", "board": "PYNQ-Z2", "flow": flow, "density": density, "mixed_precision": False,
                "mean_bits": 4.0, "fps": fps, "lut": lut, "ff": None, "bram": 1.0, "dsp": dsp, "uram": 0,
                "source": "rtl"}

    rows = [row("finn", 1.0, 100, 10.0), row("winograd_dense", 1.0, 90, 10.0), row("srbs", 0.5, 91, 20.0),
            row("srbs", 0.25, 90, 40.0)]
    nb["add_speedups"](rows)
    assert [r["within_reference"] for r in rows] == [None, True, False, True]
    lines = nb["table"](rows).splitlines()
    assert "2.00!" in lines[4] and "4.00x" in lines[5] and lines[6].startswith("!:")
    assert nb["targets"](rows)["n"]["met"] is True
    rows[3]["dsp"] = 1  # one DSP more than dense Winograd: not at equal resources
    nb["add_speedups"](rows)
    assert rows[3]["within_reference"] is False and nb["targets"](rows)["n"]["met"] is False


def test_sub_row_patterns_are_separate_rows():
    """Density 1/4 as 2 of 8 and as 1 of 4 are two rows: an RTL result names its pattern (a recorded
    ``row`` without ``sub_row`` is SubRow 8, the rows before the field), applies to that row only, and
    the target is met by either pattern but only within dense Winograd's LUT and DSP."""
    nb = runpy.run_path(str(SCRIPT))

    def row(flow, density, lut, fps, sub_row=None, keep=None, mixed=False):
        r = {"network": "n", "board": "PYNQ-Z2", "flow": flow, "density": density, "mixed_precision": mixed,
             "mean_bits": 4.0 if not mixed else 3.0, "fps": fps, "lut": lut, "ff": None, "bram": 1.0, "dsp": 0,
             "uram": 0, "max_cycles": 100e6 / fps, "source": "estimate"}
        return {**r, "sub_row": sub_row, "keep": keep} if sub_row else r  # a SubRow-8 row recorded without the field

    dense = row("winograd_dense", 1.0, 100, 10.0)
    of8, of4 = row("srbs", 0.25, 90, 20.0), row("srbs", 0.25, 99, 40.0, 4, 1)
    of4_mixed = row("srbs", 0.25, 80, 40.0, 4, 1, mixed=True)
    rows = [dense, of8, of4, of4_mixed]
    assert nb["row_key"](of8)[-1] == 8 and nb["row_key"](of4)[-1] == 4 and nb["row_key"](dense)[-1] is None
    net = {"name": "n-srbs_1of4", "row": {"network": "n", "flow": "srbs", "density": 0.25, "mixed_precision": False,
                                          "sub_row": 4}, "cycles_per_frame_est": 100e6 / 40.0,
           "cycles_per_frame_sim": 100e6 / 40.0, "yosys_complete": True,
           "yosys": {"lut": 101, "ff": 50, "bram": 2, "dsp": 0}, "images": 200, "mismatches": 0}
    nb["apply_rtl"](rows, [(nb["row_key"](net["row"]), net, "rtl_rows.json")])
    assert of4["source"] == "rtl" and of4["lut"] == 101 and of8["source"] == "estimate" == of4_mixed["source"]
    nb["add_speedups"](rows)
    target = nb["targets"](rows)["n"]
    # 1 of 4 is 4x but one LUT over dense by Yosys: not met; 2 of 8 is 2x; the mixed row does not count
    assert target["by_pattern"]["1of4"] == {"speedup_vs_dense": 4.0, "met": False, "within_dense_lut_dsp": False,
                                            "mean_bits": 4.0}
    assert target["met"] is False and target["density_quarter_speedup_vs_dense"] == 4.0
    assert target["by_pattern"]["1of4_mixed"]["met"] is True and target["mixed_speedup_vs_dense"] == 4.0
    nb["apply_rtl"](rows, [])
    nb["add_speedups"](rows)
    assert nb["targets"](rows)["n"]["met"] is True  # the estimate (99 LUT) held within dense's 100
    assert "srbs 1of4 mixed" in nb["table"](rows) and "srbs 2of8" in nb["table"](rows)


def test_a_faster_folding_measured_within_the_reference_replaces_the_row():
    """``rtl.py --rows NETWORK:FLOW@FPS`` builds a candidate folding past the estimate's cap; the row
    takes the fastest such build whose Yosys LUT/DSP hold within its reference's *final* figures
    (the reference's own RTL build applied first) and the board, with 0 mismatches; a build over
    the reference, or with a mismatch, is not taken; re-applying without builds restores the row.
    Where the row's own build is over its reference by Yosys, the fastest build within it replaces
    it even if slower."""
    nb = runpy.run_path(str(SCRIPT))

    def row(flow, lut, fps, sub_row=None):
        return {"network": "n", "board": "PYNQ-Z2", "flow": flow, "density": 1.0 if flow != "srbs" else 0.25,
                "mixed_precision": False, "mean_bits": 4.0, "fps": fps, "lut": lut, "ff": None, "bram": 1.0,
                "dsp": 0, "uram": 0, "max_cycles": 100e6 / fps, "target_fps": fps, "source": "estimate",
                **({"sub_row": sub_row, "keep": 1} if sub_row else {})}

    def build(flow, fps, lut, mismatches=0, sub_row=None, name="b"):
        key = {"network": "n", "flow": flow, "density": 1.0 if flow != "srbs" else 0.25, "mixed_precision": False,
               "target_fps": fps, "max_cycles": 100e6 / fps, **({"sub_row": sub_row, "candidate": True}
                                                                if sub_row else {})}
        net = {"name": name, "row": key, "cycles_per_frame_est": 100e6 / fps, "cycles_per_frame_sim": 100e6 / fps,
               "yosys_complete": True, "yosys": {"lut": lut, "ff": 1, "bram": 2, "dsp": 0}, "images": 200,
               "mismatches": mismatches}
        return nb["row_key"](key), net, "rtl_rows.json"

    finn, dense, quarter = row("finn", 120, 10.0), row("winograd_dense", 100, 10.0), row("srbs", 90, 20.0, 4)
    rows = [quarter, dense, finn]  # any order: the references are applied first
    rtl = [build("winograd_dense", 10.0, 105),  # dense at its folding: 105 LUT by Yosys (its estimate said 100)
           build("srbs", 40.0, 104, sub_row=4, name="c40"),  # past the estimate's cap, within dense's 105
           build("srbs", 80.0, 106, sub_row=4, name="c80"),  # over dense by Yosys
           build("srbs", 60.0, 50, mismatches=1, sub_row=4, name="c60")]  # wrong outputs
    nb["apply_rtl"](rows, rtl)
    assert dense["source"] == "rtl" and dense["lut"] == 105
    assert quarter["source"] == "rtl" and quarter["fps"] == 40.0 and quarter["lut"] == 104
    assert quarter["rtl"]["network"] == "c40" and "winograd_dense" in quarter["rtl"]["chosen"]
    assert quarter["max_cycles"] == 100e6 / 40.0 and quarter["estimate"]["max_cycles"] == 100e6 / 20.0
    nb["add_speedups"](rows)
    assert quarter["within_reference"] is True and quarter["speedup_vs_dense_winograd"] == 4.0
    assert nb["targets"](rows)["n"]["met"] is True
    nb["apply_rtl"](rows, rtl)  # re-applicable
    assert quarter["fps"] == 40.0 and quarter["estimate"]["fps"] == 20.0
    nb["apply_rtl"](rows, [])
    assert quarter["source"] == "estimate" and quarter["fps"] == 20.0 and quarter["max_cycles"] == 100e6 / 20.0
    assert dense["lut"] == 100 and "rtl" not in quarter

    # the row's own build over dense's 105 LUT by Yosys: a slower build within takes its place ...
    own = build("srbs", 20.0, 107, sub_row=4, name="own")
    own[1]["row"].pop("candidate")
    own = (nb["row_key"](own[1]["row"]), own[1], own[2])
    slower = build("srbs", 15.0, 95, sub_row=4, name="c15")
    nb["apply_rtl"](rows, [rtl[0], own, slower])
    assert quarter["rtl"]["network"] == "c15" and quarter["fps"] == 15.0 and quarter["lut"] == 95
    assert "107 LUT by Yosys: over" in quarter["rtl"]["chosen"]
    nb["add_speedups"](rows)
    assert quarter["within_reference"] is True and quarter["speedup_vs_dense_winograd"] == 1.5
    # ... and without one the row keeps its own build, not within its reference
    nb["apply_rtl"](rows, [rtl[0], own])
    nb["add_speedups"](rows)
    assert quarter["rtl"]["network"] == "own" and quarter["lut"] == 107 and quarter["within_reference"] is False


def test_rtl_rows_take_yosys_s_uram_and_must_fit_the_board_s():
    """A ZCU104 row whose weights sit in UltraRAM: its RTL build's URAM288 count (Yosys) replaces the
    estimate's, kept under ``estimate`` and restored without builds; a record from before the count
    (no ``uram``) keeps the estimate's; a candidate whose Yosys URAM exceeds the board's 92 is not
    taken, however fast."""
    nb = runpy.run_path(str(SCRIPT))

    def row(flow, lut, fps):
        return {"network": "n", "board": "ZCU104", "flow": flow, "density": 1.0 if flow != "srbs" else 0.25,
                "mixed_precision": False, "mean_bits": 4.0, "fps": fps, "lut": lut, "ff": None, "bram": 100.0,
                "dsp": 0, "uram": 60, "max_cycles": 100e6 / fps, "target_fps": fps, "source": "estimate",
                **({"sub_row": 4, "keep": 1} if flow == "srbs" else {})}

    def build(flow, fps, uram, name, candidate=False):
        key = {"network": "n", "flow": flow, "density": 1.0 if flow != "srbs" else 0.25, "mixed_precision": False,
               "target_fps": fps, "max_cycles": 100e6 / fps,
               **({"sub_row": 4, "keep": 1} if flow == "srbs" else {}), **({"candidate": True} if candidate else {})}
        yosys = {"lut": 90, "ff": 1, "bram": 150, "dsp": 0, **({} if uram is None else {"uram": uram})}
        net = {"name": name, "row": key, "cycles_per_frame_est": 100e6 / fps, "cycles_per_frame_sim": 100e6 / fps,
               "yosys_complete": True, "yosys": yosys, "images": 50, "mismatches": 0}
        return nb["row_key"](key), net, "rtl_rows.json"

    dense, quarter = row("winograd_dense", 100, 10.0), row("srbs", 95, 30.0)
    rows = [dense, quarter]
    nb["apply_rtl"](rows, [build("winograd_dense", 10.0, 62, "d"), build("srbs", 30.0, None, "q"),
                           build("srbs", 50.0, 93, "fast", candidate=True)])
    assert dense["source"] == "rtl" and dense["uram"] == 62 and dense["estimate"]["uram"] == 60
    assert quarter["rtl"]["network"] == "q" and quarter["uram"] == 60 and quarter["fps"] == 30.0
    nb["apply_rtl"](rows, [build("srbs", 50.0, 92, "fits", candidate=True)])
    assert quarter["rtl"]["network"] == "fits" and quarter["uram"] == 92
    nb["apply_rtl"](rows, [])
    assert dense["uram"] == 60 and dense["source"] == "estimate" and quarter["uram"] == 60


def test_srbs_searches_are_capped_by_the_reference_s_final_figures():
    """reference_cap: the LUT/DSP an SRBS search must stay within are dense Winograd's *final* figures:
    Yosys's where bench-rtl built it (at its own folding, or a slower one within FINN's where its own is
    over), its estimates where not; the rows themselves are left as they were."""
    nb = runpy.run_path(str(SCRIPT))

    def row(flow, lut, fps):
        return {"network": "n", "board": "PYNQ-Z2", "flow": flow, "density": 1.0, "mixed_precision": False,
                "mean_bits": 4.0, "fps": fps, "lut": lut, "ff": None, "bram": 1.0, "dsp": 0, "uram": 0,
                "max_cycles": 100e6 / fps, "target_fps": fps, "source": "estimate"}

    def build(fps, lut, candidate=False):
        key = {"network": "n", "flow": "winograd_dense", "density": 1.0, "mixed_precision": False,
               "target_fps": fps, "max_cycles": 100e6 / fps, **({"candidate": True} if candidate else {})}
        net = {"name": f"d{fps}", "row": key, "cycles_per_frame_est": 100e6 / fps,
               "cycles_per_frame_sim": 100e6 / fps, "yosys_complete": True,
               "yosys": {"lut": lut, "ff": 1, "bram": 2, "dsp": 0}, "images": 200, "mismatches": 0}
        return nb["row_key"](key), net, "rtl_rows.json"

    rows = [row("finn", 120, 10.0), row("winograd_dense", 100, 10.0)]
    before = json.dumps(rows)
    assert nb["reference_cap"](rows, 1, []) == {"lut": 100, "dsp": 0, "source": "estimate"}
    assert nb["reference_cap"](rows, 1, [build(10.0, 105)]) == {"lut": 105, "dsp": 0, "source": "rtl"}
    # its own folding over FINN's 120 LUT by Yosys: the slower build within FINN's caps the search
    assert nb["reference_cap"](rows, 1, [build(10.0, 125), build(8.0, 95, candidate=True)])["lut"] == 95
    assert json.dumps(rows) == before


def test_on_a_uram_board_both_flows_move_weights_to_uram_alike():
    """The benchmark's ZCU104 rows: every flow's back moves weights to URAM right before the estimates
    with step_weights_to_uram (FINN's MVAUs too), never also with the default steps' Winograd-only one."""
    from winoforge.hw.build import step_weights_to_uram, step_winograd_weights_to_uram

    nb = runpy.run_path(str(SCRIPT))
    for kind in ("winograd", "baseline", "baseline_residual"):
        default = nb["_front_and_back"](kind)[1]
        assert (step_winograd_weights_to_uram in default) == (kind == "winograd")
        back = nb["uram_back"](default)
        assert step_winograd_weights_to_uram not in back and back.count(step_weights_to_uram) == 1
        assert back[back.index(step_weights_to_uram) + 1] == "step_generate_estimate_reports"
    from winoforge.hw.build import step_winograd_streamline

    residual_front = nb["_front_and_back"]("baseline_residual")[0]  # the ResNets' stock FINN rows
    assert step_winograd_streamline in residual_front and "step_streamline" not in residual_front
    assert "step_streamline" in nb["_front_and_back"]("baseline")[0]


def test_a_rebuilt_row_keeps_its_earlier_folding_as_a_candidate():
    """rtl.py --rows: a row rebuilt at a new folding replaces the entry of its name; the earlier build,
    at another folding, stays as a candidate of the flow (NAME@FPS) that apply_rtl can still take --
    here the slower one within dense's LUT, where the new build is over it. A rebuild at the same
    folding just replaces the entry."""
    nb = runpy.run_path(str(SCRIPT))
    merge = runpy.run_path(str(SCRIPT.parent / "rtl.py"))["merge_build"]

    def build(fps, lut, name="n-srbs"):
        row = {"network": "n", "flow": "srbs", "density": 0.25, "mixed_precision": False, "target_fps": fps,
               "max_cycles": 100e6 / fps, "sub_row": 4, "keep": 1}
        return {"name": name, "row": row, "cycles_per_frame_est": 100e6 / fps, "cycles_per_frame_sim": 100e6 / fps,
                "yosys_complete": True, "yosys": {"lut": lut, "ff": 1, "bram": 2, "dsp": 0}, "images": 200,
                "mismatches": 0}

    dense = {**build(10.0, 100, "n-dense"), "row": {"network": "n", "flow": "winograd_dense", "density": 1.0,
                                                     "mixed_precision": False, "target_fps": 10.0, "max_cycles": 1e7}}
    nets = merge([dense, build(20.0, 95)], build(40.0, 104))
    assert [n["name"] for n in nets] == ["n-dense", "n-srbs@20", "n-srbs"]
    assert nets[1]["row"]["candidate"] and nets[1]["row"]["max_cycles"] == 100e6 / 20.0
    assert nets[1]["row"]["target_fps"] == 20 and nets[1]["renamed_from"] == "n-srbs"
    assert [n["name"] for n in merge(nets, build(40.0, 103))] == ["n-dense", "n-srbs@20", "n-srbs"]
    # a candidate whose target now builds another folding: the earlier build is kept under the FPS that
    # rebuilds it (one @, not "n-srbs@16@16")
    cand = merge([build(25.0, 90, "n-srbs@16")], build(16.0, 80, "n-srbs@16"))
    assert [(n["name"], n["cycles_per_frame_est"]) for n in cand] == [("n-srbs@25", 4e6), ("n-srbs@16", 6.25e6)]
    # a rebuild of the same row and folding under another name replaces the earlier build of it
    again = merge(cand, build(25.0, 91, "n-srbs@25x"))
    assert [(n["name"], n["yosys"]["lut"]) for n in again] == [("n-srbs@16", 80), ("n-srbs@25x", 91)]
    quarter = {"network": "n", "board": "PYNQ-Z2", "flow": "srbs", "density": 0.25, "mixed_precision": False,
               "mean_bits": 4.0, "fps": 40.0, "lut": 99, "ff": None, "bram": 1.0, "dsp": 0, "uram": 0,
               "max_cycles": 100e6 / 40.0, "target_fps": 40.0, "source": "estimate", "sub_row": 4, "keep": 1}
    rows = [{**quarter, "flow": "winograd_dense", "density": 1.0, "fps": 10.0, "lut": 100, "max_cycles": 1e7,
             "sub_row": None, "keep": None}, quarter]
    rtl = [(nb["row_key"](n["row"]), n, "rtl_rows.json") for n in nets]
    nb["apply_rtl"](rows, rtl)
    assert rows[1]["rtl"]["network"] == "n-srbs@20" and rows[1]["fps"] == 20.0  # 104 LUT is over dense's 100


def test_merge_takes_runs_over_disjoint_networks_or_flows(tmp_path):
    """``--merge``: runs over other networks or other flows of one network (``--flows``) combine into
    one file, the rows in the table's order and a network's flows together; a row in two runs is
    refused, naming it."""
    import argparse

    nb = runpy.run_path(str(SCRIPT))

    def row(net, flow, density, sub_row=None, mixed=False):
        return {"network": net, "board": "PYNQ-Z2", "flow": flow, "density": density, "mixed_precision": mixed,
                "mean_bits": 4.0, "fps": 10.0, "lut": 100, "ff": None, "bram": 1.0, "dsp": 0, "uram": 0,
                "max_cycles": 1e7, "source": "estimate", **({"sub_row": sub_row, "keep": 1} if sub_row else {})}

    def part(name, rows, flows):
        path = tmp_path / name
        path.write_text(json.dumps({"rows": rows, "networks": {rows[0]["network"]: {"flows": flows}},
                                    "setup": {"grid": [1, 2]}, "wall_seconds": 1.0, "git_commit": name}))
        return str(path)

    net = "fmnist-resnet8"
    a = part("a.json", [row(net, "finn", 1.0), row(net, "winograd_dense", 1.0), row(net, "srbs", 0.25)],
             {"finn": {}, "winograd_dense": {}, "srbs_2of8": {}})
    b = part("b.json", [row(net, "srbs", 0.25, 4, mixed=True), row(net, "srbs", 0.25, 4)],
             {"srbs_1of4_mixed": {}, "srbs_1of4": {}})
    c = part("c.json", [row("fmnist-vgg", "winograd_dense", 1.0)], {"winograd_dense": {}})
    out = tmp_path / "networks.json"
    assert nb["_merge"](argparse.Namespace(merge=[a, b, c], out=str(out), quick=False)) == 0
    result = json.loads(out.read_text())
    assert [(r["network"], r["flow"], r.get("sub_row"), r["mixed_precision"]) for r in result["rows"]] == [
        ("fmnist-vgg", "winograd_dense", None, False), (net, "finn", None, False), (net, "winograd_dense", None, False),
        (net, "srbs", None, False), (net, "srbs", 4, False), (net, "srbs", 4, True)]
    assert set(result["networks"][net]["flows"]) == {"finn", "winograd_dense", "srbs_2of8", "srbs_1of4",
                                                     "srbs_1of4_mixed"}
    assert result["rows"][4]["speedup_vs_dense_winograd"] == 1.0  # capped and compared within its network
    with pytest.raises(SystemExit, match="fmnist-resnet8 srbs 0.25 False 4"):
        nb["_merge"](argparse.Namespace(merge=[a, b, b], out=str(out), quick=False))


def test_builds_on_a_changed_rtl_are_flagged(tmp_path):
    """A build records the digests of the RTL sources its design used (rtl.py); apply_rtl says whether
    those are the current ones (``rtl.current_rtl``), the table marks the rows where they are not
    (``rtl*``); builds recorded before fall back to the digest of all sources, and before that to git
    (hw/rtl unchanged since the build's commit)."""
    from winoforge.hw.rtl import RTL_DIR, rtl_file_digests, rtl_sources_digest

    mod = runpy.run_path(str(SCRIPT))
    digest = rtl_sources_digest()
    assert len(digest) == 16 and digest == rtl_sources_digest()
    assert mod["built_on_current_rtl"]({"rtl_digest": digest}) is True
    assert mod["built_on_current_rtl"]({"rtl_digest": "0" * 16}) is False
    assert mod["built_on_current_rtl"]({}) is None  # neither a digest nor a commit: unknown
    assert mod["built_on_current_rtl"]({"git_commit": "f" * 40}) is None  # git does not know the commit
    # a changed source changes the digest (the layer's module and the layers/ folder are both in it)
    assert (RTL_DIR / "winograd_srbs_layer.sv").is_file() and any((RTL_DIR / "layers").glob("*.sv"))
    # builds since record the digests of the sources their design used: only a change to one of those counts
    files = rtl_file_digests()
    assert "layers/winoforge_thresholds.sv" in files and "srbs_dot.sv" in files
    assert rtl_file_digests(["srbs_dot.sv"]) == {"srbs_dot.sv": files["srbs_dot.sv"]}
    used = {f: files[f] for f in ("srbs_dot.sv", "layers/winoforge_pool.sv")}
    assert mod["built_on_current_rtl"]({"rtl_files": used, "rtl_digest": "0" * 16}) is True  # others changed
    assert mod["built_on_current_rtl"]({"rtl_files": {**used, "srbs_dot.sv": "0" * 16}}) is False
    assert mod["built_on_current_rtl"]({"rtl_files": {**used, "gone.sv": "0" * 16}}) is False  # a removed source

    def row(fps, cycles):
        return {"network": "fmnist-vgg", "board": "PYNQ-Z2", "flow": "srbs", "density": 0.25, "sub_row": 8,
                "keep": 2, "mixed_precision": False, "mean_bits": 4.0, "fps": fps, "lut": 40_000.0, "ff": None,
                "bram": 50.0, "uram": 0, "dsp": 0, "max_cycles": cycles, "source": "estimate",
                "speedup_vs_dense_winograd": None, "speedup_vs_finn": None}

    rows = [row(4000.0, 25_000)]
    key = {"network": "fmnist-vgg", "flow": "srbs", "density": 0.25, "mixed_precision": False}
    for recorded, current in ((digest, True), ("0" * 16, False)):
        net = {"name": "fmnist-vgg-srbs_2of8", "cycles_per_frame_est": 25_000, "cycles_per_frame_sim": 25_000,
               "yosys_complete": True, "yosys": {"lut": 39_000, "ff": 22_000, "bram": 100, "dsp": 0}, "images": 200,
               "mismatches": 0, "row": key, "rtl_digest": recorded}
        mod["apply_rtl"](rows, [(mod["row_key"](key), net, "rtl_rows.json")])
        assert rows[0]["source"] == "rtl" and rows[0]["rtl"]["current_rtl"] is current
        line = [ln for ln in mod["table"](rows).splitlines() if ln.startswith("fmnist-vgg")][0]
        assert line.endswith("rtl*") != current


def test_equal_lut_bound_follows_the_dense_split():
    """The Amdahl-style bound on density 1/4 at dense Winograd's LUT: 4/c with no LUT outside the
    Winograd layers, 1 with all of it outside, and between them from the dense row's split; its
    ``c`` is the least LUT ratio srbs_equal_lut recorded for 1 of 4 at 4x the speed."""
    mod = runpy.run_path(str(SCRIPT))
    bound, c = mod["equal_lut_bound"], mod["SRBS_QUARTER_LUT_AT_4X"]
    assert bound({"lut_by_op_type": {"WinogradSRBS_rtl (dense)": 100}}) == pytest.approx(4 / c)
    assert bound({"lut_by_op_type": {"Thresholding_rtl": 100, "WinogradSRBS_rtl (dense)": 0}}) == pytest.approx(1.0)
    split = {"WinogradSRBS_rtl (dense)": 85, "MVAU_lut_rtl": 10, "Thresholding_rtl": 5}
    assert bound({"lut_by_op_type": split}) == pytest.approx(1 / (0.15 + 0.85 * c / 4))
    assert bound({"lut_by_op_type": {}}) is None
    recorded = json.loads((SCRIPT.parent / "results" / "srbs_equal_lut.json").read_text())
    ratios = [e["srbs_lut"] / e["dense_lut"] for e in recorded["subrow4_keep1_W4A4"]["equal_multipliers"]]
    assert round(min(ratios), 2) == c


def test_the_readme_table_is_the_recorded_rows():
    """README's table of the comparison is ``networks.py --markdown`` of the committed results (so a
    re-run or ``--apply-rtl`` that moves a figure fails here until the README follows), and it marks
    what it should: FF as a lower bound where FINN estimates none, ``!`` beyond the reference."""
    mod = runpy.run_path(str(SCRIPT))
    rows = json.loads((SCRIPT.parent / "results" / "networks.json").read_text())["rows"]
    table = mod["markdown_table"](rows)
    readme = (SCRIPT.parents[1] / "README.md").read_text()
    assert table in readme, "README's table differs from `python benchmarks/networks.py --markdown`"
    lines = table.splitlines()
    assert len(lines) == 2 + len(rows) and lines[0] == mod["MARKDOWN_HEAD"]
    partial = [r for r in rows if r["ff"] is None and r["fps"] is not None]
    assert sum("≥" in line for line in lines[2:]) == len(partial)
    over = [r for r in rows if r.get("within_reference") is False and r.get("speedup_vs_dense_winograd")]
    assert sum("x! |" in line for line in lines[2:]) == len(over)


def test_stale_builds_list_what_a_rebuild_round_takes(tmp_path, capsys):
    """``rtl.py --stale`` (``stale_builds``): the builds that ``rtl`` rows stand on and were built on a previous
    RTL, references first, each with the ``--rows`` spec that rebuilds it; a faster build of the row's flow that
    was over its reference by at most NEAR_MISS is listed too (a changed RTL may put it within), one further
    over or not bit-exact is not; a build of the current RTL is not."""
    from winoforge.hw.rtl import rtl_sources_digest

    mod = runpy.run_path(str(SCRIPT))
    current, old = rtl_sources_digest(), "0" * 16
    dense_key = {"network": "fmnist-vgg", "flow": "winograd_dense", "density": 1.0, "mixed_precision": False}
    srbs_key = {"network": "fmnist-vgg", "flow": "srbs", "density": 0.25, "mixed_precision": False,
                "sub_row": 4, "keep": 1}

    def net(name, key, cycles, lut, digest, mismatches=0):
        return {"name": name, "row": key, "cycles_per_frame_est": cycles, "cycles_per_frame_sim": cycles,
                "yosys_complete": True, "yosys": {"lut": lut, "ff": 1, "bram": 10, "dsp": 0}, "images": 200,
                "mismatches": mismatches, "rtl_digest": digest, "wall_s": {"total": 600.0}}

    nets = [net("fmnist-vgg-winograd_dense", dense_key, 32_000, 45_000, old),
            net("fmnist-vgg-srbs_1of4", srbs_key, 11_000, 44_000, current),
            net("fmnist-vgg-srbs_1of4@9155", srbs_key, 9_400, 47_000, old),      # 4.4 % over: a near miss
            net("fmnist-vgg-srbs_1of4@10159", srbs_key, 8_600, 50_000, old),     # 11 % over: not listed
            net("fmnist-vgg-srbs_1of4@9500", srbs_key, 9_000, 45_500, old, mismatches=3)]  # not bit-exact
    rtl = [(mod["row_key"](n["row"]), n, "benchmarks/results/rtl_rows.json") for n in nets]
    rows = [
        {"network": "fmnist-vgg", "flow": "srbs", "density": 0.25, "sub_row": 4, "keep": 1, "mixed_precision": False,
         "source": "rtl", "lut": 44_000, "rtl": {"network": "fmnist-vgg-srbs_1of4"}},
        {"network": "fmnist-vgg", "flow": "winograd_dense", "density": 1.0, "mixed_precision": False,
         "source": "rtl", "lut": 45_000, "rtl": {"network": "fmnist-vgg-winograd_dense"}},
        {"network": "fmnist-vgg", "flow": "finn", "density": 1.0, "mixed_precision": False, "source": "estimate",
         "lut": 46_000}]
    stale = mod["stale_builds"](rows, rtl)
    assert [e["build"] for e in stale] == ["fmnist-vgg-winograd_dense", "fmnist-vgg-srbs_1of4@9155"]
    assert [e["spec"] for e in stale] == ["fmnist-vgg:winograd_dense", "fmnist-vgg:srbs_1of4@10638"]
    assert stale[0]["rows"] == ["winograd_dense"] and "faster build" in stale[1]["rows"][0]
    assert not any(e["cifar"] for e in stale) and stale[0]["wall_s"] == 600.0
    # the row's own build on a previous RTL is listed before its faster near miss
    nets[1]["rtl_digest"] = old
    assert [e["build"] for e in mod["stale_builds"](rows, rtl)][1:] == ["fmnist-vgg-srbs_1of4",
                                                                          "fmnist-vgg-srbs_1of4@9155"]
    # rtl.py --stale prints them, each with the --rows command that rebuilds it into a work folder of its own
    (tmp_path / "networks.json").write_text(json.dumps({"rows": rows}))
    (tmp_path / "rtl_rows.json").write_text(json.dumps({"networks": nets}))
    bench = runpy.run_path(str(SCRIPT.parent / "rtl.py"))
    assert bench["_print_stale"](tmp_path) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("3 builds on a previous RTL")
    assert [line.split()[0] for line in out[1:4]] == ["fmnist-vgg-winograd_dense", "fmnist-vgg-srbs_1of4",
                                                      "fmnist-vgg-srbs_1of4@9155"]
    assert "10 min" in out[1] and "faster build" in out[3]
    assert out[4:] == [f"python benchmarks/rtl.py --rows fmnist-vgg:{spec} --images 200 --work build/rows_fmnist-vgg_{work}"
                       for spec, work in [("winograd_dense", "winograd_dense"), ("srbs_1of4", "srbs_1of4"),
                                          ("srbs_1of4@10638", "srbs_1of4_10638")]]
    for net_ in nets:
        net_["rtl_digest"] = current
    (tmp_path / "rtl_rows.json").write_text(json.dumps({"networks": nets}))
    assert bench["_print_stale"](tmp_path) == 0
    assert capsys.readouterr().out.strip() == "every rtl row stands on a build of the current RTL"


def test_a_build_is_of_a_previous_rtl_where_python_would_generate_its_layers_otherwise():
    """``built_on_current_rtl``: besides the digests of the SystemVerilog sources, a build's recorded
    WinogradSRBS layer parameters (``winograd_layers``) must be what the current ``layer_parameters``
    generates from the layer's attributes -- a rule of the Python generator (e.g. which ROMs are read
    ahead, ``ROM_PIPE``) changed since marks the build; one recorded without them is judged by its
    sources alone."""
    from winoforge.hw.rtl import rtl_file_digests
    from winoforge.hw.rtl.winograd_layer import layer_parameters
    from winoforge.hw.srbs_params import WinogradSRBSParams

    mod = runpy.run_path(str(SCRIPT.parent / "network_rows.py"))
    attrs = {"m": 2, "IFMChannels": 32, "OFMChannels": 32, "IFMDim": [28, 28], "Padding": 1, "SubRow": 4, "Keep": 1,
             "PE": 3, "SIMD": 32, "POS": 4, "ISIMD": 4, "inputDataType": "UINT4", "weightDataType": "INT4",
             "outputDataType": "INT16", "resType": "lut", "ram_style": "block"}
    rtl = layer_parameters(WinogradSRBSParams.from_attributes(attrs))
    assert rtl["ROM_PIPE"] == 1  # a block-RAM ROM: read one issue ahead
    files = dict(list(rtl_file_digests().items())[:2])
    net = {"rtl_files": files, "winograd_layers": {"WinogradSRBS_rtl_1": {"attributes": attrs, "rtl": rtl}}}
    assert mod["layer_parameters_current"](net) is True and mod["built_on_current_rtl"](net) is True
    older = {k: v for k, v in rtl.items() if k != "ROM_PIPE"}  # generated before the read-ahead rule
    net["winograd_layers"]["WinogradSRBS_rtl_1"]["rtl"] = older
    assert mod["layer_parameters_current"](net) is False and mod["built_on_current_rtl"](net) is False
    del net["winograd_layers"]
    assert mod["layer_parameters_current"](net) is None and mod["built_on_current_rtl"](net) is True
    net["rtl_files"] = {next(iter(files)): "0" * 16}  # a source changed: stale whatever the parameters
    assert mod["built_on_current_rtl"](net) is False


def test_rebuild_queue_runs_argument_lists_at_most_jobs_at_a_time(tmp_path):
    """``rtl.py --rebuild-stale``'s queue (``run_queue``): every task runs (argument lists, no shell), in
    order, never more than ``jobs`` at once, each one's output in its log; a failing task is reported by its
    exit status and does not stop the rest; ``jobs`` must be a positive integer."""
    import sys

    bench = runpy.run_path(str(SCRIPT.parent / "rtl.py"))
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    code = ("import sys, time, pathlib; d = pathlib.Path(sys.argv[1]); n = sys.argv[2]; "
            "(d / (n + '.start')).write_text(repr(time.monotonic())); time.sleep(0.6); print('ran', n); "
            "(d / (n + '.end')).write_text(repr(time.monotonic())); sys.exit(int(sys.argv[3]))")
    tasks = [(f"t{i}", [sys.executable, "-c", code, str(stamps), f"t{i}", str(rc)], tmp_path / "logs" / f"t{i}.log")
             for i, rc in enumerate([0, 3, 0, 0])]
    status = bench["run_queue"](tasks, 2, poll_s=0.05)
    assert status == {"t0": 0, "t1": 3, "t2": 0, "t3": 0}
    spans = [tuple(float((stamps / f"t{i}.{end}").read_text()) for end in ("start", "end")) for i in range(4)]
    for t in sorted(s for s, _ in spans) + sorted(e - 1e-6 for _, e in spans):  # concurrency at every start / end
        assert sum(s <= t < e for s, e in spans) <= 2
    assert max(s for s, _ in spans[:2]) < min(e for _, e in spans[:2])  # the first two did run side by side
    assert spans[0][0] < spans[2][0] and spans[1][0] < spans[3][0]  # in order
    assert all((tmp_path / "logs" / f"t{i}.log").read_text().strip() == f"ran t{i}" for i in range(4))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="jobs must be a positive integer"):
            bench["run_queue"](tasks, bad)


def test_step_points_place_each_folding_against_the_dense_design(tmp_path):
    """``networks_steps.png``'s data (``step_points``): every SRBS flow's estimated folding steps (grid points that
    fit the board; failed ones left out) and its bit-exact RTL builds (Verilator's cycles at 100 MHz, Yosys's LUT;
    marked built on the current RTL or not; matched to the row by its key), and the row itself, each as (LUT, FPS)
    over the dense Winograd row's final figures; a network without a dense row has none."""
    from winoforge.hw.rtl import rtl_sources_digest

    mod = runpy.run_path(str(SCRIPT))
    rows = [
        {"network": "n", "board": "PYNQ-Z2", "flow": "winograd_dense", "density": 1.0, "mixed_precision": False,
         "fps": 1000.0, "lut": 40_000, "source": "rtl"},
        {"network": "n", "board": "PYNQ-Z2", "flow": "srbs", "density": 0.25, "sub_row": 4, "keep": 1,
         "mixed_precision": False, "fps": 2500.0, "lut": 30_000, "source": "rtl"},
        {"network": "n", "board": "PYNQ-Z2", "flow": "srbs", "density": 0.25, "sub_row": 4, "keep": 1,
         "mixed_precision": True, "fps": None, "lut": None, "source": "estimate"},
        {"network": "m", "board": "ZCU104", "flow": "srbs", "density": 0.25, "sub_row": 4, "keep": 1,
         "mixed_precision": False, "fps": 2500.0, "lut": 30_000, "source": "estimate"}]
    grid = [{"target_fps": 500, "fps": 500.0, "lut": 20_000, "fits": True},
            {"target_fps": 3000, "fps": 3200.0, "lut": 44_000, "fits": True},
            {"target_fps": 9000, "error": "no folding"},
            {"target_fps": 8000, "fps": 8000.0, "lut": 90_000, "fits": False}]
    result = {"rows": rows, "networks": {"n": {"flows": {"srbs_1of4": {"grid_points": grid}}}}}

    def net(name, cycles, lut, digest, mismatches=0):
        return {"name": name, "cycles_per_frame_sim": cycles, "yosys": {"lut": lut}, "mismatches": mismatches,
                "rtl_digest": digest}

    uniform, mixed = mod["row_key"](rows[1]), mod["row_key"](rows[2])
    rtl = [(uniform, net("n-srbs_1of4", 40_000, 30_000, rtl_sources_digest()), "rtl_rows.json"),
           (uniform, net("n-srbs_1of4@3000", 25_000, 42_000, "0" * 16), "rtl_rows.json"),
           (uniform, net("n-srbs_1of4@9000", 10_000, 41_000, rtl_sources_digest(), mismatches=2), "rtl_rows.json"),
           (mixed, net("n-srbs_1of4_mixed", 20_000, 20_000, rtl_sources_digest()), "rtl_rows.json")]
    steps = mod["step_points"](result, rtl)
    assert list(steps) == ["n"] and steps["n"]["dense"] == {"fps": 1000.0, "lut": 40_000, "source": "rtl"}
    f = steps["n"]["flows"]["srbs_1of4"]
    assert f["estimated"] == [(0.5, 0.5), (1.1, 3.2)]
    assert f["built"] == [(0.75, 2.5, True), (1.05, 4.0, False)]
    assert f["row"] == (0.75, 2.5, "rtl")
    assert steps["n"]["flows"]["srbs_1of4_mixed"] == {"estimated": [], "built": [(0.5, 5.0, True)], "row": None}
    mod["plot_steps"](result, rtl, tmp_path / "steps.png")
    assert (tmp_path / "steps.png").stat().st_size > 10_000


def test_a_stale_build_is_rebuilt_at_the_folding_it_was_built_at():
    """``rebuild_spec``: a build of a row's own folding is rebuilt by ``NETWORK:FLOW`` only while that is still
    the folding the row's search takes; where the search has moved since (its ``estimate``), and for every
    candidate, ``NETWORK:FLOW@FPS`` with the FPS whose cycle budget is the least that holds the build's
    cycles (``folding_fps``) -- not the target it was first built at, which may take another folding now --
    else ``--rows`` would build another folding under the build's name."""
    mod = runpy.run_path(str(SCRIPT.parent / "network_rows.py"))
    row = {"network": "fmnist-resnet8", "flow": "srbs", "target_fps": 12800, "max_cycles": 6272,
           "estimate": {"target_fps": 18102, "max_cycles": 4704}}
    own = {"name": "fmnist-resnet8-srbs_1of4_mixed", "row": {"target_fps": 12800, "max_cycles": 6272}}
    assert mod["folding_fps"](6272) == 15943 and int(100e6 / 15943) >= 6272 > int(100e6 / 15944)
    assert mod["rebuild_spec"](row, own) == "fmnist-resnet8:srbs_1of4_mixed@15943"
    assert mod["rebuild_spec"]({**row, "estimate": {"target_fps": 12800, "max_cycles": 6272}}, own) == \
        "fmnist-resnet8:srbs_1of4_mixed"
    assert mod["rebuild_spec"]({k: v for k, v in row.items() if k != "estimate"}, own) == \
        "fmnist-resnet8:srbs_1of4_mixed"  # an estimate row: its own fields are the search's
    cand = {"name": "fmnist-resnet8-srbs_1of4_mixed@18102", "row": {"target_fps": 18102, "max_cycles": 4704}}
    assert mod["rebuild_spec"](row, cand) == "fmnist-resnet8:srbs_1of4_mixed@21258"
    vgg = {"network": "fmnist-vgg", "flow": "srbs", "target_fps": 9051, "max_cycles": 11008}
    old_cand = {"name": "fmnist-vgg-srbs_4of8@2016", "row": {"target_fps": 2016, "max_cycles": 32768}}
    assert mod["rebuild_spec"](vgg, old_cand) == "fmnist-vgg:srbs_4of8@3051"
    assert mod["rebuild_spec"](row, {"name": "fmnist-resnet8-srbs_1of4_mixed"}) == "fmnist-resnet8:srbs_1of4_mixed"


def test_compare_two_builds_part_by_part(tmp_path, capsys):
    """``rtl.py --compare A B`` (``network_rows.compare_builds``): each WinogradSRBS layer a part of its own
    with its pattern, cycles and multipliers (PE * POS * SIMD * Keep / SubRow, from the recorded RTL
    parameters), other layers summed by op type, FIFOs and converters; the total is the parts' sum and
    each delta B - A, exactly; an unknown build name is refused naming the nearest recorded ones."""
    def winograd(pe, pos, simd, subrow, keep):
        return {"rtl": {"PE": pe, "POS": pos, "SIMD": simd, "SUBROW": subrow, "KEEP": keep, "HAS_IDX": int(subrow > 1)}}

    def layer(name, op, lut, cycles):
        return {"name": name, "op_type": op, "yosys": {"lut": lut}, "cycles_sim": cycles}

    a = {"name": "net-dense", "cycles_per_frame_sim": 400.0,
         "layers": [layer("Thresholding_rtl_0", "Thresholding_rtl", 10, 100.0),
                    layer("WinogradSRBS_rtl_0", "WinogradSRBS_rtl", 1000, 400.0),
                    layer("Thresholding_rtl_1", "Thresholding_rtl", 20, 100.0)],
         "winograd_layers": {"WinogradSRBS_rtl_0": winograd(1, 4, 8, 1, 1)},
         "fifos": [{"yosys": {"lut": 5}}, {"yosys": {"lut": 7}}], "converters": []}
    b = {"name": "net-srbs_1of4", "cycles_per_frame_sim": 100.0,
         "layers": [layer("Thresholding_rtl_0", "Thresholding_rtl", 12, 100.0),
                    layer("WinogradSRBS_rtl_0", "WinogradSRBS_rtl", 900, 100.0),
                    layer("Thresholding_rtl_1", "Thresholding_rtl", 25, 100.0)],
         "winograd_layers": {"WinogradSRBS_rtl_0": winograd(2, 4, 8, 4, 1)},
         "fifos": [{"yosys": {"lut": 6}}], "converters": [{"yosys": {"lut": 30}}]}
    mod = runpy.run_path(str(SCRIPT.parent / "network_rows.py"))
    parts = {p["part"]: p for p in mod["compare_builds"](a, b)}
    assert list(parts) == ["Thresholding_rtl", "WinogradSRBS_rtl_0", "FIFOs", "width converters", "total"]
    assert parts["Thresholding_rtl"]["lut"] == (30, 37) and parts["Thresholding_rtl"]["count"] == (2, 2)
    w = parts["WinogradSRBS_rtl_0"]
    assert (w["lut"], w["delta"], w["cycles"], w["pattern"], w["multipliers"]) == (
        (1000, 900), -100, (400.0, 100.0), ("dense", "1of4"), (32, 16))
    assert parts["FIFOs"]["lut"] == (12, 6) and parts["width converters"]["lut"] == (0, 30)
    assert parts["width converters"]["count"] == (0, 1)
    total = parts["total"]
    assert total["lut"] == (1042, 973) and total["delta"] == -69 and total["multipliers"] == (32, 16)
    assert total["cycles"] == (400.0, 100.0)
    # a build recorded before its WinogradSRBS parameters: pattern unknown, no multipliers
    old = {**b, "winograd_layers": None}
    w = next(p for p in mod["compare_builds"](a, old) if p["part"] == "WinogradSRBS_rtl_0")
    assert w["pattern"] == ("dense", "?") and w["multipliers"] == (32, None)
    assert mod["compare_builds"](a, old)[-1]["multipliers"] == (32, None)  # a total it cannot know
    # the command: the table from the recorded files, or a refusal naming what is recorded
    (tmp_path / "rtl_rows.json").write_text(json.dumps({"networks": [a, b]}))
    bench = runpy.run_path(str(SCRIPT.parent / "rtl.py"))
    assert bench["_print_compare"](["net-dense", "net-srbs_1of4"], tmp_path) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("A = net-dense, B = net-srbs_1of4")
    row = next(line for line in out if line.startswith("WinogradSRBS_rtl_0")).split()
    assert row[1:] == ["dense", "->", "1of4", "1,000", "900", "-100", "400", "100", "32", "16"]
    assert out[-1].split() == ["total", "1,042", "973", "-69", "400", "100", "32", "16"]
    with pytest.raises(SystemExit, match="no recorded build named 'net-srbs_1of8'.*nearest: net-srbs_1of4"):
        bench["_print_compare"](["net-dense", "net-srbs_1of8"], tmp_path)
