"""benchmarks/distill_fmnist.py (the accuracy protocol) in quick mode on a little synthetic
data: every run of the protocol, parallel jobs, the JSON schema, the plot, a rerun that
reuses the finished runs, the time-budget planner and the deadline."""

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "distill_fmnist.py"
TINY = ["--quick", "--dataset", "synthetic", "--widths", "8,8,M,16,16,M", "--train-subset", "64",
        "--test-subset", "32", "--no-progress", "--set", "mixed_precision.candidates=[[3, 3], [4, 4]]",
        "--set", "data.batch_size=32"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("distill_fmnist", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["distill_fmnist"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


EXPECTED = {(name, density, kd, "po2") for name, density in (("fp32_dense", 1.0), ("w4a4_d0.5", 0.5),
                                                             ("w4a4_d0.25", 0.25)) for kd in (True, False)} | {
    ("w4a4_dense", 1.0, True, "po2"), ("mixed_d0.25_b4", 0.25, True, "po2"), ("mixed_d0.25_b3", 0.25, True, "po2"),
    ("w4a4_d0.25", 0.25, True, "float")}


def test_quick_protocol_schema_plot_and_reuse(bench, tmp_path, capsys):
    args = TINY + ["--epochs", "0.5", "--jobs", "2", "--out-dir", str(tmp_path / "p")]
    result = bench.main(args)
    path = tmp_path / "p" / "distill_fmnist_quick_synthetic.json"
    assert json.loads(path.read_text()) == json.loads(json.dumps(result))
    assert (tmp_path / "p" / "distill_fmnist_quick_synthetic.png").stat().st_size > 10_000
    assert result["protocol"] == "quick" and 0 <= result["teacher_acc"] <= 1 and result["jobs"] == 2
    assert result["not_finished"] == []
    runs = result["runs"]
    assert {(r["name"], r["density"], r["kd"], r["scales"]) for r in runs} == EXPECTED
    for r in runs:
        assert {"name", "network", "density", "mean_bits", "kd", "seed", "acc", "fp32_dense_acc", "wall_s",
                "config", "curve"} <= set(r)
        assert r["network"] == "pynqz2" and r["seed"] == 0 and 0 <= r["acc"] <= 1 and r["wall_s"] > 0
        # recorded relative to the JSON's folder (outside the repository), never as this machine's path
        assert not r["reused"] and (tmp_path / "p" / r["run_dir"]).parent == tmp_path / "p" / "runs"
        fp32 = next(f for f in runs if f["name"] == "fp32_dense" and f["kd"] == r["kd"])
        assert r["fp32_dense_acc"] == fp32["acc"]
        cfg = r["config"]
        assert cfg["optim"]["epochs"] == 1  # the quick schedule (2 epochs) scaled by --epochs
        assert cfg["student"]["widths"] == [4, 4, "M", 8, 8, "M"]  # the PYNQ-Z2 network: half the teacher's
        assert bool(cfg["teachers"]) == r["kd"] and not cfg["init_from_teacher"]  # narrower than the teacher
        assert (cfg["student"]["weight_quant"], cfg["student"]["act_quant"]) == ((r["scales"],) * 2)
        if r["name"] == "fp32_dense":
            assert r["mean_bits"] == 32.0 and cfg["student"]["precision"] == "fp32" and cfg["prune"]["keep"] is None
        elif r["name"].startswith("mixed"):
            assert cfg["mixed_precision"]["enabled"] and r["mean_bits"] <= r["mean_bits_budget"]
            # measured on the FP32 twin of the same seed (the teacher is wider)
            twin = next(f for f in runs if f["name"] == "fp32_dense" and not f["kd"])
            assert cfg["mixed_precision"]["init_run"] == twin["run_dir"]
        else:
            assert r["mean_bits"] == 4.0 and not cfg["mixed_precision"]["enabled"]
            assert cfg["prune"]["keep"] == {1.0: None, 0.5: 4, 0.25: 2}[r["density"]]
    status = {t["target"]: t["status"] for t in result["targets"]}
    assert all(s == "not_measured" for name, s in status.items() if "mean bits" not in name)  # quick: no claims
    assert status["every W4A4 run has mean bits <= 4.0"] == "pass"
    assert set(result["reports"]["pynqz2"]) >= {"mixed_d0.25_b3_acc", "float_scales_acc", "po2_scales_acc_same_seed"}
    assert {"cpu", "torch", "device"} <= set(result["machine"]) and result["teacher"]["config"]["arch"] == "vgg"
    assert all(math.isfinite(s["acc_mean"]) for s in result["summary"])
    # a rerun reuses every finished run: same accuracies, nothing trained again
    again = bench.main(args)
    assert all(r["reused"] for r in again["runs"]) and again["teacher"]["reused"]
    assert sorted(r["acc"] for r in again["runs"]) == sorted(r["acc"] for r in runs)


def test_deadline_stops_the_protocol_and_reports_what_did_not_finish(bench, tmp_path):
    result = bench.main(TINY + ["--epochs", "0.5", "--jobs", "1", "--deadline-s", "1", "--out-dir", str(tmp_path)])
    assert result["runs"] == [] and result["teacher"] is None
    assert {m["status"] for m in result["not_finished"]} == {"not_run"}
    assert any("deadline" in m["reason"] for m in result["not_finished"])
    assert all(t["status"] == "not_measured" for t in result["targets"] if "mean bits" not in t["target"])


def test_makespan_and_the_budget_choose_the_epochs(bench):
    args = bench.build_parser().parse_args(["--jobs", "4"])
    args.seeds, args.networks, args.work_dir, args.device_resident = [0, 1, 2], ["pynqz2", "wide"], Path("w"), True
    tasks = bench.plan(args, 1.0)
    assert len(tasks) == 1 + 2 * (3 * 9 + 1)
    keys = {t.key for t in tasks}
    assert all(set(t.needs) <= keys for t in tasks)
    kd = [t for t in tasks if t.row.get("kd")]
    assert kd and all("teacher" in t.needs for t in kd)
    # the PYNQ-Z2 mixed runs need their FP32 twin (the sensitivity is measured on it)
    mixed = [t for t in tasks if t.row.get("name", "").startswith("mixed") and t.row["network"] == "pynqz2"]
    assert mixed and all(any(n.startswith("pynqz2-fp32_dense-nokd") for n in t.needs) for t in mixed)
    # list scheduling: never shorter than the work over the slots, nor than the critical path
    rates = {"quant": 20.0, "fp32": 60.0}
    seconds = {t.key: bench.estimate_seconds(t, rates) for t in tasks}
    span = bench.makespan(tasks, 4, seconds)
    assert span >= sum(seconds.values()) / 4 - 1e-9
    assert span >= seconds["teacher"] + max(seconds[t.key] for t in kd) - 1e-9
    assert bench.makespan(tasks, 1, seconds) == pytest.approx(sum(seconds.values()))
    factor, planned = bench.choose_factor(args, rates, span * 0.5)
    assert factor < 1.0 and planned <= span * 0.5
    assert bench.choose_factor(args, rates, span * 2)[0] == 1.0


def test_targets_are_claimed_only_from_runs_that_measured_them(bench):
    def row(name, density, kd, seed, acc, fp32=None, network="pynqz2", scales="po2"):
        return {"name": name, "network": network, "scales": scales, "density": density, "kd": kd, "seed": seed,
                "acc": acc, "mean_bits": 4.0 if density < 1 else 32.0, "fp32_dense_acc": fp32}

    runs = []
    for seed in (0, 1, 2):
        runs += [row("fp32_dense", 1.0, True, seed, 0.940), row("fp32_dense", 1.0, False, seed, 0.935),
                 row("w4a4_d0.5", 0.5, True, seed, 0.937, 0.940), row("w4a4_d0.5", 0.5, False, seed, 0.930, 0.935),
                 row("w4a4_d0.25", 0.25, True, seed, 0.934, 0.940), row("w4a4_d0.25", 0.25, False, seed, 0.921, 0.935),
                 row("w4a4_d0.25", 0.25, True, seed, 0.5, network="wide"),  # another network: never a target
                 row("w4a4_d0.25", 0.25, True, seed, 0.5, scales="float")]
    status = {t["target"]: (t["status"], t["value"]) for t in bench.evaluate_targets(0.945, runs, quick=False)}
    assert status["teacher_acc >= 0.94"] == ("pass", 0.945)
    assert status["w4a4_d0.5 KD acc (mean over seeds) >= 0.935"][0] == "pass"
    assert status["w4a4_d0.25 KD acc (mean over seeds) >= 0.933"] == ("pass", pytest.approx(0.934))
    gap = "w4a4_d0.25 KD within 0.005 of the FP32 dense KD student of the same seed (every seed)"
    assert status[gap] == ("fail", pytest.approx(0.006))
    assert status["w4a4_d0.25 KD gain (mean over 3 seeds) >= +0.01"][0] == "pass"
    two_seeds = [r for r in runs if r["seed"] < 2]
    gain = {t["target"]: t for t in bench.evaluate_targets(0.945, two_seeds, quick=False)}
    assert gain["w4a4_d0.25 KD gain (mean over 3 seeds) >= +0.01"]["status"] == "not_measured"
    only_fp32 = [r for r in runs if r["name"] == "fp32_dense"]
    missing = {t["target"]: t["status"] for t in bench.evaluate_targets(None, only_fp32, quick=False)}
    assert missing["w4a4_d0.5 KD acc (mean over seeds) >= 0.935"] == "not_measured"
    assert missing["teacher_acc >= 0.94"] == "not_measured"
    assert missing["every W4A4 run has mean bits <= 4.0"] == "not_measured"


def test_teacher_only_measures_the_teacher_and_claims_nothing_else(bench, tmp_path):
    result = bench.main(TINY + ["--teacher-only", "--out-dir", str(tmp_path)])
    stem = tmp_path / "distill_fmnist_quick_synthetic_teacher_only"
    assert json.loads(stem.with_suffix(".json").read_text()) == json.loads(json.dumps(result))
    assert stem.with_suffix(".png").stat().st_size > 10_000
    assert result["runs"] == [] and result["protocol"] == "quick"
    curve = result["teacher"]["curve"]
    assert [c["epoch"] for c in curve] == [1, 2] and curve[-1]["test_acc"] == result["teacher_acc"]
    assert all(t["status"] == "not_measured" for t in result["targets"])
    assert not (tmp_path / "distill_fmnist_quick_synthetic.json").exists()  # a full result is never overwritten


def test_protocol_names_what_differs_from_the_full_schedule(bench):
    parse = bench.build_parser().parse_args
    assert bench.protocol(parse([])) == "full"
    assert bench.protocol(parse(["--epochs", "0.5", "--teacher-only"])) == "scaled: epochs x0.5, teacher only"
    assert bench.protocol(parse(["--batch-size", "256"]), factor=0.6) == "scaled: epochs x0.6, batch_size 256"
    assert bench.protocol(parse(["--test-subset", "100"])) == "scaled: test_subset 100"


@pytest.mark.slow
def test_gpu_protocol_script_packs_at_most_eight_files(tmp_path):
    """benchmarks/gpu_protocol.sh end to end on CPU (synthetic data, the budget path with the rate
    probe): what comes back from a device machine is at most 8 files, none of them folders."""
    import subprocess

    script = SCRIPT.parent / "gpu_protocol.sh"
    env = {**os.environ, "PYTHON": sys.executable, "WORK": str(tmp_path / "work")}
    out = tmp_path / "out"
    cmd = ["bash", str(script), str(out)] + TINY + ["--jobs", "2", "--budget-s", "30", "--deadline-s", "600",
                                                   "--teacher-epochs", "1", "--probe-steps", "2"]
    subprocess.run(cmd, check=True, env=env, timeout=1200, stdout=subprocess.DEVNULL)
    files = sorted(p.name for p in out.iterdir())
    assert all((out / f).is_file() for f in files) and len(files) <= 8
    assert {"distill_fmnist_quick_synthetic.json", "runs-meta.tgz", "weights-teacher.tgz", "weights-pynqz2.tgz",
            "protocol.log"} <= set(files)
    result = json.loads((out / "distill_fmnist_quick_synthetic.json").read_text())
    assert result["schedule"]["rates"]["rates"]["quant"] > 0 and result["schedule"]["budget_s"] == 30
    assert result["not_finished"] == [] and len(result["runs"]) == len(EXPECTED)
