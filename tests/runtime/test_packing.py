"""FINN's packed byte format in numpy: datatypes, hand-checked bytes, round trips, refusals.

Byte-for-byte equality with FINN itself is in tests/hw/test_runtime_packing_finn.py
(host only); these run in both environments.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from winoforge.runtime.datatypes import DataType, parse_datatype
from winoforge.runtime.packing import (check_values, finnpy_to_packed_bytearray, packed_bytearray_to_finnpy,
                                       packed_shape)

pytestmark = pytest.mark.portable

NAMES = ([f"UINT{b}" for b in (1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 24, 31, 32, 33, 64)]
         + [f"INT{b}" for b in (1, 2, 3, 4, 6, 8, 11, 16, 20, 32, 48, 64)]
         + ["BINARY", "BIPOLAR", "TERNARY", "FLOAT16", "FLOAT32"])
FLAGS = [(False, False), (True, False), (False, True), (True, True)]


def random_values(dt: DataType, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Values of ``dt`` in its exact container, extremes included."""
    if dt.name == "BIPOLAR":
        return rng.choice(np.array([-1, 1], dtype=np.int8), shape)
    if dt.name == "TERNARY":
        return rng.choice(np.array([-1, 0, 1], dtype=np.int8), shape)
    if not dt.is_integer:
        x = rng.standard_normal(shape).astype(dt.numpy_dtype) * 100
        return x
    x = rng.integers(int(dt.min), int(dt.max), shape, dtype=dt.numpy_dtype, endpoint=True)
    flat = x.reshape(-1)
    if flat.size >= 2:
        flat[0], flat[-1] = dt.min, dt.max
    return x


# ---------------------------------------------------------------------- datatypes

@pytest.mark.parametrize("text", ["UINT8", "DataType['UINT8']", 'DataType["UINT8"]', "DataType.UINT8", " UINT8 "])
def test_parse_datatype_forms(text):
    dt = parse_datatype(text)
    assert dt == DataType("UINT8", 8, False, 0, 255, True)
    assert dt.driver_name() == "DataType['UINT8']" and str(dt) == "UINT8"
    assert parse_datatype(dt) is dt


@pytest.mark.parametrize("name,bits,signed,lo,hi,integer,container", [
    ("UINT1", 1, False, 0, 1, True, "uint8"),  # parsed as BINARY, as qonnx does
    ("INT1", 1, True, -1, 0, True, "int8"),
    ("INT4", 4, True, -8, 7, True, "int8"),
    ("UINT12", 12, False, 0, 4095, True, "uint16"),
    ("INT24", 24, True, -(1 << 23), (1 << 23) - 1, True, "int32"),
    ("UINT64", 64, False, 0, (1 << 64) - 1, True, "uint64"),
    ("BINARY", 1, False, 0, 1, True, "uint8"),
    ("BIPOLAR", 1, True, -1, 1, True, "int8"),
    ("TERNARY", 2, True, -1, 1, True, "int8"),
    ("FLOAT32", 32, True, -3.4028234663852886e38, 3.4028234663852886e38, False, "float32"),
])
def test_datatype_properties(name, bits, signed, lo, hi, integer, container):
    dt = parse_datatype(name)
    assert (dt.bitwidth, dt.signed, dt.min, dt.max, dt.is_integer) == (bits, signed, lo, hi, integer)
    assert dt.numpy_dtype == np.dtype(container)


@pytest.mark.parametrize("bad", ["UINT0", "INT65", "UINT08", "uint8", "FIXED<8,4>", "FLOAT64", "DataType['FOO']",
                                 "", 8, None])
def test_parse_datatype_refuses(bad):
    with pytest.raises(ValueError, match=r"datatype .* allowed: UINTn / INTn"):
        parse_datatype(bad)


# ---------------------------------------------------------------------- hand-checked bytes

