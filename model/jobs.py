"""Runs of the recipes in worker processes (``benchmarks/distill_fmnist.py --jobs``).

A worker is a *spawned* process (CUDA cannot be forked) that rebuilds a run's config from
plain data, trains it with :func:`~winoforge.model.recipes.train_teacher` or
:func:`~winoforge.model.recipes.distill` (which resume a killed run and skip nothing
else), and writes ``result_path`` (JSON: its wall time) when it finishes, or the
traceback next to it (``.err``).  Several workers may share one GPU: each uses one CPU
thread there; on CPU the cores are split between them.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any

__all__ = ["finished", "worker", "worker_setup"]


def finished(run_dir: str | Path, epochs: int) -> dict[str, Any] | None:
    """The ``model.json`` of a run that finished ``epochs`` epochs, else ``None``."""
    info_path = Path(run_dir) / "model.json"
    if not info_path.is_file():
        return None
    info = json.loads(info_path.read_text())
    return info if info.get("epochs") == epochs else None


def worker_setup(device: str, threads: int) -> None:
    """Threads per process; on CUDA the TF32 matrix units for the float convolutions and matrix
    products of training (the integer export is checked separately, on CPU)."""
    import torch

    torch.set_num_threads(max(1, threads))
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def worker(kind: str, cfg_dict: dict[str, Any], device: str, threads: int, result_path: str) -> None:
    """Train (or resume, or reuse) one run in this process: ``kind`` "teacher" or "student"."""
    import warnings

    # Brevitas's quantizers call Tensor.rename on every forward: torch's named-tensor notice
    warnings.filterwarnings("ignore", message="Named tensors", category=UserWarning)
    worker_setup(device, threads)
    try:
        from .config import from_dict
        from .recipes import DistillRunConfig, TeacherRunConfig, distill, train_teacher

        cfg = from_dict(TeacherRunConfig if kind == "teacher" else DistillRunConfig, cfg_dict)
        start = time.perf_counter()
        if not finished(cfg.out_dir, cfg.optim.epochs):
            (train_teacher if kind == "teacher" else distill)(cfg, progress=False)
        Path(result_path).write_text(json.dumps({"wall_s": time.perf_counter() - start}) + "\n")
    except BaseException:  # reported by the parent, which carries on with the other runs
        Path(result_path).with_suffix(".err").write_text(traceback.format_exc())
        raise
