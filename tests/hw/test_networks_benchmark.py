"""The networks benchmark (issue 12, "The comparison the paper makes") in quick mode: a tiny VGG
through all five flows (stock FINN, dense Winograd, SRBS 1/2, 1/4, 1/4 mixed precision), real FINN
builds on a coarse grid; the rows follow the promised schema and the speed-ups are computed from them."""

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
    assert [(r["flow"], r["density"], r["mixed_precision"]) for r in rows] == [
        ("finn", 1.0, False), ("winograd_dense", 1.0, False), ("srbs", 0.5, False), ("srbs", 0.25, False),
        ("srbs", 0.25, True)]
    for r in rows:
        assert KEYS <= set(r), KEYS - set(r)
        assert r["source"] in ("rtl", "estimate") and r["board"] == "PYNQ-Z2"
        assert r["fps"] is not None, r.get("note")  # the tiny network fits PYNQ-Z2 in every flow
        assert r["fps"] > 0 and r["lut"] > 0 and r["bram"] >= 0 and r["dsp"] >= 0
        assert isinstance(r["saturated"], bool)
    uniform = [r for r in rows if not r["mixed_precision"]]
    assert all(r["mean_bits"] == pytest.approx(4.0) for r in uniform if r["flow"] != "finn")
    mixed = rows[-1]
    assert mixed["mean_bits"] < 4.0 and mixed["mixed"]["bops"] <= mixed["mixed"]["budget_bops"]
    assert out.with_suffix(".png").is_file()


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
    quarter = rows[3]
    assert target["density_quarter_speedup_vs_dense"] == quarter["speedup_vs_dense_winograd"]
    assert target["met"] == (quarter["speedup_vs_dense_winograd"] >= 3.0 and quarter["lut"] <= dense["lut"]
                             and quarter["dsp"] <= dense["dsp"])
    # every folding the search built is recorded, the chosen one among them
    for label, flow in result["networks"]["tiny-vgg"]["flows"].items():
        assert flow["export_check"]["exact"], label
        assert flow["grid_points"]


def test_rows_take_the_rtl_figures_where_bench_rtl_built_them():
    """apply_rtl: the row bench-rtl built at the same folding takes the simulated FPS and Yosys counts
    (source "rtl", estimates kept); another folding or flow stays an estimate; speed-ups follow."""
    import sys

    mod = runpy.run_path(str(SCRIPT))
    sys.path.insert(0, str(SCRIPT.parent))
    from hw_estimates import WIDTHS

    assert WIDTHS == mod["VGG_PYNQ"]  # bench-rtl's benchmark network is this benchmark's fmnist-vgg

    def row(flow, density, fps, cycles):
        return {"network": "fmnist-vgg", "flow": flow, "density": density, "mixed_precision": False, "fps": fps,
                "lut": 40_000.0, "ff": None, "bram": 50.0, "dsp": 0, "max_cycles": cycles, "source": "estimate"}

    rows = [row("winograd_dense", 1.0, 2000.0, 50_000), row("srbs", 0.25, 4000.0, 25_000),
            row("srbs", 0.5, 2000.0, 50_000)]
    rtl = {"networks": [{"name": "pynq-z2-benchmark", "cycles_per_frame_est": 25_000, "cycles_per_frame_sim": 25_100,
                         "yosys": {"lut": 41_000, "ff": 22_000, "bram": 104, "dsp": 0}, "yosys_complete": True,
                         "images": 1000, "mismatches": 0}]}
    mod["apply_rtl"](rows, rtl)
    mod["apply_rtl"](rows, rtl)  # idempotent
    dense, quarter, half = rows
    assert quarter["source"] == "rtl" and quarter["fps"] == 100e6 / 25_100
    assert (quarter["lut"], quarter["ff"], quarter["bram"]) == (41_000, 22_000, 52.0)
    assert quarter["estimate"]["fps"] == 4000.0 and quarter["rtl"]["mismatches"] == 0
    assert dense["source"] == half["source"] == "estimate" and "rtl" not in half
    mod["add_speedups"](rows)
    assert quarter["speedup_vs_dense_winograd"] == quarter["fps"] / 2000.0
    rtl["networks"][0]["cycles_per_frame_est"] = 12_500  # bench-rtl at another folding: no match
    fresh = [row("srbs", 0.25, 4000.0, 25_000)]
    mod["apply_rtl"](fresh, rtl)
    assert fresh[0]["source"] == "estimate"
