"""Datatypes and exact output ranges of a WinogradSRBS layer.

Two ranges: :func:`datatype_output_range`, sound for *any* weights within the
weight datatype (the SRBS budget obeyed), and :func:`exact_output_range`, exact for
given integer weights (reached by some input).  Both read only the fields of
:class:`~winoforge.hw.srbs_params.WinogradSRBSParams`; this module does not import it,
so the parameters, estimates and the op can all build on it.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

import numpy as np
from qonnx.core.datatype import BaseDataType, DataType

from winoforge.winograd import signed_bits
from winoforge.winograd.bits import output_extreme

if TYPE_CHECKING:
    from .srbs_params import WinogradSRBSParams

__all__ = [
    "smallest_datatype",
    "dt_range",
    "position_accumulator_ranges",
    "datatype_output_range",
    "exact_output_range",
    "exact_range_cached",
]


def smallest_datatype(lo: int, hi: int) -> BaseDataType:
    """Smallest UINT<n> (if ``lo >= 0``) or INT<n> holding every integer in ``[lo, hi]``."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    if lo >= 0:
        return DataType[f"UINT{max(1, hi.bit_length())}"]
    return DataType[f"INT{signed_bits(lo, hi)}"]


def dt_range(dt: BaseDataType) -> tuple[int, int]:
    return int(dt.min()), int(dt.max())



def position_accumulator_ranges(params: WinogradSRBSParams) -> dict[tuple[int, int], tuple[int, int]]:
    """Exact range of ``M_ab = sum of cin_eff products U * V_ab`` per position."""
    spec = params.spec
    xlo, xhi = dt_range(params.input_datatype)
    wlo, whi = dt_range(params.weight_datatype)
    bt = spec.BT
    out = {}
    for a in range(spec.t):
        for b in range(spec.t):
            k = np.outer(bt[a], bt[b]).ravel()
            vhi = int(sum(int(c) * (xhi if c > 0 else xlo) for c in k))
            vlo = int(sum(int(c) * (xlo if c > 0 else xhi) for c in k))
            corners = [x * y for x in (vlo, vhi) for y in (wlo, whi)]
            out[a, b] = (params.cin_eff * min(corners), params.cin_eff * max(corners))
    return out



def datatype_output_range(params: WinogradSRBSParams) -> tuple[int, int]:
    """A sound output range for *any* weights within ``weightDataType`` that obey the
    SRBS budget, and any inputs within ``inputDataType``.

    Per output ``(i, j)`` of a tile, the smaller of two sound bounds:

    * ``IFMChannels * E``: ``E`` the exact one-channel extreme
      (:func:`winoforge.winograd.bits.output_extreme`, where it is feasible) -- every
      channel contributes at most ``E`` (a zero weight is within the weight range);
    * the interval sum over Winograd positions of ``A^T[i,a] A^T[j,b] M_ab`` with
      ``M_ab`` summing ``cin_eff`` products.

    Dense layers get ``IFMChannels * E`` (what ``bit_growth(cin)`` gives).  For SRBS
    layers ``bit_growth(cin_eff)`` is *not* sound: the kept channels may differ
    between positions, so the joint one-channel extreme can be beaten, e.g.
    F(2,3), UINT4 x INT4, IFMChannels=SubRow=9, Keep=1 reaches 2340 where
    ``bit_growth(.., cin=1)`` says 1395.
    """
    spec = params.spec
    x_range = dt_range(params.input_datatype)
    w_range = dt_range(params.weight_datatype)
    acc = position_accumulator_ranges(params)
    at = spec.AT
    lo_all = hi_all = 0
    for i in range(spec.m):
        for j in range(spec.m):
            lo = hi = 0
            for (a, b), (mlo, mhi) in acc.items():
                c = int(at[i, a] * at[j, b])
                lo += min(c * mlo, c * mhi)
                hi += max(c * mlo, c * mhi)
            try:
                e_hi = output_extreme(spec, x_range, w_range, i, j, True)[0]
                e_lo = output_extreme(spec, x_range, w_range, i, j, False)[0]
            except ValueError:  # too many positions to enumerate: interval bound only
                pass
            else:
                hi = min(hi, params.ifm_channels * e_hi)
                lo = max(lo, params.ifm_channels * e_lo)
            lo_all, hi_all = min(lo_all, lo), max(hi_all, hi)
    return lo_all, hi_all


