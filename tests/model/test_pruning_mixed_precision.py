"""Gradual SRBS schedule and the mixed-precision selection."""

from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from winoforge.model.mixed_precision import (MixedPrecisionConfig, choose_bit_widths, choose_under_budget, layer_pairs,
                                             mean_bits, measure_sensitivity, pairs_to_layer_bits)
from winoforge.model.pruning import CubicSchedule, scheduled_keep


def test_cubic_schedule_formula():
    s = CubicSchedule(final_density=0.25, start=100, span=1000)
    assert s.density(0) == 1.0 and s.density(100) == 1.0
    assert s.density(600) == 0.25 + 0.75 * 0.5**3  # every term is exact in binary floating point
    assert s.density(1100) == 0.25 and s.density(5000) == 0.25
    densities = [s.density(t) for t in range(0, 1300, 7)]
    assert all(a >= b for a, b in zip(densities, densities[1:]))


@given(st.sampled_from([2, 4, 8, 16]), st.data())
def test_scheduled_keep_never_below_schedule_and_ends_at_target(sub_row, data):
    keep_final = data.draw(st.integers(1, sub_row))
    s = CubicSchedule(keep_final / sub_row, start=data.draw(st.integers(0, 50)), span=data.draw(st.integers(1, 500)))
    keeps = [scheduled_keep(s, t, sub_row, keep_final) for t in range(0, s.start + s.span + 3)]
    assert keeps[0] == sub_row and keeps[-1] == keep_final
    assert all(a >= b for a, b in zip(keeps, keeps[1:]))
    assert all(k / sub_row >= s.density(t) - 1e-9 for t, k in enumerate(keeps))


def test_schedule_rejects_bad_values():
    with pytest.raises(ValueError, match="final_density=0 is out of range"):
        CubicSchedule(0, 0, 10)
    with pytest.raises(ValueError, match="span=0 is out of range"):
        CubicSchedule(0.5, 0, 0)
    with pytest.raises(ValueError, match="keep=9 is out of range; allowed: 1..8"):
        scheduled_keep(CubicSchedule(0.5, 0, 10), 0, 8, 9)


@given(st.data())
def test_choice_is_the_exact_optimum(data):
    """Against brute force over every assignment."""
    n = data.draw(st.integers(1, 4))
    pairs = [(2, 2), (4, 4), (4, 8), (8, 8)]
    names = [f"l{i}" for i in range(n)]
    mults = {name: data.draw(st.integers(1, 50)) for name in names}
    sens = {name: {p: data.draw(st.floats(0, 1, allow_nan=False)) for p in pairs} for name in names}
    cheapest = sum(m * 4 for m in mults.values())
    budget = data.draw(st.integers(cheapest, sum(m * 64 for m in mults.values())))
    chosen = choose_bit_widths(sens, mults, budget)
    cost = lambda a: sum(mults[k] * w * b for k, (w, b) in a.items())  # noqa: E731
    damage = lambda a: sum(sens[k][p] for k, p in a.items())  # noqa: E731
    assert cost(chosen) <= budget
    best = min(damage(dict(zip(names, combo))) for combo in product(pairs, repeat=n)
               if cost(dict(zip(names, combo))) <= budget)
    assert damage(chosen) == pytest.approx(best, rel=1e-12, abs=1e-12)  # sums of the same floats, other order


def test_sensitivity_measures_one_layer_at_a_time():
    calls = []

    def evaluate(assignment):
        calls.append(dict(assignment))
        return sum((8 - w) * (1 if name == "a" else 10) for name, (w, _) in assignment.items())

    table = measure_sensitivity(evaluate, ["a", "b"], [(2, 2), (8, 8)])
    assert table == {"a": {(2, 2): 6.0, (8, 8): 0.0}, "b": {(2, 2): 60.0, (8, 8): 0.0}}
    chosen = choose_bit_widths(table, {"a": 1, "b": 1}, budget_bops=64 + 4)
    assert chosen == {"a": (2, 2), "b": (8, 8)}  # the insensitive layer gives up its bits
    assert mean_bits(chosen) == 5.0 and mean_bits(chosen, {"a": 3, "b": 1}) == 3.5


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"candidates\[0\]=\(1, 4\) is not a bit-width pair; allowed"):
        measure_sensitivity(lambda a: 0.0, ["a"], [(1, 4)])
    with pytest.raises(ValueError, match="budget_bops=3 is below the cheapest assignment"):
        choose_bit_widths({"a": {(2, 2): 0.0}}, {"a": 1}, 3)
    with pytest.raises(ValueError, match="mults has no entry"):
        choose_bit_widths({"a": {(2, 2): 0.0}}, {}, 100)


