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
Each extreme is reached by some input and weight: an extreme tile ``d`` in
every channel and an extreme weight code.  The ranges of ``V``, the products
and ``M`` are closed forms.  The output range needs a search: one channel's
contribution to output ``(i, j)`` is bilinear in the weights ``u`` and the tile
``d`` and mixes up to 9 (F(2,3)), 25 (F(4,3)) or 49 (F(6,3)) Winograd
positions.  :func:`output_extreme` finds its extremes exactly by a branch and
bound over the weight vertices (bounded by interval and chord relaxations of
the tile, see :func:`_max_over_patterns`), in exact integer arithmetic, and
returns a witness tile and weights that reach them.

``BitGrowth.output_exact`` is ``True`` when every output of the tile was solved
exactly.  Otherwise -- an output mixing more than ``EXACT_OUTPUT_MAX_TERMS``
positions, or a search past its node budget (``_SEARCH_NODE_BUDGET``) -- that
output gets a sound interval bound over the positions instead, which may
overstate the true worst case.  Neither happens for the supported tiles in any
setting checked: every combination of input and weight widths 1..16, signed
and unsigned, for F(2,3) and F(4,3), 1..8 for F(6,3), and samples up to 32
bits for all three; the largest search took under 2 * 10^4 nodes of the
budget's 4 * 10^6.  F(4,3) at 1..16 bits takes well under a second (cached
per tile and widths); beyond about 43 bits of ``in_bits + weight_bits`` for
F(4,3) (34 for F(6,3), 51 for F(2,3)) the search leaves int64 for Python ints
and takes seconds (F(4,3) at 32 bits: up to ~10 s, F(6,3): up to ~30 s).
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
    "FLOAT32_EXACT",
]

#: float32 holds every integer of magnitude below this exactly (a 24-bit significand).  The one
#: home of the rule "a Winograd layer is exact through the float32 stages (torch, the ONNX export,
#: FINN's tensors) when every stage of :func:`bit_growth` stays below it" (``BitGrowth.float32_exact``).
FLOAT32_EXACT = 1 << 24

#: Outputs mixing at most this many Winograd positions get an exact range from
#: the search of :func:`output_extreme` (a weight pattern is an int64 bit mask).
#: Every output of the supported tiles qualifies: F(2,3) mixes up to 9
#: positions, F(4,3) 25, F(6,3) 49.
EXACT_OUTPUT_MAX_TERMS = 62

#: Search nodes (partial weight patterns whose bound is evaluated) after which
#: :func:`output_extreme` gives up and :func:`bit_growth` falls back to the
#: interval bound.  The supported tiles need at most a few 10^4 per extreme.
_SEARCH_NODE_BUDGET = 1 << 22
#: Partial patterns expanded together (bounds the search's memory).
_SEARCH_CHUNK = 1 << 14
#: Starts of the alternating ascent that seeds the search with an incumbent.
_ASCENT_STARTS = 64
#: The chord bound's slopes are rounded up to multiples of ``2^-q``,
#: ``q <= _SLOPE_BITS`` (finer changes nothing in practice: slopes lie in
#: ``[xlo, xhi]``).  The search runs in int64 when ``q >= _MIN_SLOPE_BITS``
#: keeps every sum it forms below 2^63 (see :func:`_search_arithmetic`), else on
#: Python ints (object arrays): exact at any width, slower.
_SLOPE_BITS = 12
_MIN_SLOPE_BITS = 4

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
    """Few enough positions for a bit-mask pattern (the search itself may still give up)."""
    return len(_output_terms(spec, i, j)[0]) <= EXACT_OUTPUT_MAX_TERMS


def _vertex_max(L: np.ndarray, xlo: int, xhi: int) -> np.ndarray:
    """``max over d in [xlo, xhi]^k of L . d`` per row of ``L``: ``d_k`` at ``xhi`` where ``L_k > 0``."""
    return np.maximum(L * xhi, L * xlo).sum(axis=-1)


def _interval_vertex_max(lo: np.ndarray, hi: np.ndarray, xlo: int, xhi: int) -> np.ndarray:
    """``sum_k max over v in [lo_k, hi_k], x in [xlo, xhi] of v x`` per row (a corner of both)."""
    if xlo <= 0 <= xhi:  # always for value_range; then xhi hi >= xhi lo and xlo lo >= xlo hi
        return np.maximum(hi * xhi, lo * xlo).sum(axis=-1)
    return np.maximum(np.maximum(lo * xhi, lo * xlo), np.maximum(hi * xhi, hi * xlo)).sum(axis=-1)


