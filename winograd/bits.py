"""Bit growth of exact integer Winograd convolution.

With integer input codes ``x`` (``in_bits``) and integer Winograd-domain weight
codes ``U`` (``weight_bits``, free per position -- ``U`` is the trained
parameter, not ``G g G^T``), every intermediate is an integer:

* input transform  ``V = B^T d B``              (per channel, per position xi)
* products         ``U_xi * V_xi``
* channel sums     ``M_xi = sum_c U_c,xi V_c,xi`` (the accumulator proper)
* output transform ``Y = A^T M A``

:func:`bit_growth` gives the exact range of each stage over *all* inputs and
weights of the given widths, and the two's-complement width that holds it.
The ranges of ``V``, the products and ``M`` are exact (each extreme is reached
by some input and weight: an extreme tile ``d`` in every channel and an
extreme weight code).  The output range is exact when an
output mixes at most ``EXACT_OUTPUT_MAX_TERMS`` Winograd positions (F(2,3):
9) -- found by enumerating the weight-sign vertices, see
:func:`output_extreme` -- and otherwise (F(4,3): up to 25) a sound interval
bound over the positions, which may overstate the true worst case.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._checks import check_int
from .conv import as_spec
from .transforms import WinogradSpec

__all__ = [
    "value_range",
    "signed_bits",
    "BitGrowth",
    "bit_growth",
    "accumulator_bits",
    "output_extreme",
    "EXACT_OUTPUT_MAX_TERMS",
]

#: Outputs mixing at most this many Winograd positions get an exact range.
EXACT_OUTPUT_MAX_TERMS = 16

Range = tuple[int, int]


def value_range(bits: int, signed: bool) -> Range:
    """Integer codes of a ``bits``-wide quantizer: ``[-2^(b-1), 2^(b-1)-1]`` or ``[0, 2^b-1]``."""
    bits = check_int("bits", bits, minimum=1, maximum=32)
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's-complement width holding every integer in ``[lo, hi]``."""
    b = 1
    while lo < -(1 << (b - 1)) or hi > (1 << (b - 1)) - 1:
        b += 1
    return b


def _linear_range(coeffs: np.ndarray, lo: int, hi: int) -> Range:
    """Exact range of ``sum coeffs * x`` for ``x`` in the box ``[lo, hi]^n``."""
    c = [int(v) for v in np.asarray(coeffs).ravel()]
    top = sum(v * (hi if v > 0 else lo) for v in c)
    bottom = sum(v * (lo if v > 0 else hi) for v in c)
    return bottom, top


def _product_range(a: Range, b: Range) -> Range:
    corners = [x * y for x in a for y in b]
    return min(corners), max(corners)


def _position_kernels(spec: WinogradSpec) -> np.ndarray:
    """``K[a, b, k, l] = BT[a, k] * BT[b, l]``: ``V_ab = sum_kl K[a,b,k,l] d_kl``."""
    BT = spec.BT
    return np.einsum("ak,bl->abkl", BT, BT)


