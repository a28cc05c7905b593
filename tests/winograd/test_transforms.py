"""The transform matrices: exact identities, integrality, and the literature's tables."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from winoforge.winograd import SUPPORTED_TILES, WinogradSpec

pytestmark = pytest.mark.portable
SPECS = [WinogradSpec(m, r) for m, r in SUPPORTED_TILES]

# Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016.
LAVIN_F43 = {
    "BT": [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
           [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
    "G": [[Fraction(1, 4), 0, 0], [Fraction(-1, 6)] * 3,
          [Fraction(-1, 6), Fraction(1, 6), Fraction(-1, 6)],
          [Fraction(1, 24), Fraction(1, 12), Fraction(1, 6)],
          [Fraction(1, 24), Fraction(-1, 12), Fraction(1, 6)], [0, 0, 1]],
    "AT": [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
}
LAVIN_F23 = {
    "BT": [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    "G": [[1, 0, 0], [Fraction(1, 2)] * 3, [Fraction(1, 2), Fraction(-1, 2), Fraction(1, 2)], [0, 0, 1]],
    "AT": [[1, 1, 1, 0], [0, 1, -1, -1]],
}


def _frac(mat):
    return [[Fraction(v) for v in row] for row in mat]


def _correlate_1d(d, g):
    m = len(d) - len(g) + 1
    return [sum(d[i + k] * g[k] for k in range(len(g))) for i in range(m)]


def test_f43_equals_lavin_gray():
    spec = WinogradSpec(4)
    assert _frac(spec.BT_exact) == _frac(LAVIN_F43["BT"])
    assert _frac(spec.G_exact) == _frac(LAVIN_F43["G"])
    assert _frac(spec.AT_exact) == _frac(LAVIN_F43["AT"])


def test_f23_equals_lavin_gray_up_to_cancelling_signs():
    spec = WinogradSpec(2)
    # per Winograd position i: sign of (BT row i, G row i, AT column i) may differ, products agree
    for i in range(spec.t):
        for k in range(spec.t):
            for j in range(spec.m):
                for c in range(spec.r):
                    ours = spec.AT_exact[j][i] * spec.G_exact[i][c] * spec.BT_exact[i][k]
                    theirs = Fraction(LAVIN_F23["AT"][j][i]) * Fraction(LAVIN_F23["G"][i][c]) * LAVIN_F23["BT"][i][k]
                    assert ours == theirs


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_shapes_and_integrality(spec):
    assert spec.t == spec.m + spec.r - 1
    assert spec.AT.shape == (spec.m, spec.t) and spec.BT.shape == (spec.t, spec.t) and spec.G.shape == (spec.t, spec.r)
    assert all(v.denominator == 1 for row in spec.AT_exact + spec.BT_exact for v in row)
    assert np.array_equal(spec.AT, np.array(spec.AT_exact, dtype=object).astype(np.int64))
    d = int(round(spec.filter_denominator ** 0.5))
    assert d * d == spec.filter_denominator
    assert np.array_equal(spec.G_scaled, np.array([[v * d for v in row] for row in spec.G_exact], dtype=object).astype(np.int64))
    with pytest.raises(ValueError):
        spec.AT[0, 0] = 5  # read-only: one home for the fact


def test_f23_transforms_hold_only_zero_and_unit():
    spec = WinogradSpec(2)
    assert set(np.unique(spec.AT)) <= {-1, 0, 1} and set(np.unique(spec.BT)) <= {-1, 0, 1}


@pytest.mark.parametrize("spec", SPECS, ids=str)
@given(data=st.data())
def test_one_dimensional_identity_is_exact(spec, data):
    """A^T [(G g) . (B^T d)] == correlate(d, g), in exact rational arithmetic."""
    ints = st.integers(-1000, 1000)
    d = data.draw(st.lists(ints, min_size=spec.t, max_size=spec.t))
    g = data.draw(st.lists(ints, min_size=spec.r, max_size=spec.r))
    Gg = [sum(spec.G_exact[i][k] * g[k] for k in range(spec.r)) for i in range(spec.t)]
    Bd = [sum(spec.BT_exact[i][k] * d[k] for k in range(spec.t)) for i in range(spec.t)]
    y = [sum(spec.AT_exact[j][i] * Gg[i] * Bd[i] for i in range(spec.t)) for j in range(spec.m)]
    assert y == _correlate_1d(d, g)


@pytest.mark.parametrize("m, r", [(3, 3), (8, 3), (0, 3), (2, 5), (2, 1)])
def test_unsupported_tile_is_rejected(m, r):
    with pytest.raises(ValueError, match=r"allowed"):
        WinogradSpec(m, r)


@pytest.mark.parametrize("m", [2.0, "2", True, None])
def test_non_integer_m_is_rejected(m):
    with pytest.raises(ValueError, match="m must be an int"):
        WinogradSpec(m)


def test_spec_is_hashable_and_comparable():
    assert WinogradSpec(2) == WinogradSpec(2, 3) and WinogradSpec(2) != WinogradSpec(4)
    assert len({WinogradSpec(2), WinogradSpec(2), WinogradSpec(4)}) == 2
    assert str(WinogradSpec(4)) == "F(4x4,3x3)"
