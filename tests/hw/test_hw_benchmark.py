"""The hardware benchmark's quick mode runs and writes its results in the promised schema."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "hw_estimates.py"


def test_quick_benchmark_schema(tmp_path, fmnist):
    out = tmp_path / "hw.json"
    main = runpy.run_path(str(SCRIPT))["main"]
    assert main(["--quick", "--work", str(tmp_path / "work"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {"board", "density", "network", "layers"} <= set(result)
    assert result["density"] == 0.25
    for flow in ("winograd_srbs", "baseline"):
        if result["network"][flow] is not None:
            assert {"fps", "lut", "ff", "bram", "dsp"} <= set(result["network"][flow])
    assert all({"name", "cycles", "ideal_cycles", "multipliers"} <= set(row) for row in result["layers"])
    assert all(row["cycles"] >= row["ideal_cycles"] for row in result["layers"])
    assert all(step["verified"] for flow in result["front_verification"].values() for step in flow)
    assert out.with_suffix(".png").is_file()
