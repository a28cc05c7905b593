"""benchmarks/runtime_speed.py runs, checks equality with FINN on every case, and writes its results."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "runtime_speed.py"


def test_runtime_benchmark_schema(tmp_path, fmnist):
    spec = importlib.util.spec_from_file_location("runtime_speed", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--repeats", "1", "--images", "8", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "runtime_speed.json").read_text()) == json.loads(json.dumps(result))
    assert (tmp_path / "runtime_speed.png").stat().st_size > 5_000
    cases = [r["case"] for r in result["results"]]
    assert len(cases) == 7 and sum("ratio" in r for r in result["results"]) == 6
    assert all(r["ratio"] > 0 for r in result["results"] if "ratio" in r)
    assert result["results"][-1]["images_per_s"] > 0