def _ascent(T0: np.ndarray, T: np.ndarray, xlo: int, xhi: int):
    """A good pattern to start from: alternate the best tile for the weights and
    the best weights for the tile, from several starts; returns ``(value, s)``."""
    n = T.shape[0]
    rng = np.random.default_rng(0)
    S = np.vstack([np.zeros((1, n), np.int64), np.ones((1, n), np.int64),
                   rng.integers(0, 2, (_ASCENT_STARTS - 2, n))]).astype(T.dtype)
    L = T0 + S @ T
    val = _vertex_max(L, xlo, xhi)
    while True:
        D = np.where(L > 0, xhi, xlo).astype(T.dtype)  # best tile for each pattern
        S_new = (D @ T.T > 0).astype(T.dtype)  # best pattern for each tile
        L_new = T0 + S_new @ T
        val_new = _vertex_max(L_new, xlo, xhi)
        better = val_new > val  # never worse: val_new >= f(S_new, D) >= f(S, D) = val
        if not better.any():
            break
        S[better], L[better], val[better] = S_new[better], L_new[better], val_new[better]
    k = int(np.argmax(val))
    return val[k], S[k].astype(np.int64)


def _chord_bound(lo: np.ndarray, hi: np.ndarray, free_up: np.ndarray, free_down: np.ndarray,
                 xlo: int, xhi: int, scale: int) -> np.ndarray:
    """``scale`` times an upper bound on every completion of each partial pattern.

    A completion's coefficient is ``L_k = lo_k + sum_p delta_pk`` with
    ``delta_pk = max(T_pk, 0)`` if free position ``p`` is set, ``max(-T_pk, 0)``
    if not (both >= 0).  On ``[lo_k, hi_k]`` the convex ``h(v) = max(xhi v, xlo v)``
    lies below its chord ``h(lo_k) + slope_k (v - lo_k)``, and below it still with
    the slope rounded up (``v - lo_k >= 0``).  The sum over ``k`` is linear in the
    free pattern, maximised position by position.  Exact integer arithmetic.
    """
    h_lo, h_hi = np.maximum(lo * xhi, lo * xlo), np.maximum(hi * xhi, hi * xlo)
    width = hi - lo
    slope = -((h_lo - h_hi) * scale // np.where(width > 0, width, 1))  # ceil; 0 where width == 0
    return scale * h_lo.sum(axis=1) + np.maximum(slope @ free_up, slope @ free_down).sum(axis=1)


def _max_over_patterns(T0: np.ndarray, T: np.ndarray, xlo: int, xhi: int, scale: int, ascent: bool = True):
    """Exact ``max over s in {0,1}^n of g(T0 + s @ T)``, ``g(L) = max over d in
    [xlo, xhi]^k of L . d``; returns ``(value, s)``, or ``None`` past the node budget.

    Depth-first branch and bound over ``s`` (positions with the largest
    coefficients first), seeded with the incumbent of :func:`_ascent`.  Every
    completion of a partial pattern has ``L_k`` in ``[lo_k, hi_k]`` (``L_k`` plus
    the negative / positive free ``T_pk``), and two bounds drop the patterns that
    cannot beat the incumbent:

    * each coordinate at its best end, ``sum_k max(h(lo_k), h(hi_k))`` with
      ``h(v) = max(xhi v, xlo v)`` convex (cheap, exact for a full pattern);
    * the chord bound (:func:`_chord_bound`), linear in the free positions and
      maximised jointly over them: much tighter (a relaxation of ``d_k`` to the
      chord slope, in ``[xlo, xhi]``), with slopes rounded up to multiples of
      ``1 / scale``.

    ``ascent=False`` starts from the all-zero pattern instead (for tests: the
    search alone then has to find the maximum).
    """
    n = T.shape[0]
    if ascent:
        best, best_s = _ascent(T0, T, xlo, xhi)
    else:
        best, best_s = _vertex_max(T0, xlo, xhi), np.zeros(n, np.int64)
    order = np.argsort(-np.abs(T).sum(axis=1), kind="stable")
    Tn = T[order]
    zero = np.zeros((1, T.shape[1]), T.dtype)
    # pos[l] / neg[l]: per-coordinate sum of the positive / negative T of positions l..n-1
    up, down = np.maximum(Tn, 0), np.maximum(-Tn, 0)
    pos = np.concatenate([np.cumsum(up[::-1], axis=0)[::-1], zero])
    neg = np.concatenate([-np.cumsum(down[::-1], axis=0)[::-1], zero])
    up_t, down_t = np.ascontiguousarray(up.T), np.ascontiguousarray(down.T)
    best_bits = None
    nodes = 0
    stack = [(0, T0[None, :], np.zeros(1, np.int64))]  # (positions fixed, L, bit masks)
    while stack:
        level, L, bits = stack.pop()
        L = np.concatenate([L, L + Tn[level]])
        bits = np.concatenate([bits, bits | np.int64(1 << level)])
        nodes += len(L)
        if nodes > _SEARCH_NODE_BUDGET:
            return None
        level += 1
        if level == n:
            values = _vertex_max(L, xlo, xhi)
            k = int(np.argmax(values))
            if values[k] > best:
                best, best_bits = values[k], int(bits[k])
            continue
        lo, hi = L + neg[level], L + pos[level]
        keep = _interval_vertex_max(lo, hi, xlo, xhi) > best
        L, bits, lo, hi = L[keep], bits[keep], lo[keep], hi[keep]
        if len(L):
            keep = _chord_bound(lo, hi, up_t[:, level:], down_t[:, level:], xlo, xhi, scale) > scale * best
            L, bits = L[keep], bits[keep]
        for start in range(0, len(L), _SEARCH_CHUNK):
            stack.append((level, L[start:start + _SEARCH_CHUNK], bits[start:start + _SEARCH_CHUNK]))
    if best_bits is not None:
        best_s = np.zeros(n, np.int64)
        best_s[order] = (best_bits >> np.arange(n)) & 1
    return int(best), best_s


def output_extreme(spec: WinogradSpec, x_range: Range, w_range: Range, i: int, j: int, maximize: bool):
    """Extreme of one channel's contribution to output ``(i, j)`` of a tile.

    Returns ``(value, d, u)``: the extreme of ``sum_xi AT[i,a] AT[j,b] u_ab V_ab(d)``
    over integer tiles ``d`` in ``x_range`` and Winograd weights ``u`` in
    ``w_range``, with a tile and weights that reach it (``d`` a ``t x t`` tile,
    ``u`` a ``t x t`` weight, zero at positions that do not reach the output).

    The function is bilinear in ``(u, d)``, so the extreme lies on vertices of
    both boxes.  For a fixed weight vertex it is linear in ``d`` and solved by
    signs; the weight vertices (``2^n`` for ``n`` positions, ``2^25`` for the
    corner outputs of F(4,3)) are searched by an exact branch and bound (see
    :func:`_max_over_patterns`) in integer arithmetic (int64 where every sum
    provably fits, Python ints otherwise).  Outputs ``(j, i)`` reuse ``(i, j)``
    transposed.  ``ValueError`` for an output mixing more than
    ``EXACT_OUTPUT_MAX_TERMS`` positions or a search past its node budget.
    """
    x_range, w_range = tuple(int(v) for v in x_range), tuple(int(v) for v in w_range)
    result = _output_extremes(spec, x_range, w_range, int(i), int(j))
    if result is None:
        raise ValueError(f"output ({i},{j}) of {spec} is too large to search exactly")
    return result[0 if maximize else 1]


@lru_cache(maxsize=None)
def _output_extremes(spec: WinogradSpec, x_range: Range, w_range: Range, i: int, j: int):
    """``((max, d, u), (min, d, u))`` of output ``(i, j)``, or ``None`` where the search does not apply."""
    if i > j:  # transposing d and u maps output (j, i) to (i, j): sum AT[i,a] AT[j,b] u_ab (B^T d B)_ab
        mirror = _output_extremes(spec, x_range, w_range, j, i)
        if mirror is None:
            return None
        return tuple((value, _frozen(d.T), _frozen(u.T)) for value, d, u in mirror)
    return _output_search(spec, x_range, w_range, i, j)


def _output_search(spec: WinogradSpec, x_range: Range, w_range: Range, i: int, j: int, ascent: bool = True):
    """:func:`_output_extremes` without the cache and the transposition."""
    if not _exact_output_feasible(spec, x_range, w_range, i, j):
        return None
    positions, terms = _output_terms(spec, i, j)
    (xlo, xhi), (wlo, whi) = x_range, w_range
    used = np.flatnonzero(np.abs(terms).sum(axis=0))  # tile entries that reach the output
    terms = terms[:, used].astype(np.int64)
    terms, scale = _search_arithmetic(terms, x_range, w_range)
    result = []
    for sign in (1, -1):
        # u_p = wlo + (whi - wlo) s_p:  sign * f = (T0 + s @ T) . d
        T0 = sign * wlo * terms.sum(axis=0)
        T = sign * (whi - wlo) * terms
        found = _max_over_patterns(T0, T, xlo, xhi, scale, ascent)
        if found is None:
            return None
        value, s = found
        L = T0 + s @ T
        d = np.full(spec.t * spec.t, xlo, np.int64)
        d[used] = np.where(L > 0, xhi, xlo)
        u = np.zeros((spec.t, spec.t), dtype=np.int64)
        for (a, b), pick in zip(positions, s):
            u[a, b] = whi if pick else wlo
        d = d.reshape(spec.t, spec.t)
        value = sign * int(value)
        if value != _contribution(spec, d, u, i, j):  # pragma: no cover - self-check
            raise AssertionError("output witness does not reach its value")
        result.append((value, _frozen(d), _frozen(u)))
    return tuple(result)


def _search_arithmetic(terms: np.ndarray, x_range: Range, w_range: Range) -> tuple[np.ndarray, int]:
    """``terms`` as int64 with the chord slope scale ``2^q``, or as Python ints.

    With ``size = max|x| max|w| sum|terms|`` < ``2^b``: every ``L_k`` of a (full
    or per-coordinate) weight vertex is at most ``max|w| sum_p |terms_pk|``, so
    ``|h(L_k)|`` sums to at most ``size``; ``sum |T|`` is at most ``2 size / max|x|``
    and a rounded slope at most ``2^q max|x| + 1`` in magnitude, so the chord
    bound sums stay below ``(3 * 2^q + 2) size <= 2^(q + 3 + b)``: int64 when
    ``q + 3 + b <= 63``.
    """
    size = max(map(abs, x_range)) * max(map(abs, w_range)) * int(np.abs(terms).sum())
    q = min(_SLOPE_BITS, 60 - size.bit_length())
    if q >= _MIN_SLOPE_BITS:
        return terms.astype(np.int64), 1 << q
    return terms.astype(object), 1 << _SLOPE_BITS


def _contribution(spec: WinogradSpec, d: np.ndarray, u: np.ndarray, i: int, j: int) -> int:
    """``(A^T (u . B^T d B) A)[i, j]`` in Python ints."""
    BT, AT = spec.BT.astype(object), spec.AT.astype(object)
    V = BT @ d.astype(object) @ BT.T
    return int((AT @ (u.astype(object) * V) @ AT.T)[i, j])


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.int64)
    a.setflags(write=False)
    return a


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
    def widest(self) -> int:
        """Largest magnitude over every stage's exact range."""
        stages = (self.input_range, self.input_transform, self.product, self.accumulator, self.output)
        return max(max(abs(lo), abs(hi)) for lo, hi in stages)

    @property
    def float32_exact(self) -> bool:
        """Every integer of every stage is exact in float32 -- and so is every partial sum of every
        summation order: a partial sum over some channels and positions is the stage's value with
        the other weights (or input entries) set to 0, a legal code, so it lies in the same exact
        range.  Products by the transforms' power-of-two coefficients are exact as well."""
        return self.widest < FLOAT32_EXACT

    @property
    def total_bits(self) -> int:
        """Width of one register type that holds every intermediate."""
        return max(self.input_transform_bits, self.product_bits, self.accumulator_bits, self.output_bits)


