"""Bit growth: the widths are sufficient (nothing exceeds them) and tight (reached)."""

from itertools import product

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from winoforge.winograd import WinogradSpec, accumulator_bits, bit_growth, input_transform, signed_bits, value_range
from winoforge.winograd.bits import output_extreme

pytestmark = pytest.mark.portable
SPECS = [WinogradSpec(2), WinogradSpec(4)]


def test_value_range_and_signed_bits():
    assert value_range(4, True) == (-8, 7) and value_range(4, False) == (0, 15)
    assert signed_bits(-8, 7) == 4 and signed_bits(0, 15) == 5 and signed_bits(-9, 0) == 5 and signed_bits(0, 0) == 1
    with pytest.raises(ValueError, match="bits=0 is out of range"):
        value_range(0, True)


def _intermediates(spec, x, U):
    """All stages of one tile computed directly: V, products, channel sums, outputs."""
    V = input_transform(x, spec)  # (cin, t, t)
    P = U * V
    M = P.sum(axis=0)
    Y = spec.AT @ M @ spec.AT.T
    return V, P, M, Y


@pytest.mark.parametrize("spec", SPECS, ids=str)
@given(data=st.data())
def test_widths_are_sufficient(spec, data):
    # few distinct widths so the (cached) exact output analysis is reused across examples
    xb, wb = data.draw(st.sampled_from([1, 2, 4, 8])), data.draw(st.sampled_from([1, 3, 4, 8]))
    xs, ws = data.draw(st.booleans()), data.draw(st.booleans())
    cin = data.draw(st.integers(1, 6))
    g = bit_growth(xb, wb, cin, spec, in_signed=xs, weight_signed=ws)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    (xlo, xhi), (wlo, whi) = g.input_range, g.weight_range
    # extreme codes are where overflow happens: draw from the range ends half of the time
    x = np.where(rng.random((cin, spec.t, spec.t)) < 0.5, rng.choice([xlo, xhi], (cin, spec.t, spec.t)),
                 rng.integers(xlo, xhi, (cin, spec.t, spec.t), endpoint=True))
    U = rng.choice([wlo, whi], (cin, spec.t, spec.t))
    V, P, M, Y = _intermediates(spec, x, U)
    for arr, (lo, hi) in ((V, g.input_transform), (P, g.product), (M, g.accumulator), (Y, g.output)):
        assert lo <= arr.min() and arr.max() <= hi
    for arr in (V, P, M, Y):
        assert signed_bits(int(arr.min()), int(arr.max())) <= g.total_bits


@pytest.mark.parametrize("spec", SPECS, ids=str)
@pytest.mark.parametrize("xb, xs, wb, cin", [(4, True, 4, 1), (8, False, 4, 16), (2, False, 2, 3), (3, True, 8, 5)])
def test_transform_product_and_accumulator_ranges_are_reached(spec, xb, xs, wb, cin):
    g = bit_growth(xb, wb, cin, spec, in_signed=xs)
    (xlo, xhi), (wlo, whi) = g.input_range, g.weight_range
    K = np.einsum("ak,bl->abkl", spec.BT, spec.BT)
    reached = {"v": set(), "p": set(), "acc": set()}
    for a, b in product(range(spec.t), repeat=2):
        for sign in (1, -1):
            d = np.where(sign * K[a, b] > 0, xhi, xlo)  # the vertex that extremises V_ab
            v = int(input_transform(d, spec)[a, b])
            reached["v"].add(v)
            for w in (wlo, whi):
                reached["p"].add(v * w)
                x = np.broadcast_to(d, (cin, spec.t, spec.t))
                U = np.zeros((cin, spec.t, spec.t), dtype=np.int64)
                U[:, a, b] = w
                reached["acc"].add(int(_intermediates(spec, x, U)[2][a, b]))
    assert (min(reached["v"]), max(reached["v"])) == g.input_transform
    assert (min(reached["p"]), max(reached["p"])) == g.product
    assert (min(reached["acc"]), max(reached["acc"])) == g.accumulator


