"""Run recipes behind the CLI: configs in, trained weights and metrics out.

``winoforge train-teacher --config configs/fmnist_teacher_vgg.toml`` calls
:func:`train_teacher`.  A run folder holds ``config.json`` (the resolved
config), ``metrics.jsonl``, ``checkpoints/`` (resumable) and, when finished,
``model.safetensors`` + ``model.json`` (architecture and final metrics, with
the sha256 of the weights file).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .config import to_dict
from .data import load_dataset, make_loader, default_augment
from .teachers import TEACHERS, build_teacher
from .train import OptimConfig, Trainer

__all__ = ["DataConfig", "TeacherRunConfig", "train_teacher", "save_model", "load_teacher"]


@dataclass
class DataConfig:
    name: Literal["fashion-mnist", "cifar10", "synthetic"] = "fashion-mnist"
    root: Path | None = None
    batch_size: int = 128
    augment: bool = True
    workers: int = 0
    train_subset: int | None = None  # first N training images (quick runs)
    test_subset: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"data.batch_size={self.batch_size} is out of range; allowed: >= 1")
        for f in ("train_subset", "test_subset"):
            v = getattr(self, f)
            if v is not None and v < 1:
                raise ValueError(f"data.{f}={v} is out of range; allowed: >= 1 or unset")

    def loaders(self, seed: int):
        train = load_dataset(self.name, "train", self.root)
        test = load_dataset(self.name, "test", self.root)
        if self.train_subset:
            train = train.subset(slice(0, self.train_subset))
        if self.test_subset:
            test = test.subset(slice(0, self.test_subset))
        train_loader = make_loader(train, batch_size=self.batch_size, shuffle=True, seed=seed,
                                   augment=default_augment(train) if self.augment else None,
                                   num_workers=self.workers)
        test_loader = make_loader(test, batch_size=max(self.batch_size, 256), num_workers=self.workers)
        return train, train_loader, test_loader


@dataclass
class TeacherRunConfig:
    out_dir: Path = Path("runs/teacher")
    seed: int = 0
    device: str = "cpu"
    arch: str = "vgg"
    arch_options: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint_every: int = 1

    def __post_init__(self) -> None:
        if self.arch not in TEACHERS:
            raise ValueError(f"arch={self.arch!r} is not allowed; allowed: {', '.join(sorted(TEACHERS))}")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every={self.checkpoint_every} is out of range; allowed: >= 1")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_model(model: nn.Module, out_dir: Path, info: dict[str, Any]) -> Path:
    """``model.safetensors`` + ``model.json`` (``info`` plus the weights' sha256)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / "model.safetensors"
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(weights))
    (out_dir / "model.json").write_text(json.dumps({**info, "sha256": _sha256(weights)}, indent=2) + "\n")
    return weights


def load_teacher(run_dir: str | Path, device: str = "cpu") -> nn.Module:
    """A finished teacher run's model (checksum verified), in eval mode."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "model.json").read_text())
    weights = run_dir / "model.safetensors"
    if _sha256(weights) != info["sha256"]:
        raise ValueError(f"{weights} does not match its sha256 in model.json: refusing a corrupt teacher")
    model = build_teacher(info["arch"], info["in_channels"], info["num_classes"], **info["arch_options"])
    model.load_state_dict(load_file(str(weights)))
    return model.to(device).eval()


def _cross_entropy(net: nn.Module, x: torch.Tensor, y: torch.Tensor):
    logits = net(x)
    return nn.functional.cross_entropy(logits, y), {"acc": float((logits.argmax(1) == y).float().mean())}


def train_teacher(cfg: TeacherRunConfig, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) an FP32 teacher; returns the final test metrics."""
    torch.manual_seed(cfg.seed)
    train, train_loader, test_loader = cfg.data.loaders(cfg.seed)
    in_channels = train.image_shape[0]
    model = build_teacher(cfg.arch, in_channels, train.num_classes, **cfg.arch_options)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    (cfg.out_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
    trainer = Trainer(model, train_loader, test_loader, cfg.optim, _cross_entropy, cfg.out_dir, device=cfg.device,
                      seed=cfg.seed, checkpoint_every=cfg.checkpoint_every, config=to_dict(cfg), progress=progress)
    history = trainer.fit()
    final = history[-1]["test"] if history else {}
    if trainer.ctx.is_main:
        save_model(trainer.model, cfg.out_dir, {
            "arch": cfg.arch, "arch_options": cfg.arch_options, "in_channels": in_channels,
            "num_classes": train.num_classes, "dataset": cfg.data.name, "test": final, "epochs": trainer.epoch,
        })
    return final
