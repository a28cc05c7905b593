"""Run recipes behind the CLI: configs in, trained weights and metrics out.

``winoforge train-teacher --config configs/fmnist_teacher_vgg.toml`` calls
:func:`train_teacher`, ``winoforge distill --config ...`` :func:`distill`.  A run
folder holds ``config.json`` (the resolved config), ``metrics.jsonl``,
``checkpoints/`` (resumable) and, when finished, ``model.safetensors`` +
``model.json`` (architecture and final metrics, with the sha256 of the weights
file).  A distillation run may also hold ``mixed_precision.json`` (the measured
sensitivities and the chosen widths, reused on resume) and ``peer{k}/`` (each
peer of an online-distillation group).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .checkpoint import separate_shared, sha256_file
from .config import to_dict
from .data import DeviceLoader, load_dataset, make_loader, default_augment
from .losses import (DistillationConfig, DistillationObjective, EnsembleTeacher, FeatureCapture, HintPair,
                     OnlineDistillation, infer_channels)
from .pretrained import PREFIX, allowed_names
from .mixed_precision import MixedPrecisionConfig, search_student_bits, student_bits
from .pruning import CubicSchedule, scheduled_keep
from .students import PeerGroup, StudentConfig, build_student, winograd_layers
from .teachers import TEACHERS, build_teacher
from .train import DistributedContext, OptimConfig, Trainer, evaluate
from .winograd_layer import QuantWinogradConv2d

__all__ = ["DataConfig", "TeacherRunConfig", "train_teacher", "save_model", "load_teacher", "teacher_run_dir",
           "load_student",
           "PruneConfig", "OnlineConfig", "DistillRunConfig", "distill", "without_teacher"]


@dataclass
class DataConfig:
    name: Literal["fashion-mnist", "cifar10", "synthetic"] = "fashion-mnist"
    root: Path | None = None
    batch_size: int = 128
    augment: bool = True
    workers: int = 0
    train_subset: int | None = None  # first N training images (quick runs)
    test_subset: int | None = None
    # keep the images on the run's device and build batches there (DeviceLoader): the same
    # batches as the DataLoader, without a per-sample Python pipeline for a GPU to wait on
    device_resident: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"data.batch_size={self.batch_size} is out of range; allowed: >= 1")
        for f in ("train_subset", "test_subset"):
            v = getattr(self, f)
            if v is not None and v < 1:
                raise ValueError(f"data.{f}={v} is out of range; allowed: >= 1 or unset")

    def loaders(self, seed: int, device: str = "cpu"):
        train = load_dataset(self.name, "train", self.root)
        test = load_dataset(self.name, "test", self.root)
        if self.train_subset:
            train = train.subset(slice(0, self.train_subset))
        if self.test_subset:
            test = test.subset(slice(0, self.test_subset))
        if self.device_resident:
            train_loader = DeviceLoader(train, batch_size=self.batch_size, shuffle=True, seed=seed,
                                        augment=default_augment(train) if self.augment else None, device=device)
            test_loader = DeviceLoader(test, batch_size=max(self.batch_size, 256), device=device)
            return train, train_loader, test_loader
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
    save_file(separate_shared({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}),
              str(weights))
    (out_dir / "model.json").write_text(json.dumps({**info, "sha256": sha256_file(weights)}, indent=2) + "\n")
    return weights


def load_teacher(run_dir: str | Path, device: str = "cpu") -> nn.Module:
    """A finished teacher run's model (checksum verified), in eval mode.  ``run_dir`` may name a
    shipped model, ``"pretrained:fmnist-vgg-teacher"`` (:mod:`winoforge.model.pretrained`)."""
    run_dir = teacher_run_dir(run_dir)
    info = json.loads((run_dir / "model.json").read_text())
    weights = run_dir / "model.safetensors"
    if sha256_file(weights) != info["sha256"]:
        raise ValueError(f"{weights} does not match its sha256 in model.json: refusing a corrupt teacher")
    model = build_teacher(info["arch"], info["in_channels"], info["num_classes"], **info["arch_options"])
    model.load_state_dict(load_file(str(weights)))
    return model.to(device).eval()


def teacher_run_dir(spec: str | Path, index: int | None = None) -> Path:
    """The run folder a ``teachers`` entry names: a path, or ``"pretrained:NAME"`` resolved (sha256
    checked) by the model registry.  Refuses, naming ``teachers[index]``, one that holds no finished run."""
    from .pretrained import resolve_run

    where = f"teachers[{index}]={str(spec)!r}" if index is not None else repr(str(spec))
    try:
        run = resolve_run(spec)
    except (ValueError, OSError) as err:
        raise ValueError(f"{where}: {' '.join(str(err).split())}") from None
    if not (run / "model.json").is_file():
        raise ValueError(f"{where} holds no finished teacher run (no model.json); train it first (`winoforge "
                         "train-teacher --config configs/fmnist_teacher_vgg.toml`), name a shipped one "
                         "(\"pretrained:fmnist-vgg-teacher\") or use --no-teacher")
    return run


def load_student(run_dir: str | Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """``(model, info)`` of a finished distillation run, in eval mode; refuses a corrupt weights file."""
    from .config import from_dict

    run_dir = Path(run_dir)
    info_path = run_dir / "model.json"
    if not info_path.is_file():
        raise ValueError(f"{run_dir} holds no finished student (no model.json); train one with "
                         "`winoforge distill --config configs/fmnist_distill_w4a4_srbs25.toml`")
    info = json.loads(info_path.read_text())
    if info.get("kind") != "student":
        raise ValueError(f"{run_dir} is not a student run (kind={info.get('kind')!r})")
    weights = run_dir / "model.safetensors"
    if sha256_file(weights) != info["sha256"]:
        raise ValueError(f"{weights} does not match its sha256 in model.json: refusing a corrupt student")
    model = build_student(from_dict(StudentConfig, info["student"], "student"), info["in_channels"],
                          info["num_classes"])
    model.load_state_dict(load_file(str(weights)))
    return model.to(device).eval(), info


def _cross_entropy(net: nn.Module, x: torch.Tensor, y: torch.Tensor):
    logits = net(x)
    return nn.functional.cross_entropy(logits, y), {"acc": (logits.argmax(1) == y).float().mean().detach()}


def train_teacher(cfg: TeacherRunConfig, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) an FP32 teacher; returns the final test metrics."""
    torch.manual_seed(cfg.seed)
    train, train_loader, test_loader = cfg.data.loaders(cfg.seed, cfg.device)
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
class OnlineConfig:
    """Online distillation among ``peers`` students trained together (TOML table ``[online]``).

    With ``peers >= 2`` each peer adds ``weight * T^2 KL(mean of the other peers' softened
    predictions || its own)`` at ``temperature`` (deep mutual learning,
    :class:`~winoforge.model.losses.OnlineDistillation`) to its own objective (task CE and,
    with teachers, KD from them).  ``peers = 1``: a single student, no online term."""

    peers: int = 1
    weight: float = 1.0
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.peers, bool) or not isinstance(self.peers, int) or self.peers < 1:
            raise ValueError(f"online.peers={self.peers!r} is out of range; allowed: integer >= 1")
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"online.weight={self.weight!r} is out of range; allowed: finite number >= 0")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"online.temperature={self.temperature!r} is out of range; allowed: finite number > 0")


