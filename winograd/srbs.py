"""Sub-row-balanced sparsity (SRBS) of Winograd-domain weights.

For every Winograd position ``xi`` the weights form a matrix ``U_xi`` of shape
``(Cout, Cin)``.  Each row is cut into sub-rows of ``sub_row`` consecutive input
channels, and every sub-row keeps exactly ``keep`` entries (Yang et al.,
"BISWSRBS", ACM TRETS 14(4), 2021).  Every processing element then does the
same work, and a sub-row stores as ``keep`` values plus ``keep`` in-sub-row
indices of ``ceil(log2(sub_row))`` bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, log2

import numpy as np

from ._checks import check_array, check_int, is_integer

__all__ = ["check_srbs_params", "srbs_mask", "is_srbs", "PackedSRBS", "pack_srbs", "unpack_srbs", "index_bits"]


def index_bits(sub_row: int) -> int:
    """Bits of one in-sub-row index: ``ceil(log2(sub_row))`` (0 for ``sub_row == 1``)."""
    return ceil(log2(sub_row)) if sub_row > 1 else 0


def check_srbs_params(cin: int, sub_row, keep) -> tuple[int, int]:
    """Validate ``(sub_row, keep)`` against ``cin`` input channels."""
    sub_row = check_int("sub_row", sub_row, minimum=1)
    keep = check_int("keep", keep, minimum=1, maximum=sub_row)
    if cin % sub_row:
        divisors = [d for d in range(1, cin + 1) if cin % d == 0]
        raise ValueError(f"sub_row={sub_row} does not divide Cin={cin}; allowed: sub_row in {divisors}")
    return sub_row, keep


def _check_weights(U) -> np.ndarray:
    return check_array("U", U, 4, "(Cout, Cin, t, t)")


def _grouped(U: np.ndarray, sub_row: int) -> np.ndarray:
    """``(Cout, Cin, t, t)`` -> ``(t*t, Cout, groups, sub_row)`` (a view where possible)."""
    cout, cin, t, _ = U.shape
    return U.transpose(2, 3, 0, 1).reshape(t * t, cout, cin // sub_row, sub_row)


def _ungrouped(G: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    cout, cin, t, _ = shape
    return G.reshape(t, t, cout, cin).transpose(2, 3, 0, 1)


def _kept_indices(groups: np.ndarray, keep: int) -> np.ndarray:
    """Indices of the ``keep`` largest magnitudes per sub-row, ties to the lowest
    index, sorted ascending."""
    if is_integer(groups):
        # |int64| as uint64 is exact even for the most negative value; ~key sorts descending
        key = ~np.abs(groups.astype(np.int64)).view(np.uint64)
    else:
        key = -np.abs(groups)
    order = np.argsort(key, axis=-1, kind="stable")
    return np.sort(order[..., :keep], axis=-1)


def srbs_mask(U, sub_row: int, keep: int) -> np.ndarray:
    """Boolean mask of ``U``'s shape: in every Winograd position, output channel
    and sub-row of ``sub_row`` consecutive input channels exactly ``keep``
    entries are True -- those of largest magnitude, ties to the lowest index."""
    U = _check_weights(U)
    sub_row, keep = check_srbs_params(U.shape[1], sub_row, keep)
    groups = _grouped(U, sub_row)
    mask = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(mask, _kept_indices(groups, keep), True, axis=-1)
    return np.ascontiguousarray(_ungrouped(mask, U.shape))


def is_srbs(U, sub_row: int, keep: int) -> bool:
    """True if every sub-row of ``U`` has at most ``keep`` non-zeros."""
    U = _check_weights(U)
    sub_row, keep = check_srbs_params(U.shape[1], sub_row, keep)
    return bool((np.count_nonzero(_grouped(U, sub_row), axis=-1) <= keep).all())


@dataclass(frozen=True)
class PackedSRBS:
    """Compact SRBS storage.

    ``values`` and ``indices`` have shape ``(t*t, Cout, Cin // sub_row, keep)``:
    Winograd position major, then output channel, sub-row, kept entry (indices
    ascending inside a sub-row).  This is the order in which a PE array that
    processes one ``U_xi`` row block after another reads them.
    """

    values: np.ndarray
    indices: np.ndarray
    shape: tuple[int, int, int, int]
    sub_row: int
    keep: int
    value_bits: int

    @property
    def index_bits(self) -> int:
        return index_bits(self.sub_row)

    @property
    def size_bits(self) -> int:
        """Storage of values plus indices, in bits."""
        return self.values.size * (self.value_bits + self.index_bits)

    @property
    def dense_size_bits(self) -> int:
        """Storage of the dense ``U`` at the same value width, in bits."""
        return int(np.prod(self.shape)) * self.value_bits

    @property
    def density(self) -> float:
        return self.keep / self.sub_row


def pack_srbs(U, sub_row: int, keep: int, value_bits: int | None = None) -> PackedSRBS:
    """Pack an SRBS-sparse ``U`` (at most ``keep`` non-zeros per sub-row).

    A ``U`` with more non-zeros in some sub-row is refused rather than silently
    truncated: mask it first (``U * srbs_mask(U, sub_row, keep)``).
    ``value_bits`` defaults to the dtype's width; integer values must fit it
    (two's complement).
    """
    U = _check_weights(U)
    sub_row, keep = check_srbs_params(U.shape[1], sub_row, keep)
    groups = _grouped(U, sub_row)
    over = int((np.count_nonzero(groups, axis=-1) > keep).sum())
    if over:
        raise ValueError(
            f"U is not SRBS({sub_row}, {keep}): {over} sub-rows hold more than keep={keep} "
            "non-zeros; apply srbs_mask first"
        )
    default_bits = U.dtype.itemsize * 8
    value_bits = check_int("value_bits", default_bits if value_bits is None else value_bits, minimum=1, maximum=64)
    if is_integer(U) and U.size:
        lo, hi = -(1 << (value_bits - 1)), (1 << (value_bits - 1)) - 1
        if int(U.min()) < lo or int(U.max()) > hi:
            raise ValueError(f"U holds values outside the signed {value_bits}-bit range [{lo}, {hi}]")
    idx = _kept_indices(groups, keep)
    values = np.take_along_axis(groups, idx, axis=-1).copy()
    dtype = np.uint8 if sub_row <= 256 else np.uint16 if sub_row <= 65536 else np.uint32
    return PackedSRBS(values, idx.astype(dtype), tuple(U.shape), sub_row, keep, value_bits)


def unpack_srbs(packed: PackedSRBS) -> np.ndarray:
    """The dense ``U`` of a :class:`PackedSRBS` (exact inverse of :func:`pack_srbs`)."""
    if not isinstance(packed, PackedSRBS):
        raise ValueError(f"packed must be a PackedSRBS, got {type(packed).__name__}")
    cout, cin, t, _ = packed.shape
    expect = (t * t, cout, cin // packed.sub_row, packed.keep)
    if packed.values.shape != expect or packed.indices.shape != expect:
        raise ValueError(f"packed values/indices must have shape {expect}, got {packed.values.shape}")
    if packed.indices.size and int(packed.indices.max()) >= packed.sub_row:
        raise ValueError(f"packed indices must be < sub_row={packed.sub_row}")
    groups = np.zeros(expect[:3] + (packed.sub_row,), dtype=packed.values.dtype)
    np.put_along_axis(groups, packed.indices.astype(np.intp), packed.values, axis=-1)
    return np.ascontiguousarray(_ungrouped(groups, packed.shape))
