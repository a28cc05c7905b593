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