@dataclass
class DistillRunConfig:
    """A distillation run (``winoforge distill``): the student, its teachers (none: no KD),
    data, optimizer, the objective (``[distill]``, ``hints``), the SRBS schedule
    (``[prune]``), the per-layer width search (``[mixed_precision]``) and online peers
    (``[online]``)."""

    out_dir: Path = Path("runs/student")
    seed: int = 0
    device: str = "cpu"
    # finished teacher runs, or "pretrained:NAME" (a shipped model); several = an ensemble; none = no KD
    teachers: list[Path] = field(default_factory=list)
    student: StudentConfig = field(default_factory=StudentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillationConfig = field(default_factory=DistillationConfig)
    hints: list[tuple[str, str]] = field(default_factory=list)  # (student layer, teacher layer)
    hint_weights: list[float] = field(default_factory=list)
    prune: PruneConfig = field(default_factory=PruneConfig)
    init_from_teacher: bool = False  # the first teacher's convs (U = G g G^T), BN and classifier, by name
    mixed_precision: MixedPrecisionConfig = field(default_factory=MixedPrecisionConfig)
    online: OnlineConfig = field(default_factory=OnlineConfig)
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
        for i, teacher in enumerate(self.teachers):
            if str(teacher).startswith(PREFIX):  # a registry name: unknown ones refused where the config is made
                name = str(teacher)[len(PREFIX):]
                if name not in allowed_names():
                    raise ValueError(f"teachers[{i}]={str(teacher)!r} names no pretrained model; allowed: "
                                     + ", ".join(PREFIX + n for n in allowed_names()))
        if self.hints and not self.teachers:
            raise ValueError("hints need at least one teacher")
        if self.mixed_precision.enabled:
            if self.student.precision != "quant":
                raise ValueError("mixed_precision.enabled needs student.precision='quant' "
                                 "(an fp32 student has no widths)")
            if not self.teachers:
                raise ValueError("mixed_precision.enabled needs at least one teacher: the sensitivity is measured on "
                                 "the student initialised from teachers[0]")
        if not self.teachers and self.distill.kd_on:
            raise ValueError(f"distill.kd={self.distill.kd!r} with kd_weight > 0 needs at least one teacher; "
                             "allowed without teachers: distill.kd='none'")


def without_teacher(cfg: DistillRunConfig, layer_bits: dict[str, tuple[int, int]] | None = None) -> DistillRunConfig:
    """The same run without any teacher: no KD, hints, initialisation or width search.

    With ``mixed_precision.enabled`` the widths cannot be searched without a teacher:
    pass ``layer_bits`` (those chosen for the run with the teacher, from its
    ``model.json``) so both runs train the same student."""
    if cfg.mixed_precision.enabled and layer_bits is None:
        raise ValueError("without_teacher: mixed_precision.enabled needs the chosen layer_bits of the run with teacher")
    student = cfg.student
    if layer_bits is not None:
        student = replace(student, layer_bits={k: tuple(v) for k, v in layer_bits.items()})
    return replace(cfg, teachers=[], hints=[], hint_weights=[], init_from_teacher=False, student=student,
                   distill=replace(cfg.distill, kd="none", hint_weight=0.0, ab_weight=0.0),
                   mixed_precision=replace(cfg.mixed_precision, enabled=False))


@torch.no_grad()
def _init_from_teacher(student: nn.Module, teacher: nn.Module) -> list[str]:
    """Copy ``teacher`` into ``student`` wherever module names and shapes match: 3x3 convs
    into Winograd layers (``U = G g G^T``; a Winograd layer of another student as it is), other convs (shortcut projections) as they are,
    BatchNorm layers (affine parameters and running statistics) and linear layers (the
    classifier).  Returns the names of the initialised student modules."""
    source = dict(teacher.named_modules())
    done = []
    for name, mod in student.named_modules():
        src = source.get(name)
        if src is None:
            continue
        if isinstance(mod, QuantWinogradConv2d):
            if isinstance(src, nn.Conv2d) and tuple(src.weight.shape) == (mod.out_channels, mod.in_channels, 3, 3):
                mod.load_spatial_weight(src.weight.detach().cpu())
                done.append(name)
            elif (isinstance(src, QuantWinogradConv2d) and src.weight.shape == mod.weight.shape
                  and (src.bias is None) == (mod.bias is None)):
                # another student of this architecture (e.g. its FP32 twin): U as it is
                mod.weight.copy_(src.weight)
                if mod.bias is not None:
                    mod.bias.copy_(src.bias)
                done.append(name)
        elif ((isinstance(mod, nn.Conv2d) and isinstance(src, nn.Conv2d))
              or (isinstance(mod, nn.Linear) and isinstance(src, nn.Linear))):
            if src.weight.shape != mod.weight.shape or (src.bias is None) != (mod.bias is None):
                continue
            mod.weight.copy_(src.weight)
            if mod.bias is not None:
                mod.bias.copy_(src.bias)
            done.append(name)
        elif (isinstance(mod, nn.BatchNorm2d) and isinstance(src, nn.BatchNorm2d)
              and src.num_features == mod.num_features):
            mod.load_state_dict(src.state_dict())
            done.append(name)
    return done


def _calibration_batches(cfg: DistillRunConfig, train) -> tuple[list[torch.Tensor], list[tuple[torch.Tensor, ...]]]:
    """Two disjoint, seeded random parts of the training set (never the test set): input
    batches to calibrate ranges and BN statistics, and held-out (input, label) batches."""
    mp, bs = cfg.mixed_precision, cfg.data.batch_size
    n = len(train)
    if n < 2:
        raise ValueError(f"mixed_precision needs at least 2 training images, got {n}")
    n_cal = min(mp.bn_batches * bs, n // 2)
    n_eval = min(mp.calibration_batches * bs, n - n_cal)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed)).numpy()
    cal = [x for x, _ in make_loader(train.subset(order[:n_cal]), batch_size=bs)]
    held = list(make_loader(train.subset(order[n_cal:n_cal + n_eval]), batch_size=bs))
    return cal, held


