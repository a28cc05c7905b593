"""winograd_conv2d: exact integer arithmetic against independent references."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from winoforge.winograd import (
    SUPPORTED_TILES,
    WinogradSpec,
    direct_conv2d,
    filter_transform,
    integer_filter_transform,
    winograd_conv2d,
)

SPECS = [WinogradSpec(m, r) for m, r in SUPPORTED_TILES]


def naive_conv2d(x, g, pad):
    """Independent reference: explicit loops, Python integers (no overflow)."""
    n, c, h, w = x.shape
    k, _, kh, kw = g.shape
    ho, wo = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
    out = np.zeros((n, k, ho, wo), dtype=object)
    for b in range(n):
        for o in range(k):
            for i in range(ho):
                for j in range(wo):
                    acc = 0
                    for ci in range(c):
                        for u in range(kh):
                            for v in range(kw):
                                y, z = i + u - pad, j + v - pad
                                if 0 <= y < h and 0 <= z < w:
                                    acc += int(x[b, ci, y, z]) * int(g[o, ci, u, v])
                    out[b, o, i, j] = acc
    return out


def naive_winograd(x, U, spec, pad):
    """Independent reference for free integer U: tile by tile with the exact Fraction matrices."""
    n, c, h, w = x.shape
    k = U.shape[0]
    m, t, r = spec.m, spec.t, spec.r
    ho, wo = h + 2 * pad - r + 1, w + 2 * pad - r + 1
    out = np.zeros((n, k, ho, wo), dtype=object)
    AT, BT = spec.AT_exact, spec.BT_exact
    for b in range(n):
        for ti in range(0, ho, m):
            for tj in range(0, wo, m):
                d = [[[int(x[b, ci, ti + u - pad, tj + v - pad]) if 0 <= ti + u - pad < h and 0 <= tj + v - pad < w else 0
                       for v in range(t)] for u in range(t)] for ci in range(c)]
                V = [[[sum(BT[a][p] * d[ci][p][q] * BT[bb][q] for p in range(t) for q in range(t))
                       for bb in range(t)] for a in range(t)] for ci in range(c)]
                for o in range(k):
                    M = [[sum(int(U[o, ci, a, bb]) * V[ci][a][bb] for ci in range(c)) for bb in range(t)] for a in range(t)]
                    for i in range(m):
                        for j in range(m):
                            if ti + i < ho and tj + j < wo:
                                val = sum(AT[i][a] * M[a][bb] * AT[j][bb] for a in range(t) for bb in range(t))
                                assert Fraction(val).denominator == 1
                                out[b, o, ti + i, tj + j] = int(val)
    return out


def _bits_range(bits, signed):
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


@st.composite
def conv_case(draw):
    spec = draw(st.sampled_from(SPECS))
    pad = draw(st.integers(0, 2))
    h = draw(st.integers(max(1, 3 - 2 * pad), 9))
    w = draw(st.integers(max(1, 3 - 2 * pad), 9))
    n, c, k = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    xb, wb = draw(st.integers(1, 8)), draw(st.integers(2, 8))
    signed = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(*_bits_range(xb, signed), size=(n, c, h, w), endpoint=True)
    g = rng.integers(*_bits_range(wb, True), size=(k, c, 3, 3), endpoint=True)
    U = rng.integers(*_bits_range(wb, True), size=(k, c, spec.t, spec.t), endpoint=True)
    return spec, pad, x, g, U


@pytest.mark.portable
@given(conv_case())
def test_exact_against_direct_integer_convolution(case):
    spec, pad, x, g, _ = case
    U, D = integer_filter_transform(g, spec)
    y = winoforge_y = winograd_conv2d(x, U, spec, padding=pad)
    assert y.dtype == np.int64
    assert np.array_equal(winoforge_y, D * naive_conv2d(x, g, pad).astype(np.int64))
    assert np.array_equal(direct_conv2d(x, g, padding=pad), naive_conv2d(x, g, pad).astype(np.int64))


@pytest.mark.portable
@given(conv_case())
def test_exact_with_free_winograd_weights(case):
    """U trained in the Winograd domain is not G g G^T of any integer g: still exact."""
    spec, pad, x, _, U = case
    if spec.m == 6:
        x, U = x[:1, :1], U[:1, :1]  # the Fraction reference is slow for t = 8
    y = winograd_conv2d(x, U, spec, padding=pad)
    assert y.dtype == np.int64
    assert np.array_equal(y, naive_winograd(x, U, spec, pad).astype(np.int64))


@pytest.mark.portable
def test_integer_dtypes_and_unsigned_inputs():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(1, 2, 6, 7)).astype(np.uint8)
    g = rng.integers(-4, 4, size=(3, 2, 3, 3)).astype(np.int8)
    U, D = integer_filter_transform(g, 2)
    y = winograd_conv2d(x, U.astype(np.int32), 2)
    assert y.dtype == np.int64
    assert np.array_equal(y, D * naive_conv2d(x, g, 1).astype(np.int64))


@pytest.mark.parametrize("spec", SPECS, ids=str)
@given(data=st.data())
def test_float_matches_torch_conv2d(spec, data, module):
    torch = module("torch")
    pad = data.draw(st.integers(0, 2))
    h, w = data.draw(st.integers(max(1, 3 - 2 * pad), 13)), data.draw(st.integers(max(1, 3 - 2 * pad), 13))
    n, c, k = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 8)), data.draw(st.integers(1, 5))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x, g = rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, 3, 3))
    y = winograd_conv2d(x, filter_transform(g, spec), spec, padding=pad)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(g), padding=pad).numpy()
    assert y.dtype == np.float64 and y.shape == ref.shape
    # float64, O(1) inputs: the transforms' rounding error grows with the size of their
    # entries (F(6,3) has 32 in A^T and 21 in B^T, G has 1/129600-scale entries), ~1e-13
    # relative measured; 1e-9 leaves a wide margin while still catching any wrong term.
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-9 * max(1.0, float(np.abs(ref).max())))


def test_float_direct_matches_torch(module):
    torch = module("torch")
    rng = np.random.default_rng(3)
    x, g = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 5, 3))
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(g), padding=2).numpy()
    # float64 sums of 45 O(1) products: error ~1e-15; 1e-12 is a generous bound
    np.testing.assert_allclose(direct_conv2d(x, g, padding=2), ref, rtol=0, atol=1e-12)


@pytest.mark.portable
def test_one_by_one_input_with_padding():
    x = np.array([[[[5]]]])
    g = np.arange(9).reshape(1, 1, 3, 3) - 4
    U, D = integer_filter_transform(g, 2)
    assert np.array_equal(winograd_conv2d(x, U, 2, padding=1), D * np.array([[[[5 * g[0, 0, 1, 1]]]]]))


@pytest.mark.portable
class TestBadInput:
    x = np.zeros((1, 2, 5, 5), dtype=np.int64)
    U = np.zeros((3, 2, 4, 4), dtype=np.int64)

    def test_wrong_ndim(self):
        with pytest.raises(ValueError, match=r"x must have 4 dimensions"):
            winograd_conv2d(self.x[0], self.U, 2)
        with pytest.raises(ValueError, match=r"U must have 4 dimensions"):
            winograd_conv2d(self.x, self.U[0], 2)

    def test_channel_mismatch(self):
        with pytest.raises(ValueError, match=r"channel mismatch: x has Cin=2 but U has Cin=3"):
            winograd_conv2d(self.x, np.zeros((3, 3, 4, 4), dtype=np.int64), 2)

    def test_wrong_tile(self):
        with pytest.raises(ValueError, match=r"U must be \(Cout, Cin, 6, 6\)"):
            winograd_conv2d(self.x, self.U, 4)

    def test_unsupported_m(self):
        with pytest.raises(ValueError, match=r"m=3 is not supported.*allowed"):
            winograd_conv2d(self.x, self.U, 3)

    def test_non_finite(self):
        x = np.ones((1, 2, 5, 5))
        x[0, 0, 0, 0] = np.nan
        with pytest.raises(ValueError, match=r"x holds non-finite"):
            winograd_conv2d(x, self.U, 2)
        with pytest.raises(ValueError, match=r"U holds non-finite"):
            winograd_conv2d(self.x, np.full((3, 2, 4, 4), np.inf), 2)

    def test_too_small_and_bad_padding(self):
        with pytest.raises(ValueError, match=r"smaller than the 3x3 kernel"):
            winograd_conv2d(np.zeros((1, 2, 1, 5), dtype=np.int64), self.U, 2, padding=0)
        with pytest.raises(ValueError, match=r"padding=-1 is out of range"):
            winograd_conv2d(self.x, self.U, 2, padding=-1)

    def test_overflow_is_refused(self):
        big = np.full((1, 2, 5, 5), 2**40, dtype=np.int64)
        with pytest.raises(ValueError, match=r"overflow int64"):
            winograd_conv2d(big, np.full((3, 2, 4, 4), 2**20, dtype=np.int64), 2)

    def test_non_numeric(self):
        with pytest.raises(ValueError, match=r"x must hold integers or floats"):
            winograd_conv2d(self.x.astype(bool), self.U, 2)
