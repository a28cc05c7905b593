"""Mixed precision: per-layer bit widths under a budget of bit operations (BOPs).

Method
------
0. **Free widths** (:func:`layer_pairs`): a quantized layer ``l`` (Winograd conv or the
   classifier) multiplies its ``w_l``-bit weight codes by the codes of the activation
   that feeds it, of ``a_src(l)`` bits (``students.act_sources``; the first layer reads
   the ``in_bits`` image).  Every activation quantizer feeds exactly one quantized
   layer, so the pairs ``(w_l, a_src(l))``, one per layer, are exactly the free widths
   and ``BOPs_l = mults_l * w_l * a_src(l)`` is exact and separable.  In this module a
   layer's *pair* is this (weight, input activation) pair; ``StudentConfig.layer_bits``
   keeps (weight, output activation) and :func:`pairs_to_layer_bits` converts.  The
   image width is fixed: the first layer's candidates vary its weight width only.
1. **Sensitivity** (:func:`measure_sensitivity`): starting from a reference
   assignment (every layer at a high width, e.g. W8A8), change one layer at a
   time to each candidate ``(w_bits, a_bits)`` and measure the increase of a
   loss on held-out calibration data (e.g. the KL divergence from the teacher,
   or the task loss).  ``Delta_l(b) = loss(l at b) - loss(reference)``.
   :func:`search_student_bits` does this for a student: the student at the
   reference widths is initialised from the teacher (a trained network, so the
   measurement means something), its activation ranges and BatchNorm statistics are
   calibrated on a few training batches; for each change it is rebuilt at the new
   widths with the calibrated state, its BN statistics recalibrated on the same
   batches (quantization shifts them), and the loss measured on *other* training
   batches (held out from the calibration, never the test set).
2. **Additive model**: the damage of an assignment is approximated by
   ``sum_l Delta_l(b_l)`` (the usual first-order assumption of HAWQ-style
   methods; Dong et al., ICCV 2019 / NeurIPS 2020), its cost by
   ``sum_l BOPs_l(b_l)`` with ``BOPs_l = mults_l * w_bits * a_bits``.
3. **Exact selection** (:func:`choose_bit_widths`, :func:`choose_under_budget`): minimise
   the damage under ``sum cost <= budget`` -- a multiple-choice knapsack, solved exactly by
   dynamic programming over the Pareto frontier of (cost, damage) of the
   layers seen so far (dominated partial assignments are dropped).  Ties in
   damage go to the cheaper assignment, then to the wider widths.
4. **Budgets** (:class:`MixedPrecisionConfig`): ``bops_fraction = f`` bounds the BOPs
   by ``f`` times those of W8A8; ``mean_bits = b`` bounds the mean of every free width,
   each weighted by the multiplications that use it (:func:`mean_bits` with the image
   width left out), so a uniform WbAb student has exactly ``b``.  ``mults`` are
   multiplications per image at the final SRBS density (``winograd.op_counts``).

The chosen widths are returned per layer name; the recipe writes them into
``student.layer_bits`` of the saved config (``config.json``, ``model.json``) and the
measurement into ``mixed_precision.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import torch
from torch import nn

__all__ = ["BitPair", "measure_sensitivity", "choose_under_budget", "choose_bit_widths", "mean_bits",
           "MixedPrecisionConfig", "layer_mults", "layer_pairs", "pairs_to_layer_bits", "student_bits",
           "search_student_bits", "calibrate", "recalibrate_bn", "exact_candidates"]

BitPair = tuple[int, int]  # (w_bits, a_bits)


def _check_pair(name: str, pair) -> BitPair:
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) and 2 <= b <= 8 for b in pair)):
        raise ValueError(f"{name}={pair!r} is not a bit-width pair; allowed: (w_bits, a_bits) with each in 2..8")
    return int(pair[0]), int(pair[1])


def measure_sensitivity(
    evaluate: Callable[[Mapping[str, BitPair]], float],
    layers: Sequence[str],
    candidates: Sequence[BitPair] | Mapping[str, Sequence[BitPair]],
    reference: BitPair | Mapping[str, BitPair] = (8, 8),
    progress: bool = False,
) -> dict[str, dict[BitPair, float]]:
    """``Delta[layer][pair]``: loss increase when only ``layer`` uses ``pair``.

    ``evaluate(assignment)`` returns the loss of the model with the given
    per-layer widths (every layer named).  The reference itself gets 0.
    ``candidates`` and ``reference`` are the same for every layer, or a mapping
    with one entry per layer.
    """
    if not layers:
        raise ValueError("layers must not be empty")
    refs = {name: _check_pair(f"reference[{name!r}]" if isinstance(reference, Mapping) else "reference",
                              reference[name] if isinstance(reference, Mapping) else reference) for name in layers}
    options: dict[str, list[BitPair]] = {}
    for name in layers:
        cands = candidates[name] if isinstance(candidates, Mapping) else candidates
        where = f"candidates[{name!r}]" if isinstance(candidates, Mapping) else "candidates"
        options[name] = [_check_pair(f"{where}[{i}]", c) for i, c in enumerate(cands)]
    base_assignment = dict(refs)
    base = float(evaluate(base_assignment))
    jobs = [(name, pair) for name in layers for pair in options[name]]
    if progress:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc="sensitivity", unit="eval")
    table: dict[str, dict[BitPair, float]] = {name: {} for name in layers}
    for name, pair in jobs:
        table[name][pair] = 0.0 if pair == refs[name] else float(evaluate({**base_assignment, name: pair})) - base
    return table


def choose_under_budget(
    sensitivity: Mapping[str, Mapping[BitPair, float]],
    costs: Mapping[str, Mapping[BitPair, int]],
    budget: int,
    *,
    budget_name: str = "budget",
    unit: str = "",
) -> dict[str, BitPair]:
    """Exact minimum of ``sum Delta_l(b_l)`` subject to ``sum costs[l][b_l] <= budget`` (integer costs)."""
    if not sensitivity:
        raise ValueError("sensitivity must name at least one layer")
    missing = [name for name in sensitivity if name not in costs]
    if missing:
        raise ValueError(f"costs have no entry for layers {missing}")
    # frontier: list of (cost, damage, choices) with strictly decreasing damage as cost grows
    frontier: list[tuple[int, float, tuple[BitPair, ...]]] = [(0, 0.0, ())]
    names = list(sensitivity)
    for name in names:
        options = sensitivity[name]
        if not options:
            raise ValueError(f"sensitivity[{name!r}] has no candidate widths")
        expanded = []
        for cost, damage, choice in frontier:
            for pair, delta in options.items():
                w, a = _check_pair(f"sensitivity[{name!r}] key", pair)
                c = cost + int(costs[name][(w, a)])
                if c <= budget:
                    expanded.append((c, damage + float(delta), choice + ((w, a),)))
        if not expanded:
            cheapest = sum(min(int(costs[n][tuple(p)]) for p in sensitivity[n]) for n in names)
            raise ValueError(f"{budget_name}={budget} is below the cheapest assignment ({cheapest}{unit})")
        # sort by cost, then damage, then prefer wider widths; keep the Pareto-optimal states
        expanded.sort(key=lambda s: (s[0], s[1], tuple(-w * a for w, a in s[2])))
        frontier = []
        for state in expanded:
            if not frontier or state[1] < frontier[-1][1]:
                frontier.append(state)
    best = min(frontier, key=lambda s: (s[1], s[0]))
    return dict(zip(names, best[2]))


def choose_bit_widths(
    sensitivity: Mapping[str, Mapping[BitPair, float]],
    mults: Mapping[str, int],
    budget_bops: int,
) -> dict[str, BitPair]:
    """Exact minimum of ``sum Delta_l(b_l)`` subject to ``sum mults_l * w * a <= budget_bops``."""
    if not sensitivity:
        raise ValueError("sensitivity must name at least one layer")
    missing = [name for name in sensitivity if name not in mults]
    if missing:
        raise ValueError(f"mults has no entry for layers {missing}")
    costs = {name: {_check_pair(f"sensitivity[{name!r}] key", p): int(mults[name]) * p[0] * p[1] for p in options}
             for name, options in sensitivity.items()}
    return choose_under_budget(sensitivity, costs, budget_bops, budget_name="budget_bops", unit=" BOPs")


def mean_bits(assignment: Mapping[str, BitPair], mults: Mapping[str, int] | None = None,
              fixed_act: Sequence[str] = ()) -> float:
    """Mean of all weight and activation widths, weighted by ``mults`` if given.

    ``fixed_act`` names layers whose activation width is not a choice (the image
    fed to the first layer): only their weight width counts."""
    if not assignment:
        raise ValueError("assignment must not be empty")
    weights = {n: (mults[n] if mults else 1) for n in assignment}
    bits = sum(weights[n] * (w + (0 if n in fixed_act else a)) for n, (w, a) in assignment.items())
    count = sum(weights[n] * (1 if n in fixed_act else 2) for n in assignment)
    return bits / count


# ------------------------------------------------------------------ students


@dataclass
class MixedPrecisionConfig:
    """TOML table ``[mixed_precision]`` of a distillation run (see the module docstring).

    ``candidates``: (w_bits, a_bits) pairs a layer may take (``a``: the width of the
    activation it reads); budget: exactly one of ``mean_bits`` (mean free width, 2..8)
    or ``bops_fraction`` (of the W8A8 BOPs, 0 < f <= 1); ``reference``: the widths the
    changes start from; ``loss``: ``"kl"`` (to the teacher, T = 1) or ``"ce"``;
    ``bn_batches`` training batches calibrate activation ranges and BN statistics,
    ``calibration_batches`` other training batches measure the loss; ``init_run``: a finished
    run of the student's architecture (its FP32 twin, say) to initialise the measured student
    from, where ``teachers[0]`` has another architecture (default: ``teachers[0]``)."""

    enabled: bool = False
    candidates: list[tuple[int, int]] = field(default_factory=lambda: [
        (3, 3), (3, 4), (4, 3), (4, 4), (4, 5), (5, 4), (5, 5), (6, 6), (8, 8)])
    mean_bits: float | None = None
    bops_fraction: float | None = None
    reference: tuple[int, int] = (8, 8)
    loss: Literal["kl", "ce"] = "kl"
    bn_batches: int = 4
    calibration_batches: int = 4
    # a finished run of the student's own architecture (e.g. its FP32 twin) that initialises the
    # student for the sensitivity measurement, where teachers[0] has another architecture
    init_run: Path | None = None

    def __post_init__(self) -> None:
        if not self.candidates:
            raise ValueError("mixed_precision.candidates is empty; allowed: at least one (w_bits, a_bits) pair")
        self.candidates = [_check_pair(f"mixed_precision.candidates[{i}]", c) for i, c in enumerate(self.candidates)]
        self.reference = _check_pair("mixed_precision.reference", self.reference)
        if self.loss not in ("kl", "ce"):
            raise ValueError(f"mixed_precision.loss={self.loss!r} is not allowed; allowed: 'kl', 'ce'")
        for f in ("bn_batches", "calibration_batches"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"mixed_precision.{f}={v!r} is out of range; allowed: integer >= 1")
        if self.mean_bits is not None and not (math.isfinite(self.mean_bits) and 2 <= self.mean_bits <= 8):
            raise ValueError(f"mixed_precision.mean_bits={self.mean_bits!r} is out of range; allowed: 2..8")
        if self.bops_fraction is not None and not (math.isfinite(self.bops_fraction) and 0 < self.bops_fraction <= 1):
            raise ValueError(f"mixed_precision.bops_fraction={self.bops_fraction!r} is out of range; "
                             "allowed: 0 < bops_fraction <= 1")
        if self.mean_bits is not None and self.bops_fraction is not None:
            raise ValueError("mixed_precision.mean_bits and mixed_precision.bops_fraction are both set; "
                             "allowed: one budget")
        if self.enabled and self.mean_bits is None and self.bops_fraction is None:
            raise ValueError("mixed_precision.enabled needs a budget; allowed: set mixed_precision.mean_bits "
                             "or mixed_precision.bops_fraction")


def layer_mults(model: nn.Module, image_shape: Sequence[int], keep: int | None = None) -> dict[str, int]:
    """Multiplications per image of each quantized layer of a student (``quant_layer_names``),
    from one forward pass of a zero image: Winograd layers at SRBS ``keep`` (default: their
    current keep; dense layers stay dense), the classifier ``in * out``."""
    from winoforge.winograd import ConvLayer, op_counts

    from .students import quant_layers
    from .winograd_layer import QuantWinogradConv2d

    modules = quant_layers(model)
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [modules[name].register_forward_pre_hook(
        lambda mod, args, name=name: shapes.__setitem__(name, tuple(getattr(args[0], "value", args[0]).shape)))
        for name in modules]
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *image_shape, device=device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    mults = {}
    for name, mod in modules.items():
        if isinstance(mod, QuantWinogradConv2d):
            _, cin, h, w = shapes[name]
            ph, pw = mod.padding
            if ph != pw:
                raise ValueError(f"{name}: padding {mod.padding} is not symmetric; op counts need one padding")
            layer = ConvLayer(name, cin, mod.out_channels, h, w, kernel=3, padding=ph)
            sparse = mod.srbs_enabled
            counts = op_counts([layer], mod.m, sub_row=mod.sub_row if sparse else None,
                               keep=(keep if keep is not None else mod.keep) if sparse else None)
            mults[name] = counts.layers[0].srbs.mults
        else:
            counts = op_counts([ConvLayer(name, mod.in_features, mod.out_features, 1, 1, kernel=1)])
            mults[name] = counts.layers[0].direct.mults
    return mults


def layer_pairs(student_cfg, sources: Mapping[str, str | None]) -> dict[str, BitPair]:
    """Each quantized layer's (weight, input activation) widths under ``student_cfg``."""
    return {name: (student_cfg.bits(name)[0], student_cfg.in_bits if src is None else student_cfg.bits(src)[1])
            for name, src in sources.items()}


