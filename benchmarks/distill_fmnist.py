"""Fashion-MNIST accuracy protocol: an FP32 VGG teacher, then per network and seed the
students that go to hardware -- FP32 dense, W4A4 Winograd dense, W4A4 SRBS at density 1/2
and 1/4 (each with and without KD), mixed precision at density 1/4 under a mean of 4 and of
3 bits -- and once per network the density-1/4 KD student with float instead of
power-of-two scales.

Networks (``--networks``):

* ``pynqz2``: VGG 32,32,M,64,64,M,128,128,M, the network of ``benchmarks/hw_estimates.py``;
  its recipe is ``configs/fmnist_distill_w4a4_srbs25_pynqz2.toml`` (20 epochs, Hinton KD T=4
  plus a 1x1-adapter hint on block4; the teacher is wider, so nothing is initialised from it;
  its mixed-precision sensitivity is measured on the student initialised from its own FP32
  twin without KD of the same seed, ``mixed_precision.init_run``);
* ``wide``: the default student VGG 64,64,M,128,128,M,256,256,M, the teacher's own
  architecture; recipe ``configs/fmnist_distill_w4a4_mixed.toml`` (30 epochs, initialised from
  the teacher, Hinton KD T=4).

Every run is a recipe call (``train_teacher``, ``distill``) on those configs plus overrides:
FP32 dense = ``student.precision="fp32"`` without pruning; W4A4 = uniform widths (the mixed
search off); "without KD" = ``recipes.without_teacher`` (no teacher, hint or initialisation).
``fp32_dense_acc`` of a row is the FP32 dense student of the same network, seed and ``kd``.

Parallel and on a GPU: ``--jobs N`` runs independent runs as processes (one GPU is shared;
on CPU the cores are split), the teacher first and every run that needs no teacher beside
it; ``data.device_resident`` keeps the images on the device.  ``--budget-s S`` measures the
step rates of this machine first (a few seconds of real training steps of each kind of run,
all jobs at once) and scales the students' schedules (``--epochs``) so the whole protocol
fits S seconds; ``--deadline-s`` stops it cleanly (unfinished runs are reported as such).
The JSON records every choice (epochs factor, batch size, learning-rate scaling, jobs,
rates, wall time, GPU).

Run folders go under ``--work-dir``, named by a digest of the run's config (and the
teacher's weights): a rerun reuses finished runs and resumes killed ones.  Writes
``<out>/distill_fmnist.json`` (``_quick`` in quick mode), written again after every finished
run, and a plot (``.png``).

    python benchmarks/distill_fmnist.py --device cuda --jobs 14 --budget-s 420 --out-dir runs/protocol
    python benchmarks/distill_fmnist.py --quick --jobs 2      # a rehearsal on 2 CPU cores
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from winoforge.hw.flow import portable_paths
from winoforge.model.jobs import finished, worker

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TEACHER_CONFIG = CONFIGS / "fmnist_teacher_vgg.toml"
NETWORKS: dict[str, dict[str, Any]] = {
    "pynqz2": {"config": CONFIGS / "fmnist_distill_w4a4_srbs25_pynqz2.toml",
               "widths": [32, 32, "M", 64, 64, "M", 128, 128, "M"], "twin_init": True},
    "wide": {"config": CONFIGS / "fmnist_distill_w4a4_mixed.toml",
             "widths": [64, 64, "M", 128, 128, "M", 256, 256, "M"], "twin_init": False},
}
TARGET_NETWORK = "pynqz2"
KEEP = {0.5: 4, 0.25: 2}  # SRBS density -> prune.keep (sub_row 8)
MIXED_BITS = (4.0, 3.0)
QUICK = {"widths": [16, 16, "M", 32, 32, "M", 64, 64, "M"], "train_subset": 4096, "test_subset": 2000,
         "teacher_epochs": 2, "epochs": 2, "dense_epochs": 0, "span_epochs": 1, "bn_batches": 2,
         "calibration_batches": 2}
#: seconds a run spends outside its training steps: process start, imports, data onto the
#: device, the test set after every epoch (measured in the rate probe, this is a floor)
RUN_OVERHEAD_S = 15.0
#: the mixed-precision pre-step (a student built, BN recalibrated and evaluated per layer and
#: candidate: ~63 of them), in training steps
MIXED_SEARCH_STEPS = 1200

#: the run quoted when the protocol was set (15 epochs, PACT, per-channel weights): comparison only
REFERENCE = {"teacher_acc": 0.943, "fp32_dense_acc": 0.938,
             "w4a4": {"0.5": {"kd": 0.9335, "no_kd": 0.929}, "0.25": {"kd": 0.931, "no_kd": 0.9235}}}

TARGETS = {"teacher": 0.940, "acc": {0.5: 0.935, 0.25: 0.933}, "gap": 0.005, "kd_gain": 0.010, "kd_gain_seeds": 3,
           "mean_bits": 4.0}


# ------------------------------------------------------------------ configs


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def _config_key(cfg) -> dict[str, Any]:
    """What decides a run's result: the config without where it is written or run (nor how the
    batches are made: the device-resident loader gives the DataLoader's batches)."""
    from winoforge.model.config import to_dict

    key = {k: v for k, v in to_dict(cfg).items() if k not in ("out_dir", "device")}
    key["data"] = {k: v for k, v in key["data"].items() if k not in ("workers", "device_resident")}
    if "mixed_precision" in key and key["mixed_precision"].get("init_run"):
        key["mixed_precision"]["init_run"] = Path(key["mixed_precision"]["init_run"]).name
    return key


