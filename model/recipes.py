"""Run recipes behind the CLI: configs in, trained weights and metrics out.

``winoforge train-teacher --config configs/fmnist_teacher_vgg.toml`` calls
:func:`train_teacher`.  A run folder holds ``config.json`` (the resolved
config), ``metrics.jsonl``, ``checkpoints/`` (resumable) and, when finished,
``model.safetensors`` + ``model.json`` (architecture and final metrics, with
the sha256 of the weights file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .checkpoint import sha256_file
from .config import to_dict
from .data import load_dataset, make_loader, default_augment
from .losses import DistillationConfig, DistillationObjective, EnsembleTeacher, FeatureCapture, HintPair, infer_channels
from .pruning import CubicSchedule, scheduled_keep
from .students import StudentConfig, build_student, winograd_layers
from .teachers import TEACHERS, build_teacher
from .train import OptimConfig, Trainer

__all__ = ["DataConfig", "TeacherRunConfig", "train_teacher", "save_model", "load_teacher",
           "PruneConfig", "DistillRunConfig", "distill"]


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


def save_model(model: nn.Module, out_dir: Path, info: dict[str, Any]) -> Path:
    """``model.safetensors`` + ``model.json`` (``info`` plus the weights' sha256)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / "model.safetensors"
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(weights))
    (out_dir / "model.json").write_text(json.dumps({**info, "sha256": sha256_file(weights)}, indent=2) + "\n")
    return weights


