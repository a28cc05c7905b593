"""Runtime-writeable weights: the weight stream of a ``WinogradSRBS`` layer, both ways.

A layer built with ``runtime_writeable_weights=1`` keeps its Winograd-domain weights in a
RAM (BRAM or UltraRAM) that the host writes through the layer's weight stream ``in1_V``:
after loading the bitstream, the host hands each such layer its stream once, through a
DMA of its own, and may write a new set between batches -- new weights without a new
bitstream.  This module is that stream's format, numpy only (it runs on the board):

* :func:`encode` -- ``U (Cout, Cin, t, t)`` integers -> the ``uint64`` words, the same
  words as the build's ``winoforge.hw.srbs_codegen.weight_stream_words`` (tested equal);
* :func:`decode` -- the words -> the ``U`` the hardware computes with (what the simulated
  device uses, so a weight set that went wrong through the DMA shows in its outputs).

Format (``LOAD_W`` = 64-bit words, least significant first).  The layer's weight memory
has ``(t^2/POS) * (Cout/PE) * (Cin/SIMD)`` lines, in address order output-channel fold
``f``, position group ``g``, input-channel fold ``s`` (innermost).  A line holds
``NE = POS * PE * lanes`` values of ``w_bits`` bits (two's complement where signed),
then, for an SRBS layer, ``NE`` indices of ``idx_bits`` bits, entry 0 least significant,
zero-padded to whole words.  Entry ``(j * PE + p) * lanes + r * keep + k`` is the k-th
kept weight of sub-row ``r`` (of this input fold) of output channel ``f * PE + p`` at
Winograd position ``g * POS + j`` (``lanes = SIMD * keep / sub_row``); its index selects
the input channel within the sub-row.  A dense layer has one lane per input channel and
no indices.  The hardware adds the products of all lanes: two entries of one sub-row
with the same index add up, an index at or past ``sub_row`` selects 0 -- :func:`decode`
returns exactly that sum.

The layout of one layer (:class:`WeightLayout`) is recorded in the package's manifest
(``runtime_weights``, one entry per layer, with its DMA's name and its stream's file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["LOAD_W", "WeightLayout", "WeightStreamError", "encode", "decode", "stream_length"]

#: bits of one word of the weight stream (the RTL's LOAD_W)
LOAD_W = 64


class WeightStreamError(ValueError):
    """A weight set or stream that does not fit the layer's layout (names the field)."""


