"""Argument validation shared by the Winograd core: one place for the messages."""

from __future__ import annotations

import numpy as np

INT64_MAX = int(np.iinfo(np.int64).max)


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as a Python int, or ``ValueError`` naming ``name`` and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        lo = "-inf" if minimum is None else minimum
        hi = "inf" if maximum is None else maximum
        raise ValueError(f"{name}={value} is out of range; allowed: {lo}..{hi}")
    return value


def check_array(name: str, value, ndim: int, axes: str) -> np.ndarray:
    """A numeric ndarray of ``ndim`` dimensions with finite values."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must hold integers or floats, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions {axes}, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError(f"{name} holds non-finite values (nan or inf)")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > INT64_MAX:
        raise ValueError(f"{name} holds values above the int64 range")
    return arr


def is_integer(arr: np.ndarray) -> bool:
    return bool(np.issubdtype(arr.dtype, np.integer))


def max_abs(arr: np.ndarray) -> int:
    """Largest magnitude of an integer array as a Python int (no overflow)."""
    if arr.size == 0:
        return 0
    return max(abs(int(arr.max())), abs(int(arr.min())))