def load_teacher(run_dir: str | Path, device: str = "cpu") -> nn.Module:
    """A finished teacher run's model (checksum verified), in eval mode."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "model.json").read_text())
    weights = run_dir / "model.safetensors"
    if sha256_file(weights) != info["sha256"]:
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


# ------------------------------------------------------------------ distillation


@dataclass
class PruneConfig:
    """Two-step SRBS schedule: ``dense_epochs`` dense in the Winograd domain, then the cubic
    schedule from density 1 to ``keep/sub_row`` over ``span_epochs``; ``keep=None``: no pruning."""

    keep: int | None = None
    dense_epochs: int = 0
    span_epochs: int = 1

    def __post_init__(self) -> None:
        if self.dense_epochs < 0:
            raise ValueError(f"prune.dense_epochs={self.dense_epochs} is out of range; allowed: >= 0")
        if self.span_epochs < 1:
            raise ValueError(f"prune.span_epochs={self.span_epochs} is out of range; allowed: >= 1")


@dataclass
class DistillRunConfig:
    out_dir: Path = Path("runs/student")
    seed: int = 0
    device: str = "cpu"
    teachers: list[Path] = field(default_factory=list)  # finished teacher runs; several = an ensemble; none = no KD
    student: StudentConfig = field(default_factory=StudentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillationConfig = field(default_factory=DistillationConfig)
    hints: list[tuple[str, str]] = field(default_factory=list)  # (student layer, teacher layer)
    hint_weights: list[float] = field(default_factory=list)
    prune: PruneConfig = field(default_factory=PruneConfig)
    init_from_teacher: bool = False  # U = G g G^T from the first teacher's matching 3x3 convs
    checkpoint_every: int = 1

    def __post_init__(self) -> None:
        if self.prune.keep is not None:
            if self.student.sub_row is None:
                raise ValueError("prune.keep needs student.sub_row")
            if not 1 <= self.prune.keep <= self.student.sub_row:
                raise ValueError(f"prune.keep={self.prune.keep} is out of range; allowed: 1..{self.student.sub_row}")
            if self.prune.dense_epochs + self.prune.span_epochs > self.optim.epochs:
                raise ValueError("prune.dense_epochs + prune.span_epochs must not exceed optim.epochs")
        if self.hint_weights and len(self.hint_weights) != len(self.hints):
            raise ValueError("hint_weights must have one weight per hint pair (or be empty)")
        if self.hints and not self.teachers:
            raise ValueError("hints need at least one teacher")


def _init_from_teacher(student: nn.Module, teacher: nn.Module) -> int:
    """Copy the teacher's 3x3 convs into the student's Winograd layers in order, where shapes match."""
    convs = [m for m in teacher.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.stride == (1, 1)]
    done = 0
    for layer, conv in zip(winograd_layers(student).values(), convs):
        if tuple(conv.weight.shape) == (layer.out_channels, layer.in_channels, 3, 3):
            layer.load_spatial_weight(conv.weight.detach().cpu())
            done += 1
    return done


def distill(cfg: DistillRunConfig, progress: bool = True) -> dict[str, Any]:
    """Train a quantized Winograd-SRBS student, with KD from ``cfg.teachers`` when given."""
    torch.manual_seed(cfg.seed)
    train, train_loader, test_loader = cfg.data.loaders(cfg.seed)
    in_channels = train.image_shape[0]
    student = build_student(cfg.student, in_channels, train.num_classes)
    teachers = [load_teacher(p, cfg.device) for p in cfg.teachers]
    teacher = None if not teachers else teachers[0] if len(teachers) == 1 else EnsembleTeacher(teachers)
    if cfg.init_from_teacher and teachers:
        _init_from_teacher(student, teachers[0])
    pairs = []
    if cfg.hints:
        example = torch.zeros(1, *train.image_shape)
        s_ch = infer_channels(student, [s for s, _ in cfg.hints], example)
        t_ch = infer_channels(teachers[0], [t for _, t in cfg.hints], example.to(cfg.device))
        weights = cfg.hint_weights or [1.0] * len(cfg.hints)
        pairs = [HintPair(s, t, s_ch[s], t_ch[t], w) for (s, t), w in zip(cfg.hints, weights)]
    objective = DistillationObjective.from_pairs(cfg.distill, hint_pairs=pairs)
    s_capture = FeatureCapture(student, [p.student for p in pairs]) if pairs else None
    t_capture = FeatureCapture(teachers[0], [p.teacher for p in pairs], detach=True) if pairs else None

    def loss_fn(net, x, y):
        t_logits = None
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(x)
        logits = net(x)
        total, terms = objective(logits, y, t_logits,
                                 s_capture.features if s_capture else None, t_capture.features if t_capture else None)
        return total, {**terms, "acc": float((logits.argmax(1) == y).float().mean())}

    layers = [m for m in winograd_layers(student).values() if m.srbs_enabled]
    steps_per_epoch = len(train_loader)
    before, after = [], []
    if cfg.prune.keep is not None and layers:
        sched = CubicSchedule(cfg.prune.keep / cfg.student.sub_row, cfg.prune.dense_epochs * steps_per_epoch,
                              cfg.prune.span_epochs * steps_per_epoch)

        def set_keep(step: int) -> None:
            keep = scheduled_keep(sched, step, cfg.student.sub_row, cfg.prune.keep)
            for layer in layers:
                if layer.keep != keep:
                    layer.update_mask(keep)

        before.append(set_keep)
    if layers:
        after.append(lambda step: [layer.apply_mask_() for layer in layers])
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    (cfg.out_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
    trainer = Trainer(student, train_loader, test_loader, cfg.optim, loss_fn, cfg.out_dir, device=cfg.device,
                      seed=cfg.seed, before_step=before, after_step=after, checkpoint_every=cfg.checkpoint_every,
                      config=to_dict(cfg), extra_state={"objective": objective}, progress=progress)
    history = trainer.fit()
    final = dict(history[-1]["test"]) if history else {}
    final["density"] = (min(layer.keep for layer in layers) / cfg.student.sub_row) if layers else 1.0
    if trainer.ctx.is_main:
        save_model(trainer.model, cfg.out_dir, {
            "kind": "student", "student": to_dict(cfg.student), "in_channels": in_channels,
            "num_classes": train.num_classes, "dataset": cfg.data.name, "test": final, "epochs": trainer.epoch,
            "kd": teacher is not None, "layers": {n: m.srbs_reason for n, m in winograd_layers(student).items()},
        })
    return final
