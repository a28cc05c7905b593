"""The equal-LUT layer sweep (benchmarks/srbs_equal_lut.py): its records are what they claim."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "srbs_equal_lut.py"


def test_equal_lut_sweep_records_consistent_foldings(tmp_path):
    pytest.importorskip("qonnx")
    mod = runpy.run_path(str(SCRIPT))
    main = mod["main"]
    main.__globals__["RESULTS"] = tmp_path
    assert main() == 0
    result = json.loads((tmp_path / "srbs_equal_lut.json").read_text())
    for width in ("W4A4", "W8A8"):
        rec = result["widths"][width]
        # density 1/4: a quarter of the multiplies, so the fewest multipliers for a cycle target
        # of the SRBS layer never exceed the dense layer's
        dense = {p["cycles"]: p for p in rec["dense"]}
        for p in rec["srbs"]:
            if p["cycles"] in dense:
                assert p["multipliers"] <= dense[p["cycles"]]["multipliers"]
        for e in rec["equal_lut"]:
            assert e["srbs_lut"] <= e["lut_budget"]
            assert e["speedup"] == e["dense_cycles"] / e["srbs_cycles"]
            # the fastest within the budget: no recorded SRBS folding that fits is faster
            assert all(p["cycles"] >= e["srbs_cycles"] for p in rec["srbs"] if p["lut"] <= e["lut_budget"])
        for e in rec["equal_multipliers"]:
            assert e["srbs_lut"] > e["dense_lut"]  # 4x the speed is never free


def test_shorter_sub_row_record_is_consistent():
    """SubRow 4 Keep 1 (same density, 4:1 index muxes): its equal-LUT foldings fit their budgets,
    and at equal multipliers (4x the dense speed) it costs less LUT than SubRow 8 Keep 2."""
    result = json.loads((SCRIPT.parent / "results" / "srbs_equal_lut.json").read_text())
    rec = result["subrow4_keep1_W4A4"]
    assert rec["equal_lut"] and rec["equal_multipliers"]
    for e in rec["equal_lut"]:
        assert e["srbs_lut"] <= e["lut_budget"] and e["speedup"] == e["dense_cycles"] / e["srbs_cycles"]
    long = {e["multipliers"]: e["srbs_lut"] for e in result["widths"]["W4A4"]["equal_multipliers"]}
    for e in rec["equal_multipliers"]:
        if e["multipliers"] in long:
            assert e["srbs_lut"] < long[e["multipliers"]]