@given(st.data())
def test_choice_under_any_integer_costs_is_the_exact_optimum(data):
    """Per-layer candidate sets and arbitrary costs (the mean-bits budget), against brute force."""
    n = data.draw(st.integers(1, 4))
    names = [f"l{i}" for i in range(n)]
    all_pairs = [(2, 2), (3, 4), (4, 4), (5, 6), (8, 8)]
    options = {name: data.draw(st.lists(st.sampled_from(all_pairs), min_size=1, max_size=4, unique=True))
               for name in names}
    sens = {name: {p: data.draw(st.floats(-0.1, 1, allow_nan=False)) for p in options[name]} for name in names}
    costs = {name: {p: data.draw(st.integers(0, 40)) for p in options[name]} for name in names}
    cheapest = sum(min(c.values()) for c in costs.values())
    budget = data.draw(st.integers(cheapest, cheapest + 80))
    chosen = choose_under_budget(sens, costs, budget)
    assert sum(costs[k][p] for k, p in chosen.items()) <= budget
    best = min(sum(sens[k][p] for k, p in zip(names, combo)) for combo in product(*(options[k] for k in names))
               if sum(costs[k][p] for k, p in zip(names, combo)) <= budget)
    assert sum(sens[k][p] for k, p in chosen.items()) == pytest.approx(best, rel=1e-12, abs=1e-12)
    with pytest.raises(ValueError, match=f"mean_bits_cost={cheapest - 1} is below the cheapest assignment"):
        choose_under_budget(sens, costs, cheapest - 1, budget_name="mean_bits_cost")


def test_sensitivity_with_per_layer_candidates_and_reference():
    seen = []
    table = measure_sensitivity(lambda a: seen.append(dict(a)) or sum(16 - w - b for w, b in a.values()),
                                ["img", "x"], {"img": [(4, 8), (8, 8)], "x": [(4, 4)]},
                                reference={"img": (8, 8), "x": (8, 8)})
    assert table == {"img": {(4, 8): 4.0, (8, 8): 0.0}, "x": {(4, 4): 8.0}}
    assert seen[0] == {"img": (8, 8), "x": (8, 8)} and len(seen) == 3  # the reference pair is not re-evaluated


@given(st.lists(st.tuples(st.integers(2, 8), st.integers(2, 8)), min_size=4, max_size=4))
def test_pairs_and_layer_bits_convert_both_ways(widths):
    """(weight, input activation) pairs <-> layer_bits (weight, output activation) on a chain."""
    from winoforge.model.students import StudentConfig

    sources = {"b1": None, "b2": "b1", "b3": "b2", "fc": "b3"}
    pairs = {name: (w, 8 if sources[name] is None else a) for name, (w, a) in zip(sources, widths)}
    layer_bits = pairs_to_layer_bits(pairs, sources, default_a=4)
    assert layer_bits["b1"] == (pairs["b1"][0], pairs["b2"][1]) and layer_bits["fc"] == (pairs["fc"][0], 4)
    cfg = StudentConfig(in_bits=8, layer_bits=layer_bits)
    assert layer_pairs(cfg, sources) == pairs


def test_mixed_precision_config_needs_one_budget():
    assert MixedPrecisionConfig(enabled=True, mean_bits=4).mean_bits == 4
    with pytest.raises(ValueError, match="both set; allowed: one budget"):
        MixedPrecisionConfig(mean_bits=4, bops_fraction=0.25)
    with pytest.raises(ValueError, match="mixed_precision.bops_fraction=1.5 is out of range"):
        MixedPrecisionConfig(bops_fraction=1.5)
    with pytest.raises(ValueError, match="mixed_precision.bn_batches=0 is out of range"):
        MixedPrecisionConfig(bn_batches=0)
