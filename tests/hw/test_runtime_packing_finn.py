"""winoforge.runtime's numpy packing against FINN's own ``finn.util.data_packing``, byte for byte.

The runtime reimplements FINN's packed DMA format so that a board needs no FINN; these
tests (host only: they import FINN and qonnx) check every datatype a DMA port can carry,
random shapes, all four flag combinations and both directions.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from finn.util.data_packing import finnpy_to_packed_bytearray as finn_pack
from finn.util.data_packing import packed_bytearray_to_finnpy as finn_unpack
from qonnx.core.datatype import DataType as QDataType

from winoforge.runtime.datatypes import parse_datatype
from winoforge.runtime.packing import finnpy_to_packed_bytearray, packed_bytearray_to_finnpy, packed_shape

NAMES = ([f"UINT{b}" for b in range(1, 17)] + [f"INT{b}" for b in range(2, 33)]
         + ["UINT24", "UINT32", "BIPOLAR", "BINARY", "TERNARY", "FLOAT16", "FLOAT32"])
FLAGS = [(False, False), (True, False), (False, True), (True, True)]


def _shapes(rng: np.random.Generator, count: int = 6) -> list[tuple[int, ...]]:
    shapes = [(1,), (3, 8), (1, 4, 4, 1, 16)]
    for _ in range(count):
        ndim = int(rng.integers(1, 5))
        shapes.append(tuple(int(d) for d in rng.integers(1, 7, ndim)))
    return shapes


def _values(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    q = QDataType[name]
    if name == "BIPOLAR":
        return rng.choice([-1.0, 1.0], shape).astype(np.float32)
    if name == "TERNARY":
        return rng.choice([-1.0, 0.0, 1.0], shape).astype(np.float32)
    if name.startswith("FLOAT"):
        return (rng.standard_normal(shape) * 1000).astype(q.to_numpy_dt())
    lo, hi = int(q.min()), int(q.max())
    if 24 < q.bitwidth() < 32:
        # FINN packs these through a float32 container, exact only up to 2**24
        lo, hi = max(lo, -(1 << 24)), min(hi, 1 << 24)
    x = rng.integers(lo, hi, shape, endpoint=True, dtype=np.int64)
    flat = x.reshape(-1)
    flat[0] = lo
    flat[-1] = hi
    return x


def _finn_inputs(name: str, x: np.ndarray) -> list[np.ndarray]:
    """The containers FINN packs exactly: float32 (its usual container; exact up to 24 bits)
    and the native integer container (its whole-byte fast path)."""
    q = QDataType[name]
    out = []
    if name.startswith("FLOAT"):
        return [x, x.astype(np.float32)]
    if q.bitwidth() <= 24:
        out.append(x.astype(np.float32))
    out.append(x.astype(q.to_numpy_dt()))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_datatype_matches_qonnx(name):
    ours, q = parse_datatype(name), QDataType[name]
    assert (ours.bitwidth, ours.signed, ours.is_integer) == (q.bitwidth(), q.signed(), q.is_integer())
    assert ours.min == q.min() and ours.max == q.max()
    assert ours.numpy_dtype == np.dtype(q.to_numpy_dt())
    assert parse_datatype(f"DataType['{q.name}']") == ours


@pytest.mark.parametrize("name", NAMES)
def test_pack_matches_finn(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for shape in _shapes(rng):
        x = _values(name, shape, rng)
        for rev_inner, rev_endian in FLAGS:
            ours = finnpy_to_packed_bytearray(x, name, rev_inner, rev_endian)
            assert ours.shape == packed_shape(shape, name)
            for container in _finn_inputs(name, x):
                theirs = finn_pack(container, QDataType[name], rev_inner, rev_endian)
                assert theirs.dtype == np.uint8 and theirs.shape == ours.shape, (name, shape, container.dtype)
                assert np.array_equal(ours, theirs), (name, shape, rev_inner, rev_endian, container.dtype)


@pytest.mark.parametrize("name", NAMES)
def test_unpack_matches_finn(name):
    """Valid packed data and random bytes (random padding bits, every code) alike."""
    rng = np.random.default_rng(zlib.crc32(name.encode()) + 1)
    q = QDataType[name]
    for shape in _shapes(rng):
        x = _values(name, shape, rng)
        for rev_inner, rev_endian in FLAGS:
            valid = finnpy_to_packed_bytearray(x, name, rev_inner, rev_endian)
            noise = rng.integers(0, 256, valid.shape, dtype=np.uint8)
            for packed in (valid, noise):
                theirs = finn_unpack(packed.copy(), q, shape, rev_inner, rev_endian)
                ours = packed_bytearray_to_finnpy(packed, name, shape, rev_inner, rev_endian)
                assert ours.dtype == theirs.dtype == np.float32
                assert ours.shape == theirs.shape == shape
                # compare bit patterns: random FLOAT32 bytes hold NaNs
                assert np.array_equal(ours.view(np.uint32), np.asarray(theirs, np.float32).view(np.uint32)), (
                    name, shape, rev_inner, rev_endian)


def test_driver_shapes_example():
    """FINN's driver packs a folded (1, 28, 28, 1, 1) UINT8 input and a (1, 10, 1) INT24 output."""
    dummy_in = np.zeros((1, 28, 28, 1, 1), dtype=np.float32)
    assert packed_shape(dummy_in.shape, "UINT8") == finn_pack(dummy_in, QDataType["UINT8"]).shape
    dummy_out = np.zeros((1, 1, 10), dtype=np.float32)
    assert packed_shape(dummy_out.shape, "INT24") == finn_pack(dummy_out, QDataType["INT24"]).shape == (1, 1, 30)
