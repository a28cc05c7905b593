"""Mixed precision: per-layer bit widths under a budget of bit operations (BOPs).

Method
------
1. **Sensitivity** (:func:`measure_sensitivity`): starting from a reference
   assignment (every layer at a high width, e.g. W8A8), change one layer at a
   time to each candidate ``(w_bits, a_bits)`` and measure the increase of a
   loss on held-out calibration data (e.g. the KL divergence from the teacher,
   or the task loss).  ``Delta_l(b) = loss(l at b) - loss(reference)``.
2. **Additive model**: the damage of an assignment is approximated by
   ``sum_l Delta_l(b_l)`` (the usual first-order assumption of HAWQ-style
   methods; Dong et al., ICCV 2019 / NeurIPS 2020), its cost by
   ``sum_l BOPs_l(b_l)`` with ``BOPs_l = mults_l * w_bits * a_bits``.
3. **Exact selection** (:func:`choose_bit_widths`): minimise the damage under
   ``sum BOPs <= budget`` -- a multiple-choice knapsack, solved exactly by
   dynamic programming over the Pareto frontier of (cost, damage) of the
   layers seen so far (dominated partial assignments are dropped).  Ties in
   damage go to the cheaper assignment, then to the wider widths.

The chosen widths are returned per layer name and belong in the saved config.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

__all__ = ["BitPair", "measure_sensitivity", "choose_bit_widths", "mean_bits"]

BitPair = tuple[int, int]  # (w_bits, a_bits)


def _check_pair(name: str, pair) -> BitPair:
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) and 2 <= b <= 8 for b in pair)):
        raise ValueError(f"{name}={pair!r} is not a bit-width pair; allowed: (w_bits, a_bits) with each in 2..8")
    return int(pair[0]), int(pair[1])


def measure_sensitivity(
    evaluate: Callable[[Mapping[str, BitPair]], float],
    layers: Sequence[str],
    candidates: Sequence[BitPair],
    reference: BitPair = (8, 8),
    progress: bool = False,
) -> dict[str, dict[BitPair, float]]:
    """``Delta[layer][pair]``: loss increase when only ``layer`` uses ``pair``.

    ``evaluate(assignment)`` returns the loss of the model with the given
    per-layer widths (every layer named).  The reference itself gets 0.
    """
    reference = _check_pair("reference", reference)
    candidates = [_check_pair(f"candidates[{i}]", c) for i, c in enumerate(candidates)]
    if not layers:
        raise ValueError("layers must not be empty")
    base_assignment = {name: reference for name in layers}
    base = float(evaluate(base_assignment))
    jobs = [(name, pair) for name in layers for pair in candidates]
    if progress:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc="sensitivity", unit="eval")
    table: dict[str, dict[BitPair, float]] = {name: {} for name in layers}
    for name, pair in jobs:
        table[name][pair] = 0.0 if pair == reference else float(evaluate({**base_assignment, name: pair})) - base
    return table


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
                c = cost + int(mults[name]) * w * a
                if c <= budget_bops:
                    expanded.append((c, damage + float(delta), choice + ((w, a),)))
        if not expanded:
            cheapest = sum(int(mults[n]) * min(p[0] * p[1] for p in sensitivity[n]) for n in names)
            raise ValueError(f"budget_bops={budget_bops} is below the cheapest assignment ({cheapest} BOPs)")
        # sort by cost, then damage, then prefer wider widths; keep the Pareto-optimal states
        expanded.sort(key=lambda s: (s[0], s[1], tuple(-w * a for w, a in s[2])))
        frontier = []
        for state in expanded:
            if not frontier or state[1] < frontier[-1][1]:
                frontier.append(state)
    best = min(frontier, key=lambda s: (s[1], s[0]))
    return dict(zip(names, best[2]))


def mean_bits(assignment: Mapping[str, BitPair], mults: Mapping[str, int] | None = None) -> float:
    """Mean of all weight and activation widths, weighted by ``mults`` if given."""
    if not assignment:
        raise ValueError("assignment must not be empty")
    weights = {n: (mults[n] if mults else 1) for n in assignment}
    total = sum(weights.values())
    return sum(weights[n] * (w + a) / 2 for n, (w, a) in assignment.items()) / total