@dataclass(frozen=True)
class WeightLayout:
    """How one layer's weight memory is folded and packed (the RTL's parameters).

    ``sub_row``/``keep`` are 0 for a dense layer (one lane per input channel, no index)."""

    cout: int
    cin: int
    t: int
    pos: int
    pe: int
    simd: int
    sub_row: int
    keep: int
    w_bits: int
    w_signed: bool
    idx_bits: int

    def __post_init__(self) -> None:
        for name in ("cout", "cin", "t", "pos", "pe", "simd", "w_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise WeightStreamError(f"weight layout: {name}={value!r}; allowed: a positive integer")
        if not 1 <= self.w_bits <= 32:
            raise WeightStreamError(f"weight layout: w_bits={self.w_bits}; allowed: 1..32")
        if self.cin % self.simd:
            raise WeightStreamError(f"weight layout: simd={self.simd} does not divide cin={self.cin}")
        if self.pos > self.t * self.t:  # a pos that does not divide t^2 pads the last position group
            raise WeightStreamError(f"weight layout: pos={self.pos}; allowed: 1..t*t={self.t * self.t}")
        if self.pe > self.cout:  # a PE that does not divide cout pads the last output fold
            raise WeightStreamError(f"weight layout: pe={self.pe}; allowed: 1..cout={self.cout}")
        if self.sparse:
            if not 1 <= self.keep <= self.sub_row or self.simd % self.sub_row:
                raise WeightStreamError(f"weight layout: sub_row={self.sub_row}, keep={self.keep}; allowed: "
                                        f"1 <= keep <= sub_row, sub_row dividing simd={self.simd}")
            if self.idx_bits < 0 or (self.sub_row > 1 and (1 << self.idx_bits) < self.sub_row):
                raise WeightStreamError(f"weight layout: idx_bits={self.idx_bits} cannot index sub_row="
                                        f"{self.sub_row} channels")
        elif self.keep or self.idx_bits:
            raise WeightStreamError(f"weight layout: dense (sub_row=0) needs keep=0 and idx_bits=0, got "
                                    f"keep={self.keep}, idx_bits={self.idx_bits}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WeightLayout:
        fields = cls.__dataclass_fields__
        missing = sorted(set(fields) - set(d))
        if missing:
            raise WeightStreamError(f"weight layout: missing {', '.join(missing)}")
        return cls(**{k: (bool(d[k]) if k == "w_signed" else int(d[k])) for k in fields})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def sparse(self) -> bool:
        return self.sub_row > 0

    @property
    def has_index(self) -> bool:
        return self.sparse and self.sub_row > 1

    @property
    def lanes(self) -> int:
        return self.simd * self.keep // self.sub_row if self.sparse else self.simd

    @property
    def entries(self) -> int:
        """``NE``: values (and indices) per line."""
        return self.pos * self.pe * self.lanes

    @property
    def output_folds(self) -> int:
        """``ceil(cout / pe)``: the last fold padded with zero-weight channels where pe does not divide cout."""
        return -(-self.cout // self.pe)

    @property
    def padded_cout(self) -> int:
        """``output_folds * pe``: the channels the PE array computes, cout and the padding."""
        return self.output_folds * self.pe

    @property
    def position_groups(self) -> int:
        """``ceil(t^2 / pos)``: the last group padded with zero-weight positions where pos does not divide t^2."""
        return -(-self.t * self.t // self.pos)

    @property
    def lines(self) -> int:
        return self.position_groups * self.output_folds * (self.cin // self.simd)

    @property
    def columns(self) -> int:
        """Words per line."""
        bits = self.entries * (self.w_bits + (self.idx_bits if self.has_index else 0))
        return -(-bits // LOAD_W)

    @property
    def words(self) -> int:
        return self.lines * self.columns

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.cout, self.cin, self.t, self.t)

    def value_range(self) -> tuple[int, int]:
        b = self.w_bits
        return (-(1 << (b - 1)), (1 << (b - 1)) - 1) if self.w_signed else (0, (1 << b) - 1)

    def _fold_shape(self) -> tuple[int, ...]:
        """Packed ``(t^2, Cout, Cin/L, K)`` as ``(G, POS, CF, PE, SF, SIMD/L, K)``."""
        L, K = (self.sub_row, self.keep) if self.sparse else (1, 1)
        return (self.position_groups, self.pos, self.output_folds, self.pe, self.cin // self.simd,
                self.simd // L, K)


def stream_length(layout: WeightLayout) -> int:
    """Words of the layer's weight stream."""
    return layout.words


def _to_lines(packed: np.ndarray, layout: WeightLayout) -> np.ndarray:
    """``(t^2, CF*PE, Cin/L, K)`` -> ``(lines, NE)`` in memory order (f, g, s | j, pe, r, k); the positions
    padded to ``G * POS`` with zeros."""
    packed = np.pad(packed, ((0, layout.position_groups * layout.pos - packed.shape[0]), (0, 0), (0, 0), (0, 0)))
    return packed.reshape(layout._fold_shape()).transpose(2, 0, 4, 1, 3, 5, 6).reshape(layout.lines, layout.entries)


def _from_lines(lines: np.ndarray, layout: WeightLayout) -> np.ndarray:
    """Inverse of :func:`_to_lines`."""
    g, pos, cf, pe, sf, r, k = layout._fold_shape()
    L, K = (layout.sub_row, layout.keep) if layout.sparse else (1, 1)
    return lines.reshape(cf, g, sf, pos, pe, r, k).transpose(1, 3, 0, 4, 2, 5, 6).reshape(
        g * pos, cf * pe, layout.cin // L, K)[: layout.t * layout.t]


def encode(U: Any, layout: WeightLayout) -> np.ndarray:
    """The weight stream (``uint64`` words) of the integer weights ``U (Cout, Cin, t, t)``.

    An SRBS layer keeps at most ``keep`` non-zeros per sub-row of ``sub_row`` input channels
    (per output channel and Winograd position); the kept entries are the ``keep`` largest
    magnitudes, ties to the lower channel, in ascending channel order (as the build packs
    them).  A ``U`` of another shape, with values outside ``w_bits``, or with more non-zeros
    in a sub-row is refused, naming what is wrong."""
    U = np.asarray(U)
    if U.shape != layout.shape:
        raise WeightStreamError(f"weights: shape {U.shape}; the layer takes (Cout, Cin, t, t) = {layout.shape}")
    if U.dtype.kind == "f":
        if not np.all(np.isfinite(U)) or not np.array_equal(U, np.round(U)):
            raise WeightStreamError("weights: the layer takes integers (Winograd-domain weights in w_bits)")
    elif U.dtype.kind not in "iub":
        raise WeightStreamError(f"weights: dtype {U.dtype}; the layer takes integers")
    U = U.astype(np.int64)
    lo, hi = layout.value_range()
    if U.size and (int(U.min()) < lo or int(U.max()) > hi):
        raise WeightStreamError(f"weights: values {int(U.min())}..{int(U.max())} lie outside the layer's "
                                f"{'signed' if layout.w_signed else 'unsigned'} {layout.w_bits}-bit range [{lo}, {hi}]")
    t2, cout = layout.t * layout.t, layout.padded_cout
    U = np.pad(U, ((0, cout - layout.cout), (0, 0), (0, 0), (0, 0)))  # the last fold's padding: zero weights
    if layout.sparse:
        L, K = layout.sub_row, layout.keep
        groups = U.transpose(2, 3, 0, 1).reshape(t2, cout, layout.cin // L, L)
        over = int((np.count_nonzero(groups, axis=-1) > K).sum())
        if over:
            raise WeightStreamError(f"weights: {over} sub-rows hold more than keep={K} non-zeros of sub_row={L} "
                                    "(the layer's SRBS pattern); mask them first")
        key = ~np.abs(groups).view(np.uint64)  # largest magnitude first, stable: ties to the lower channel
        idx = np.sort(np.argsort(key, axis=-1, kind="stable")[..., :K], axis=-1)
        values = np.take_along_axis(groups, idx, axis=-1)
    else:
        values = U.transpose(2, 3, 0, 1).reshape(t2, cout, layout.cin, 1)
        idx = None
    parts = [_bit_matrix(_to_lines(values, layout), layout.w_bits)]
    if layout.has_index:
        parts.append(_bit_matrix(_to_lines(idx, layout), layout.idx_bits))
    bits = np.concatenate(parts, axis=1)
    bits = np.pad(bits, ((0, 0), (0, layout.columns * LOAD_W - bits.shape[1])))
    return np.packbits(bits.reshape(-1, LOAD_W), axis=1, bitorder="little").view("<u8").ravel().astype(np.uint64)


def decode(words: Any, layout: WeightLayout) -> np.ndarray:
    """The weights ``U (Cout, Cin, t, t)`` (int64) the layer computes with after receiving
    ``words``: per lane, the value times the input channel its index selects, summed (two
    lanes of one sub-row with the same index add; an index past the sub-row selects 0).
    A stream of another length is refused."""
    words = np.asarray(words)
    if words.ndim != 1 or words.dtype.kind not in "iu":
        raise WeightStreamError(f"weight stream: a 1-D array of integer words, got {words.dtype} {words.shape}")
    if len(words) != layout.words:
        raise WeightStreamError(f"weight stream: {len(words)} words; the layer takes {layout.words} "
                                f"({layout.lines} lines of {layout.columns} {LOAD_W}-bit words)")
    raw = np.ascontiguousarray(words.astype(np.uint64)).astype("<u8").view(np.uint8)
    bits = np.unpackbits(raw.reshape(layout.lines, layout.columns * 8), axis=1, bitorder="little")
    ne, wb = layout.entries, layout.w_bits
    values = _from_bits(bits[:, :ne * wb], ne, wb, layout.w_signed)
    t2, cout = layout.t * layout.t, layout.padded_cout
    if not layout.sparse:
        U = _from_lines(values, layout).reshape(layout.t, layout.t, cout, layout.cin).transpose(2, 3, 0, 1)
        return U[:layout.cout]  # the padding channels' weights are not a part of the layer
    L = layout.sub_row
    vals = _from_lines(values, layout)
    if layout.has_index:
        ib = layout.idx_bits
        idx = _from_lines(_from_bits(bits[:, ne * wb:ne * (wb + ib)], ne, ib, False), layout)
    else:
        idx = np.zeros_like(vals)
    groups = np.zeros((t2, cout, layout.cin // L, L + 1), dtype=np.int64)  # slot L: an index past the sub-row
    np.add.at(groups, (*np.indices(idx.shape)[:3], np.minimum(idx, L)), vals)
    G = groups[..., :L].reshape(layout.t, layout.t, cout, layout.cin)
    return G.transpose(2, 3, 0, 1)[:layout.cout]


def _bit_matrix(entries: np.ndarray, bits: int) -> np.ndarray:
    """``(rows, n * bits)`` uint8 bits of ``entries (rows, n)``, entry 0 least significant."""
    raw = entries.astype(np.int64) & ((1 << bits) - 1)
    return ((raw[:, :, None] >> np.arange(bits, dtype=np.int64)) & 1).astype(np.uint8).reshape(len(raw), -1)


def _from_bits(bits: np.ndarray, n: int, width: int, signed: bool) -> np.ndarray:
    """Inverse of :func:`_bit_matrix`: ``(rows, n * width)`` bits -> ``(rows, n)`` int64."""
    vals = (bits.reshape(len(bits), n, width).astype(np.int64) << np.arange(width, dtype=np.int64)).sum(axis=-1)
    if signed:
        vals = np.where(vals >= 1 << (width - 1), vals - (1 << width), vals)
    return vals