def _with(args: argparse.Namespace, **changes) -> argparse.Namespace:
    """A copy of the parsed arguments with ``changes``."""
    return argparse.Namespace(**{**vars(args), **changes})


def _scale(epochs: int, factor: float, minimum: int = 1) -> int:
    return max(minimum, round(epochs * factor))


def _parse_widths(text: str) -> list[int | str]:
    return [w if w == "M" else int(w) for w in text.split(",")]


def network_widths(args, network: str) -> list[int | str]:
    """The student widths of ``network``; quick mode (or ``--widths``) shrinks them, keeping the
    wide network the teacher's architecture and the PYNQ-Z2 one half as wide."""
    base = _parse_widths(args.widths) if args.widths else list(QUICK["widths"]) if args.quick else None
    if base is None:
        return list(NETWORKS[network]["widths"])
    if network == "wide":
        return base
    return [w if w == "M" else max(1, w // 2) for w in base]


def _data_overrides(args) -> list[str]:
    sets = [f"device={args.device}", f"data.name={args.dataset}", f"data.workers={args.workers}",
            f"data.device_resident={'true' if args.device_resident else 'false'}"]
    if args.data_root is not None:
        sets.append(f"data.root={json.dumps(str(args.data_root))}")
    train_subset = args.train_subset or (QUICK["train_subset"] if args.quick else None)
    test_subset = args.test_subset or (QUICK["test_subset"] if args.quick else None)
    if train_subset:
        sets.append(f"data.train_subset={train_subset}")
    if test_subset:
        sets.append(f"data.test_subset={test_subset}")
    return sets


def teacher_config(args):
    from winoforge.model.config import load_config
    from winoforge.model.recipes import TeacherRunConfig

    sets = _data_overrides(args) + ["seed=0"]
    if args.quick or args.widths:
        sets.append(f"arch_options={{widths={json.dumps(network_widths(args, 'wide'))}}}")
    cfg = load_config(TeacherRunConfig, TEACHER_CONFIG, sets)
    epochs = args.teacher_epochs or (QUICK["teacher_epochs"] if args.quick else cfg.optim.epochs)
    optim = replace(cfg.optim, epochs=epochs, warmup_epochs=min(cfg.optim.warmup_epochs, epochs - 1))
    cfg = replace(cfg, optim=optim)
    return replace(cfg, out_dir=args.work_dir / f"teacher-{_digest(_config_key(cfg))}")


def base_config(args, network: str, seed: int, teacher_dir: Path, factor: float):
    """The network's recipe for ``seed`` with the teacher, data, batch size and schedule of the
    arguments (``factor`` scales every epoch count); W4A4 at uniform widths, SRBS keep 2."""
    from winoforge.model.config import load_config
    from winoforge.model.recipes import DistillRunConfig

    sets = _data_overrides(args) + [f"seed={seed}", f"teachers=[{json.dumps(str(teacher_dir))}]",
                                    f"student.widths={json.dumps(network_widths(args, network))}",
                                    "mixed_precision.enabled=false"]
    cfg = load_config(DistillRunConfig, NETWORKS[network]["config"], sets + list(args.set))
    epochs, dense, span = cfg.optim.epochs, cfg.prune.dense_epochs, cfg.prune.span_epochs
    if args.quick:
        epochs, dense, span = QUICK["epochs"], QUICK["dense_epochs"], QUICK["span_epochs"]
        cfg = replace(cfg, mixed_precision=replace(cfg.mixed_precision, bn_batches=QUICK["bn_batches"],
                                                   calibration_batches=QUICK["calibration_batches"]))
    epochs = _scale(epochs, factor)
    span = min(_scale(span, factor), epochs)
    dense = min(_scale(dense, factor, minimum=0), epochs - span)
    optim = replace(cfg.optim, epochs=epochs, warmup_epochs=min(cfg.optim.warmup_epochs, epochs - 1))
    if args.batch_size:
        # linear learning-rate scaling from the recipe's batch size
        optim = replace(optim, lr=optim.lr * args.batch_size / cfg.data.batch_size)
        cfg = replace(cfg, data=replace(cfg.data, batch_size=args.batch_size))
    return replace(cfg, optim=optim, prune=replace(cfg.prune, keep=KEEP[0.25], dense_epochs=dense, span_epochs=span))


# ------------------------------------------------------------------ the plan


@dataclass
class Task:
    """One run of the protocol: a config, what it needs first, and its row's labels."""

    key: str
    kind: str  # "teacher" or "student"
    config: Any
    row: dict[str, Any]
    needs: list[str] = field(default_factory=list)
    steps: int = 0  # training steps (for the schedule and the time estimate)
    rate_kind: str = "quant"


def _steps(cfg) -> int:
    n = cfg.data.train_subset or (60000 if cfg.data.name == "fashion-mnist" else 0)
    if not n:
        from winoforge.model.data import SYNTHETIC_SIZES

        n = SYNTHETIC_SIZES["train"]
    return cfg.optim.epochs * math.ceil(n / cfg.data.batch_size)


def plan(args, factor: float) -> list[Task]:
    """Every run of the protocol, with dependencies; run folders named by config digest."""
    from winoforge.model.recipes import PruneConfig, without_teacher

    tcfg = teacher_config(args)
    tasks = [Task("teacher", "teacher", tcfg, {"name": "teacher"}, steps=_steps(tcfg), rate_kind="fp32")]
    if args.teacher_only:
        return tasks

    def add(name, network, seed, cfg, *, kd, density, scales="po2", needs=(), rate_kind="quant", mean_bits=None):
        tag = f"{network}-{name}-{'kd' if kd else 'nokd'}{'-float' if scales == 'float' else ''}-s{seed}"
        cfg = replace(cfg, out_dir=args.work_dir / f"{tag}-{_digest(_config_key(cfg))}")
        row = {"name": name, "network": network, "density": density, "kd": kd, "seed": seed, "scales": scales,
               "mean_bits_budget": mean_bits}
        tasks.append(Task(tag, "student", cfg, row, list(needs) + (["teacher"] if kd else []), _steps(cfg), rate_kind))
        return tag

    for network in args.networks:
        for seed in args.seeds:
            base = base_config(args, network, seed, tcfg.out_dir, factor)
            dense = replace(base, prune=PruneConfig(keep=None))
            fp32 = replace(dense, student=replace(dense.student, precision="fp32"))
            twin = add("fp32_dense", network, seed, without_teacher(fp32), kd=False, density=1.0, rate_kind="fp32")
            add("fp32_dense", network, seed, fp32, kd=True, density=1.0, rate_kind="fp32")
            add("w4a4_dense", network, seed, dense, kd=True, density=1.0)
            for density, keep in KEEP.items():
                srbs = replace(base, prune=replace(base.prune, keep=keep))
                add(f"w4a4_d{density:g}", network, seed, srbs, kd=True, density=density)
                add(f"w4a4_d{density:g}", network, seed, without_teacher(srbs), kd=False, density=density)
            for bits in MIXED_BITS:
                init_run = None
                needs = []
                if NETWORKS[network]["twin_init"]:
                    twin_task = next(t for t in tasks if t.key == twin)
                    init_run, needs = twin_task.config.out_dir, [twin]
                mixed = replace(base, mixed_precision=replace(base.mixed_precision, enabled=True, mean_bits=bits,
                                                              bops_fraction=None, init_run=init_run))
                add(f"mixed_d0.25_b{bits:g}", network, seed, mixed, kd=True, density=0.25, needs=needs,
                    mean_bits=bits, rate_kind="mixed")
        seed = args.seeds[0]
        base = base_config(args, network, seed, tcfg.out_dir, factor)
        floats = replace(base, student=replace(base.student, weight_quant="float", act_quant="float"))
        add("w4a4_d0.25", network, seed, floats, kd=True, density=0.25, scales="float")
    return tasks


def estimate_seconds(task: Task, rates: dict[str, float]) -> float:
    """A run's time from the measured per-process step rates (steps/s with all jobs busy)."""
    kind = "quant" if task.rate_kind == "mixed" else task.rate_kind
    steps = task.steps + (MIXED_SEARCH_STEPS if task.rate_kind == "mixed" else 0)
    return RUN_OVERHEAD_S + steps / rates[kind]


#: step rates (steps/s) for ranking runs before any rate is measured: quantized steps cost ~3x
DEFAULT_RATES = {"quant": 1.0, "fp32": 3.0}


def priorities(tasks: Sequence[Task], seconds: dict[str, float]) -> dict[str, float]:
    """Each task's critical path: its own time plus the longest chain of runs that need it (the
    teacher first, then the FP32 twins the mixed runs wait for, then the longest runs)."""
    needed_by: dict[str, list[str]] = {t.key: [] for t in tasks}
    for t in tasks:
        for n in t.needs:
            needed_by[n].append(t.key)
    memo: dict[str, float] = {}

    def rank(key: str) -> float:
        if key not in memo:
            memo[key] = seconds[key] + max((rank(k) for k in needed_by[key]), default=0.0)
        return memo[key]

    return {t.key: rank(t.key) for t in tasks}


def makespan(tasks: Sequence[Task], jobs: int, seconds: dict[str, float]) -> float:
    """Wall time of list scheduling ``tasks`` on ``jobs`` slots: a task starts when a slot is
    free and what it needs has finished, the longest critical path first (what :func:`execute`
    does)."""
    rank = priorities(tasks, seconds)
    done_at: dict[str, float] = {}
    pending = list(tasks)
    slots = [0.0] * jobs
    while pending:
        t_free = min(slots)
        ready = [t for t in pending if all(n in done_at and done_at[n] <= t_free for n in t.needs)]
        if not ready:  # wait for the earliest dependency to finish
            t_next = min(v for v in done_at.values() if v > t_free)
            slots[slots.index(t_free)] = t_next
            continue
        task = max(ready, key=lambda t: (rank[t.key], t.key))
        pending.remove(task)
        start = t_free
        slots[slots.index(t_free)] = done_at[task.key] = start + seconds[task.key]
    return max(done_at.values(), default=0.0)


def choose_factor(args, rates: dict[str, float], budget_s: float) -> tuple[float, float]:
    """The largest epochs factor (a multiple of 0.05, at most 1) whose plan fits ``budget_s``;
    and that plan's estimated wall time."""
    best = None
    for i in range(20, 0, -1):
        factor = i / 20
        tasks = plan(args, factor)
        span = makespan(tasks, args.jobs, {t.key: estimate_seconds(t, rates) for t in tasks})
        best = (factor, span)
        if span <= budget_s:
            return best
    return best  # type: ignore[return-value]


# ------------------------------------------------------------------ workers


def _threads(args) -> int:
    return 1 if args.device.startswith("cuda") else max(1, (os.cpu_count() or 1) // args.jobs)


def execute(args, tasks: list[Task], deadline: float | None, on_done=None, rates: dict[str, float] | None = None,
            prestarted: dict[str, tuple[Any, Path, float]] | None = None) -> dict[str, dict[str, Any]]:
    """Run ``tasks`` in up to ``args.jobs`` processes (spawned: CUDA cannot fork), a task once
    what it needs has finished, the longest critical path first (``prestarted``: processes
    already running some of them, from :func:`start_task`).  Returns per task key
    ``{"status": "done" | "reused" | "failed" | "not_run", ...}``; at ``deadline`` (a
    ``time.monotonic()`` value) running processes are stopped and the rest left not run."""
    status: dict[str, dict[str, Any]] = {}
    running: dict[str, tuple[Any, Path, float]] = dict(prestarted or {})
    pending = {t.key: t for t in tasks if t.key not in running}
    rank = priorities(tasks, {t.key: estimate_seconds(t, rates or DEFAULT_RATES) for t in tasks})
    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        progress = tqdm(total=len(tasks), desc="protocol runs", unit="run")
    while pending or running:
        for key in [k for k, t in pending.items() if finished(t.config.out_dir, t.config.optim.epochs)]:
            status[key] = {"status": "reused", "wall_s": _wall(pending[key].config.out_dir)}
            del pending[key]
            progress and progress.update()
            on_done and on_done(status)
        failed_needs = [k for k, t in pending.items() if any(status.get(n, {}).get("status") in ("failed", "not_run")
                                                              for n in t.needs)]
        for key in failed_needs:
            status[key] = {"status": "not_run", "reason": "a run it needs did not finish"}
            del pending[key]
        ready = [t for t in pending.values() if all(status.get(n, {}).get("status") in ("done", "reused")
                                                     for n in t.needs)]
        ready.sort(key=lambda t: (-rank[t.key], t.key))
        while ready and len(running) < args.jobs and (deadline is None or time.monotonic() < deadline):
            task = ready.pop(0)
            del pending[task.key]
            running[task.key] = start_task(args, task)
        for key, (proc, result, started) in list(running.items()):
            if proc.is_alive():
                continue
            proc.join()
            del running[key]
            if proc.exitcode == 0 and result.is_file():
                wall = json.loads(result.read_text())["wall_s"]
                _record_wall(result.parent, wall)
                status[key] = {"status": "done", "wall_s": wall}
            else:
                err = result.with_suffix(".err")
                status[key] = {"status": "failed", "exitcode": proc.exitcode,
                               "error": err.read_text()[-2000:] if err.is_file() else None}
                print(f"FAILED {key} (exit {proc.exitcode})\n{status[key]['error']}", flush=True)
            print(f"{status[key]['status']} {key} after {time.monotonic() - started:.0f} s", flush=True)
            progress and progress.update()
            on_done and on_done(status)
        if deadline is not None and time.monotonic() >= deadline:
            for key, (proc, _, _) in running.items():
                proc.terminate()
            for key, (proc, _, _) in running.items():
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
                status[key] = {"status": "not_run", "reason": "stopped at the deadline (resumable)"}
            for key in pending:
                status[key] = {"status": "not_run", "reason": "not started before the deadline"}
            running.clear()
            pending.clear()
            on_done and on_done(status)
            break
        if running:
            time.sleep(0.5)
    if progress is not None:
        progress.close()
    return status


def _spawn(args, kind: str, cfg, name: str | None = None) -> tuple[Any, Path]:
    """A started worker process training ``cfg`` (spawned: CUDA cannot fork) and its result file."""
    from winoforge.model.config import to_dict

    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    result = cfg.out_dir / "bench_result.json"
    result.unlink(missing_ok=True)
    proc = mp.get_context("spawn").Process(target=worker, name=name, args=(
        kind, to_dict(cfg), args.device, _threads(args), str(result)))
    proc.start()
    return proc, result


def start_task(args, task: Task) -> tuple[Any, Path, float]:
    """Start ``task`` in a spawned worker process: ``(process, result file, start time)``."""
    proc, result = _spawn(args, task.kind, task.config, task.key)
    print(f"start {task.key} ({task.steps} steps) -> {task.config.out_dir}", flush=True)
    return proc, result, time.monotonic()


def _record_wall(run_dir: Path, wall_s: float) -> None:
    (run_dir / "bench_wall.json").write_text(json.dumps({"wall_s": wall_s}) + "\n")


def _wall(run_dir: Path) -> float | None:
    path = run_dir / "bench_wall.json"
    return json.loads(path.read_text())["wall_s"] if path.is_file() else None


# ------------------------------------------------------------------ the rate probe


def measure_rates(args, workers: int) -> dict[str, Any]:
    """Per-process training steps/s of each kind of run with ``workers`` probe processes (plus the
    teacher, when it runs beside them: all ``jobs`` busy): the
    real recipes with KD from an untrained teacher of the real architecture (the trained one
    does not exist yet; its weights do not change the step time), 2 short epochs of
    ``probe_steps`` steps each, the second one timed (the first pays for start-up)."""
    from winoforge.model.recipes import PruneConfig, save_model
    from winoforge.model.teachers import build_teacher

    probe_dir = args.work_dir / "rate-probe"
    sub = _with(args, quick=False, train_subset=None, test_subset=None)
    tcfg = teacher_config(args)
    teacher_dir = probe_dir / "untrained-teacher"
    if not (teacher_dir / "model.json").is_file():
        info = {"arch": tcfg.arch, "arch_options": tcfg.arch_options, "in_channels": 1, "num_classes": 10,
                "dataset": tcfg.data.name, "test": {}, "epochs": 0}
        save_model(build_teacher(tcfg.arch, 1, 10, **tcfg.arch_options), teacher_dir, info)
    n_train = args.probe_steps * (args.batch_size or 128)
    kinds = {}
    for network in args.networks:
        base = base_config(sub, network, 0, teacher_dir, 1.0)
        kinds[f"{network}/quant"] = replace(base, prune=replace(base.prune, dense_epochs=0, span_epochs=1))
        kinds[f"{network}/fp32"] = replace(base, prune=PruneConfig(keep=None),
                                           student=replace(base.student, precision="fp32"))
    jobs = []
    names = sorted(kinds)
    start = time.perf_counter()
    for i in range(max(workers, len(names))):  # every kind at least once
        name = names[i % len(names)]
        cfg = kinds[name]
        cfg = replace(cfg, out_dir=probe_dir / f"{name.replace('/', '-')}-{i}",
                      data=replace(cfg.data, train_subset=n_train, test_subset=256),
                      optim=replace(cfg.optim, epochs=2, warmup_epochs=0))
        jobs.append((name, cfg, _spawn(args, "student", cfg)[0]))
    for _, _, proc in jobs:
        proc.join()
    measured: dict[str, list[float]] = {}
    for name, cfg, proc in jobs:
        path = cfg.out_dir / "metrics.jsonl"
        if proc.exitcode != 0 or not path.is_file():
            raise RuntimeError(f"the rate probe {name} failed (exit {proc.exitcode}); see {cfg.out_dir}")
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        steps = rows[-1]["step"] - rows[-2]["step"]
        measured.setdefault(name, []).append(steps / rows[-1]["seconds"])
    rates_by_name = {name: statistics.fmean(v) for name, v in measured.items()}
    # the slowest network sets each kind's rate (the plan is conservative)
    rates = {kind: min(r for name, r in rates_by_name.items() if name.endswith("/" + kind))
             for kind in ("quant", "fp32")}
    return {"rates": rates, "by_kind": rates_by_name, "probe_s": time.perf_counter() - start,
            "steps_per_epoch": args.probe_steps, "jobs": args.jobs}


# ------------------------------------------------------------------ results


def _curve(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{"epoch": r.get("epoch"), "test_acc": (r.get("test") or {}).get("acc"), "seconds": r.get("seconds")}
            for r in rows]


def _train_seconds(run_dir: Path) -> float:
    return sum(c["seconds"] or 0.0 for c in _curve(run_dir))


def collect(tasks: list[Task], status: dict[str, dict[str, Any]]) -> tuple[dict[str, Any] | None, list[dict], list]:
    """The teacher's record, a row per finished student run, and what did not finish."""
    teacher, rows, missing = None, [], []
    for task in tasks:
        st = status.get(task.key, {"status": "not_run", "reason": "not started"})
        info = finished(task.config.out_dir, task.config.optim.epochs)
        if info is None:
            missing.append({"run": task.key, **st})
            continue
        run_dir = task.config.out_dir
        common = {"run_dir": str(run_dir), "wall_s": st.get("wall_s") or _wall(run_dir),
                  "train_s": _train_seconds(run_dir), "reused": st.get("status") == "reused",
                  "epochs": info["epochs"], "curve": _curve(run_dir),
                  "config": json.loads((run_dir / "config.json").read_text())}
        if task.kind == "teacher":
            teacher = {"acc": info["test"]["acc"], "sha256": info["sha256"], **common}
            continue
        rows.append({**task.row, "mean_bits": info["mean_bits"], "acc": info["test"]["acc"],
                     "fp32_dense_acc": None, "sha256": info["sha256"], **common})
    for row in rows:
        twin = [r for r in rows if r["name"] == "fp32_dense" and r["network"] == row["network"]
                and r["seed"] == row["seed"] and r["kd"] == row["kd"]]
        row["fp32_dense_acc"] = twin[0]["acc"] if twin else None
    return teacher, rows, missing


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in runs:
        groups.setdefault((row.get("network", TARGET_NETWORK), row["name"], row["kd"], row.get("scales", "po2")),
                          []).append(row)
    out = []
    for (network, name, kd, scales), rows in groups.items():
        accs = [r["acc"] for r in rows]
        fp32 = [r["fp32_dense_acc"] for r in rows if r["fp32_dense_acc"] is not None]
        out.append({"network": network, "name": name, "kd": kd, "scales": scales, "density": rows[0]["density"],
                    "seeds": [r["seed"] for r in rows], "acc_mean": _mean(accs),
                    "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                    "mean_bits": _mean([r["mean_bits"] for r in rows]), "fp32_dense_acc_mean": _mean(fp32)})
    return out


def evaluate_targets(teacher_acc: float | None, runs: list[dict[str, Any]], quick: bool) -> list[dict[str, Any]]:
    """Each target (on the PYNQ-Z2 network, power-of-two scales) with the value measured, the
    runs it used, and pass / fail / not_measured."""
    targets = []
    runs = [r for r in runs if r.get("network", TARGET_NETWORK) == TARGET_NETWORK and r.get("scales", "po2") == "po2"]

    def add(name: str, value: float | None, ok: bool | None, used: list[str], reason: str | None = None,
            accuracy: bool = True) -> None:
        if value is None or ok is None:
            status, reason = "not_measured", reason or "no run measured it"
        elif quick and accuracy:
            status, reason = "not_measured", "quick mode or a data subset: not measured on the whole Fashion-MNIST test set"
        else:
            status = "pass" if ok else "fail"
        targets.append({"target": name, "value": value, "status": status, "runs": used, "reason": reason})

    add(f"teacher_acc >= {TARGETS['teacher']}", teacher_acc,
        None if teacher_acc is None else teacher_acc >= TARGETS["teacher"], ["teacher"])

    def select(name: str, kd: bool) -> list[dict[str, Any]]:
        return [r for r in runs if r["name"] == name and r["kd"] == kd]

    for density, threshold in TARGETS["acc"].items():
        name = f"w4a4_d{density:g}"
        rows = select(name, True)
        used = [f"{name} kd seed {r['seed']}" for r in rows]
        acc = _mean([r["acc"] for r in rows])
        add(f"{name} KD acc (mean over seeds) >= {threshold}", acc, None if acc is None else acc >= threshold, used)
        label = f"{name} KD within {TARGETS['gap']} of the FP32 dense KD student of the same seed (every seed)"
        paired = [r for r in rows if r["fp32_dense_acc"] is not None]
        if paired:
            gap = max(r["fp32_dense_acc"] - r["acc"] for r in paired)
            add(label, gap, gap <= TARGETS["gap"] + 1e-12, used + [f"fp32_dense kd seed {r['seed']}" for r in paired])
        else:
            add(label, None, None, used)
    name = "w4a4_d0.25"
    kd_rows, plain_rows = select(name, True), select(name, False)
    seeds = sorted({r["seed"] for r in kd_rows} & {r["seed"] for r in plain_rows})
    label = f"{name} KD gain (mean over {TARGETS['kd_gain_seeds']} seeds) >= +{TARGETS['kd_gain']}"
    used = [f"{name} kd={kd} seed {s}" for s in seeds for kd in (True, False)]
    if len(seeds) < TARGETS["kd_gain_seeds"]:
        add(label, None, None, used, f"needs {TARGETS['kd_gain_seeds']} seeds with and without KD, has {len(seeds)}")
    else:
        gain = (_mean([r["acc"] for r in kd_rows if r["seed"] in seeds])
                - _mean([r["acc"] for r in plain_rows if r["seed"] in seeds]))
        add(label, gain, gain >= TARGETS["kd_gain"] - 1e-12, used)
    quant = [r for r in runs if r["name"].startswith("w4a4")]
    worst = max((r["mean_bits"] for r in quant), default=None)
    add(f"every W4A4 run has mean bits <= {TARGETS['mean_bits']}", worst,
        None if worst is None else worst <= TARGETS["mean_bits"] + 1e-12,
        [f"{r['name']} kd={r['kd']} seed {r['seed']}" for r in quant], accuracy=False)
    return targets


def reports(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the protocol reports without a target: mixed precision at 3 and 4 mean bits, float
    against power-of-two scales, per network (means over the seeds present)."""
    out: dict[str, Any] = {}
    for network in sorted({r["network"] for r in runs}):
        rows = [r for r in runs if r["network"] == network]

        def mean_of(name, kd=True, scales="po2", seeds=None):
            sel = [r["acc"] for r in rows if r["name"] == name and r["kd"] == kd and r["scales"] == scales
                   and (seeds is None or r["seed"] in seeds)]
            return _mean(sel)

        float_seeds = {r["seed"] for r in rows if r["scales"] == "float"}
        out[network] = {
            "mixed_d0.25_b4_acc": mean_of("mixed_d0.25_b4"), "mixed_d0.25_b3_acc": mean_of("mixed_d0.25_b3"),
            "w4a4_d0.25_kd_acc": mean_of("w4a4_d0.25"),
            "float_scales_acc": mean_of("w4a4_d0.25", scales="float"),
            "po2_scales_acc_same_seed": mean_of("w4a4_d0.25", seeds=float_seeds) if float_seeds else None,
            "fp32_dense_kd_acc": mean_of("fp32_dense"), "w4a4_dense_kd_acc": mean_of("w4a4_dense"),
        }
    return out


def machine_info(device: str) -> dict[str, Any]:
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"platform": platform.platform(), "python": sys.version.split()[0], "torch": torch.__version__,
            "cpu": cpu, "cpu_count": os.cpu_count(), "device": device}
    try:
        import brevitas

        info["brevitas"] = brevitas.__version__
    except ImportError:  # pragma: no cover - a dependency of the recipes
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def plot(runs: list[dict[str, Any]], teacher_acc: float | None, path: Path) -> None:
    """Per network: accuracy of every run kind (KD and without), seeds as points, means as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    networks = sorted({r["network"] for r in runs}) or [TARGET_NETWORK]
    order = ["fp32_dense", "w4a4_dense", "w4a4_d0.5", "w4a4_d0.25", "mixed_d0.25_b4", "mixed_d0.25_b3"]
    fig, axes = plt.subplots(1, len(networks), figsize=(6.5 * len(networks), 4.6), squeeze=False)
    for ax, network in zip(axes[0], networks):
        rows = [r for r in runs if r["network"] == network]
        variants = [(n, kd, "po2") for n in order for kd in (True, False)] + [("w4a4_d0.25", True, "float")]
        variants = [v for v in variants if any((r["name"], r["kd"], r["scales"]) == v for r in rows)]
        for i, (name, kd, scales) in enumerate(variants):
            accs = [r["acc"] for r in rows if (r["name"], r["kd"], r["scales"]) == (name, kd, scales)]
            color = "tab:green" if scales == "float" else "tab:blue" if kd else "tab:orange"
            ax.bar(i, statistics.fmean(accs), color=color, alpha=0.35)
            ax.scatter([i] * len(accs), accs, color=color, s=14, zorder=3)
        ax.set_xticks(range(len(variants)),
                      [f"{n}\n{'KD' if kd else 'no KD'}{', float' if s == 'float' else ''}" for n, kd, s in variants],
                      rotation=60, fontsize=7)
        if teacher_acc is not None:
            ax.axhline(teacher_acc, color="gray", linestyle="--", linewidth=1, label=f"teacher {teacher_acc:.4f}")
        if network == TARGET_NETWORK:
            for density, thr in TARGETS["acc"].items():
                ax.axhline(thr, color="tab:red", linestyle=":", linewidth=0.8)
        accs = [r["acc"] for r in rows] + ([teacher_acc] if teacher_acc else [])
        if accs:
            ax.set_ylim(max(0.0, min(accs) - 0.01), min(1.0, max(accs) + 0.005))
        ax.set_ylabel("Fashion-MNIST test accuracy")
        ax.set_title(f"{network}: blue KD, orange no KD, green float scales (dots: seeds)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        if teacher_acc is not None:
            ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_curve(teacher: dict[str, Any], path: Path) -> None:
    """Test accuracy of the teacher per epoch, with the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = [c for c in teacher.get("curve", []) if c["test_acc"] is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([c["epoch"] for c in curve], [c["test_acc"] for c in curve], marker="o", label="FP32 VGG teacher")
    ax.axhline(TARGETS["teacher"], color="tab:red", linestyle="--", linewidth=1, label=f"target {TARGETS['teacher']}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("Fashion-MNIST test accuracy")
    ax.set_ylim(max(0.0, min([c["test_acc"] for c in curve] + [TARGETS["teacher"]]) - 0.01), 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("teacher test accuracy per epoch")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def protocol(args, factor: float | None = None) -> str:
    """``full`` only for the configs' own schedules on all of Fashion-MNIST; otherwise what differs."""
    if args.quick:
        return "quick"
    factor = args.epochs if factor is None else factor
    parts = [] if factor == 1.0 else [f"epochs x{factor:g}"]
    parts += [f"{k} {v}" for k, v in (("batch_size", args.batch_size), ("teacher_epochs", args.teacher_epochs),
                                       ("train_subset", args.train_subset), ("test_subset", args.test_subset),
                                       ("widths", args.widths)) if v]
    parts += ["teacher only"] if args.teacher_only else []
    return "full" if not parts else "scaled: " + ", ".join(parts)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", nargs="+", choices=sorted(NETWORKS), default=None,
                   help="networks (default: pynqz2 wide; quick: pynqz2)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="student seeds (default 0 1 2; quick: 0)")
    p.add_argument("--epochs", type=float, default=1.0, help="scale every student epoch count (of the configs, "
                   "or of --quick); --budget-s chooses it instead")
    p.add_argument("--budget-s", type=float, default=None,
                   help="measure this machine's step rates, then choose --epochs so the protocol fits this many "
                        "seconds")
    p.add_argument("--deadline-s", type=float, default=None,
                   help="stop after this many seconds: running runs are stopped (resumable), unstarted ones reported")
    p.add_argument("--probe-steps", type=int, default=40, help="training steps per epoch of the rate probe")
    p.add_argument("--teacher-epochs", type=int, default=None, help="the teacher's epochs (default: its config's)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="the students' batch size, learning rate scaled linearly from the recipe's (default: recipe)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, each in its own process")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--device-resident", action=argparse.BooleanOptionalAction, default=None,
                   help="images kept on the device (default: on with cuda)")
    p.add_argument("--workers", type=int, default=0, help="data-loader worker processes (results do not change)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="folder of the JSON and plot")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="run folders (default runs/bench_distill, quick: runs/bench_distill_quick)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="one folder for everything: run folders under <dir>/runs, JSON and plot in <dir>")
    p.add_argument("--quick", action="store_true", help="data subset, narrower VGGs, 2 epochs: a rehearsal")
    p.add_argument("--data-root", type=Path, default=None, help="Fashion-MNIST folder (default: the Debian package's)")
    p.add_argument("--dataset", choices=["fashion-mnist", "synthetic"], default="fashion-mnist",
                   help="synthetic: for tests of this script")
    p.add_argument("--train-subset", type=int, default=None, help="first N training images")
    p.add_argument("--test-subset", type=int, default=None, help="first N test images")
    p.add_argument("--widths", default=None,
                   help="VGG widths of the teacher and the wide student (the PYNQ-Z2 one: half), e.g. 16,16,M,32")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of every student config, as `winoforge distill --set` (repeatable)")
    p.add_argument("--teacher-only", action="store_true",
                   help="train (or reuse) the teacher only and write <stem>_teacher_only.json")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    return p


def _stem(args) -> str:
    return ("distill_fmnist" + ("_quick" if args.quick else "")
            + ("" if args.dataset == "fashion-mnist" else f"_{args.dataset}")
            + ("_teacher_only" if args.teacher_only else ""))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.seeds is None:
        args.seeds = [0] if args.quick else [0, 1, 2]
    if args.networks is None:
        args.networks = [TARGET_NETWORK] if args.quick else ["pynqz2", "wide"]
    if args.device_resident is None:
        args.device_resident = args.device.startswith("cuda")
    if args.out_dir is not None:
        args.work_dir = args.work_dir or args.out_dir / "runs"
        args.out = args.out_dir
    if args.work_dir is None:
        args.work_dir = ROOT / "runs" / ("bench_distill_quick" if args.quick else "bench_distill")
    if not (math.isfinite(args.epochs) and args.epochs > 0):
        raise SystemExit(f"--epochs={args.epochs} is out of range; allowed: > 0")
    if args.jobs < 1:
        raise SystemExit(f"--jobs={args.jobs} is out of range; allowed: >= 1")
    if args.batch_size is not None and args.batch_size < 1:
        raise SystemExit(f"--batch-size={args.batch_size} is out of range; allowed: >= 1")
    start = time.perf_counter()
    deadline = None if args.deadline_s is None else time.monotonic() + args.deadline_s
    rates, factor, planned_s = None, args.epochs, None
    prestarted: dict[str, tuple[Any, Path, float]] = {}
    if args.budget_s is not None:
        # the teacher's schedule does not depend on the students' factor: it starts now,
        # beside the rate probe, since every KD run waits for it
        teacher_task = plan(_with(args, teacher_only=True), 1.0)[0]
        if not finished(teacher_task.config.out_dir, teacher_task.config.optim.epochs):
            prestarted["teacher"] = start_task(args, teacher_task)
        rates = measure_rates(args, workers=max(1, args.jobs - len(prestarted)))
        remaining = args.budget_s - (time.perf_counter() - start)
        factor, planned_s = choose_factor(args, rates["rates"], remaining)
        print(f"rates (steps/s per process, {args.jobs} jobs): {rates['by_kind']}; epochs x{factor:g}, "
              f"planned {planned_s:.0f} s of {remaining:.0f} s left", flush=True)
    tasks = plan(args, factor)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = _stem(args)
    path, png = args.out / f"{stem}.json", args.out / f"{stem}.png"
    quick_claims = args.quick or bool(args.train_subset or args.test_subset)

    def result_of(status: dict[str, dict[str, Any]]) -> dict[str, Any]:
        teacher, runs, missing = collect(tasks, status)
        teacher_acc = teacher["acc"] if teacher else None
        return {
            "benchmark": "distill_fmnist",
            "protocol": protocol(args, factor),
            "dataset": args.dataset,
            "network": TARGET_NETWORK,
            "networks": {n: {"widths": network_widths(args, n), "config": str(NETWORKS[n]["config"].relative_to(ROOT))}
                         for n in args.networks},
            "scales": "po2 (each network's w4a4_d0.25 KD seed-0 run also with float scales)",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "teacher_acc": teacher_acc,
            "teacher": teacher,
            "runs": runs,
            "not_finished": missing,
            "summary": summarize(runs),
            "targets": evaluate_targets(teacher_acc, runs, quick_claims),
            "reports": reports(runs),
            "reference": REFERENCE,
            "schedule": {"epochs_factor": factor, "batch_size": args.batch_size, "lr_scaling": "linear"
                         if args.batch_size else None, "planned_s": planned_s, "budget_s": args.budget_s,
                         "deadline_s": args.deadline_s, "rates": rates},
            "jobs": args.jobs,
            "plot": png.name,
            "wall_s": time.perf_counter() - start,
            "machine": machine_info(args.device),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        }

    def write(status):
        path.write_text(json.dumps(portable_paths(result_of(status), args.out), indent=2) + "\n")

    status = execute(args, tasks, deadline, on_done=write, rates=rates["rates"] if rates else None,
                     prestarted=prestarted)
    result = result_of(status)
    if args.teacher_only:
        if result["teacher"]:
            plot_curve(result["teacher"], png)
    else:
        plot(result["runs"], result["teacher_acc"], png)
    result["wall_s"] = time.perf_counter() - start
    # paths relative to the repository (inside it) or to the JSON's folder, never this machine's
    result = portable_paths(result, args.out)
    path.write_text(json.dumps(result, indent=2) + "\n")
    for t in result["targets"]:
        value = "n/a" if t["value"] is None else f"{t['value']:.4f}"
        print(f"{t['status']:>12}  {t['target']}: {value}" + (f"  ({t['reason']})" if t["reason"] else ""))
    for row in result["runs"]:
        print(f"{row['network']:<7} seed {row['seed']} {row['name']:<15} kd={str(row['kd']):<5} {row['scales']:<5} "
              f"mean bits {row['mean_bits']:<6.3g} test accuracy {row['acc']:.4f}"
              + (" (reused)" if row["reused"] else ""))
    if result["not_finished"]:
        print(f"{len(result['not_finished'])} runs did not finish: "
              + ", ".join(f"{m['run']} ({m['status']})" for m in result["not_finished"]))
    print(f"-> {path}, {png}  ({result['wall_s']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