def pairs_to_layer_bits(pairs: Mapping[str, BitPair], sources: Mapping[str, str | None],
                        default_a: int) -> dict[str, BitPair]:
    """(weight, input activation) pairs -> ``StudentConfig.layer_bits`` (weight, output activation).
    A layer whose output feeds no quantized layer (the classifier) gets ``default_a``."""
    out_act = {src: pairs[name][1] for name, src in sources.items() if src is not None}
    return {name: (int(pairs[name][0]), int(out_act.get(name, default_a))) for name in sources}


def student_bits(model: nn.Module, student_cfg, image_shape: Sequence[int], keep: int | None = None) -> dict[str, Any]:
    """Mean free bit width (see the module docstring), BOPs and W8A8 BOPs of a built student;
    an fp32 student reports 32 bits."""
    from .students import act_sources

    sources = act_sources(model)
    mults = layer_mults(model, image_shape, keep)
    w8a8 = sum(m * 8 * (8 if sources[n] is not None else student_cfg.in_bits) for n, m in mults.items())
    if student_cfg.precision == "fp32":
        return {"mean_bits": 32.0, "bops": None, "bops_w8a8": w8a8, "mults": mults}
    pairs = layer_pairs(student_cfg, sources)
    fixed = [n for n, src in sources.items() if src is None]
    return {"mean_bits": mean_bits(pairs, mults, fixed), "bops": sum(mults[n] * w * a for n, (w, a) in pairs.items()),
            "bops_w8a8": w8a8, "mults": mults, "pairs": {n: list(p) for n, p in pairs.items()}}