@pytest.mark.parametrize("name,values,flags,expected", [
    # UINT2 [1, 2, 3]: 6 bits; value 0 in the most significant bits unless reverse_inner
    ("UINT2", [1, 2, 3], (False, False), [0b00_01_10_11]),
    ("UINT2", [1, 2, 3], (True, True), [0b00_11_10_01]),
    # INT4 -3 is 0xD in two's complement
    ("INT4", [-3, 5], (False, False), [0xD5]),
    ("INT4", [-3, 5], (True, True), [0x5D]),
    ("INT4", [-3, 5], (True, False), [0x5D]),
    ("UINT8", [1, 2, 3], (False, False), [1, 2, 3]),
    ("UINT8", [1, 2, 3], (True, False), [3, 2, 1]),
    ("UINT8", [1, 2, 3], (False, True), [3, 2, 1]),
    ("UINT8", [1, 2, 3], (True, True), [1, 2, 3]),
    ("UINT16", [0x1234, 0xABCD], (False, False), [0x12, 0x34, 0xAB, 0xCD]),
    ("UINT16", [0x1234, 0xABCD], (True, True), [0x34, 0x12, 0xCD, 0xAB]),
    ("INT16", [-2], (False, False), [0xFF, 0xFE]),
    # UINT3 [1, 2, 7]: 9 bits, left-padded to 16: 0000000 001 010 111
    ("UINT3", [1, 2, 7], (False, False), [0x00, 0x57]),
    ("UINT3", [1, 2, 7], (True, False), [0x01, 0xD1]),
    ("UINT3", [1, 2, 7], (True, True), [0xD1, 0x01]),
    # BIPOLAR -1/+1 as 0/1: 5 bits
    ("BIPOLAR", [-1, 1, 1, -1, 1], (False, False), [0b000_01101]),
    ("BIPOLAR", [-1, 1, 1, -1, 1], (True, True), [0b000_10110]),
    ("TERNARY", [-1, 0, 1], (False, False), [0b00_11_00_01]),
    ("FLOAT32", [1.0], (False, False), [0x3F, 0x80, 0x00, 0x00]),
    ("FLOAT32", [1.0, -2.0], (True, True), [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]),
])
def test_hand_checked_bytes(name, values, flags, expected):
    packed = finnpy_to_packed_bytearray(np.array(values), name, *flags)
    assert packed.dtype == np.uint8 and packed.tolist() == expected
    back = packed_bytearray_to_finnpy(packed, name, (len(values),), *flags)
    assert back.dtype == np.float32 and back.tolist() == values


def test_outer_dimensions_and_scalar():
    x = np.arange(12, dtype=np.uint8).reshape(2, 3, 2)
    packed = finnpy_to_packed_bytearray(x, "UINT4", reverse_inner=True, reverse_endian=True)
    assert packed.shape == (2, 3, 1) == packed_shape(x.shape, "UINT4")
    assert packed[1, 2, 0] == (11 << 4) | 10
    assert finnpy_to_packed_bytearray(np.array(5), "UINT12").tolist() == [0x00, 0x05]
    assert packed_shape((), "UINT12") == (2,)
    assert packed_shape([1, 28, 28, 1, 1], "UINT8") == (1, 28, 28, 1, 1)
    assert packed_shape((1, 7, 10), "INT3") == (1, 7, 4)


def test_unpack_accepts_flat_buffer_and_exact_container():
    x = np.array([[-8, 7, 0], [1, -1, 3]], dtype=np.int8)
    packed = finnpy_to_packed_bytearray(x, "INT4", True, True)
    flat = packed.reshape(-1)
    back = packed_bytearray_to_finnpy(flat, "INT4", x.shape, True, True, out_dtype=None)
    assert back.dtype == np.int8 and np.array_equal(back, x)


def test_padding_bits_are_ignored_on_unpack():
    packed = finnpy_to_packed_bytearray(np.array([1, 2, 3]), "UINT2", True, True)
    dirty = packed | np.uint8(0b1100_0000)
    assert packed_bytearray_to_finnpy(dirty, "UINT2", (3,), True, True).tolist() == [1, 2, 3]


def test_exact_64_bit_values():
    x = np.array([np.iinfo(np.int64).min, -1, np.iinfo(np.int64).max], dtype=np.int64)
    packed = finnpy_to_packed_bytearray(x, "INT64", True, True)
    assert packed[:8].tolist() == [0] * 7 + [0x80]
    assert np.array_equal(packed_bytearray_to_finnpy(packed, "INT64", x.shape, True, True, out_dtype=None), x)
    u = np.array([2**64 - 1, 2**63 + 1], dtype=np.uint64)
    back = packed_bytearray_to_finnpy(finnpy_to_packed_bytearray(u, "UINT64"), "UINT64", u.shape, out_dtype=None)
    assert np.array_equal(back, u)


# ---------------------------------------------------------------------- round trips

@st.composite
def cases(draw):
    name = draw(st.sampled_from(NAMES))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=4)))
    flags = draw(st.sampled_from(FLAGS))
    seed = draw(st.integers(0, 2**32 - 1))
    return name, shape, flags, seed


