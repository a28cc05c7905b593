"""Exact Winograd minimal-filtering transforms F(m x m, r x r).

The matrices come from the Cook-Toom construction over ``t - 1`` finite
interpolation points plus the point at infinity (``t = m + r - 1``)::

    y = A^T [ (G g) . (B^T d) ]          (1-D)
    Y = A^T [ (G g G^T) . (B^T d B) ] A  (2-D)

For finite points ``p_i`` with ``N_i = prod_{j != i} (p_i - p_j)``:

* ``A^T[j, i] = p_i ** j``;            the infinity column is ``e_{m-1}``
* ``G[i, k]   = p_i ** k / N_i``;      the infinity row is ``e_{r-1}``
* ``B^T[i, :]`` = coefficients of ``prod_{j != i} (x - p_j)``; the infinity row
  holds the coefficients of ``prod_j (x - p_j)``.

Every row of ``B^T`` and every column of ``A^T`` is then rescaled by the
smallest positive factor that makes it integer, and ``G`` absorbs the inverse
factor: ``A^T`` and ``B^T`` hold integers only, so with an integer
Winograd-domain weight ``U`` the whole computation is integer (DESIGN.md,
"Integer exactness").

Points (the usual choice, Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks", CVPR 2016):

* F(2,3): 0, 1, -1, inf.  Lavin & Gray print the same matrices up to the sign
  of the row for point 0 and of the infinity row/column (the signs cancel).
* F(4,3): 0, 1, -1, 2, -2, inf.  Identical to Lavin & Gray's matrices.
* F(6,3): 0, 1, -1, 2, -2, 1/2, -1/2, inf.  ``A^T``/``B^T`` stay integer after
  the rescaling above; their entries grow (up to 32 in ``A^T``), so exact
  integer arithmetic costs more bits -- see :func:`accumulator_bits`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from functools import cached_property
from math import gcd, lcm

import numpy as np

__all__ = ["WinogradSpec", "SUPPORTED_TILES", "INTERPOLATION_POINTS"]

#: Finite interpolation points per output tile size ``m`` (for ``r = 3``); the
#: point at infinity is always added.
INTERPOLATION_POINTS: dict[int, tuple[Fraction, ...]] = {
    2: (Fraction(0), Fraction(1), Fraction(-1)),
    4: (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2)),
    6: (
        Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2),
        Fraction(1, 2), Fraction(-1, 2),
    ),
}
#: The ``(m, r)`` pairs this module builds transforms for.
SUPPORTED_TILES: tuple[tuple[int, int], ...] = tuple((m, 3) for m in INTERPOLATION_POINTS)

FractionMatrix = tuple[tuple[Fraction, ...], ...]


def _poly_from_roots(roots: list[Fraction]) -> list[Fraction]:
    """Coefficients (lowest power first) of ``prod (x - root)``."""
    coeffs = [Fraction(1)]
    for root in roots:
        shifted = [Fraction(0)] + coeffs  # x * p(x)
        for k, c in enumerate(coeffs):
            shifted[k] -= root * c
        coeffs = shifted
    return coeffs


def _integer_scale(values) -> Fraction:
    """Smallest positive rational ``s`` with ``s * v`` integer for all ``v``, and the
    integers coprime (so the row/column is primitive)."""
    nonzero = [v for v in values if v != 0]
    den = lcm(*(v.denominator for v in nonzero))
    ints = [int(v * den) for v in nonzero]
    return Fraction(den, gcd(*ints))


@lru_cache(maxsize=None)
def _cook_toom(m: int, r: int) -> tuple[FractionMatrix, FractionMatrix, FractionMatrix]:
    points = list(INTERPOLATION_POINTS[m])
    t = m + r - 1
    if len(points) != t - 1:  # pragma: no cover - table consistency
        raise AssertionError("interpolation table inconsistent")
    AT = [[Fraction(0)] * t for _ in range(m)]
    G = [[Fraction(0)] * r for _ in range(t)]
    BT = [[Fraction(0)] * t for _ in range(t)]
    for i, p in enumerate(points):
        others = points[:i] + points[i + 1:]
        n_i = Fraction(1)
        for q in others:
            n_i *= p - q
        for j in range(m):
            AT[j][i] = p ** j
        for k in range(r):
            G[i][k] = p ** k / n_i
        coeffs = _poly_from_roots(others)
        BT[i][: len(coeffs)] = coeffs
    AT[m - 1][t - 1] = Fraction(1)
    G[t - 1][r - 1] = Fraction(1)
    BT[t - 1][:] = _poly_from_roots(points)
    # Make every B^T row and A^T column primitive integers; G compensates.
    for i in range(t):
        s = _integer_scale(BT[i])
        BT[i] = [v * s for v in BT[i]]
        G[i] = [v / s for v in G[i]]
        s = _integer_scale([AT[j][i] for j in range(m)])
        for j in range(m):
            AT[j][i] *= s
        G[i] = [v / s for v in G[i]]
    freeze = lambda rows: tuple(tuple(row) for row in rows)  # noqa: E731
    return freeze(AT), freeze(G), freeze(BT)


def _as_int(mat: FractionMatrix) -> np.ndarray:
    out = np.array([[int(v) for v in row] for row in mat], dtype=np.int64)
    out.setflags(write=False)
    return out


def _as_float(mat: FractionMatrix) -> np.ndarray:
    out = np.array([[float(v) for v in row] for row in mat], dtype=np.float64)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class WinogradSpec:
    """Winograd F(m x m, r x r): an ``m x m`` output tile from a ``t x t`` input tile.

    Exact matrices are tuples of :class:`fractions.Fraction` (``AT_exact``,
    ``G_exact``, ``BT_exact``); ``AT`` and ``BT`` are read-only int64 arrays
    (they hold integers only), ``G`` is a read-only float64 array.
    ``filter_denominator`` is the smallest integer ``D`` for which
    ``D * G g G^T`` is integer for every integer kernel ``g``.
    """

    m: int
    r: int = 3
    AT_exact: FractionMatrix = field(init=False, repr=False, compare=False)
    G_exact: FractionMatrix = field(init=False, repr=False, compare=False)
    BT_exact: FractionMatrix = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("m", "r"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if self.r != 3:
            raise ValueError(f"r={self.r} is not supported; allowed: r=3")
        if (self.m, self.r) not in SUPPORTED_TILES:
            allowed = sorted(m for m, _ in SUPPORTED_TILES)
            raise ValueError(f"m={self.m} is not supported for r={self.r}; allowed: m in {allowed}")
        object.__setattr__(self, "m", int(self.m))
        object.__setattr__(self, "r", int(self.r))
        AT, G, BT = _cook_toom(self.m, self.r)
        object.__setattr__(self, "AT_exact", AT)
        object.__setattr__(self, "G_exact", G)
        object.__setattr__(self, "BT_exact", BT)

    @property
    def t(self) -> int:
        """Input tile size ``m + r - 1``."""
        return self.m + self.r - 1

    @property
    def points(self) -> tuple[Fraction, ...]:
        """The finite interpolation points (infinity is the last row/column)."""
        return INTERPOLATION_POINTS[self.m]

    @cached_property
    def AT(self) -> np.ndarray:  # noqa: N802 - the literature's name
        """Output transform ``A^T`` (m x t), int64."""
        return _as_int(self.AT_exact)

    @cached_property
    def BT(self) -> np.ndarray:  # noqa: N802
        """Input transform ``B^T`` (t x t), int64."""
        return _as_int(self.BT_exact)

    @cached_property
    def G(self) -> np.ndarray:  # noqa: N802
        """Filter transform ``G`` (t x r), float64 view of the exact fractions."""
        return _as_float(self.G_exact)

    @cached_property
    def filter_denominator(self) -> int:
        """``D`` such that ``D * G g G^T`` is integer for integer ``g``."""
        d = lcm(*(v.denominator for row in self.G_exact for v in row))
        return d * d

    @cached_property
    def G_scaled(self) -> np.ndarray:  # noqa: N802
        """``sqrt(filter_denominator) * G`` as int64 (integer by construction)."""
        d = lcm(*(v.denominator for row in self.G_exact for v in row))
        return _as_int(tuple(tuple(v * d for v in row) for row in self.G_exact))

    def __str__(self) -> str:
        return f"F({self.m}x{self.m},{self.r}x{self.r})"