def _choose_widths(cfg: DistillRunConfig, train, teachers: list[nn.Module], teacher: nn.Module,
                   progress: bool, is_main: bool) -> dict[str, Any]:
    """The mixed-precision pre-step: measure, choose, record in ``mixed_precision.json``
    (a resumed run reads the record instead of measuring again)."""
    record = cfg.out_dir / "mixed_precision.json"
    inputs = {k: v for k, v in to_dict(cfg).items() if k in ("seed", "teachers", "student", "data", "prune",
                                                                "init_from_teacher", "mixed_precision")}
    inputs["data"] = {k: v for k, v in inputs["data"].items() if k != "workers"}  # same batches for any count
    if record.is_file():
        saved = json.loads(record.read_text())
        if saved.get("inputs") != inputs:
            raise ValueError(f"{record} was measured for another config (seed, teachers, student, data, prune or "
                             "mixed_precision differ); allowed: the same config, or a new out_dir")
        return saved
    in_channels = train.image_shape[0]

    source_run = cfg.mixed_precision.init_run
    source = load_student(source_run, cfg.device)[0] if source_run is not None else teachers[0]
    what = f"the run mixed_precision.init_run={str(source_run)!r}" if source_run is not None else "teachers[0]"

    def init(model: nn.Module) -> None:
        done = set(_init_from_teacher(model, source))
        missing = [n for n in winograd_layers(model) if n not in done]
        if missing:
            raise ValueError(f"mixed_precision: the student's Winograd layers {missing} have no 3x3 conv or Winograd "
                             f"layer of the same name and shape in {what}; the sensitivity is measured on the student "
                             "initialised from it, so it needs the student's architecture (a teacher of another "
                             "width: set mixed_precision.init_run to a finished run of the student's architecture, "
                             "e.g. its FP32 twin)")

    calibration, held_out = _calibration_batches(cfg, train)
    torch.manual_seed(cfg.seed)
    report = search_student_bits(cfg.student, in_channels, train.num_classes, train.image_shape, cfg.mixed_precision,
                                 init=init, calibration=calibration, held_out=held_out, teacher=teacher,
                                 keep=cfg.prune.keep, device=cfg.device, progress=progress)
    report["inputs"] = inputs
    if is_main:
        record.write_text(json.dumps(report, indent=2) + "\n")
    return report


