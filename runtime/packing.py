"""FINN's packed DMA byte format, in numpy only (no qonnx, no bitstring).

A numpy reimplementation of ``finn.util.data_packing.finnpy_to_packed_bytearray``
and ``packed_bytearray_to_finnpy`` -- byte for byte the same output (checked
against FINN in ``tests/hw/test_runtime_packing_finn.py``), vectorised, and
usable on a PYNQ board where FINN is not installed.

The format
----------
Packing acts on the innermost dimension of a *folded* tensor: each row of ``n``
values of a ``b``-bit datatype becomes one word of ``ceil(n * b / 8)`` bytes; all
outer dimensions are kept, so ``packed_shape(folded) == folded[:-1] + (bytes,)``.

1. Every value becomes its ``b``-bit code: unsigned integers as they are, signed
   integers in two's complement (``INT4 -3 -> 0b1101``), ``BIPOLAR`` -1/+1 as 0/1,
   ``TERNARY`` -1/0/+1 as ``0b11``/``0b00``/``0b01``, ``FLOAT16``/``FLOAT32`` as
   their IEEE 754 bit pattern.
2. The codes are concatenated into one word, value 0 in the most significant
   bits (with ``reverse_inner=True``: value ``n-1`` in the most significant bits,
   value 0 in the least significant ones).
3. The word is left-padded with zero bits to a whole number of bytes and written
   most significant byte first (with ``reverse_endian=True``: least significant
   byte first).

FINN's PYNQ driver (``driver_base.py``) uses ``reverse_inner=True,
reverse_endian=True``: value ``i`` sits in bits ``[i*b, (i+1)*b)`` of a
little-endian word, i.e. the stream order of the AXI data bus.  Example, UINT2
values ``[1, 2, 3]`` (6 bits, one byte): ``0b00_11_10_01 = 0x39``; with both
flags false: ``0b00_01_10_11 = 0x1B``.

Implementation: whole-byte widths (8/16/32/64) are byte views; widths whose
smallest whole-byte group of values fits 64 bits (1-8, 10, 12, 14, 20, 24, 28,
...) are packed a group at a time with shifts on the little-endian word; the
others (9, 11, 13, ...) go through one uint8 per bit (``np.unpackbits``).  All
of it is vectorised over the array; no Python loop runs per element.

Differences from FINN, none of which changes a byte of valid data:

* invalid input raises ``ValueError`` (FINN asserts, or packs silently in its
  native-container fast path): values out of range, non-integers for integer
  types, finite floats that overflow FLOAT16/FLOAT32, wrong shapes;
* integer values are converted exactly (FINN's general path goes through a
  float32 container, which rounds integers above 2**24);
* the result is always C-contiguous;
* ``packed_bytearray_to_finnpy`` can return the datatype's exact integer
  container (``out_dtype=None``) instead of FINN's float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .datatypes import DataType, parse_datatype

__all__ = ["packed_shape", "packed_bytes", "finnpy_to_packed_bytearray", "packed_bytearray_to_finnpy",
           "check_values"]

_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _container_bytes(bits: int) -> int:
    """Bytes of the smallest unsigned numpy integer holding ``bits`` bits."""
    for nbytes in (1, 2, 4, 8):
        if bits <= 8 * nbytes:
            return nbytes
    raise ValueError(f"bitwidth {bits} > 64 is not supported")


def packed_bytes(n_values: int, datatype: DataType | str) -> int:
    """Bytes of one packed word of ``n_values`` values: ``ceil(n_values * bitwidth / 8)``."""
    return (n_values * parse_datatype(datatype).bitwidth + 7) // 8


def _shape_tuple(shape: Sequence[int] | Any, field: str) -> tuple[int, ...]:
    try:
        out = tuple(int(d) for d in shape)
    except TypeError:
        raise ValueError(f"{field}: shape {shape!r} is not a sequence of integers") from None
    if any(d < 0 for d in out) or any(int(d) != d for d in shape):
        raise ValueError(f"{field}: shape {shape!r} must hold non-negative integers")
    return out


def packed_shape(folded_shape: Sequence[int], datatype: DataType | str) -> tuple[int, ...]:
    """Shape of the packed bytes of a folded tensor: the innermost dimension becomes
    ``ceil(folded_shape[-1] * bitwidth / 8)`` bytes, the outer ones stay.  A scalar
    (``()``) packs as one value: ``(ceil(bitwidth / 8),)``."""
    shape = _shape_tuple(folded_shape, "folded_shape")
    if not shape:
        return (packed_bytes(1, datatype),)
    return (*shape[:-1], packed_bytes(shape[-1], datatype))


def _first_bad(mask: np.ndarray, x: np.ndarray) -> tuple[tuple[int, ...], Any]:
    flat = int(np.flatnonzero(mask.ravel())[0])
    index = tuple(int(i) for i in np.unravel_index(flat, x.shape)) if x.ndim else ()
    return index, x.ravel()[flat].item()


def _refuse(field: str, dt: DataType, what: str, mask: np.ndarray, x: np.ndarray) -> None:
    count = int(np.count_nonzero(mask))
    index, value = _first_bad(mask, x)
    raise ValueError(f"{field}: {count} value(s) {what} for {dt.name}, first {value!r} at index {index}; "
                     f"allowed: {dt.allowed_values()}")


def check_values(x: Any, datatype: DataType | str, field: str = "array") -> np.ndarray:
    """``x`` as an ndarray after checking every value against ``datatype``.

    Integer types: the values must be integers (any numeric numpy dtype; floats with
    an integral value count) in ``[min, max]`` (``BIPOLAR``: -1 or +1).  Float types:
    any float or integer; a finite value that overflows the type is refused.
    Raises ``ValueError`` naming ``field``, the datatype and the allowed values.
    """
    dt = parse_datatype(datatype)
    x = np.asarray(x)
    if x.dtype == np.bool_:
        x = x.astype(np.uint8)
    if x.dtype.kind not in "iuf":
        raise ValueError(f"{field}: numpy dtype {x.dtype} cannot hold {dt.name} values; "
                         f"allowed: integer or float arrays of {dt.allowed_values()}")
    if x.size == 0:
        return x
    if not dt.is_integer:
        if x.dtype.kind == "f":
            with np.errstate(over="ignore"):
                cast = x.astype(dt.numpy_dtype)
            overflow = np.isfinite(x) & ~np.isfinite(cast)
            if overflow.any():
                _refuse(field, dt, "overflow", overflow, x)
        return x
    if x.dtype.kind == "f":
        finite = np.isfinite(x)
        if not finite.all():
            _refuse(field, dt, "are not finite", ~finite, x)
        fractional = x != np.floor(x)
        if fractional.any():
            _refuse(field, dt, "are not integers", fractional, x)
    if dt.name in ("BIPOLAR", "TERNARY"):
        one = x.dtype.type(1)
        ok = (x == one) | (x == -one) if x.dtype.kind != "u" else x == one
        if dt.name == "TERNARY":
            ok |= x == x.dtype.type(0)
        if not ok.all():
            _refuse(field, dt, "are not allowed", ~ok, x)
        return x
    if x.dtype.kind == "f":
        lo, hi = float(dt.min), float(dt.max)
        # float(2**63 - 1) rounds up to 2**63: then the bound itself is out of range
        too_high = x >= hi if hi > dt.max else x > hi
        bad = (x < lo) | too_high
    else:
        info = np.iinfo(x.dtype)
        bad = np.zeros(x.shape, dtype=bool)
        if dt.min > info.min:
            bad |= x < x.dtype.type(dt.min)
        if dt.max < info.max:
            bad |= x > x.dtype.type(dt.max)
    if bad.any():
        _refuse(field, dt, "are out of range", bad, x)
    return x


def _to_codes(x: np.ndarray, dt: DataType) -> np.ndarray:
    """Unsigned ``bitwidth``-bit codes of checked values ``x``, in the smallest unsigned
    container of the width (two's complement for negative values)."""
    nbytes = _container_bytes(dt.bitwidth)
    container = _UNSIGNED[nbytes]
    if not dt.is_integer:
        return x.astype(dt.numpy_dtype).view(container)
    if dt.name == "BIPOLAR":
        return (x > 0).astype(container)
    if x.dtype.kind == "u" or dt.min >= 0:
        return x.astype(container)
    # signed values: a signed type twice as wide holds every checked value exactly
    wide = np.dtype(f"int{min(16 * nbytes, 64)}")
    codes = x.astype(wide).view(f"uint{wide.itemsize * 8}")
    if dt.bitwidth < codes.dtype.itemsize * 8:
        codes = codes & codes.dtype.type((1 << dt.bitwidth) - 1)
    return codes.astype(container)


def _word_groups(bits: int) -> tuple[int, int] | None:
    """``(values, bytes)`` of the smallest whole-byte group of ``bits``-bit values, where
    that group fits a uint64 (all widths up to 8, and 10, 12, 14, 20, 24, 28 ...); else ``None``."""
    common = math.gcd(bits, 8)
    values, nbytes = 8 // common, bits // common
    return (values, nbytes) if nbytes <= 8 else None


def _pack_le(codes: np.ndarray, bits: int, group: tuple[int, int]) -> np.ndarray:
    """Codes ``(..., n)`` -> ``(..., ceil(n*bits/8))`` bytes of the little-endian word holding
    value ``i`` at bits ``[i*bits, (i+1)*bits)``, a group of values at a time (no per-bit arrays)."""
    *outer, n = codes.shape
    per, nbytes = group
    groups = -(-n // per)
    word_bytes = _container_bytes(8 * nbytes)
    word_type = _UNSIGNED[word_bytes]
    codes = codes.astype(word_type)
    if groups * per != n:
        codes = np.concatenate([codes, np.zeros((*outer, groups * per - n), word_type)], axis=-1)
    grouped = codes.reshape(*outer, groups, per)
    words = grouped[..., 0].copy()
    for j in range(1, per):  # at most 8 vectorised steps
        words |= grouped[..., j] << word_type(j * bits)
    data = words.astype(np.dtype(word_type).newbyteorder("<")).view(np.uint8)
    data = data.reshape(*outer, groups, word_bytes)[..., :nbytes].reshape(*outer, groups * nbytes)
    return data[..., :(n * bits + 7) // 8]


def _unpack_le(data: np.ndarray, n: int, bits: int, group: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`_pack_le`: bytes ``(..., m)`` -> codes ``(..., n)``; bits above
    ``n * bits`` (the padding) are dropped."""
    *outer, m = data.shape
    per, nbytes = group
    groups = -(-n // per)
    word_bytes = _container_bytes(8 * nbytes)
    word_type = _UNSIGNED[word_bytes]
    padded = np.zeros((*outer, groups * nbytes), np.uint8)
    padded[..., :m] = data
    full = padded.reshape(*outer, groups, nbytes)
    if word_bytes != nbytes:
        full = np.concatenate([full, np.zeros((*outer, groups, word_bytes - nbytes), np.uint8)], axis=-1)
    words = full.view(np.dtype(word_type).newbyteorder("<")).reshape(*outer, groups, 1)
    shifts = (np.arange(per) * bits).astype(word_type)
    codes = (words >> shifts) & word_type((1 << bits) - 1)
    return codes.reshape(*outer, groups * per)[..., :n]


def finnpy_to_packed_bytearray(ndarray: Any, dtype: DataType | str, reverse_inner: bool = False,
                               reverse_endian: bool = False, fast_mode: bool = False, *,
                               field: str = "array") -> np.ndarray:
    """Pack the innermost dimension of ``ndarray`` (values of FINN datatype ``dtype``)
    into bytes, as FINN's function of the same name does (module docstring).

    Returns a C-contiguous uint8 array of shape ``packed_shape(ndarray.shape, dtype)``
    (a 0-d input packs as one value into a 1-d result).  ``fast_mode`` is accepted for
    the signature of older FINN drivers and changes nothing (every path here is
    vectorised).  Invalid values raise ``ValueError`` naming ``field``
    (:func:`check_values`).
    """
    del fast_mode
    dt = parse_datatype(dtype)
    native = (isinstance(ndarray, np.ndarray) and dt.is_integer and dt.name not in ("BIPOLAR", "TERNARY")
              and dt.bitwidth in (8, 16, 32, 64) and ndarray.dtype == dt.numpy_dtype)
    if native:
        # the datatype's own container (uint8 for UINT8, int16 for INT16, ...): every value is valid
        # and its two's-complement bits are the code -- no check, no conversion
        x = ndarray.reshape(1) if ndarray.ndim == 0 else ndarray
        codes = x.view(_UNSIGNED[dt.bitwidth // 8])
    else:
        x = check_values(ndarray, dt, field)
        if x.ndim == 0:
            x = x.reshape(1)
        codes = _to_codes(x, dt)
    outer, n, bits = x.shape[:-1], x.shape[-1], dt.bitwidth
    nbytes = _container_bytes(bits)
    group = _word_groups(bits)
    if bits == 8 and reverse_inner and reverse_endian:
        return np.ascontiguousarray(codes, dtype=np.uint8)  # the two reversals cancel out for bytes
    if bits == 8 * nbytes:
        # whole-byte codes: big-endian bytes of each value, concatenated
        values = codes.astype(np.dtype(_UNSIGNED[nbytes]).newbyteorder(">")).view(np.uint8)
        values = values.reshape(*outer, n, nbytes)
        if reverse_inner:
            values = values[..., ::-1, :]
        word = values.reshape(*outer, n * nbytes)
    elif group is not None:
        # with both flags set this is the little-endian word holding value i at bits
        # [i*bits, (i+1)*bits); built as that, then reversed below as the flags say
        little = _pack_le(codes if reverse_inner else codes[..., ::-1], bits, group)
        word = little[..., ::-1]  # most significant byte first, as the other paths
    else:  # one uint8 per bit (widths whose byte groups do not fit 64 bits: 9, 11, 13, ...)
        be = codes.astype(np.dtype(_UNSIGNED[nbytes]).newbyteorder(">")).view(np.uint8)
        value_bits = np.unpackbits(be.reshape(*outer, n, nbytes), axis=-1)[..., 8 * nbytes - bits:]
        if reverse_inner:
            value_bits = value_bits[..., ::-1, :]
        word_bits = value_bits.reshape(*outer, n * bits)
        pad = (-n * bits) % 8
        if pad:
            word_bits = np.concatenate([np.zeros((*outer, pad), dtype=np.uint8), word_bits], axis=-1)
        word = np.packbits(word_bits, axis=-1)
    if reverse_endian:
        word = word[..., ::-1]
    return np.ascontiguousarray(word, dtype=np.uint8)


def packed_bytearray_to_finnpy(packed_bytearray: np.ndarray, dtype: DataType | str,
                               output_shape: Sequence[int], reverse_inner: bool = False,
                               reverse_endian: bool = False, *, out_dtype: Any = np.float32,
                               field: str = "packed") -> np.ndarray:
    """Unpack bytes written by :func:`finnpy_to_packed_bytearray` (or by the accelerator's
    output DMA) into values of FINN datatype ``dtype`` with shape ``output_shape``.

    ``packed_bytearray`` must be a uint8 array of ``packed_shape(output_shape, dtype)`` (or
    any shape with that many bytes, e.g. a flat DMA buffer); padding bits are ignored.
    ``out_dtype``: the result's numpy dtype, float32 as FINN returns; ``None`` gives
    ``dtype``'s exact container (uint8 for UINT8, int8 for INT4, float32 for FLOAT32, ...).
    Decoding mirrors FINN: two's complement for INTn, 0/1 -> -1/+1 for BIPOLAR, code 3 -> -1
    for TERNARY (code 2, which no valid value produces, stays 2).
    """
    dt = parse_datatype(dtype)
    if not isinstance(packed_bytearray, np.ndarray) or packed_bytearray.dtype != np.uint8:
        kind = packed_bytearray.dtype if isinstance(packed_bytearray, np.ndarray) else type(packed_bytearray).__name__
        raise ValueError(f"{field}: packed bytes must be a numpy uint8 array, got {kind}")
    shape = _shape_tuple(output_shape, "output_shape")
    if not shape:
        raise ValueError(f"{field}: output_shape must have at least one dimension, got {tuple(output_shape)!r}")
    expected = packed_shape(shape, dt)
    if packed_bytearray.shape != expected:
        if packed_bytearray.size != math.prod(expected):
            raise ValueError(f"{field}: {packed_bytearray.shape} bytes do not hold {dt.name} values of shape "
                             f"{shape}; expected packed shape {expected} ({math.prod(expected)} bytes)")
        packed_bytearray = packed_bytearray.reshape(expected)
    outer, n, bits = shape[:-1], shape[-1], dt.bitwidth
    nbytes = _container_bytes(bits)
    container = _UNSIGNED[nbytes]
    group = _word_groups(bits)
    if group is not None and bits != 8 * nbytes:
        # the little-endian word (both flags set) holds value i at bits [i*bits, (i+1)*bits)
        little = packed_bytearray if reverse_endian else packed_bytearray[..., ::-1]
        codes = _unpack_le(little, n, bits, group).astype(container)
        if not reverse_inner:
            codes = codes[..., ::-1]
    else:
        word = packed_bytearray[..., ::-1] if reverse_endian else packed_bytearray
        if bits == 8 * nbytes:  # whole-byte values: big-endian byte groups
            values = np.ascontiguousarray(word).reshape(*outer, n, nbytes)
        else:  # one uint8 per bit, then big-endian byte groups per value
            value_bits = np.unpackbits(word, axis=-1)[..., word.shape[-1] * 8 - n * bits:]
            value_bits = value_bits.reshape(*outer, n, bits)
            padded = np.zeros((*outer, n, 8 * nbytes), dtype=np.uint8)
            padded[..., 8 * nbytes - bits:] = value_bits
            values = np.packbits(padded, axis=-1)
        if reverse_inner:
            values = values[..., ::-1, :]
        codes = np.ascontiguousarray(values).view(np.dtype(container).newbyteorder(">"))
        codes = codes.reshape(shape).astype(container)
    result: np.ndarray
    if not dt.is_integer:
        result = codes.view(dt.numpy_dtype)
    elif dt.name == "BIPOLAR":
        result = codes.astype(np.int8) * np.int8(2) - np.int8(1)
    elif dt.name == "TERNARY":
        result = np.where(codes == 3, -1, codes.astype(np.int8)).astype(np.int8)
    elif dt.signed:
        # sign extension: move the sign bit to the container's top bit, shift back arithmetically
        shift = 8 * nbytes - bits
        signed = np.dtype(f"int{8 * nbytes}")
        result = (np.ascontiguousarray(codes) << container(shift)).view(signed) >> signed.type(shift)
    else:
        result = codes
    target = dt.numpy_dtype if out_dtype is None else np.dtype(out_dtype)
    return result.astype(target, copy=False)