@given(cases())
def test_round_trip(case):
    name, shape, (rev_inner, rev_endian), seed = case
    dt = parse_datatype(name)
    x = random_values(dt, shape, np.random.default_rng(seed))
    packed = finnpy_to_packed_bytearray(x, name, rev_inner, rev_endian)
    assert packed.dtype == np.uint8 and packed.flags.c_contiguous
    assert packed.shape == packed_shape(shape, name)
    back = packed_bytearray_to_finnpy(packed, name, shape, rev_inner, rev_endian, out_dtype=None)
    assert back.dtype == dt.numpy_dtype
    if dt.is_integer:
        assert np.array_equal(back, x)
    else:  # bit patterns, so that NaN payloads and -0.0 count too
        assert np.array_equal(back.view(f"u{dt.bitwidth // 8}"), x.view(f"u{dt.bitwidth // 8}"))
    # the same values in a float container pack to the same bytes (FINN's usual input)
    if dt.is_integer and dt.bitwidth <= 24:
        assert np.array_equal(finnpy_to_packed_bytearray(x.astype(np.float32), name, rev_inner, rev_endian), packed)
    # leading padding bits of each word are zero
    pad = (-shape[-1] * dt.bitwidth) % 8
    if pad:
        top = packed[..., 0] if not rev_endian else packed[..., -1]
        assert not np.any(top >> np.uint8(8 - pad))


@given(cases())
def test_flags_relate_by_reversal(case):
    """reverse_endian reverses the bytes of each word; for whole-byte types reverse_inner
    reverses the order of the values' byte groups."""
    name, shape, _, seed = case
    dt = parse_datatype(name)
    x = random_values(dt, shape, np.random.default_rng(seed))
    plain = finnpy_to_packed_bytearray(x, name)
    assert np.array_equal(finnpy_to_packed_bytearray(x, name, reverse_endian=True), plain[..., ::-1])
    assert np.array_equal(finnpy_to_packed_bytearray(x, name, True, False),
                          finnpy_to_packed_bytearray(x[..., ::-1], name))


# ---------------------------------------------------------------------- refusals

@pytest.mark.parametrize("name,values,match", [
    ("UINT8", [0, 256], r"input: 1 value\(s\) are out of range for UINT8, first 256 at index \(1,\); "
                        r"allowed: integers 0..255"),
    ("UINT8", [-1, 3], r"out of range for UINT8, first -1"),
    ("INT4", np.array([[0, 8]], dtype=np.int16), r"out of range for INT4, first 8 at index \(0, 1\).*-8..7"),
    ("UINT8", [1.5, 2.0], r"are not integers for UINT8, first 1.5"),
    ("INT8", [np.nan], r"are not finite for INT8"),
    ("BIPOLAR", [1, 0], r"not allowed for BIPOLAR.*\{-1, \+1\}"),
    ("TERNARY", np.array([2], dtype=np.uint8), r"not allowed for TERNARY"),
    ("BINARY", [2], r"out of range for BINARY"),
    ("INT64", np.array([2.0**63]), r"out of range for INT64"),
    ("FLOAT16", [1e6], r"overflow for FLOAT16"),
    ("UINT8", np.array(["a"]), r"input: numpy dtype <U1 cannot hold UINT8 values"),
])
def test_pack_refuses(name, values, match):
    with pytest.raises(ValueError, match=match):
        finnpy_to_packed_bytearray(np.asarray(values), name, field="input")


def test_check_values_accepts_floats_with_integer_values_and_bools():
    assert check_values(np.array([0.0, 255.0]), "UINT8").dtype == np.float64
    assert finnpy_to_packed_bytearray(np.array([True, False, True]), "BINARY").tolist() == [0b101]
    assert finnpy_to_packed_bytearray(np.array([np.inf, np.nan], np.float32), "FLOAT32").shape == (8,)


def test_unpack_refuses():
    packed = np.zeros((2, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"output: \(2, 3\) bytes do not hold UINT8 values of shape \(2, 4\); "
                                         r"expected packed shape \(2, 4\)"):
        packed_bytearray_to_finnpy(packed, "UINT8", (2, 4), field="output")
    with pytest.raises(ValueError, match="must be a numpy uint8 array, got int64"):
        packed_bytearray_to_finnpy(np.zeros(3, dtype=np.int64), "UINT8", (3,))
    with pytest.raises(ValueError, match="must be a numpy uint8 array, got list"):
        packed_bytearray_to_finnpy([1, 2], "UINT8", (2,))
    with pytest.raises(ValueError, match="output_shape must have at least one dimension"):
        packed_bytearray_to_finnpy(packed, "UINT8", ())
    with pytest.raises(ValueError, match="output_shape: shape"):
        packed_bytearray_to_finnpy(packed, "UINT8", (2, -3))
    with pytest.raises(ValueError, match="not a supported FINN datatype"):
        packed_bytearray_to_finnpy(packed, "UINT99", (2, 3))


def test_runtime_imports_numpy_only():
    """winoforge.runtime must not pull in torch, finn, qonnx or pynq on import."""
    code = ("import sys, winoforge.runtime, winoforge.runtime.accelerator; "
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'finn', 'qonnx', 'pynq', 'onnx', 'brevitas'})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""
