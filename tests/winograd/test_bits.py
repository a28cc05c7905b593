"""Bit growth: the widths are sufficient (nothing exceeds them) and tight (reached)."""

from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from winoforge.winograd import (
    WinogradSpec,
    accumulator_bits,
    bit_growth,
    input_transform,
    signed_bits,
    value_range,
    winograd_conv2d,
)
from winoforge.winograd import bits
from winoforge.winograd.bits import EXACT_OUTPUT_MAX_TERMS, output_extreme

pytestmark = pytest.mark.portable
SPECS = [WinogradSpec(2), WinogradSpec(4)]
F43 = WinogradSpec(4)


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


def _weight_pattern_enumeration(spec, xr, wr, i, j):
    """``(min, max)`` of output ``(i, j)`` by the former method: every weight vertex
    of the positions that reach it (2^n), the tile solved by signs; int64."""
    coef = np.outer(spec.AT[i], spec.AT[j])
    K = np.einsum("ak,bl->abkl", spec.BT, spec.BT).reshape(spec.t, spec.t, -1)
    terms = np.stack([coef[a, b] * K[a, b] for a, b in zip(*np.nonzero(coef))])
    terms = terms[:, np.abs(terms).sum(0) > 0]  # tile entries that reach the output
    half = len(terms) // 2

    def patterns(rows):  # the weighted sum of these rows for every weight vertex, coefficient first
        picks = (np.arange(1 << len(rows))[:, None] >> np.arange(len(rows))) & 1
        return (np.where(picks == 1, wr[1], wr[0]) @ rows).T

    # every partial sum below is at most max|w| sum|terms| max|x|: int32 where that fits
    bound = max(map(abs, wr)) * int(np.abs(terms).sum()) * max(map(abs, xr))
    dtype = np.int32 if bound < 2**31 else np.int64
    LA, LB = patterns(terms[:half]).astype(dtype), patterns(terms[half:]).astype(dtype)
    lo, hi = [], []
    chunk = 16
    for start in range(0, LA.shape[1], chunk):
        top = np.zeros((min(chunk, LA.shape[1] - start), LB.shape[1]), dtype)
        bottom, L, lo_x = np.zeros_like(top), np.empty_like(top), np.empty_like(top)
        for c in range(len(LA)):
            np.add(LA[c, start:start + chunk, None], LB[c], out=L)
            np.multiply(L, xr[0], out=lo_x)
            L *= xr[1]
            top += np.maximum(L, lo_x)
            bottom += np.minimum(L, lo_x)
        hi.append(int(top.max()))
        lo.append(int(bottom.min()))
    return min(lo), max(hi)


@pytest.mark.parametrize("xb, xs, wb, ws", [(2, True, 2, True), (3, False, 4, True), (8, False, 8, True),
                                            (4, True, 3, False), (1, False, 1, True)])
def test_search_matches_weight_pattern_enumeration_f43(xb, xs, wb, ws):
    """Every F(4,3) output of 16 positions, and two of 20 at two widths; on two
    outputs also without the ascent's incumbent (the branch and bound alone)."""
    xr, wr = value_range(xb, xs), value_range(wb, ws)
    outputs = [(1, 1), (1, 2), (2, 1), (2, 2)] + ([(0, 1), (3, 2)] if xb in (2, 8) else [])
    for i, j in outputs:
        lo, hi = _weight_pattern_enumeration(F43, xr, wr, i, j)
        assert output_extreme(F43, xr, wr, i, j, True)[0] == hi
        assert output_extreme(F43, xr, wr, i, j, False)[0] == lo
        if (i, j) in ((1, 1), (1, 2)):
            (top, _, _), (bottom, _, _) = bits._output_search(F43, xr, wr, i, j, ascent=False)
            assert (bottom, top) == (lo, hi)


def _tile_enumeration(spec, xr, wr, i, j):
    """``(min, max)`` of output ``(i, j)`` over every vertex of the tile entries that
    reach it (2^25 for the F(4,3) corners), each position's weight at its best."""
    a_used, b_used = np.flatnonzero(spec.AT[i]), np.flatnonzero(spec.AT[j])
    k_used = np.flatnonzero(np.abs(spec.BT[a_used]).sum(0))
    l_used = np.flatnonzero(np.abs(spec.BT[b_used]).sum(0))
    BA, BB = spec.BT[np.ix_(a_used, k_used)], spec.BT[np.ix_(b_used, l_used)]
    c = np.outer(spec.AT[i, a_used], spec.AT[j, b_used])
    # every partial sum below is at most sum_p |c_p| sum|BA_a| sum|BB_b| max|x| max|w|
    bound = int((np.abs(c) * np.outer(np.abs(BA).sum(1), np.abs(BB).sum(1))).sum()) * max(map(abs, xr))
    dtype = np.int16 if bound * max(map(abs, wr)) < 2**15 else np.int32

    def part(rows):  # c_p V_p(d) (positions first) over every vertex of these tile rows
        d = np.array(list(product(xr, repeat=len(rows) * len(l_used))), dtype=np.int64)
        V = np.einsum("ak,nkl,bl->abn", BA[:, rows], d.reshape(len(d), len(rows), len(l_used)), BB)
        return (c[:, :, None] * V).reshape(len(a_used) * len(b_used), len(d)).astype(dtype)

    split = len(k_used) // 2
    VA, VB = part(range(split)), part(range(split, len(k_used)))
    chunk = 4
    V, lo_w, hi_w = (np.empty((chunk, VB.shape[1]), dtype) for _ in range(3))
    lo, hi = [], []
    for start in range(0, VA.shape[1], chunk):
        top, bottom = np.zeros_like(V), np.zeros_like(V)
        for p in range(len(VA)):
            np.add(VA[p, start:start + chunk, None], VB[p], out=V)
            np.multiply(V, wr[0], out=lo_w)
            np.multiply(V, wr[1], out=hi_w)
            top += np.maximum(lo_w, hi_w, out=V)
            bottom += np.minimum(lo_w, hi_w, out=lo_w)
        hi.append(int(top.max()))
        lo.append(int(bottom.min()))
    return min(lo), max(hi)