def _batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Sequence[torch.Tensor], *, everything: bool = False) -> None:
    """Re-estimate BatchNorm running statistics as the plain average over ``batches``.

    Only the BN layers run in training mode, unless ``everything`` (then the activation
    quantizers also collect their range statistics, as in their first training steps).
    The model is left in eval mode."""
    bns = _batch_norms(model)
    momenta = [bn.momentum for bn in bns]
    model.train(everything)
    for bn in bns:
        bn.train()
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    try:
        for x in batches:
            model(x)
    finally:
        for bn, mom in zip(bns, momenta):
            bn.momentum = mom
        model.eval()


def calibrate(model: nn.Module, batches: Sequence[torch.Tensor]) -> None:
    """Activation ranges (Brevitas runtime statistics) and BN statistics from ``batches``."""
    recalibrate_bn(model, batches, everything=True)


def _budget(mp: MixedPrecisionConfig, mults: Mapping[str, int], sources: Mapping[str, str | None],
            options: Mapping[str, Sequence[BitPair]], in_bits: int):
    """Integer costs per layer and pair, the budget, and a check that the cheapest assignment fits."""
    free = {n: sources[n] is not None for n in mults}
    if mp.mean_bits is not None:
        costs = {n: {p: mults[n] * (p[0] + (p[1] if free[n] else 0)) for p in options[n]} for n in mults}
        denom = sum(mults[n] * (2 if free[n] else 1) for n in mults)
        budget = math.floor(Fraction(repr(mp.mean_bits)) * denom)
        name, value, scale, what = "mixed_precision.mean_bits", mp.mean_bits, denom, "mean bits"
    else:
        costs = {n: {p: mults[n] * p[0] * p[1] for p in options[n]} for n in mults}
        ref = sum(mults[n] * 8 * (8 if free[n] else in_bits) for n in mults)
        budget = math.floor(Fraction(repr(mp.bops_fraction)) * ref)
        name, value, scale, what = "mixed_precision.bops_fraction", mp.bops_fraction, ref, "of the W8A8 BOPs"
    cheapest = sum(min(c.values()) for c in costs.values())
    if cheapest > budget:
        least = cheapest / scale
        raise ValueError(f"{name}={value} is below the cheapest assignment of mixed_precision.candidates "
                         f"({least:.6g} {what}); allowed: >= {least:.6g}")
    return costs, budget, name