def _output_terms(spec: WinogradSpec, i: int, j: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Positions reaching output ``(i, j)`` and their ``d``-coefficients ``AT[i,a] AT[j,b] K[a,b]``."""
    coef = np.outer(spec.AT[i], spec.AT[j])
    positions = [(int(a), int(b)) for a, b in zip(*np.nonzero(coef))]
    K = _position_kernels(spec)
    return positions, np.stack([coef[a, b] * K[a, b].ravel() for a, b in positions])


def _exact_output_feasible(spec: WinogradSpec, x_range: Range, w_range: Range, i: int, j: int) -> bool:
    """Few enough positions to enumerate, and every sum below 2^53 (exact in float64)."""
    positions, terms = _output_terms(spec, i, j)
    bound = max(map(abs, w_range)) * int(np.abs(terms).sum()) * max(map(abs, x_range))
    return len(positions) <= EXACT_OUTPUT_MAX_TERMS and bound < 2**53


def output_extreme(spec: WinogradSpec, x_range: Range, w_range: Range, i: int, j: int, maximize: bool):
    """Extreme of one channel's contribution to output ``(i, j)`` of a tile.

    Returns ``(value, d, u)``: the extreme of ``sum_xi AT[i,a] AT[j,b] u_ab V_ab(d)``
    over integer tiles ``d`` in ``x_range`` and Winograd weights ``u`` in
    ``w_range``, with a tile and weights that reach it.  The function is
    bilinear in ``(u, d)``, so the extreme lies on vertices of both boxes:
    enumerate the ``u`` vertices on the positions that reach this output, and
    solve the linear problem in ``d`` exactly for each.  Only where the
    positions are few (``EXACT_OUTPUT_MAX_TERMS``) and the sums stay below 2^53,
    where float64 is exact.
    """
    return _output_extremes(spec, tuple(x_range), tuple(w_range), i, j)[0 if maximize else 1]


@lru_cache(maxsize=None)
def _output_extremes(spec: WinogradSpec, x_range: Range, w_range: Range, i: int, j: int):
    if not _exact_output_feasible(spec, x_range, w_range, i, j):
        raise ValueError(f"output ({i},{j}) of {spec} is too large to enumerate exactly")
    positions, terms = _output_terms(spec, i, j)
    (xlo, xhi), (wlo, whi) = x_range, w_range
    n = len(positions)
    # pattern k picks whi at position p where bit p of k is set, else wlo
    picks = ((np.arange(1 << n, dtype=np.int64)[:, None] >> np.arange(n)) & 1).astype(np.float64)
    T = terms.astype(np.float64)
    L = wlo * T.sum(axis=0) + (whi - wlo) * (picks @ T)  # (patterns, t*t) d-coefficients
    result = []
    for sign in (1, -1):
        sL = sign * L
        values = np.where(sL > 0, sL * xhi, sL * xlo).sum(axis=1)
        k = int(np.argmax(values))
        d = np.where(sL[k] > 0, xhi, xlo).astype(np.int64).reshape(spec.t, spec.t)
        u = np.zeros((spec.t, spec.t), dtype=np.int64)
        for (a, b), pick in zip(positions, picks[k]):
            u[a, b] = whi if pick else wlo
        d.setflags(write=False)
        u.setflags(write=False)
        result.append((sign * int(round(values[k])), d, u))
    return tuple(result)


@dataclass(frozen=True)
class BitGrowth:
    """Exact ranges (``(lo, hi)``) of every intermediate of integer Winograd convolution."""

    spec: WinogradSpec
    cin: int
    input_range: Range
    weight_range: Range
    input_transform: Range
    product: Range
    accumulator: Range
    output: Range
    output_exact: bool

    @property
    def input_transform_bits(self) -> int:
        return signed_bits(*self.input_transform)

    @property
    def product_bits(self) -> int:
        return signed_bits(*self.product)

    @property
    def accumulator_bits(self) -> int:
        return signed_bits(*self.accumulator)

    @property
    def output_bits(self) -> int:
        return signed_bits(*self.output)

    @property
    def total_bits(self) -> int:
        """Width of one register type that holds every intermediate."""
        return max(self.input_transform_bits, self.product_bits, self.accumulator_bits, self.output_bits)


def _stage_ranges(spec: WinogradSpec, x_range: Range, w_range: Range, cin: int):
    K = _position_kernels(spec)
    t = spec.t
    v = {(a, b): _linear_range(K[a, b], *x_range) for a in range(t) for b in range(t)}
    p = {ab: _product_range(r, w_range) for ab, r in v.items()}
    acc = {ab: (cin * lo, cin * hi) for ab, (lo, hi) in p.items()}
    AT = spec.AT
    out_lo, out_hi, exact = 0, 0, True
    for i in range(spec.m):
        for j in range(spec.m):
            coef = np.outer(AT[i], AT[j])
            if _exact_output_feasible(spec, x_range, w_range, i, j):
                hi = cin * output_extreme(spec, x_range, w_range, i, j, True)[0]
                lo = cin * output_extreme(spec, x_range, w_range, i, j, False)[0]
            else:
                exact = False
                lo = hi = 0
                for (a, b), (mlo, mhi) in acc.items():
                    c = int(coef[a, b])
                    lo += min(c * mlo, c * mhi)
                    hi += max(c * mlo, c * mhi)
            out_lo, out_hi = min(out_lo, lo), max(out_hi, hi)
    span = lambda d: (min(r[0] for r in d.values()), max(r[1] for r in d.values()))  # noqa: E731
    return span(v), span(p), span(acc), (out_lo, out_hi), exact


def bit_growth(
    in_bits: int,
    weight_bits: int,
    cin: int,
    spec: WinogradSpec | int,
    *,
    in_signed: bool = True,
    weight_signed: bool = True,
) -> BitGrowth:
    """Ranges and widths of every stage for ``cin`` accumulated input channels.

    For an SRBS layer pass the number of non-zero terms per sum,
    ``cin * keep // sub_row``.
    """
    spec = as_spec(spec)
    x_range = value_range(check_int("in_bits", in_bits, minimum=1, maximum=32), bool(in_signed))
    w_range = value_range(check_int("weight_bits", weight_bits, minimum=1, maximum=32), bool(weight_signed))
    cin = check_int("cin", cin, minimum=1)
    v, p, acc, out, exact = _stage_ranges(spec, x_range, w_range, cin)
    return BitGrowth(spec, cin, x_range, w_range, v, p, acc, out, exact)


def accumulator_bits(
    in_bits: int,
    weight_bits: int,
    cin: int,
    spec: WinogradSpec | int,
    *,
    in_signed: bool = True,
    weight_signed: bool = True,
) -> int:
    """Two's-complement width that holds every intermediate exactly (see :func:`bit_growth`)."""
    return bit_growth(in_bits, weight_bits, cin, spec, in_signed=in_signed, weight_signed=weight_signed).total_bits
