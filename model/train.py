"""The training loop shared by teacher training and distillation.

:class:`Trainer` knows nothing about KD: it calls a ``loss_fn(model, x, y) ->
(loss, metrics)`` per batch, runs ``after_step`` hooks after every optimizer
step (SRBS masking uses this), evaluates, logs JSON lines and checkpoints.

* **Exact resume**: a checkpoint (every ``checkpoint_every`` epochs and at the
  end) holds the model, optimizer, scheduler, the torch/numpy/Python RNG
  states and the data sampler's generator state.  A killed run started again
  with the same config continues from its last checkpoint and ends with the
  same weights as an uninterrupted run (tested bit for bit).
* **Data parallel**: started under ``torchrun`` (``WORLD_SIZE > 1``) the model is
  wrapped in ``DistributedDataParallel`` (gloo on CPU, NCCL on GPU), each rank
  reads a disjoint shard of the same seeded permutation, metrics are
  all-reduced and only rank 0 writes files.
* **Progress**: tqdm bars on rank 0; ``metrics.jsonl`` gets one line per epoch.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

__all__ = ["OptimConfig", "Trainer", "DistributedContext", "evaluate", "seed_everything"]

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]
StepHook = Callable[[int], None]


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule."""

    epochs: int = 15
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    scheduler: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"optim.epochs={self.epochs} is out of range; allowed: >= 1")
        if not self.lr > 0:
            raise ValueError(f"optim.lr={self.lr} is out of range; allowed: > 0")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"optim.momentum={self.momentum} is out of range; allowed: 0 <= momentum < 1")
        if self.weight_decay < 0:
            raise ValueError(f"optim.weight_decay={self.weight_decay} is out of range; allowed: >= 0")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"optim.warmup_epochs={self.warmup_epochs} is out of range; allowed: 0..epochs-1")

    def build(self, params, steps_per_epoch: int):
        if self.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum,
                                  nesterov=self.nesterov and self.momentum > 0, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        total = self.epochs * steps_per_epoch
        warm = self.warmup_epochs * steps_per_epoch

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            if self.scheduler == "constant":
                return 1.0
            return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class DistributedContext:
    """Rank information; ``from_env`` initialises torch.distributed under torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, device: str) -> "DistributedContext":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

    def all_reduce_sum(self, values: Sequence[float]) -> list[float]:
        if not self.active:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()


class ShardedSampler(Sampler):
    """Rank ``rank``'s share (every ``world``-th item) of a seeded sampler's sequence.

    All ranks hold identical copies of the base sampler (same seed), so the
    shards are disjoint and together cover the epoch."""

    def __init__(self, base: Sampler, rank: int, world: int) -> None:
        self.base, self.rank, self.world = base, rank, world
        self.generator = getattr(base, "generator", None)

    def __len__(self) -> int:
        return len(range(self.rank, len(self.base), self.world))

    def __iter__(self) -> Iterator:
        for i, item in enumerate(self.base):
            if i % self.world == self.rank:
                yield item


def _shard(loader: DataLoader, ctx: DistributedContext) -> DataLoader:
    if not ctx.active:
        return loader
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=ShardedSampler(loader.sampler, ctx.rank, ctx.world_size),
                      num_workers=loader.num_workers, drop_last=loader.drop_last, generator=loader.generator)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: str, ctx: DistributedContext | None = None) -> dict[str, float]:
    """Top-1 accuracy and mean cross-entropy over ``loader`` (summed across ranks)."""
    ctx = ctx or DistributedContext()
    was_training = model.training
    model.eval()
    correct = loss = count = 0.0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        logits = getattr(logits, "value", logits)  # a Brevitas QuantTensor
        # sums stay on the device until the end (float64: the same values as Python floats)
        loss = loss + nn.functional.cross_entropy(logits, y, reduction="sum").to(torch.float64)
        correct = correct + (logits.argmax(1) == y).sum()
        count += len(y)
    correct, loss, count = ctx.all_reduce_sum([float(correct), float(loss), count])
    model.train(was_training)
    return {"acc": correct / max(count, 1), "loss": loss / max(count, 1), "samples": int(count)}


def _stats_collectors(roots: dict[str, nn.Module]):
    """``(key, module)`` for every Brevitas module that collects runtime statistics for a number of
    training steps before its scale becomes a learned parameter (``ParameterFromRuntimeStatsScaling``
    and the zero-point analogue: attributes ``collect_stats_steps`` and ``counter``)."""
    for root_name, root in roots.items():
        for name, module in root.named_modules():
            if hasattr(module, "collect_stats_steps") and hasattr(module, "counter"):
                yield f"{root_name}/{name}", module


def _stats_state(roots: dict[str, nn.Module]) -> dict[str, Any]:
    """The step counter, running statistic and scale parameter of every statistics collector.  None
    is in Brevitas's ``state_dict`` as it is (it stores the running statistic as the scale and, on
    loading, marks the collection finished), so without them a run resumed inside the first
    ``collect_stats_steps`` steps would stop collecting, or, restored to collect on, multiply the
    statistic at the kill into the scale at the end of the collection: either way differ from an
    uninterrupted one."""
    out: dict[str, Any] = {}
    for key, module in _stats_collectors(roots):
        entry: dict[str, Any] = {"counter": int(module.counter)}
        buffer = getattr(module, "buffer", None)
        if isinstance(buffer, torch.Tensor):
            entry["buffer"] = buffer.detach().clone()
        # while collecting, Brevitas's state_dict stores the statistic under ``value``; the parameter
        # itself (its initial value, which the statistic multiplies into at the end) is only here
        value = getattr(module, "value", None)
        if isinstance(value, torch.Tensor):
            entry["value"] = value.detach().clone()
        out[key] = entry
    return out


def _load_stats_state(roots: dict[str, nn.Module], saved: dict[str, Any]) -> None:
    for key, module in _stats_collectors(roots):
        if key not in saved:  # a checkpoint written before these were saved: Brevitas's own behaviour
            continue
        module.counter = int(saved[key]["counter"])
        with torch.no_grad():
            if "buffer" in saved[key]:
                module.buffer.copy_(saved[key]["buffer"])
            if "value" in saved[key]:
                module.value.copy_(saved[key]["value"])


class Trainer:
    """Epoch loop with hooks, evaluation, JSON-lines metrics and exact resume."""

    #: the progress bar shows the loss every this many steps (each read waits for the device)
    POSTFIX_EVERY = 25

    def __init__(
        self,
        model: nn.Module,
        train_loader: DataLoader,
        test_loader: DataLoader | None,
        optim: OptimConfig,
        loss_fn: LossFn,
        run_dir: str | Path,
        *,
        device: str = "cpu",
        seed: int = 0,
        params: Sequence[nn.Parameter] | None = None,
        after_step: Sequence[StepHook] = (),
        before_step: Sequence[StepHook] = (),
        checkpoint_every: int = 1,
        config: dict[str, Any] | None = None,
        extra_state: dict[str, nn.Module] | None = None,
        progress: bool = True,
        max_epochs: int | None = None,
    ) -> None:
        self.device = device
        self.ctx = DistributedContext.from_env(device)
        self.model = model.to(device)
        self.net = model
        if self.ctx.active:
            ids = [self.ctx.local_rank] if device.startswith("cuda") else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.train_loader = _shard(train_loader, self.ctx)
        self.test_loader = _shard(test_loader, self.ctx) if test_loader is not None else None
        self.optim_cfg = optim
        self.loss_fn = loss_fn
        self.run_dir = Path(run_dir)
        self.seed = seed
        self.after_step, self.before_step = list(after_step), list(before_step)
        self.checkpoint_every = checkpoint_every
        self.config = config or {}
        # modules trained alongside the model (hint adapters...) whose state must survive a resume
        self.extra_state = extra_state or {}
        for m in self.extra_state.values():
            m.to(device)
        self.progress = progress and self.ctx.is_main
        self.max_epochs = max_epochs  # stop early (after this many epochs in total): simulates a kill in tests
        params = list(params) if params is not None else list(self.model.parameters())
        for m in self.extra_state.values():
            params += list(m.parameters())
        self.optimizer, self.scheduler = optim.build(params, len(self.train_loader))
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        sampler = self.train_loader.sampler
        gen = getattr(sampler, "generator", None)
        return {
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "extra": {k: m.state_dict() for k, m in self.extra_state.items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state()[1].astype(np.int64).tolist(),
                "numpy_pos": int(np.random.get_state()[2]),
                "python": random.getstate(),
                "sampler": gen.get_state() if gen is not None else None,
            },
            "config": self.config,
            "history": self.history,
            "quant_stats": _stats_state(self._stateful_roots()),
        }

    def _stateful_roots(self) -> dict[str, nn.Module]:
        return {"model": self.model, **{f"extra.{k}": m for k, m in self.extra_state.items()}}

    def _named_parameters(self) -> dict[str, nn.Parameter]:
        return {f"{root}.{name}": p for root, module in self._stateful_roots().items()
                for name, p in module.named_parameters()}

    def load_state(self, state: dict[str, Any]) -> None:
        names = {id(p): name for name, p in self._named_parameters().items()}
        self.model.load_state_dict(state["model"])
        for k, m in self.extra_state.items():
            m.load_state_dict(state["extra"][k])
        # Brevitas re-creates a quantizer's scaling module when its state is loaded: the optimizer
        # would keep stepping the old parameters (and the loaded momentum would sit on them) while
        # the model computes with the new ones -- the optimizer takes the model's parameters again
        now = self._named_parameters()
        for group in self.optimizer.param_groups:
            group["params"] = [now.get(names.get(id(p)), p) for p in group["params"]]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(("MT19937", np.array(rng["numpy"], dtype=np.uint32), rng["numpy_pos"], 0, 0.0))
        random.setstate(rng["python"])
        gen = getattr(self.train_loader.sampler, "generator", None)
        if gen is not None and rng["sampler"] is not None:
            gen.set_state(rng["sampler"])
        self.history = list(state["history"])
        # after the state dicts: loading a scale sets Brevitas's collection counter to "done"
        _load_stats_state(self._stateful_roots(), state.get("quant_stats", {}))

    def resume(self) -> bool:
        """Load the run's latest checkpoint if there is one (verified by checksum)."""
        path = latest_checkpoint(self.run_dir)
        if path is None:
            return False
        self.load_state(load_checkpoint(path))
        return True

    # ------------------------------------------------------------ loop
    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _checkpoint(self) -> None:
        if self.ctx.is_main:
            save_checkpoint(self.run_dir, self.step, self.state())
        if self.ctx.active:
            dist.barrier()

    def fit(self) -> list[dict[str, Any]]:
        """Train until ``optim.epochs`` (resuming first); returns the per-epoch records."""
        if not self.resume():
            seed_everything(self.seed)
        from tqdm import tqdm

        while self.epoch < self.optim_cfg.epochs:
            if self.max_epochs is not None and self.epoch >= self.max_epochs:
                break
            self.net.train()
            start = time.perf_counter()
            sums: dict[str, float] = {}
            batches = 0
            bar = tqdm(self.train_loader, desc=f"epoch {self.epoch + 1}/{self.optim_cfg.epochs}",
                       disable=not self.progress, leave=False, unit="batch")
            for x, y in bar:
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
                for hook in self.before_step:
                    hook(self.step)
                loss, metrics = self.loss_fn(self.net, x, y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                for hook in self.after_step:
                    hook(self.step)
                batches += 1
                # metrics stay on the device (float64 sums) until the epoch ends: a float() per
                # step would make the host wait for the GPU every step
                for k, v in {"loss": loss.detach(), **metrics}.items():
                    v = v.detach().to(torch.float64) if isinstance(v, torch.Tensor) else float(v)
                    sums[k] = sums[k] + v if k in sums else v
                if self.progress and batches % self.POSTFIX_EVERY == 0:
                    bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            self.epoch += 1
            keys = sorted(sums)
            totals = self.ctx.all_reduce_sum([float(sums[k]) for k in keys] + [batches])
            record: dict[str, Any] = {"epoch": self.epoch, "step": self.step,
                                      "lr": self.scheduler.get_last_lr()[0],
                                      "train": {k: totals[i] / max(totals[-1], 1) for i, k in enumerate(keys)},
                                      "seconds": time.perf_counter() - start}
            if self.test_loader is not None:
                record["test"] = evaluate(self.model, self.test_loader, self.device, self.ctx)
            self._log(record)
            if self.ctx.is_main and self.progress:
                test = record.get("test", {})
                tqdm.write(f"epoch {self.epoch}: train loss {record['train'].get('loss', float('nan')):.4f}"
                           + (f", test acc {test['acc']:.4f}" if test else "") + f" ({record['seconds']:.0f} s)")
            if self.epoch % self.checkpoint_every == 0 or self.epoch == self.optim_cfg.epochs:
                self._checkpoint()
        return self.history
