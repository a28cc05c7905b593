"""Knowledge-distillation losses as small ``nn.Module``\\ s.

Each module computes one formula from one paper, written in its docstring; none
knows about optimizers, epochs or data.  :class:`DistillationObjective`
composes them from a typed :class:`DistillationConfig`; the trainer composes
the objective with models (see ``winoforge.model.train``: its ``loss_fn``
returns ``(loss, metrics)`` and ``extra_state`` holds trainable adapters).

Conventions used everywhere below:

* logits are ``(B, K)``; ``p^T = softmax(z / T)``;
* ``KL(p || q) = sum_k p_k (log p_k - log q_k)``, summed over classes and
  averaged over the batch (PyTorch's ``reduction="batchmean"``);
* everything that comes from a teacher (logits, feature maps) is **detached**
  inside the loss, so gradients reach only the student (and its adapters),
  whatever the caller passes;
* feature maps are ``(B, C, H, W)``.

Feature maps of intermediate layers are collected with
:class:`FeatureCapture` (forward hooks addressed by ``named_modules()`` name).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "kl_per_sample",
    "SoftTargetKD",
    "DynamicTemperatureKD",
    "annealed_temperature",
    "TemperatureSchedule",
    "match_spatial",
    "HintLoss",
    "ActivationBoundaryLoss",
    "HintPair",
    "CrossLayerHints",
    "ActivationBoundaryHints",
    "EnsembleTeacher",
    "OnlineDistillation",
    "DistillationConfig",
    "DistillationObjective",
    "FeatureCapture",
    "infer_channels",
]


# --------------------------------------------------------------------- checks
def _check_positive(field: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{field}={value!r} is out of range; allowed: finite number > 0")
    return float(value)


def _check_non_negative(field: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{field}={value!r} is out of range; allowed: finite number >= 0")
    return float(value)


def _check_channels(field: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field}={value!r} is out of range; allowed: integer >= 1")
    return value


def _check_logits(student: Tensor, teacher: Tensor) -> None:
    if student.dim() != 2 or student.shape != teacher.shape:
        raise ValueError(
            f"logits must both be (batch, classes) of the same shape; got student {tuple(student.shape)}, "
            f"teacher {tuple(teacher.shape)}"
        )
    if student.shape[1] < 2:
        raise ValueError(f"logits need at least 2 classes, got {student.shape[1]}")


# --------------------------------------------------------- soft-target KD
def kl_per_sample(student_logits: Tensor, teacher_logits: Tensor, temperature: float | Tensor) -> Tensor:
    """``KL(softmax(z_t/T) || softmax(z_s/T))`` per sample, shape ``(B,)``.

    ``temperature`` is a number or a ``(B,)`` tensor (one temperature per
    sample).  The teacher logits are detached.
    """
    _check_logits(student_logits, teacher_logits)
    if isinstance(temperature, Tensor):
        temperature = temperature.detach().reshape(-1, 1)
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)


class _Tempered(nn.Module):
    """A loss with a validated, settable ``temperature`` (schedules change it between steps)."""

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature

    @property
    def temperature(self) -> float:
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self._temperature = _check_positive("temperature", value)


class SoftTargetKD(_Tempered):
    """Soft-target distillation (Hinton, Vinyals, Dean, "Distilling the
    Knowledge in a Neural Network", NIPS DL workshop 2015, arXiv:1503.02531)::

        L = T^2 * mean_b KL( softmax(z_t[b]/T) || softmax(z_s[b]/T) )

    The ``T^2`` factor keeps the gradient magnitude of the soft term
    independent of ``T`` (the gradients of the softened KL scale as ``1/T^2``),
    so its weight against the cross-entropy need not be retuned when ``T``
    changes.  ``temperature`` is a plain attribute: a
    :class:`TemperatureSchedule` may change it between steps.
    """

    def __init__(self, temperature: float = 4.0) -> None:
        super().__init__(temperature)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        t = self.temperature
        return kl_per_sample(student_logits, teacher_logits, t).mean() * (t * t)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class DynamicTemperatureKD(nn.Module):
    """Soft-target KD with a per-sample temperature set by the teacher's confidence.

    Per-sample temperatures follow the idea of Dynamic Temperature KD (Wei &
    Bai, "Dynamic Temperature Knowledge Distillation", arXiv:2404.12711, 2024:
    sample-specific temperatures from the sharpness of the logits) and
    Curriculum Temperature KD (Li et al., AAAI 2023, arXiv:2211.16231).  The
    mapping here is our own, simpler and bounded one::

        p       = softmax(z_t[b])                      (teacher, T = 1)
        c[b]    = clamp((max_k p_k - 1/K) / (1 - 1/K), 0, 1)   # 0: uniform, 1: one-hot
        T[b]    = t_min + (t_max - t_min) * c[b]
        L       = mean_b  T[b]^2 * KL( softmax(z_t[b]/T[b]) || softmax(z_s[b]/T[b]) )

    Why this direction: a confident teacher's output is nearly one-hot and
    carries almost no "dark knowledge" (relative probabilities of the wrong
    classes) at low ``T``; a higher ``T`` exposes it.  An unsure teacher is
    already soft and gets a temperature near ``t_min``.  ``T[b]`` is a
    non-decreasing function of the teacher's max-probability, bounded to
    ``[t_min, t_max]``, and carries no gradient (it depends on the teacher
    only).  Each sample's term has its own ``T[b]^2`` factor, as in
    :class:`SoftTargetKD`.
    """

    def __init__(self, t_min: float = 1.0, t_max: float = 8.0) -> None:
        super().__init__()
        self.t_min = _check_positive("t_min", t_min)
        self.t_max = _check_positive("t_max", t_max)
        if self.t_max < self.t_min:
            raise ValueError(f"t_max={t_max!r} is out of range; allowed: >= t_min ({t_min!r})")

    @torch.no_grad()
    def temperatures(self, teacher_logits: Tensor) -> Tensor:
        """The per-sample temperatures ``T[b]``, shape ``(B,)``, in ``[t_min, t_max]``."""
        k = teacher_logits.shape[1]
        if k < 2:
            raise ValueError(f"logits need at least 2 classes, got {k}")
        z = teacher_logits.detach()
        if z.dtype in (torch.float16, torch.bfloat16):  # softmax of half logits is too coarse for T
            z = z.float()
        p_max = F.softmax(z, dim=1).amax(dim=1)
        confidence = ((p_max - 1.0 / k) / (1.0 - 1.0 / k)).clamp(0.0, 1.0)
        return self.t_min + (self.t_max - self.t_min) * confidence

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        t = self.temperatures(teacher_logits)
        return (kl_per_sample(student_logits, teacher_logits, t) * t * t).mean()

    def extra_repr(self) -> str:
        return f"t_min={self.t_min}, t_max={self.t_max}"


def annealed_temperature(
    step: int, total_steps: int, t_start: float, t_end: float = 1.0,
    shape: Literal["cosine", "linear"] = "cosine",
) -> float:
    """A temperature annealed from ``t_start`` (step 0) to ``t_end`` (``total_steps`` and after).

    ``p = min(step / total_steps, 1)``; linear: ``t_start + (t_end - t_start) * p``;
    cosine: ``t_end + (t_start - t_end) * (1 + cos(pi p)) / 2``.  Soft targets
    early, sharp ones late, in the spirit of Annealing-KD (Jafari et al.,
    EACL 2021), which anneals the teacher's temperature from a maximum to 1.
    """
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps={total_steps!r} is out of range; allowed: integer >= 1")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step={step!r} is out of range; allowed: integer >= 0")
    _check_positive("t_start", t_start)
    _check_positive("t_end", t_end)
    p = min(step / total_steps, 1.0)
    if shape == "linear":
        return t_start + (t_end - t_start) * p
    if shape == "cosine":
        return t_end + (t_start - t_end) * 0.5 * (1.0 + math.cos(math.pi * p))
    raise ValueError(f"shape={shape!r} is not allowed; allowed: 'cosine', 'linear'")


@dataclass(frozen=True)
class TemperatureSchedule:
    """:func:`annealed_temperature` as an object: ``schedule(step) -> T``.

    ``schedule.hook(module)`` returns a ``hook(step)`` for the trainer's
    ``before_step`` list that sets ``module.temperature`` (a
    :class:`SoftTargetKD`, :class:`OnlineDistillation` or
    :class:`DistillationObjective`).
    """

    t_start: float
    total_steps: int
    t_end: float = 1.0
    shape: Literal["cosine", "linear"] = "cosine"

    def __post_init__(self) -> None:
        annealed_temperature(0, self.total_steps, self.t_start, self.t_end, self.shape)  # validates

    def __call__(self, step: int) -> float:
        return annealed_temperature(step, self.total_steps, self.t_start, self.t_end, self.shape)

    def hook(self, module: nn.Module) -> Callable[[int], None]:
        if not hasattr(module, "temperature"):
            raise ValueError(f"{type(module).__name__} has no 'temperature' attribute to schedule")

        def set_temperature(step: int) -> None:
            module.temperature = self(step)

        return set_temperature


# ---------------------------------------------------------- feature hints
def match_spatial(student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor]:
    """Bring two ``(B, C, H, W)`` maps to the same ``H x W``.

    Each map is adaptive-average-pooled to ``(min(H_s, H_t), min(W_s, W_t))``:
    the larger map is pooled down to the smaller one (per axis), never
    upsampled, so no values are invented.  A map already of that size is
    returned unchanged.
    """
    if student.dim() != 4 or teacher.dim() != 4:
        raise ValueError(
            f"feature maps must be (batch, channels, height, width); got student {tuple(student.shape)}, "
            f"teacher {tuple(teacher.shape)}"
        )
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(f"batch sizes differ: student {student.shape[0]}, teacher {teacher.shape[0]}")
    size = (min(student.shape[2], teacher.shape[2]), min(student.shape[3], teacher.shape[3]))
    if tuple(student.shape[2:]) != size:
        student = F.adaptive_avg_pool2d(student, size)
    if tuple(teacher.shape[2:]) != size:
        teacher = F.adaptive_avg_pool2d(teacher, size)
    return student, teacher


def _adapter(student_channels: int, teacher_channels: int, batch_norm: bool) -> nn.Module:
    conv = nn.Conv2d(student_channels, teacher_channels, kernel_size=1, bias=not batch_norm)
    if not batch_norm:
        return conv
    return nn.Sequential(conv, nn.BatchNorm2d(teacher_channels))


class HintLoss(nn.Module):
    """FitNets hint (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015)
    with a 1x1 convolutional adapter (regressor) ``r``::

        s', t' = match_spatial(r(S), T)          # adaptive average pooling of the larger map
        L      = mean over (b, c, h, w) of (s' - t')^2

    ``r = Conv2d(student_channels, teacher_channels, 1)`` (+ ``BatchNorm2d``
    when ``batch_norm``), applied at the student's resolution, before pooling.
    The adapter is trained with the student and dropped after distillation.
    FitNets writes ``1/2 ||.||^2``; we use the per-element mean (MSE), which
    does not grow with the map size, so weights transfer between layers.
    """

    def __init__(self, student_channels: int, teacher_channels: int, *, batch_norm: bool = False) -> None:
        super().__init__()
        self.student_channels = _check_channels("student_channels", student_channels)
        self.teacher_channels = _check_channels("teacher_channels", teacher_channels)
        self.adapter = _adapter(student_channels, teacher_channels, batch_norm)

    def forward(self, student_features: Tensor, teacher_features: Tensor) -> Tensor:
        if student_features.dim() != 4 or student_features.shape[1] != self.student_channels:
            raise ValueError(f"student features {tuple(student_features.shape)}: expected (B, {self.student_channels}, H, W)")
        if teacher_features.dim() != 4 or teacher_features.shape[1] != self.teacher_channels:
            raise ValueError(f"teacher features {tuple(teacher_features.shape)}: expected (B, {self.teacher_channels}, H, W)")
        s, t = match_spatial(self.adapter(student_features), teacher_features.detach())
        return F.mse_loss(s, t)


class ActivationBoundaryLoss(nn.Module):
    """Activation-boundary distillation (Heo, Lee, Yun, Choi, "Knowledge Transfer
    via Distillation of Activation Boundaries Formed by Hidden Neurons",
    AAAI 2019, arXiv:1811.03233), the paper's alternative (hinge-squared) loss::

        rho(T) = 1[T > 0]                          # teacher neuron active
        L      = || rho(T) ⊙ relu(m - r(S))^2 + (1 - rho(T)) ⊙ relu(m + r(S))^2 ||_1
               = sum_{c,h,w} [ rho * relu(m - s)^2 + (1 - rho) * relu(m + s)^2 ]

    on **pre-ReLU** responses ``T`` (teacher) and ``S`` (student), with margin
    ``m > 0``: the student is pushed to be ``>= m`` where the teacher neuron
    fires and ``<= -m`` where it does not; once on the right side of the
    boundary with margin, the loss is exactly 0.  (The paper writes the
    squared L2 norm of ``rho ⊙ relu(m - s) + (1 - rho) ⊙ relu(m + s)``; the two
    masks are disjoint, so it equals the sum above.)

    ``r`` is the connector: ``Conv2d(student_channels, teacher_channels, 1)`` +
    ``BatchNorm2d``, as in the paper, when both channel counts are given;
    identity otherwise.  ``margin`` is a number or one value per teacher
    channel (the official code derives per-channel margins from the teacher's
    BN statistics).  Spatial sizes are matched with :func:`match_spatial`.

    Reduction: ``"batchmean"`` (default) sums over ``(C, H, W)`` and averages
    over the batch, the per-sample squared norm of the paper; ``"mean"``
    averages over every element (scale-free across layers); ``"sum"`` sums all.
    """

    def __init__(
        self, margin: float | Sequence[float] = 1.0, *, student_channels: int | None = None,
        teacher_channels: int | None = None, reduction: Literal["batchmean", "mean", "sum"] = "batchmean",
    ) -> None:
        super().__init__()
        if isinstance(margin, (int, float)) and not isinstance(margin, bool):
            m = torch.tensor([_check_positive("margin", margin)], dtype=torch.float64)
        else:
            values = list(margin)
            if not values:
                raise ValueError("margin=[] is out of range; allowed: a number > 0 or one number > 0 per channel")
            m = torch.tensor([_check_positive(f"margin[{i}]", v) for i, v in enumerate(values)], dtype=torch.float64)
        # float64 so a float64 forward sees the exact margin; cast to the input's dtype in forward
        self.register_buffer("margin", m.to(torch.float64).reshape(1, -1, 1, 1))
        if reduction not in ("batchmean", "mean", "sum"):
            raise ValueError(f"reduction={reduction!r} is not allowed; allowed: 'batchmean', 'mean', 'sum'")
        self.reduction = reduction
        if (student_channels is None) != (teacher_channels is None):
            raise ValueError("give both student_channels and teacher_channels (connector) or neither (identity)")
        if student_channels is None:
            self.connector: nn.Module = nn.Identity()
        else:
            _check_channels("student_channels", student_channels)
            _check_channels("teacher_channels", teacher_channels)
            self.connector = _adapter(student_channels, teacher_channels, batch_norm=True)

    def forward(self, student_preact: Tensor, teacher_preact: Tensor) -> Tensor:
        s, t = match_spatial(self.connector(student_preact), teacher_preact.detach())
        if s.shape[1] != t.shape[1]:
            raise ValueError(f"channel counts differ after the connector: student {s.shape[1]}, teacher {t.shape[1]}")
        if self.margin.shape[1] not in (1, t.shape[1]):
            raise ValueError(f"margin has {self.margin.shape[1]} values; teacher map has {t.shape[1]} channels")
        m = self.margin.to(s.dtype)
        active = (t > 0).to(s.dtype)
        per_element = active * F.relu(m - s).pow(2) + (1.0 - active) * F.relu(m + s).pow(2)
        if self.reduction == "mean":
            return per_element.mean()
        if self.reduction == "sum":
            return per_element.sum()
        return per_element.sum() / s.shape[0]


@dataclass(frozen=True)
class HintPair:
    """One cross-layer hint: the student layer ``student`` learns the teacher layer ``teacher``.

    Names are ``named_modules()`` names.  Any student layer may be paired with
    any teacher layer (cross-layer), one layer may appear in several pairs;
    each pair gets its own adapter.
    """

    student: str
    teacher: str
    student_channels: int
    teacher_channels: int
    weight: float = 1.0

    def __post_init__(self) -> None:
        _check_channels("student_channels", self.student_channels)
        _check_channels("teacher_channels", self.teacher_channels)
        _check_non_negative("weight", self.weight)

    @property
    def key(self) -> str:
        return f"{self.student}->{self.teacher}"


class _PairedFeatureLoss(nn.Module):
    """Several (student layer -> teacher layer) pairs, one loss module each."""

    def __init__(self, pairs: Sequence[HintPair], make: Callable[[HintPair], nn.Module]) -> None:
        super().__init__()
        self.pairs = tuple(pairs)
        if not self.pairs:
            raise ValueError("pairs is empty; allowed: at least one HintPair")
        keys = [p.key for p in self.pairs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"pairs repeat a (student -> teacher) pair: {keys}")
        # ModuleList (not ModuleDict): layer names contain '.', which module keys may not
        self.losses = nn.ModuleList(make(p) for p in self.pairs)

    @property
    def student_layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.student for p in self.pairs))

    @property
    def teacher_layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.teacher for p in self.pairs))

    def pair_losses(self, student_features: Mapping[str, Tensor], teacher_features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Unweighted loss of every pair, keyed ``"student->teacher"``."""
        out = {}
        for pair, loss in zip(self.pairs, self.losses):
            for side, feats, name in (("student", student_features, pair.student), ("teacher", teacher_features, pair.teacher)):
                if name not in feats:
                    raise ValueError(f"no captured {side} feature {name!r} (captured: {sorted(feats)})")
            out[pair.key] = loss(student_features[pair.student], teacher_features[pair.teacher])
        return out

    def forward(self, student_features: Mapping[str, Tensor], teacher_features: Mapping[str, Tensor]) -> Tensor:
        """``sum_pairs weight * loss``."""
        losses = self.pair_losses(student_features, teacher_features)
        return sum(p.weight * losses[p.key] for p in self.pairs)


class CrossLayerHints(_PairedFeatureLoss):
    """Cross-layer FitNets hints: one :class:`HintLoss` (own 1x1 adapter) per :class:`HintPair`.

    ``L = sum_pairs weight_i * HintLoss_i(S[student_i], T[teacher_i])`` (cf.
    the cross-layer matrix with 1x1 connectors of Zou et al., APSIPA TSIP 2021).
    """

    def __init__(self, pairs: Sequence[HintPair], *, batch_norm: bool = False) -> None:
        super().__init__(pairs, lambda p: HintLoss(p.student_channels, p.teacher_channels, batch_norm=batch_norm))


class ActivationBoundaryHints(_PairedFeatureLoss):
    """Activation-boundary transfer at several layers: one :class:`ActivationBoundaryLoss`
    (own connector) per :class:`HintPair`; the features must be **pre-ReLU**.

    ``L = sum_pairs weight_i * AB_i(S[student_i], T[teacher_i])``.
    """

    def __init__(self, pairs: Sequence[HintPair], *, margin: float = 1.0,
                 reduction: Literal["batchmean", "mean", "sum"] = "batchmean") -> None:
        super().__init__(pairs, lambda p: ActivationBoundaryLoss(
            margin, student_channels=p.student_channels, teacher_channels=p.teacher_channels, reduction=reduction))


# ------------------------------------------------------- teachers, peers
class EnsembleTeacher(nn.Module):
    """Several frozen teachers as one: ``z = (1/N) sum_i z_i`` (mean of logits).

    The members are put in eval mode, their parameters get
    ``requires_grad=False``, and ``forward`` runs under ``torch.no_grad``.
    ``train(True)`` is ignored (the ensemble stays in eval mode), so a parent
    module's ``.train()`` cannot switch the teachers' BN/dropout to training.
    Averaging logits (rather than probabilities) keeps the ensemble a logit
    producer that any temperature can soften; cf. the offline ensemble of
    Zou et al. (APSIPA TSIP 2021).
    """

    def __init__(self, teachers: Sequence[nn.Module]) -> None:
        super().__init__()
        teachers = list(teachers)
        if not teachers:
            raise ValueError("teachers is empty; allowed: at least one nn.Module")
        self.teachers = nn.ModuleList(teachers)
        for p in self.teachers.parameters():
            p.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> "EnsembleTeacher":
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        logits = [t(x) for t in self.teachers]
        shapes = {tuple(z.shape) for z in logits}
        if len(shapes) != 1:
            raise ValueError(f"teachers disagree on the output shape: {[tuple(z.shape) for z in logits]}")
        return torch.stack(logits).mean(dim=0)


class OnlineDistillation(_Tempered):
    """Online distillation among peer students, teacher-free.

    Deep mutual learning (Zhang, Xiang, Hospedales, Lu, CVPR 2018) with the
    group target of online KD (cf. OKDDip, Chen et al., AAAI 2020, with
    uniform instead of attention-learned aggregation weights).  For ``N >= 2``
    peers with logits ``z_1..z_N``::

        q_k = (1/(N-1)) sum_{j != k} softmax(z_j / T)     (detached)
        L_k = T^2 * mean_b KL( q_k || softmax(z_k / T) )
        L   = sum_k L_k

    Each peer learns only from its own term (the targets are detached), so the
    sum trains all peers at once with one backward.  For ``N = 2`` this is
    exactly DML; for ``N > 2`` DML averages the KLs to each peer instead of
    taking the KL to the averaged peer distribution.  Each peer's own task
    cross-entropy is added by the caller.
    """

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__(temperature)

    def peer_losses(self, peer_logits: Sequence[Tensor]) -> Tensor:
        """``(L_1, ..., L_N)`` as a tensor of shape ``(N,)``."""
        peer_logits = list(peer_logits)
        if len(peer_logits) < 2:
            raise ValueError(f"online distillation needs at least 2 peers, got {len(peer_logits)}")
        for z in peer_logits[1:]:
            _check_logits(z, peer_logits[0])
        t = self.temperature
        probs = torch.stack([F.softmax(z.detach() / t, dim=1) for z in peer_logits])  # (N, B, K)
        total = probs.sum(dim=0)
        n = len(peer_logits)
        losses = []
        for k, z in enumerate(peer_logits):
            target = (total - probs[k]) / (n - 1)
            log_q = F.log_softmax(z / t, dim=1)
            kl = (target * (target.clamp_min(1e-30).log() - log_q)).sum(dim=1)
            losses.append(kl.mean() * (t * t))
        return torch.stack(losses)

    def forward(self, peer_logits: Sequence[Tensor]) -> Tensor:
        return self.peer_losses(peer_logits).sum()

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


# ------------------------------------------------------------ objective
@dataclass(frozen=True)
class DistillationConfig:
    """Weights and settings of :class:`DistillationObjective` (TOML table ``[distill]``).

    ``total = ce_weight * CE + kd_weight * KD + hint_weight * hints + ab_weight * AB``.

    * ``kd``: ``"soft"`` (:class:`SoftTargetKD` at ``temperature``),
      ``"dynamic"`` (:class:`DynamicTemperatureKD` in ``[t_min, t_max]``) or
      ``"none"``.
    * A term is on when its weight is > 0 (and, for KD, ``kd != "none"``);
      terms that are off are neither computed nor logged.
    * Hinton's ``(1 - alpha) * CE + alpha * KD`` is ``ce_weight = 1 - alpha``,
      ``kd_weight = alpha``.
    * ``ab_margin`` is the AB margin used by
      :meth:`DistillationObjective.from_pairs`; ``label_smoothing`` applies
      to the task cross-entropy.
    """

    ce_weight: float = 1.0
    kd: Literal["none", "soft", "dynamic"] = "soft"
    kd_weight: float = 1.0
    temperature: float = 4.0
    t_min: float = 1.0
    t_max: float = 8.0
    hint_weight: float = 0.0
    ab_weight: float = 0.0
    ab_margin: float = 1.0
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        for name in ("ce_weight", "kd_weight", "hint_weight", "ab_weight"):
            _check_non_negative(f"distill.{name}", getattr(self, name))
        for name in ("temperature", "t_min", "t_max", "ab_margin"):
            _check_positive(f"distill.{name}", getattr(self, name))
        if self.t_max < self.t_min:
            raise ValueError(f"distill.t_max={self.t_max!r} is out of range; allowed: >= distill.t_min ({self.t_min!r})")
        if self.kd not in ("none", "soft", "dynamic"):
            raise ValueError(f"distill.kd={self.kd!r} is not allowed; allowed: 'none', 'soft', 'dynamic'")
        ls = self.label_smoothing
        if isinstance(ls, bool) or not isinstance(ls, (int, float)) or not 0.0 <= ls < 1.0:
            raise ValueError(f"distill.label_smoothing={ls!r} is out of range; allowed: 0 <= label_smoothing < 1")
        if self.ce_weight == 0 and not self.kd_on and self.hint_weight == 0 and self.ab_weight == 0:
            raise ValueError("distill: every weight is 0 (ce_weight, kd_weight, hint_weight, ab_weight); allowed: at least one > 0")

    @property
    def kd_on(self) -> bool:
        return self.kd != "none" and self.kd_weight > 0


class DistillationObjective(nn.Module):
    """Task cross-entropy plus weighted distillation terms, from a :class:`DistillationConfig`.

    ``forward(student_logits, targets, teacher_logits=None, student_features=None,
    teacher_features=None) -> (total, terms)`` where ``terms`` maps ``"ce"``,
    ``"kd"``, ``"hint"``, ``"ab"`` (only the terms that are on) to the
    **unweighted** values as detached 0-d tensors, for logging (``float()`` them when needed:
    converting on every step would synchronise a GPU).  The objective owns the
    trainable hint adapters / AB connectors (``hints``, ``ab``): give its
    parameters to the optimizer (``Trainer(extra_state={"objective": obj})``).
    """

    def __init__(self, config: DistillationConfig, *, hints: CrossLayerHints | None = None,
                 ab: ActivationBoundaryHints | None = None) -> None:
        super().__init__()
        if not isinstance(config, DistillationConfig):
            raise ValueError(f"config must be a DistillationConfig, got {type(config).__name__}")
        self.config = config
        self.kd: nn.Module | None = None
        if config.kd_on:
            self.kd = SoftTargetKD(config.temperature) if config.kd == "soft" else DynamicTemperatureKD(config.t_min, config.t_max)
        if config.hint_weight > 0 and hints is None:
            raise ValueError("distill.hint_weight > 0 needs hint pairs (hints=CrossLayerHints(...))")
        if config.ab_weight > 0 and ab is None:
            raise ValueError("distill.ab_weight > 0 needs layer pairs (ab=ActivationBoundaryHints(...))")
        # modules whose weight is 0 are not kept: their adapters would never train
        self.hints = hints if config.hint_weight > 0 else None
        self.ab = ab if config.ab_weight > 0 else None

    @classmethod
    def from_pairs(cls, config: DistillationConfig, *, hint_pairs: Sequence[HintPair] = (),
                   ab_pairs: Sequence[HintPair] = (), hint_batch_norm: bool = False) -> "DistillationObjective":
        """Build the hint / AB modules from layer pairs (AB with ``config.ab_margin``) and the objective."""
        hints = CrossLayerHints(hint_pairs, batch_norm=hint_batch_norm) if hint_pairs else None
        ab = ActivationBoundaryHints(ab_pairs, margin=config.ab_margin) if ab_pairs else None
        return cls(config, hints=hints, ab=ab)

    @property
    def temperature(self) -> float | None:
        """The soft-target temperature (``None`` unless ``kd="soft"``); settable by a schedule."""
        return self.kd.temperature if isinstance(self.kd, SoftTargetKD) else None

    @temperature.setter
    def temperature(self, value: float) -> None:
        if not isinstance(self.kd, SoftTargetKD):
            raise ValueError("temperature can be scheduled only with distill.kd='soft' and kd_weight > 0")
        self.kd.temperature = value

    def forward(
        self, student_logits: Tensor, targets: Tensor, teacher_logits: Tensor | None = None,
        student_features: Mapping[str, Tensor] | None = None, teacher_features: Mapping[str, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        cfg = self.config
        terms: dict[str, Tensor] = {}
        weighted: list[Tensor] = []
        if cfg.ce_weight > 0:
            terms["ce"] = F.cross_entropy(student_logits, targets, label_smoothing=cfg.label_smoothing)
            weighted.append(cfg.ce_weight * terms["ce"])
        if self.kd is not None:
            if teacher_logits is None:
                raise ValueError("distill.kd is on but no teacher_logits were given")
            terms["kd"] = self.kd(student_logits, teacher_logits)
            weighted.append(cfg.kd_weight * terms["kd"])
        for name, module, weight in (("hint", self.hints, cfg.hint_weight), ("ab", self.ab, cfg.ab_weight)):
            if module is None:
                continue
            if student_features is None or teacher_features is None:
                raise ValueError(f"distill.{name}_weight > 0 but student_features/teacher_features were not given")
            terms[name] = module(student_features, teacher_features)
            weighted.append(weight * terms[name])
        total = torch.stack(weighted).sum()
        # detached 0-d tensors, not floats: a float() here would make a GPU wait every step
        return total, {k: v.detach() for k, v in terms.items()}


# ------------------------------------------------------- feature capture
def _resolve(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    out = {}
    for name in names:
        if name not in modules:
            valid = [n for n in modules if n]
            close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
            few = close or valid[:8]
            more = "" if close or len(valid) <= 8 else f", ... ({len(valid)} in all)"
            raise ValueError(f"unknown layer name {name!r} in {type(model).__name__}; valid names include: "
                             f"{', '.join(repr(n) for n in few)}{more}")
        out[name] = modules[name]
    return out


class FeatureCapture:
    """Collect intermediate activations of ``model`` by ``named_modules()`` name.

    ::

        with FeatureCapture(teacher, ["features.block2"]) as cap:
            logits = teacher(x)
        cap.features["features.block2"]          # (B, C, H, W)

    A forward hook on each named module stores its output (``what="output"``)
    or its first positional input (``what="input"``, e.g. the input of a ReLU
    is the pre-ReLU response; cloned, since an in-place ReLU would overwrite
    it).  Each forward overwrites the previous values.  Hooks stay until
    :meth:`remove` (or the end of the ``with`` block), so a trainer can create
    one capture and reuse it every step.  ``detach=True`` stores detached
    tensors (use it for teachers).  A model wrapped in
    ``DistributedDataParallel`` names its layers ``module.<name>``: pass the
    unwrapped model.
    """

    def __init__(self, model: nn.Module, names: Sequence[str], *, what: Literal["output", "input"] = "output",
                 detach: bool = False) -> None:
        if isinstance(names, str):
            names = [names]
        if what not in ("output", "input"):
            raise ValueError(f"what={what!r} is not allowed; allowed: 'output', 'input'")
        self.names = tuple(dict.fromkeys(names))
        self.what = what
        self.detach = detach
        self.features: dict[str, Tensor] = {}
        self._handles = []
        for name, module in _resolve(model, self.names).items():
            if what == "input":
                self._handles.append(module.register_forward_pre_hook(self._input_hook(name)))
            else:
                self._handles.append(module.register_forward_hook(self._output_hook(name)))

    def _store(self, name: str, value, clone: bool) -> None:
        if not isinstance(value, Tensor) and isinstance(getattr(value, "value", None), Tensor):
            value = value.value  # a Brevitas QuantTensor: its dequantized value
        if not isinstance(value, Tensor):
            raise ValueError(f"layer {name!r} {self.what} is a {type(value).__name__}, not a tensor")
        if self.detach:
            value = value.detach()
        self.features[name] = value.clone() if clone else value

    def _output_hook(self, name: str):
        def hook(module: nn.Module, args: tuple, output) -> None:
            self._store(name, output, clone=False)
        return hook

    def _input_hook(self, name: str):
        # a pre-hook sees the input before the module runs; the clone survives an in-place op
        def hook(module: nn.Module, args: tuple) -> None:
            self._store(name, args[0] if args else None, clone=True)
        return hook

    def clear(self) -> None:
        self.features = {}

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> "FeatureCapture":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


@torch.no_grad()
def infer_channels(model: nn.Module, names: Sequence[str], example_input: Tensor) -> dict[str, int]:
    """Channel count of each named layer's output, from one forward pass of ``example_input``.

    The model's train/eval mode is restored afterwards (it runs in eval mode,
    so BN statistics are not touched).
    """
    was_training = model.training
    model.eval()
    try:
        with FeatureCapture(model, names) as cap:
            model(example_input)
    finally:
        model.train(was_training)
    return {n: int(cap.features[n].shape[1]) for n in cap.names}