def _row_classes(out_size: int, in_size: int, pad: int, m: int, t: int) -> list[tuple[int, tuple[bool, ...]]]:
    """Distinct (output row in tile, mask of tile rows that are real input rows)."""
    classes = set()
    for tile in range(math.ceil(out_size / m)):
        for i in range(m):
            if tile * m + i >= out_size:
                break
            classes.add((i, tuple(0 <= tile * m + k - pad < in_size for k in range(t))))
    return sorted(classes)


def exact_output_range(U: np.ndarray, params: WinogradSRBSParams) -> tuple[int, int]:
    """Exact range of the output over every input within ``inputDataType``, for
    these integer weights ``U (Cout, Cin, t, t)`` (validate with :func:`check_weights`).

    Output ``(i, j)`` of a tile and channel ``o`` is linear in the tile's inputs:
    ``y = sum_{c,k,l} C[i,j,o,c,k,l] d[c,k,l]`` with
    ``C = sum_ab (A^T[i,a] B^T[a,k]) U[o,c,a,b] (A^T[j,b] B^T[b,l])``.  Its maximum is
    ``sum(positive C) * max + sum(negative C) * min`` over the tile positions that are
    real pixels (zero padding and the zero extension of edge tiles fix the others at
    0, which every allowed input type contains); each row/column class of tiles that
    occurs in the layer is evaluated, so the range is reached by some input.
    """
    spec, t, m = params.spec, params.t, params.m
    xlo, xhi = dt_range(params.input_datatype)
    U = np.asarray(U, dtype=np.int64)
    e = spec.AT[:, :, None] * spec.BT[None, :, :]  # E[i, a, k] = AT[i,a] * BT[a,k]
    e_sum = int(np.abs(e).sum(axis=(1, 2)).max())
    bound = int(np.abs(U).max(initial=0)) * e_sum * e_sum * params.ifm_channels * max(abs(xlo), abs(xhi))
    if bound >= 2**62:
        raise ValueError(f"output range computation could overflow int64 (bound {bound})")
    (h, w), (ho, wo) = params.ifm_dim, params.out_dim
    rows = _row_classes(ho, h, params.padding, m, t)
    cols = _row_classes(wo, w, params.padding, m, t)
    cout, cin = U.shape[:2]
    chunk = max(1, 4_000_000 // (m * m * cin * t * t))
    lo_all = hi_all = 0
    for start in range(0, cout, chunk):
        u = U[start : start + chunk]
        t1 = np.einsum("iak,ocab->iocbk", e, u)  # (m, o, c, b, k)
        coef = np.einsum("iocbk,jbl->ijockl", t1, e)  # (m, m, o, c, k, l)
        pos = np.where(coef > 0, coef, 0).sum(axis=3)
        neg = np.where(coef < 0, coef, 0).sum(axis=3)
        top, bottom = pos * xhi + neg * xlo, pos * xlo + neg * xhi  # (m, m, o, k, l)
        for i, rmask in rows:
            for j, cmask in cols:
                mask = np.outer(rmask, cmask)
                hi_all = max(hi_all, int(np.where(mask, top[i, j], 0).sum(axis=(-2, -1)).max()))
                lo_all = min(lo_all, int(np.where(mask, bottom[i, j], 0).sum(axis=(-2, -1)).min()))
    return lo_all, hi_all


_RANGE_CACHE: dict[tuple, tuple[int, int]] = {}
_RANGE_CACHE_SIZE = 64


def exact_range_cached(U: np.ndarray, params: WinogradSRBSParams) -> tuple[int, int]:
    """:func:`exact_output_range`, memoised on the weight bytes and the parameters it
    depends on (InferDataTypes runs after nearly every FINN transformation)."""
    U = np.ascontiguousarray(U, dtype=np.int64)
    key = (
        hashlib.sha256(U.tobytes()).hexdigest(), U.shape, params.m, params.ifm_dim, params.padding,
        params.input_datatype.name,
    )
    if key not in _RANGE_CACHE:
        if len(_RANGE_CACHE) >= _RANGE_CACHE_SIZE:
            _RANGE_CACHE.pop(next(iter(_RANGE_CACHE)))
        _RANGE_CACHE[key] = exact_output_range(U, params)
    return _RANGE_CACHE[key]