@pytest.mark.parametrize("xr, wr, out", [((0, 1), (-1, 0), (0, 0)), ((-1, 0), (0, 1), (0, 3))])
def test_search_matches_tile_enumeration_f43(xr, wr, out):
    """Independent of the weight search: all 2^25 tiles of a 25-position output."""
    lo, hi = _tile_enumeration(F43, xr, wr, *out)
    assert output_extreme(F43, xr, wr, *out, True)[0] == hi
    assert output_extreme(F43, xr, wr, *out, False)[0] == lo


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_pattern_search_matches_enumeration(data):
    """The branch and bound against every pattern, on random small problems, in
    int64 and on Python ints beyond int64 (object arrays)."""
    n, k = data.draw(st.integers(1, 10)), data.draw(st.integers(1, 7))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    T0, T = rng.integers(-60, 61, k), rng.integers(-40, 41, (n, k))
    xlo = data.draw(st.integers(-6, 3))
    xhi = data.draw(st.integers(xlo, 7))
    if data.draw(st.booleans()):
        T0, T = T0.astype(object) * 2**70, T.astype(object) * 2**70
    scale, ascent = 1 << data.draw(st.integers(0, 12)), data.draw(st.booleans())
    value, s = bits._max_over_patterns(T0, T, xlo, xhi, scale, ascent)
    picks = (np.arange(1 << n)[:, None] >> np.arange(n)) & 1
    L = T0 + picks @ T
    assert value == max(np.maximum(L * xhi, L * xlo).sum(1))
    L = T0 + s @ T
    assert set(s.tolist()) <= {0, 1} and value == np.maximum(L * xhi, L * xlo).sum()


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_search_bounds_hold_for_every_completion(data):
    """Both bounds of the branch and bound are at least the best completion of a
    partial pattern (the chord bound times its slope scale), and exact for a full one."""
    n = data.draw(st.integers(1, 9))
    fixed, k = data.draw(st.integers(0, n)), data.draw(st.integers(1, 7))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    T0, T = rng.integers(-60, 61, k), rng.integers(-40, 41, (n, k))
    xlo = data.draw(st.integers(-6, 3))
    xhi = data.draw(st.integers(xlo, 7))
    scale = 1 << data.draw(st.integers(0, 12))
    L, free = T0 + rng.integers(0, 2, fixed) @ T[:fixed], T[fixed:]
    lo, hi = L + np.minimum(free, 0).sum(0), L + np.maximum(free, 0).sum(0)
    completions = L + ((np.arange(1 << len(free))[:, None] >> np.arange(len(free))) & 1) @ free
    best = int(np.maximum(completions * xhi, completions * xlo).sum(1).max())
    interval = int(bits._interval_vertex_max(lo[None], hi[None], xlo, xhi)[0])
    chord = int(bits._chord_bound(lo[None], hi[None], np.maximum(free, 0).T, np.maximum(-free, 0).T,
                                  xlo, xhi, scale)[0])
    assert interval >= best and chord >= scale * best
    if fixed == n:
        assert interval == best and chord == scale * best


def _witness_input(spec, d, cin, x_range, rng):
    """``(1, cin, t + m, t + m)`` random codes with the witness tile ``d`` in every
    channel at tile ``(1, 0)`` (rows ``m..m+t``): output tile ``(1, 0)`` sees it exactly."""
    size = spec.t + spec.m
    x = rng.integers(x_range[0], x_range[1], (1, cin, size, size), endpoint=True)
    x[:, :, spec.m:, :spec.t] = d
    return x


