"""benchmarks/distill_fmnist.py in quick mode on a little synthetic data: every run of the
protocol, the JSON schema, the plot, and a rerun that reuses the finished runs."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "distill_fmnist.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("distill_fmnist", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_benchmark_schema_plot_and_reuse(bench, tmp_path, capsys):
    args = ["--quick", "--epochs", "0.5", "--dataset", "synthetic", "--widths", "8,M,16", "--train-subset", "64",
            "--test-subset", "32", "--work-dir", str(tmp_path / "work"), "--out", str(tmp_path / "out"),
            "--no-progress", "--set", "mixed_precision.candidates=[[3, 3], [4, 4]]", "--set", "data.batch_size=32"]
    result = bench.main(args)
    path = tmp_path / "out" / "distill_fmnist_quick_synthetic.json"
    assert json.loads(path.read_text()) == json.loads(json.dumps(result))
    assert (tmp_path / "out" / "distill_fmnist_quick_synthetic.png").stat().st_size > 10_000
    assert result["protocol"] == "quick" and 0 <= result["teacher_acc"] <= 1
    runs = result["runs"]
    assert {(r["name"], r["density"], r["kd"]) for r in runs} == {
        (name, density, kd) for name, density in (("fp32_dense", 1.0), ("w4a4_d0.5", 0.5), ("w4a4_d0.25", 0.25))
        for kd in (True, False)}
    for r in runs:
        assert {"name", "density", "mean_bits", "kd", "seed", "acc", "fp32_dense_acc", "wall_s", "config"} <= set(r)
        assert 0 <= r["acc"] <= 1 and r["seed"] == 0 and r["wall_s"] > 0 and not r["reused"]
        fp32 = next(f for f in runs if f["name"] == "fp32_dense" and f["kd"] == r["kd"])
        assert r["fp32_dense_acc"] == fp32["acc"]
        assert r["config"]["optim"]["epochs"] == 1  # the quick schedule (2 epochs) scaled by --epochs
        if r["name"] == "fp32_dense":
            assert r["mean_bits"] == 32.0 and r["config"]["student"]["precision"] == "fp32"
        else:
            assert r["mean_bits"] <= 4.0 and r["config"]["student"]["layer_bits"]
            assert r["config"]["prune"]["keep"] == {0.5: 4, 0.25: 2}[r["density"]]
        assert bool(r["config"]["teachers"]) == r["kd"] == r["config"]["init_from_teacher"]
    # the run without KD trains the widths chosen for the run with KD
    for density in (0.5, 0.25):
        kd, plain = (next(r for r in runs if r["density"] == density and r["kd"] == k) for k in (True, False))
        assert plain["config"]["student"]["layer_bits"] == kd["config"]["student"]["layer_bits"]
        assert plain["config"]["distill"]["kd"] == "none" and not plain["config"]["mixed_precision"]["enabled"]
    status = {t["target"]: t["status"] for t in result["targets"]}
    assert all(s == "not_measured" for name, s in status.items() if "mean bits" not in name)  # quick: no claims
    assert status["every W4A4 run has mean bits <= 4.0"] == "pass"
    gain = next(t for t in result["targets"] if "KD gain" in t["target"])
    assert gain["value"] is None and "needs 3 seeds" in gain["reason"]
    assert {"cpu", "torch", "device"} <= set(result["machine"]) and result["teacher"]["config"]["arch"] == "vgg"
    assert all(math.isfinite(s["acc_mean"]) for s in result["summary"])
    # a rerun reuses every finished run: same accuracies, nothing trained again
    again = bench.main(args)
    assert all(r["reused"] for r in again["runs"]) and again["teacher"]["reused"]
    assert [r["acc"] for r in again["runs"]] == [r["acc"] for r in runs]
    assert "(reused)" in capsys.readouterr().out


def test_targets_are_claimed_only_from_runs_that_measured_them(bench):
    def row(name, density, kd, seed, acc):
        return {"name": name, "density": density, "kd": kd, "seed": seed, "acc": acc, "mean_bits": 4.0 if density < 1
                else 32.0, "fp32_dense_acc": None}

    runs = []
    for seed in (0, 1, 2):
        runs += [row("fp32_dense", 1.0, True, seed, 0.940), row("fp32_dense", 1.0, False, seed, 0.935),
                 row("w4a4_d0.5", 0.5, True, seed, 0.937), row("w4a4_d0.5", 0.5, False, seed, 0.930),
                 row("w4a4_d0.25", 0.25, True, seed, 0.934), row("w4a4_d0.25", 0.25, False, seed, 0.921)]
    status = {t["target"]: (t["status"], t["value"]) for t in bench.evaluate_targets(0.945, runs, quick=False)}
    assert status["teacher_acc >= 0.94"] == ("pass", 0.945)
    assert status["w4a4_d0.5 KD acc (mean over seeds) >= 0.935"][0] == "pass"
    assert status["w4a4_d0.25 KD within 0.005 of the FP32 dense KD student (mean over seeds)"][0] == "fail"
    assert status["w4a4_d0.25 KD gain (mean over 3 seeds) >= +0.01"][0] == "pass"
    two_seeds = [r for r in runs if r["seed"] < 2]
    gain = {t["target"]: t for t in bench.evaluate_targets(0.945, two_seeds, quick=False)}
    assert gain["w4a4_d0.25 KD gain (mean over 3 seeds) >= +0.01"]["status"] == "not_measured"
    only_fp32 = [r for r in runs if r["name"] == "fp32_dense"]
    missing = {t["target"]: t["status"] for t in bench.evaluate_targets(0.945, only_fp32, quick=False)}
    assert missing["w4a4_d0.5 KD acc (mean over seeds) >= 0.935"] == "not_measured"
    assert missing["every W4A4 run has mean bits <= 4.0"] == "not_measured"


def test_teacher_only_measures_the_teacher_and_claims_nothing_else(bench, tmp_path):
    args = ["--teacher-only", "--quick", "--dataset", "synthetic", "--widths", "8,M,16", "--train-subset", "64",
            "--test-subset", "32", "--work-dir", str(tmp_path / "work"), "--out", str(tmp_path / "out"),
            "--no-progress", "--set", "data.batch_size=32"]
    result = bench.main(args)
    stem = tmp_path / "out" / "distill_fmnist_quick_synthetic_teacher_only"
    assert json.loads(stem.with_suffix(".json").read_text()) == json.loads(json.dumps(result))
    assert stem.with_suffix(".png").stat().st_size > 10_000
    assert result["runs"] == [] and result["protocol"] == "quick"
    curve = result["teacher"]["curve"]
    assert [c["epoch"] for c in curve] == [1, 2] and curve[-1]["test_acc"] == result["teacher_acc"]
    assert all(t["status"] == "not_measured" for t in result["targets"])
    assert not (tmp_path / "out" / "distill_fmnist_quick_synthetic.json").exists()  # a full result is never overwritten


def test_protocol_names_what_differs_from_the_full_schedule(bench):
    parse = bench.build_parser().parse_args
    assert bench.protocol(parse([])) == "full"
    assert bench.protocol(parse(["--epochs", "0.5", "--teacher-only"])) == "scaled: epochs x0.5, teacher only"
    assert bench.protocol(parse(["--test-subset", "100"])) == "scaled: test_subset 100"
