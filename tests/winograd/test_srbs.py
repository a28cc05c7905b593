"""SRBS masks and the packed format."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from winoforge.winograd import index_bits, is_srbs, pack_srbs, srbs_mask, unpack_srbs, winograd_conv2d

pytestmark = pytest.mark.portable


@st.composite
def srbs_case(draw, integer=None):
    sub_row = draw(st.sampled_from([1, 2, 3, 4, 8, 16]))
    keep = draw(st.integers(1, sub_row))
    groups, cout, t = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.sampled_from([4, 6]))
    integer = draw(st.booleans()) if integer is None else integer
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (cout, groups * sub_row, t, t)
    # small integer ranges create many magnitude ties, which the tie rule must settle
    U = rng.integers(-3, 4, size=shape) if integer else rng.standard_normal(shape)
    return U, sub_row, keep


def _subrows(a, sub_row):
    cout, cin, t, _ = a.shape
    return a.transpose(2, 3, 0, 1).reshape(t * t, cout, cin // sub_row, sub_row)


@given(srbs_case())
def test_mask_keeps_exactly_keep_largest_per_subrow(case):
    U, sub_row, keep = case
    mask = srbs_mask(U, sub_row, keep)
    assert mask.shape == U.shape and mask.dtype == bool
    M, A = _subrows(mask, sub_row), np.abs(_subrows(U, sub_row))
    assert (M.sum(axis=-1) == keep).all()
    kept_min = np.where(M, A, np.inf).min(axis=-1)
    dropped_max = np.where(M, -np.inf, A).max(axis=-1)
    assert (kept_min >= dropped_max).all()
    # ties: among entries equal to the smallest kept magnitude, the kept ones come first
    for idx in np.ndindex(M.shape[:-1]):
        ties = np.flatnonzero(A[idx] == kept_min[idx])
        kept_ties = [i for i in ties if M[idx][i]]
        assert kept_ties == list(ties[: len(kept_ties)])


def test_ties_go_to_the_lowest_index():
    U = np.ones((1, 8, 4, 4))
    mask = srbs_mask(U, 4, 2)
    assert mask[0, :, 0, 0].tolist() == [True, True, False, False, True, True, False, False]
    U[0, 3, 0, 0] = -2.0  # larger magnitude wins regardless of sign
    assert srbs_mask(U, 4, 2)[0, :4, 0, 0].tolist() == [True, False, False, True]


def test_mask_handles_int64_extremes():
    U = np.zeros((1, 4, 4, 4), dtype=np.int64)
    U[0, 2] = np.iinfo(np.int64).min
    U[0, 1] = np.iinfo(np.int64).max
    assert srbs_mask(U, 4, 1)[0, :, 0, 0].tolist() == [False, False, True, False]


@given(srbs_case())
def test_pack_round_trip_is_exact(case):
    U, sub_row, keep = case
    sparse = np.where(srbs_mask(U, sub_row, keep), U, 0).astype(U.dtype)
    assert is_srbs(sparse, sub_row, keep)
    packed = pack_srbs(sparse, sub_row, keep)
    back = unpack_srbs(packed)
    assert back.dtype == sparse.dtype and np.array_equal(back, sparse)
    cout, cin, t, _ = U.shape
    assert packed.values.shape == (t * t, cout, cin // sub_row, keep)
    assert (np.diff(packed.indices.astype(int), axis=-1) > 0).all()  # ascending within a sub-row
    assert packed.index_bits == (int(np.ceil(np.log2(sub_row))) if sub_row > 1 else 0)
    assert packed.size_bits == t * t * cout * (cin // sub_row) * keep * (packed.value_bits + packed.index_bits)


def test_packed_size_and_density():
    rng = np.random.default_rng(0)
    U = rng.integers(-8, 8, size=(16, 32, 4, 4))
    U = np.where(srbs_mask(U, 8, 2), U, 0)
    packed = pack_srbs(U, 8, 2, value_bits=4)
    assert index_bits(8) == 3 and packed.density == 0.25
    assert packed.size_bits == 16 * 16 * (32 // 8) * 2 * (4 + 3)
    assert packed.dense_size_bits == 16 * 32 * 16 * 4
    assert np.array_equal(unpack_srbs(packed), U)


def test_sparse_weights_convolve_exactly_after_round_trip():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 16, size=(1, 8, 6, 6))
    U = rng.integers(-8, 8, size=(4, 8, 4, 4))
    U = np.where(srbs_mask(U, 4, 1), U, 0)
    assert np.array_equal(winograd_conv2d(x, unpack_srbs(pack_srbs(U, 4, 1)), 2), winograd_conv2d(x, U, 2))


class TestBadParameters:
    U = np.ones((2, 8, 4, 4))

    def test_sub_row_must_divide_cin(self):
        with pytest.raises(ValueError, match=r"sub_row=3 does not divide Cin=8; allowed: sub_row in \[1, 2, 4, 8\]"):
            srbs_mask(self.U, 3, 1)

    @pytest.mark.parametrize("keep", [0, 5, -1])
    def test_keep_range(self, keep):
        with pytest.raises(ValueError, match=rf"keep={keep} is out of range; allowed: 1..4"):
            srbs_mask(self.U, 4, keep)

    def test_sub_row_type(self):
        with pytest.raises(ValueError, match="sub_row must be an integer"):
            pack_srbs(self.U, 4.0, 1)

    def test_dense_weights_are_not_packed_silently(self):
        with pytest.raises(ValueError, match=r"not SRBS\(4, 1\): 64 sub-rows hold more than keep=1"):
            pack_srbs(self.U, 4, 1)

    def test_values_must_fit_value_bits(self):
        U = np.zeros((1, 4, 4, 4), dtype=np.int64)
        U[0, 0] = 8
        with pytest.raises(ValueError, match=r"outside the signed 4-bit range \[-8, 7\]"):
            pack_srbs(U, 4, 1, value_bits=4)

    def test_non_finite(self):
        U = self.U.copy()
        U[0, 0, 0, 0] = np.nan
        with pytest.raises(ValueError, match="non-finite"):
            srbs_mask(U, 4, 2)

    def test_corrupt_packed_indices(self):
        packed = pack_srbs(np.where(srbs_mask(self.U, 4, 1), self.U, 0), 4, 1)
        packed.indices[0, 0, 0, 0] = 7
        with pytest.raises(ValueError, match=r"indices must be < sub_row=4"):
            unpack_srbs(packed)