@pytest.mark.parametrize("spec, xb, xs, wb, ws, cin", [
    (WinogradSpec(2), 4, True, 4, True, 1), (WinogradSpec(2), 8, False, 4, True, 7),
    (WinogradSpec(2), 3, False, 5, True, 64), (WinogradSpec(2), 8, True, 8, True, 2),
    (F43, 4, True, 4, True, 1), (F43, 4, False, 4, True, 64), (F43, 8, False, 8, True, 64),
    (F43, 4, False, 8, True, 64), (F43, 8, False, 4, True, 64), (F43, 8, True, 8, True, 2),
    (F43, 3, False, 5, True, 5), (F43, 2, True, 3, False, 3), (F43, 1, True, 1, True, 2),
    (WinogradSpec(6), 4, False, 4, True, 8),
], ids=str)
def test_total_width_is_tight(spec, xb, xs, wb, ws, cin):
    """The witness tile and weights, run through the real convolution, reach the
    bound exactly for every output of the tile: one bit fewer would overflow."""
    g = bit_growth(xb, wb, cin, spec, in_signed=xs, weight_signed=ws)
    assert g.output_exact
    rng = np.random.default_rng(xb * 100 + wb)
    reached = []
    for i, j in product(range(spec.m), repeat=2):
        for maximize in (True, False):
            value, d, u = output_extreme(spec, g.input_range, g.weight_range, i, j, maximize)
            assert d.shape == u.shape == (spec.t, spec.t)
            assert np.isin(d, g.input_range).all() and np.isin(u, g.weight_range + (0,)).all()
            x = _witness_input(spec, d, cin, g.input_range, rng)
            U = np.broadcast_to(u, (1, cin, spec.t, spec.t))
            y = winograd_conv2d(x, U, spec, padding=0)
            assert y.dtype == np.int64 and y[0, 0, spec.m + i, j] == cin * value
            reached.append(int(y[0, 0, spec.m + i, j]))
    assert (min(reached), max(reached)) == g.output
    assert signed_bits(min(reached), max(reached)) == g.output_bits
    assert g.total_bits == max(g.output_bits, g.accumulator_bits, g.input_transform_bits)
    assert accumulator_bits(xb, wb, cin, spec, in_signed=xs, weight_signed=ws) == g.total_bits


def test_known_values():
    # F(2,3), 4-bit signed: V = +-sum of 4 inputs in [-8, 7] -> [-32, 30]: 6 bits (input + 2)
    g = bit_growth(4, 4, 1, 2)
    assert g.input_transform == (-32, 30) and g.input_transform_bits == 6
    # unsigned 8-bit inputs: 2 bits of growth plus a sign bit
    assert bit_growth(8, 4, 1, 2, in_signed=False).input_transform_bits == 8 + 2 + 1
    # the accumulator grows by ceil(log2(cin)) over the products
    g64 = bit_growth(4, 4, 64, 2)
    assert g64.accumulator == (64 * g.product[0], 64 * g.product[1])
    # F(4,3): exact output ranges (witnessed in test_total_width_is_tight); the
    # interval bound over the positions was one bit wider for three of these
    g = bit_growth(4, 4, 1, 4)
    assert g.output_exact and g.output == (-482811, 482829) and g.output_bits == 20
    exact = {  # unsigned inputs, signed weights, cin = 64: (in, weight) -> (output range, bits, interval-bound bits)
        (4, 4): ((-31030080, 31012800), 26, 27),
        (8, 8): ((-8697956160, 8697662400), 35, 35),
        (4, 8): ((-511644480, 511627200), 30, 31),
        (8, 4): ((-527511360, 527217600), 30, 31),
    }
    for (xb, wb), (output, width, interval_width) in exact.items():
        g = bit_growth(xb, wb, 64, 4, in_signed=False)
        assert g.output_exact and g.output == output and g.output_bits == g.total_bits == width
        x_range, w_range = g.input_range, g.weight_range
        loose = [bits._interval_output_range(F43, x_range, w_range, 64, i, j) for i, j in product(range(4), repeat=2)]
        assert signed_bits(min(r[0] for r in loose), max(r[1] for r in loose)) == interval_width


def test_interval_fallback(monkeypatch):
    """Past the node budget the output range falls back to the sound interval bound."""
    exact = bit_growth(3, 3, 5, 4, in_signed=False)
    monkeypatch.setattr(bits, "_SEARCH_NODE_BUDGET", 1)
    bits._output_extremes.cache_clear()
    try:
        loose = bit_growth(3, 3, 5, 4, in_signed=False)
        assert not loose.output_exact
        assert loose.output[0] < exact.output[0] and exact.output[1] < loose.output[1]
        assert loose.accumulator == exact.accumulator and loose.input_transform == exact.input_transform
        with pytest.raises(ValueError, match="too large to search exactly"):
            output_extreme(F43, loose.input_range, loose.weight_range, 0, 0, True)
    finally:
        bits._output_extremes.cache_clear()
    assert EXACT_OUTPUT_MAX_TERMS >= 49  # every output of F(6,3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="in_bits=0 is out of range; allowed: 1..32"):
        bit_growth(0, 4, 1, 2)
    with pytest.raises(ValueError, match="weight_bits=40 is out of range"):
        bit_growth(4, 40, 1, 2)
    with pytest.raises(ValueError, match="cin=0 is out of range"):
        accumulator_bits(4, 4, 0, 2)
    with pytest.raises(ValueError, match="m=5 is not supported"):
        accumulator_bits(4, 4, 1, 5)