def exact_candidates(model: nn.Module, options: Mapping[str, Sequence[BitPair]]) -> dict[str, list[BitPair]]:
    """``options`` (per layer, its (w_bits, a_bits) pairs; ``a``: the layer's input width) without
    the pairs a Winograd layer cannot build exactly at its tile size and channel count
    (:func:`winoforge.model.students.float32_exact_problem`).  ``ValueError`` naming the layer and
    the reason when none is left."""
    from .students import float32_exact_problem
    from .winograd_layer import QuantWinogradConv2d

    out = {}
    for name, pairs in options.items():
        layer = model.quant_layers[name]
        if not isinstance(layer, QuantWinogradConv2d):
            out[name] = list(pairs)
            continue
        why = {p: float32_exact_problem(name, layer.spec.m, p[1], p[0], layer.in_channels) for p in pairs}
        out[name] = [p for p in pairs if why[p] is None]
        if not out[name]:
            cheapest = min(pairs, key=lambda p: p[0] * p[1])
            raise ValueError(f"mixed_precision.candidates: none can be built exactly for {why[cheapest]}; "
                             "allowed: add narrower (w_bits, a_bits) pairs")
    return out


def search_student_bits(
    student_cfg,
    in_channels: int,
    num_classes: int,
    image_shape: Sequence[int],
    mp: MixedPrecisionConfig,
    *,
    init: Callable[[nn.Module], None],
    calibration: Sequence[torch.Tensor],
    held_out: Sequence[tuple[torch.Tensor, torch.Tensor]],
    teacher: nn.Module | None = None,
    keep: int | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Measure a student's per-layer sensitivity and choose its widths under ``mp``'s budget.

    ``init(model)`` initialises a freshly built student (from the teacher); ``calibration``
    are input batches for activation ranges and BN statistics, ``held_out`` (input,
    label) batches on which the loss is measured (KL to ``teacher`` or CE); ``keep``:
    the final SRBS keep (for the multiplication counts).  Returns a JSON-friendly report
    whose ``layer_bits`` go into ``StudentConfig.layer_bits``."""
    from .losses import kl_per_sample
    from .students import act_sources, build_student, quant_layer_names

    if student_cfg.precision != "quant":
        raise ValueError("mixed_precision.enabled needs student.precision='quant'")
    if mp.loss == "kl" and teacher is None:
        raise ValueError("mixed_precision.loss='kl' needs a teacher; allowed: loss='ce' or give teachers")
    base_cfg = replace(student_cfg, layer_bits={})
    probe = build_student(base_cfg, in_channels, num_classes, check_exact=False)  # a probe, never exported
    sources = act_sources(probe)
    names = list(quant_layer_names(probe))
    mults = layer_mults(probe, image_shape, keep)
    weights = sorted({w for w, _ in mp.candidates})
    options = {n: (list(mp.candidates) if sources[n] is not None else [(w, student_cfg.in_bits) for w in weights])
               for n in names}
    reference = {n: (mp.reference if sources[n] is not None else (mp.reference[0], student_cfg.in_bits)) for n in names}
    options = exact_candidates(probe, options)
    costs, budget, budget_name = _budget(mp, mults, sources, options, student_cfg.in_bits)

    def build(pairs: Mapping[str, BitPair]) -> nn.Module:
        cfg = replace(base_cfg, layer_bits=pairs_to_layer_bits(pairs, sources, student_cfg.a_bits))
        # the W8A8 reference and the one-layer changes are measurement probes, never exported; the
        # chosen widths come from the exact candidates only
        return build_student(cfg, in_channels, num_classes, check_exact=False)

    calibration = [x.to(device) for x in calibration]
    held_out = [(x.to(device), y.to(device)) for x, y in held_out]
    model = build(reference)
    init(model)
    model.to(device)
    calibrate(model, calibration)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    targets = None
    if mp.loss == "kl":
        was_training = teacher.training
        teacher.eval()
        with torch.no_grad():
            targets = [teacher(x) for x, _ in held_out]
        teacher.train(was_training)
    losses: list[float] = []

    @torch.no_grad()
    def evaluate(pairs: Mapping[str, BitPair]) -> float:
        net = build(pairs)
        net.load_state_dict(state)
        net.to(device)
        recalibrate_bn(net, calibration)
        total, count = 0.0, 0
        for i, (x, y) in enumerate(held_out):
            logits = net(x)
            if targets is not None:
                total += float(kl_per_sample(logits, targets[i], 1.0).sum())
            else:
                total += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            count += len(y)
        losses.append(total / count)
        return losses[-1]

    sensitivity = measure_sensitivity(evaluate, names, options, reference, progress=progress)
    chosen = choose_under_budget(sensitivity, costs, budget, budget_name=budget_name)
    fixed = [n for n in names if sources[n] is None]
    free = {n: sources[n] is not None for n in names}
    return {
        "method": "one-layer-at-a-time sensitivity, exact knapsack (winoforge.model.mixed_precision)",
        "loss": mp.loss, "reference_loss": losses[0],
        "budget": {"field": budget_name, "value": mp.mean_bits if mp.mean_bits is not None else mp.bops_fraction,
                   "cost": budget},
        "layers": {n: {"source": sources[n], "mults": mults[n],
                       "sensitivity": {f"w{w}a{a}": d for (w, a), d in sensitivity[n].items()},
                       "chosen": list(chosen[n])} for n in names},
        "layer_bits": {n: list(p) for n, p in pairs_to_layer_bits(chosen, sources, student_cfg.a_bits).items()},
        "mean_bits": mean_bits(chosen, mults, fixed),
        "bops": sum(mults[n] * w * a for n, (w, a) in chosen.items()),
        "bops_w8a8": sum(mults[n] * 8 * (8 if free[n] else student_cfg.in_bits) for n in names),
    }