def _interval_output_range(spec: WinogradSpec, x_range: Range, w_range: Range, cin: int, i: int, j: int) -> Range:
    """Sound, not tight, range of output ``(i, j)``: every position's channel sum at
    its own extreme (the fallback where the exact search does not apply)."""
    K = _position_kernels(spec)
    coef = np.outer(spec.AT[i], spec.AT[j])
    lo = hi = 0
    for a, b in zip(*np.nonzero(coef)):
        plo, phi = _product_range(_linear_range(K[a, b], *x_range), w_range)
        c = int(coef[a, b])
        lo += min(c * cin * plo, c * cin * phi)
        hi += max(c * cin * plo, c * cin * phi)
    return lo, hi


def _stage_ranges(spec: WinogradSpec, x_range: Range, w_range: Range, cin: int):
    K = _position_kernels(spec)
    t = spec.t
    v = {(a, b): _linear_range(K[a, b], *x_range) for a in range(t) for b in range(t)}
    p = {ab: _product_range(r, w_range) for ab, r in v.items()}
    acc = {ab: (cin * lo, cin * hi) for ab, (lo, hi) in p.items()}
    out_lo, out_hi, exact = 0, 0, True
    for i in range(spec.m):
        for j in range(spec.m):
            extremes = _output_extremes(spec, x_range, w_range, i, j)
            if extremes is not None:
                hi, lo = cin * extremes[0][0], cin * extremes[1][0]
            else:
                exact = False
                lo, hi = _interval_output_range(spec, x_range, w_range, cin, i, j)
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
    """Ranges and widths of every stage for ``cin`` input channels.

    For an SRBS layer pass the full ``cin``: each Winograd position's channel sum
    has only ``cin * keep // sub_row`` non-zero terms, but the kept channels differ
    between positions, so one output can combine every channel, and
    ``cin * keep // sub_row`` would understate the output range (e.g. F(2,3), 4-bit
    unsigned inputs and weights, 9 channels, keep 1 of 9 reaches 2340 > 1395).  The
    per-position stages of such a layer are covered by ``cin * keep // sub_row``.
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