@pytest.mark.parametrize("xb, xs, wb", [(2, True, 2), (2, False, 3), (1, False, 2)])
def test_output_extreme_matches_brute_force_f23(xb, xs, wb):
    """Exhaustive over every input-tile vertex (2^16), best weight per position."""
    spec = WinogradSpec(2)
    xr, wr = value_range(xb, xs), value_range(wb, True)
    verts = np.array(list(product(xr, repeat=16)), dtype=np.int64).reshape(-1, 4, 4)
    V = np.einsum("ak,nkl,bl->nab", spec.BT, verts, spec.BT)
    for i, j in product(range(2), repeat=2):
        C = np.outer(spec.AT[i], spec.AT[j])
        contrib = np.stack([C * w * V for w in wr])
        assert output_extreme(spec, xr, wr, i, j, True)[0] == int(contrib.max(0).sum((1, 2)).max())
        assert output_extreme(spec, xr, wr, i, j, False)[0] == int(contrib.min(0).sum((1, 2)).min())


@pytest.mark.parametrize("xb, xs, wb, cin", [(4, True, 4, 1), (8, False, 4, 7), (3, False, 5, 64), (8, True, 8, 2)])
def test_f23_total_width_is_tight(xb, xs, wb, cin):
    """The witness tile and weights, run through the real convolution, reach the
    bound exactly: one bit fewer would overflow."""
    from winoforge.winograd import winograd_conv2d

    spec = WinogradSpec(2)
    g = bit_growth(xb, wb, cin, spec, in_signed=xs)
    assert g.output_exact
    reached = []
    for i, j in product(range(2), repeat=2):
        for maximize in (True, False):
            value, d, u = output_extreme(spec, g.input_range, g.weight_range, i, j, maximize)
            x = np.broadcast_to(d, (1, cin, 4, 4))
            U = np.broadcast_to(u, (1, cin, 4, 4))
            y = winograd_conv2d(x, U, spec, padding=0)
            assert y[0, 0, i, j] == cin * value
            reached.append(int(y[0, 0, i, j]))
    assert (min(reached), max(reached)) == g.output
    assert signed_bits(min(reached), max(reached)) == g.output_bits
    assert g.total_bits == max(g.output_bits, g.accumulator_bits, g.input_transform_bits)
    assert accumulator_bits(xb, wb, cin, spec, in_signed=xs) == g.total_bits


def test_known_values():
    # F(2,3), 4-bit signed: V = +-sum of 4 inputs in [-8, 7] -> [-32, 30]: 6 bits (input + 2)
    g = bit_growth(4, 4, 1, 2)
    assert g.input_transform == (-32, 30) and g.input_transform_bits == 6
    # unsigned 8-bit inputs: 2 bits of growth plus a sign bit
    assert bit_growth(8, 4, 1, 2, in_signed=False).input_transform_bits == 8 + 2 + 1
    # the accumulator grows by ceil(log2(cin)) over the products
    g64 = bit_growth(4, 4, 64, 2)
    assert g64.accumulator == (64 * g.product[0], 64 * g.product[1])
    # F(4,3) outputs mixing more than 16 positions use a sound interval bound
    assert not bit_growth(4, 4, 1, 4).output_exact


def test_bad_arguments():
    with pytest.raises(ValueError, match="in_bits=0 is out of range; allowed: 1..32"):
        bit_growth(0, 4, 1, 2)
    with pytest.raises(ValueError, match="weight_bits=40 is out of range"):
        bit_growth(4, 40, 1, 2)
    with pytest.raises(ValueError, match="cin=0 is out of range"):
        accumulator_bits(4, 4, 0, 2)
    with pytest.raises(ValueError, match="m=5 is not supported"):
        accumulator_bits(4, 4, 1, 5)