def distill(cfg: DistillRunConfig, progress: bool = True, max_epochs: int | None = None) -> dict[str, Any]:
    """Train a quantized Winograd-SRBS student (or an fp32 one, or a group of peers), with KD
    from ``cfg.teachers`` when given; returns the final test metrics (with ``density`` and
    ``mean_bits``).

    Steps: load the teachers; with ``mixed_precision.enabled`` choose the per-layer widths
    (written into ``student.layer_bits`` of the saved ``config.json`` and ``model.json``);
    build the student(s), initialise from the first teacher; train with the objective of
    ``cfg.distill`` (+ the online term with ``online.peers >= 2``) and the SRBS schedule;
    save.  ``max_epochs`` stops after that many epochs in all, leaving a resumable run
    without model files (a simulated kill, for tests).
    """
    if cfg.mixed_precision.enabled and cfg.student.layer_bits:
        raise ValueError("student.layer_bits must be empty with mixed_precision.enabled (the search chooses the "
                         "widths); allowed: layer_bits with mixed_precision.enabled=false")
    torch.manual_seed(cfg.seed)
    train, train_loader, test_loader = cfg.data.loaders(cfg.seed, cfg.device)
    in_channels, num_classes = train.image_shape[0], train.num_classes
    teachers = [load_teacher(p, cfg.device) for p in cfg.teachers]
    teacher = None if not teachers else teachers[0] if len(teachers) == 1 else EnsembleTeacher(teachers)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    is_main = DistributedContext.from_env(cfg.device).is_main
    widths = None
    if cfg.mixed_precision.enabled:
        widths = _choose_widths(cfg, train, teachers, teacher, progress, is_main)
        chosen = {n: tuple(p) for n, p in widths["layer_bits"].items()}
        cfg = replace(cfg, student=replace(cfg.student, layer_bits=chosen))
    torch.manual_seed(cfg.seed)  # the students' initialisation depends on the seed only
    k_peers = cfg.online.peers
    students = [build_student(cfg.student, in_channels, num_classes) for _ in range(k_peers)]
    if cfg.init_from_teacher and teachers:
        # only the first peer: identical peers would see identical gradients and stay identical
        _init_from_teacher(students[0], teachers[0])
    model = students[0] if k_peers == 1 else PeerGroup(students)
    pairs = []
    if cfg.hints:
        example = torch.zeros(1, *train.image_shape)
        s_ch = infer_channels(students[0], [s for s, _ in cfg.hints], example)
        t_ch = infer_channels(teachers[0], [t for _, t in cfg.hints], example.to(cfg.device))
        weights = cfg.hint_weights or [1.0] * len(cfg.hints)
        pairs = [HintPair(s, t, s_ch[s], t_ch[t], w) for (s, t), w in zip(cfg.hints, weights)]
    objectives = [DistillationObjective.from_pairs(cfg.distill, hint_pairs=pairs) for _ in students]
    s_captures = [FeatureCapture(s, [p.student for p in pairs]) if pairs else None for s in students]
    t_capture = FeatureCapture(teachers[0], [p.teacher for p in pairs], detach=True) if pairs else None
    online = OnlineDistillation(cfg.online.temperature) if k_peers > 1 else None

    def loss_fn(net, x, y):
        t_logits = None
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(x)
        outputs = net(x, all_peers=True) if online is not None else [net(x)]
        totals, logged = [], {}
        for k, logits in enumerate(outputs):
            cap = s_captures[k]
            total, terms = objectives[k](logits, y, t_logits, cap.features if cap else None,
                                         t_capture.features if t_capture else None)
            totals.append(total)
            terms["acc"] = (logits.argmax(1) == y).float().mean().detach()
            for name, value in terms.items():
                logged[name] = logged.get(name, 0.0) + value / len(outputs)
            if online is not None:
                logged[f"acc{k}"] = terms["acc"]
        loss = totals[0] if len(totals) == 1 else torch.stack(totals).sum()
        if online is not None:
            peer_terms = online.peer_losses(outputs)
            loss = loss + cfg.online.weight * peer_terms.sum()
            logged["online"] = peer_terms.detach().mean()
        return loss, logged

    layers = [m for m in winograd_layers(model).values() if m.srbs_enabled]
    steps_per_epoch = len(train_loader)
    after = []
    if cfg.prune.keep is not None and layers:
        sched = CubicSchedule(cfg.prune.keep / cfg.student.sub_row, cfg.prune.dense_epochs * steps_per_epoch,
                              cfg.prune.span_epochs * steps_per_epoch)

        def set_keep(step: int) -> None:
            # after optimizer step ``step``: the mask for the next one, so the final keep is in
            # place after the schedule's last step even when it is the run's last
            keep = scheduled_keep(sched, step, cfg.student.sub_row, cfg.prune.keep)
            for layer in layers:
                if layer.keep != keep:
                    layer.update_mask(keep)

        after.append(set_keep)
    if layers:
        after.append(lambda step: [layer.apply_mask_() for layer in layers])
    bits = student_bits(students[0], cfg.student, train.image_shape, keep=cfg.prune.keep)
    if is_main:
        (cfg.out_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
    extra = {"objective": objectives[0] if k_peers == 1 else nn.ModuleList(objectives)}
    trainer = Trainer(model, train_loader, test_loader, cfg.optim, loss_fn, cfg.out_dir, device=cfg.device,
                      seed=cfg.seed, after_step=after, checkpoint_every=cfg.checkpoint_every,
                      config=to_dict(cfg), extra_state=extra, progress=progress, max_epochs=max_epochs)
    history = trainer.fit()
    final = dict(history[-1]["test"]) if history else {}
    final["density"] = (min(layer.keep for layer in layers) / cfg.student.sub_row) if layers else 1.0
    final["mean_bits"] = bits["mean_bits"]
    if trainer.epoch < cfg.optim.epochs:  # stopped early: resumable, nothing saved
        return final
    info = {
        "kind": "student", "student": to_dict(cfg.student), "in_channels": in_channels,
        "num_classes": num_classes, "dataset": cfg.data.name, "epochs": trainer.epoch,
        "kd": teacher is not None, "layers": {n: m.srbs_reason for n, m in winograd_layers(students[0]).items()},
        "mean_bits": bits["mean_bits"], "bops": bits["bops"], "bops_w8a8": bits["bops_w8a8"],
        "density": final["density"],
    }
    if widths is not None:
        info["mixed_precision"] = {k: widths[k] for k in ("budget", "mean_bits", "bops", "bops_w8a8", "loss")}
    if online is not None:
        # each peer on the test set; the saved model is the peer with the best last-epoch
        # training accuracy (chosen without looking at the test set)
        peer_tests = [evaluate(s, trainer.test_loader, cfg.device, trainer.ctx) for s in students]
        train_acc = [history[-1]["train"].get(f"acc{k}", 0.0) for k in range(k_peers)]
        best = max(range(k_peers), key=lambda k: train_acc[k])
        final = {**final, **peer_tests[best], "peer": best, "peers": [t["acc"] for t in peer_tests],
                 "ensemble_acc": history[-1]["test"]["acc"]}
        info["online"] = {"peers": k_peers, "chosen": best, "peer_test_acc": final["peers"],
                          "peer_train_acc": train_acc, "ensemble_test_acc": final["ensemble_acc"]}
        if is_main:
            for k, s in enumerate(students):
                save_model(s, cfg.out_dir / f"peer{k}", {**info, "peer": k, "test": peer_tests[k]})
    if is_main:
        save_model(students[0] if online is None else students[final["peer"]], cfg.out_dir, {**info, "test": final})
    return final
