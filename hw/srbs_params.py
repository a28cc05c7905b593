"""Validated parameters of one WinogradSRBS layer, and its weights and inputs.

:class:`WinogradSRBSParams` holds the ONNX attributes of a ``WinogradSRBS`` node
(see :mod:`winoforge.hw.winograd_op`) as typed, validated fields -- a bad value
raises ``ValueError`` naming the attribute and its allowed values -- with the
geometry and the folding-derived quantities the estimates
(:mod:`~winoforge.hw.srbs_estimates`), the folding search
(:mod:`~winoforge.hw.srbs_folding`) and code generation
(:mod:`~winoforge.hw.srbs_codegen`) build on.  :func:`check_weights` and
:func:`winograd_srbs_reference` are the layer's weight validation and its exact
semantics (:func:`winoforge.winograd.winograd_conv2d` on integers).

Folding: ``PE`` output channels, ``SIMD`` (dense-equivalent) input channels and
``POS`` Winograd positions (a divisor of t*t) are computed in parallel:
``POS * PE * SIMD*Keep/SubRow`` multipliers.  PE need not divide OFMChannels: the
last of the ``ceil(OFMChannels/PE)`` output folds is then padded (channels past
OFMChannels have zero weights, and their results are not written), so the folding
moves in finer steps than the divisors of a power-of-two channel count allow (e.g.
32 channels at PE 11: 3 folds).  Loop order per frame: tile ->
output-channel fold (ceil(OFMChannels/PE)) -> position group (t*t/POS; group g holds the
positions ``xi = g*POS + j``, j < POS) -> input-channel fold (IFMChannels/SIMD,
innermost).  ``OE`` (output channels per output-stream beat) is derived, not an
attribute: PE unless the output rate needs more (:attr:`WinogradSRBSParams.out_stream_elems`).
``ISIMD`` (0 = SIMD, else a divisor of it) narrows the input side -- the input stream,
line buffer, window reads and input transform take ISIMD channels a cycle, SIMD/ISIMD
sub-folds making one input fold of V -- where the PE array's work per tile leaves that
side idle (an SRBS layer reads SubRow/Keep times the channels per multiplier a dense one
does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
from qonnx.core.datatype import BaseDataType, DataType

from winoforge.winograd import FLOAT32_EXACT, WinogradSpec, index_bits, winograd_conv2d

from . import srbs_estimates as _estimates
from .srbs_estimates import CycleEstimate, InternalWidths, ResourceEstimate
from .srbs_ranges import dt_range, smallest_datatype

__all__ = [
    "OP_TYPE",
    "DOMAIN",
    "RTL_DOMAIN",
    "FLOAT32_EXACT_LIMIT",
    "MAX_CODE_BITS",
    "ATTRS",
    "EXEC_MODES",
    "WinogradSRBSParams",
    "attr_error",
    "divisors",
    "pe_steps",
    "pos_steps",
    "allowed_simd",
    "first_index",
    "check_weights",
    "check_input",
    "check_output_datatype_holds",
    "winograd_srbs_reference",
]

OP_TYPE = "WinogradSRBS"
DOMAIN = "finn.custom_op.fpgadataflow"
RTL_DOMAIN = "finn.custom_op.fpgadataflow.rtl"

#: float32 carries every integer of magnitude below 2^24 exactly (the one rule: winograd.bits).
FLOAT32_EXACT_LIMIT = FLOAT32_EXACT
#: widest input / weight code: a float32 carrier holds 24-bit integers exactly.
MAX_CODE_BITS = FLOAT32_EXACT.bit_length() - 1


# --------------------------------------------------------------------------- validation


def attr_error(attr: str, value, reason: str, allowed=None) -> ValueError:
    text = f"{OP_TYPE} attribute {attr}={value} is not allowed: {reason}"
    if allowed is not None:
        text += f" (allowed: {allowed})"
    return ValueError(text)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _list(values) -> str:
    return ", ".join(str(v) for v in values)


def _int_attr(attr: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise attr_error(attr, repr(value), "must be an integer")
    if value < minimum:
        raise attr_error(attr, value, f"must be >= {minimum}", f"integers >= {minimum}")
    return int(value)


def _datatype_attr(attr: str, value, max_bits: int | None) -> BaseDataType:
    """An integer DataType whose range is an interval containing 0 (INTn, UINTn,
    BINARY, TERNARY) -- zero padding must be a legal code."""
    if isinstance(value, BaseDataType):
        dt = value
    else:
        try:
            dt = DataType[str(value)]
        except KeyError:
            raise attr_error(attr, value, "not a FINN DataType name", "INT<n>, UINT<n>, BINARY, TERNARY") from None
    allowed = "INT<n>, UINT<n>, BINARY, TERNARY" + (f" with n <= {max_bits}" if max_bits else "")
    if not dt.is_integer() or dt.is_fixed_point() or not dt.min() <= 0 <= dt.max() or dt.name == "BIPOLAR":
        raise attr_error(attr, dt.name, "must be an integer type whose range contains 0", allowed)
    if max_bits is not None and dt.bitwidth() > max_bits:
        raise attr_error(
            attr, dt.name, f"codes wider than {max_bits} bits do not fit a float32 carrier exactly", allowed
        )
    return dt



def pe_steps(cout: int) -> list[int]:
    """The PE values worth building for ``cout`` output channels: for each number of output
    folds ``cf`` in 1..cout the smallest PE reaching it, ``ceil(cout / cf)`` (any PE in 1..cout
    is allowed; a larger one with the same folds only pads more).  The divisors of ``cout``
    and the padded steps between them, e.g. 32: 1, 2, 3, 4, 5, 6, 7, 8, 11, 16, 32."""
    return sorted({-(-cout // cf) for cf in range(1, cout + 1)})


def pos_steps(t2: int) -> list[int]:
    """The POS values worth building for ``t2`` Winograd positions, as :func:`pe_steps`: for each
    number of position groups the smallest POS reaching it (any POS in 1..t2 is allowed; one that does
    not divide t2 leaves lanes of the last group idle), e.g. 16: 1, 2, 3, 4, 6, 8, 16 -- POS 6 computes
    a tile in 3 groups (6 + 6 + 4 positions) where POS 4 takes 4 and POS 8 takes 2."""
    return pe_steps(t2)


def allowed_simd(cin: int, sub_row: int) -> list[int]:
    """SIMD values a layer allows: divisors of ``cin`` that are multiples of ``sub_row`` (if sparse)."""
    return [d for d in divisors(cin) if sub_row == 0 or d % sub_row == 0]


# --------------------------------------------------------------------------- the parameters


# ONNX attribute name -> (WinogradSRBSParams field, onnx type, required, default)
ATTRS: dict[str, tuple[str, str, bool, object]] = {
    "m": ("m", "i", True, 0),
    "IFMChannels": ("ifm_channels", "i", True, 0),
    "OFMChannels": ("ofm_channels", "i", True, 0),
    "IFMDim": ("ifm_dim", "ints", True, []),
    "Padding": ("padding", "i", False, 1),
    "SubRow": ("sub_row", "i", False, 0),
    "Keep": ("keep", "i", False, 0),
    "PE": ("pe", "i", False, 1),
    "SIMD": ("simd", "i", False, 1),
    "POS": ("pos", "i", False, 1),
    "inputDataType": ("input_datatype", "s", True, ""),
    "weightDataType": ("weight_datatype", "s", True, ""),
    "outputDataType": ("output_datatype", "s", True, ""),
    "batchSize": ("batch_size", "i", False, 1),
    "resType": ("res_type", "s", False, "auto"),
    "ram_style": ("ram_style", "s", False, "auto"),
    "runtime_writeable_weights": ("runtime_weights", "i", False, 0),
    "ISIMD": ("isimd", "i", False, 0),
}
_RES_TYPES = ("auto", "lut", "dsp")
_RAM_STYLES = ("auto", "block", "distributed", "ultra")
EXEC_MODES = ("", "python", "rtlsim")


@dataclass(frozen=True)
class WinogradSRBSParams:
    """Validated parameters of one WinogradSRBS layer (construction raises
    ``ValueError`` naming the ONNX attribute and its allowed values).

    ``sub_row = 0`` is a dense layer (``keep`` must then be 0); otherwise every
    sub-row of ``sub_row`` consecutive input channels of every ``U_xi`` row holds at
    most ``keep`` non-zeros.
    """

    m: int
    ifm_channels: int
    ofm_channels: int
    ifm_dim: tuple[int, int]
    input_datatype: BaseDataType
    weight_datatype: BaseDataType
    output_datatype: BaseDataType
    padding: int = 1
    sub_row: int = 0
    keep: int = 0
    pe: int = 1
    simd: int = 1
    pos: int = 1
    batch_size: int = 1
    res_type: str = "auto"
    ram_style: str = "auto"
    runtime_weights: int = 0
    isimd: int = 0

    def __post_init__(self) -> None:
        m = self.m
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m not in (2, 4):
            raise attr_error("m", m, "only F(2x2,3x3) and F(4x4,3x3) are supported", "2, 4")
        cin = _int_attr("IFMChannels", self.ifm_channels, 1)
        cout = _int_attr("OFMChannels", self.ofm_channels, 1)
        dim = self.ifm_dim
        if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool):
            dim = (dim, dim)
        ok = isinstance(dim, (tuple, list, np.ndarray)) and len(dim) == 2
        if not ok or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in dim):
            shown = list(dim) if isinstance(dim, (tuple, list, np.ndarray)) else repr(dim)
            raise attr_error("IFMDim", shown, "must be two integers [H, W] >= 1", "[H, W] with H, W >= 1")
        dim = (int(dim[0]), int(dim[1]))
        pad = _int_attr("Padding", self.padding, 0)
        if min(dim) + 2 * pad < 3:
            need = math.ceil((3 - min(dim)) / 2)
            raise attr_error(
                "Padding", pad, f"IFMDim={list(dim)} padded by {pad} is smaller than the 3x3 kernel",
                f"Padding >= {need}",
            )
        sub_row = _int_attr("SubRow", self.sub_row, 0)
        if sub_row and cin % sub_row:
            raise attr_error(
                "SubRow", sub_row, f"must be 0 (dense) or divide IFMChannels={cin}", _list([0] + divisors(cin))
            )
        keep = _int_attr("Keep", self.keep, 0)
        if sub_row == 0 and keep != 0:
            raise attr_error("Keep", keep, "a dense layer (SubRow=0) has no Keep", "0")
        if sub_row and not 1 <= keep <= sub_row:
            raise attr_error("Keep", keep, f"must be 1..SubRow={sub_row}", f"1..{sub_row}")
        pe = _int_attr("PE", self.pe, 1)
        if pe > cout:
            raise attr_error("PE", pe, f"must be at most OFMChannels={cout} (a PE that does not divide it "
                             "pads the last output fold)", f"1..{cout}")
        simd = _int_attr("SIMD", self.simd, 1)
        simd_ok = allowed_simd(cin, sub_row)
        if simd not in simd_ok:
            reason = f"must divide IFMChannels={cin}" + (f" and be a multiple of SubRow={sub_row}" if sub_row else "")
            raise attr_error("SIMD", simd, reason, _list(simd_ok))
        isimd = _int_attr("ISIMD", self.isimd, 0)
        if isimd and simd % isimd:
            raise attr_error("ISIMD", isimd, f"must be 0 (the input side as wide as SIMD) or divide SIMD={simd}",
                             _list([0] + divisors(simd)))
        pos = _int_attr("POS", self.pos, 1)
        t2 = (int(m) + 2) ** 2
        if pos > t2:
            raise attr_error("POS", pos, f"must be at most the t*t={t2} Winograd positions of F({m}x{m},3x3) "
                             "(a POS that does not divide them leaves lanes of the last position group idle)",
                             f"1..{t2}")
        idt = _datatype_attr("inputDataType", self.input_datatype, MAX_CODE_BITS)
        wdt = _datatype_attr("weightDataType", self.weight_datatype, MAX_CODE_BITS)
        odt = _datatype_attr("outputDataType", self.output_datatype, None)
        batch = _int_attr("batchSize", self.batch_size, 1)
        if self.res_type not in _RES_TYPES:
            raise attr_error("resType", self.res_type, "unknown multiplier style", _list(_RES_TYPES))
        if self.ram_style not in _RAM_STYLES:
            raise attr_error("ram_style", self.ram_style, "unknown weight memory style", _list(_RAM_STYLES))
        rtw = self.runtime_weights
        if isinstance(rtw, bool) or not isinstance(rtw, (int, np.integer)) or rtw not in (0, 1):
            raise attr_error("runtime_writeable_weights", rtw, "a flag", "0, 1")
        if self.ram_style == "ultra" and not rtw:
            raise attr_error("ram_style", self.ram_style,
                             "UltraRAM takes no initial contents from a bitstream: the weights must be written "
                             "at run time (runtime_writeable_weights=1)",
                             "auto, block, distributed; ultra with runtime_writeable_weights=1")
        for name, value in (
            ("m", int(m)), ("ifm_channels", cin), ("ofm_channels", cout), ("ifm_dim", dim), ("padding", pad),
            ("sub_row", sub_row), ("keep", keep), ("pe", pe), ("simd", simd), ("pos", pos), ("input_datatype", idt),
            ("weight_datatype", wdt), ("output_datatype", odt), ("batch_size", batch),
            ("runtime_weights", int(rtw)), ("isimd", isimd),
        ):
            object.__setattr__(self, name, value)

    # ---- conversions

    @classmethod
    def from_attributes(cls, attrs: dict) -> "WinogradSRBSParams":
        """From a mapping ONNX attribute name -> value (missing optional ones default)."""
        kwargs = {}
        for attr, (fname, _, required, default) in ATTRS.items():
            if attr in attrs:
                kwargs[fname] = attrs[attr]
            elif required:
                raise ValueError(f"{OP_TYPE} attribute {attr} is missing (required)")
            else:
                kwargs[fname] = default
        return cls(**kwargs)

    def to_attributes(self) -> dict:
        """ONNX attribute name -> value (Python ints, lists and strings)."""
        out = {}
        for attr, (fname, _, _, _) in ATTRS.items():
            value = getattr(self, fname)
            if isinstance(value, BaseDataType):
                value = value.name
            elif isinstance(value, tuple):
                value = [int(v) for v in value]
            out[attr] = value
        return out

    def replace(self, **changes) -> "WinogradSRBSParams":
        return replace(self, **changes)

    # ---- geometry

    @property
    def spec(self) -> WinogradSpec:
        return WinogradSpec(self.m)

    @property
    def t(self) -> int:
        return self.m + 2

    @property
    def out_dim(self) -> tuple[int, int]:
        h, w = self.ifm_dim
        return h + 2 * self.padding - 2, w + 2 * self.padding - 2

    @property
    def tile_grid(self) -> tuple[int, int]:
        ho, wo = self.out_dim
        return math.ceil(ho / self.m), math.ceil(wo / self.m)

    @property
    def tiles_per_frame(self) -> int:
        th, tw = self.tile_grid
        return th * tw

    @property
    def sparse(self) -> bool:
        return self.sub_row > 0

    @property
    def density(self) -> Fraction:
        return Fraction(self.keep, self.sub_row) if self.sparse else Fraction(1)

    @property
    def cin_eff(self) -> int:
        """Non-zero terms per output channel and Winograd position: ``Cin * Keep / SubRow``."""
        return int(self.ifm_channels * self.density)

    @property
    def lanes(self) -> int:
        """Multipliers per PE: ``SIMD * Keep / SubRow`` (``SIMD`` when dense)."""
        return int(self.simd * self.density)

    @property
    def multipliers(self) -> int:
        """``POS * PE * lanes``."""
        return self.pos * self.pe * self.lanes

    @property
    def position_groups(self) -> int:
        """Position groups computed one after another: ``ceil(t^2 / POS)`` (where POS does not divide
        t^2, the last group's lanes beyond position t^2 - 1 hold zero weights and their sums are dropped)."""
        return -(-self.t**2 // self.pos)

    @property
    def padded_positions(self) -> int:
        """``position_groups * POS``: the positions of the weight memory's lines, t^2 and the padding."""
        return self.position_groups * self.pos

    @property
    def output_folds(self) -> int:
        """``cf = ceil(OFMChannels / PE)``: output folds, the last one padded where PE does not
        divide OFMChannels."""
        return -(-self.ofm_channels // self.pe)

    @property
    def padded_ofm_channels(self) -> int:
        """``cf * PE``: output channels the PE array computes, OFMChannels and the padding."""
        return self.output_folds * self.pe

    @property
    def index_bits(self) -> int:
        return index_bits(self.sub_row) if self.sparse else 0

    @property
    def in_simd(self) -> int:
        """Channels the input side (stream, line buffer, window, input transform, V writes)
        takes a cycle: ``ISIMD``, or SIMD where ISIMD is 0."""
        return self.isimd or self.simd

    @property
    def in_folds(self) -> int:
        """``sfi = IFMChannels / in_simd``: input sub-folds of a pixel (beats of the input stream)."""
        return self.ifm_channels // self.in_simd

    @property
    def input_subfolds(self) -> int:
        """``SIMD / in_simd``: input-side passes that fill one SIMD-wide input fold of V (the RTL's KS)."""
        return self.simd // self.in_simd

    @property
    def weight_memory_depth(self) -> int:
        """Words of each of the POS weight-memory banks (all read at one address):
        ``(t^2/POS) * cf * (IFMChannels/SIMD)`` (``cf``: :attr:`output_folds`)."""
        return self.position_groups * self.output_folds * (self.ifm_channels // self.simd)

    @property
    def band_cycles(self) -> int:
        """Compute cycles of one tile band: ``tw * (t^2/POS) * cf * sf``."""
        return self.tile_grid[1] * self.weight_memory_depth  # one weight-memory pass per tile

    @property
    def out_stream_elems(self) -> int:
        """``OE``, output channels per output-stream beat: the smallest divisor of
        OFMChannels that is >= PE and lets one tile band's outputs (``min(m, Ho)``
        rows x Wo pixels x OFMChannels) stream within that band's compute
        (:attr:`band_cycles`), so the double-banded output buffer never blocks the
        PE array; OFMChannels (a whole pixel per beat) if no divisor is enough (the
        stall term of :class:`CycleEstimate` then counts the difference).

        Where PE does not divide OFMChannels, the largest divisor below PE instead
        if it is enough: the output buffer then keeps one bank per PE lane and
        rotates a beat's OE channels (OE distinct lanes) into place as it reads
        them (:attr:`out_lanes`) -- OE selects of PE lanes, where rotating the PE
        channels into wider beats on the write side takes a select per bank and
        output position, ``m^2 OE`` of them.

        PE for POS = 1 (a band's outputs need at most ``PE * m^2/t^2 < PE`` channels
        per cycle); wider only when positions run in parallel, e.g. a first layer
        (IFMChannels = 1) at POS = t^2 finishes an output fold of a tile (m^2 pixels)
        every cycle.  Non-decreasing in POS, PE and SIMD.
        """
        rows = min(self.m, self.out_dim[0])
        need = math.ceil(rows * self.out_dim[1] * self.ofm_channels / self.band_cycles)
        if self.ofm_channels % self.pe:
            below = max(d for d in divisors(self.ofm_channels) if d < self.pe)
            if below >= need:
                return below
        floor = max(self.pe, need)
        return next((d for d in divisors(self.ofm_channels) if d >= floor), self.ofm_channels)

    @property
    def out_lanes(self) -> bool:
        """Whether the output buffer keeps a bank per PE lane and rotates on reading
        (``OE < PE``, see :attr:`out_stream_elems`)."""
        return self.out_stream_elems < self.pe

    @property
    def output_buffer_banks(self) -> int:
        """Output-buffer banks per output position of a tile (the RTL's ``OB_NB``): one per
        beat channel (OE), or per PE lane where the beats are read across the lanes."""
        return self.pe if self.out_lanes else self.out_stream_elems

    @property
    def output_buffer_pixel_words(self) -> int:
        """Words of one pixel in each output-buffer bank (the RTL's ``OB_PIX``): its beats
        (OFMChannels / OE), or its output folds where the banks are the PE lanes."""
        return self.output_folds if self.out_lanes else self.ofm_channels // self.out_stream_elems

    @property
    def input_transform_units(self) -> int:
        """``u_in``: serial 1-D ``B^T`` units per SIMD lane.  The t x t transform of one
        input fold is 2t 1-D transforms (``ceil(2t/u_in)`` cycles); its V values serve
        all ``cf`` output folds (:attr:`output_folds`), whose compute takes
        ``(t^2/POS) * cf`` cycles per input fold, so ``u_in = ceil(2 POS / (t cf))``: 1
        for POS <= t/2 * cf; POS*SIMD values per cycle at cf = 1; 2t (a fully
        parallel 2-D transform) at POS = t^2, cf = 1."""
        return math.ceil(2 * self.t / (self.position_groups * self.output_folds))  # G = t^2/POS where POS divides

    @property
    def output_transform_units(self) -> int:
        """``u_out``: serial 1-D ``A^T`` units per PE.  The transform of one output
        fold's t x t accumulators is t + m 1-D transforms; one output fold of a tile
        is accumulated in ``(t^2/POS) * sf`` cycles (``sf = IFMChannels/SIMD``; the M
        buffer is double), so ``u_out = ceil(POS (t+m) / (t^2 sf))``: 1 at POS = 1;
        POS*PE accumulators consumed per cycle at sf = 1."""
        sf = self.ifm_channels // self.simd
        return math.ceil((self.t + self.m) / (self.position_groups * sf))

    @property
    def mult_style(self) -> str:
        """``resType``; "auto" picks DSPs when inputs and weights have >= 4 bits (the
        rule FINN's SpecializeLayers uses to choose the DSP-based MVAU_rtl)."""
        if self.res_type != "auto":
            return self.res_type
        big = self.input_datatype.bitwidth() >= 4 and self.weight_datatype.bitwidth() >= 4
        return "dsp" if big else "lut"

    # ---- estimates (formulas in :mod:`winoforge.hw.srbs_estimates`)

    def cycles(self) -> CycleEstimate:
        """See :class:`~winoforge.hw.srbs_estimates.CycleEstimate`."""
        return _estimates.estimate_cycles(self)

    def exp_cycles(self) -> int:
        return self.cycles().total

    def nonzero_multiplies(self, nonzero_weights: int | None = None) -> int:
        return _estimates.nonzero_multiplies(self, nonzero_weights)

    def ideal_cycles(self, nonzero_weights: int | None = None) -> float:
        return _estimates.ideal_cycles(self, nonzero_weights)

    def internal_widths(self) -> InternalWidths:
        return _estimates.internal_widths(self)

    def estimate_resources(self, fpgapart: str = "") -> ResourceEstimate:
        return _estimates.estimate_resources(self, fpgapart)

    def op_and_param_counts(self) -> dict[str, int]:
        return _estimates.op_and_param_counts(self)


# --------------------------------------------------------------------------- weights and inputs


def first_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in np.argwhere(mask)[0])


def check_weights(U, params: WinogradSRBSParams) -> np.ndarray:
    """Validate the weight tensor and return it as int64.

    Shape ``(OFMChannels, IFMChannels, t, t)``, integer values, every value within
    ``weightDataType``, and (SRBS) at most ``Keep`` non-zeros in every sub-row -- the
    first violation is named by its position.
    """
    U = np.asarray(U)
    t = params.t
    shape = (params.ofm_channels, params.ifm_channels, t, t)
    if U.shape != shape:
        raise ValueError(f"{OP_TYPE} weights must have shape (OFMChannels, IFMChannels, t, t) = {shape}, got {U.shape}")
    if U.dtype == np.bool_ or not (np.issubdtype(U.dtype, np.integer) or np.issubdtype(U.dtype, np.floating)):
        raise ValueError(f"{OP_TYPE} weights must be numeric, got dtype {U.dtype}")
    U = _integer_codes(U, params.weight_datatype, "weight", "weightDataType", "(o, c, a, b)")
    if params.sparse:
        L, K = params.sub_row, params.keep
        groups = U.transpose(2, 3, 0, 1).reshape(t * t, params.ofm_channels, params.ifm_channels // L, L)
        counts = np.count_nonzero(groups, axis=-1)
        over = counts > K
        if over.any():
            xi, o, g = first_index(over)
            raise ValueError(
                f"{OP_TYPE} weights are not SRBS(SubRow={L}, Keep={K}): output channel {o}, input "
                f"channels {g * L}..{g * L + L - 1}, Winograd position (a, b) = ({xi // t}, {xi % t}) "
                f"hold {counts[xi, o, g]} non-zeros"
            )
    return U


def check_input(x: np.ndarray, params: WinogradSRBSParams) -> np.ndarray:
    x = np.asarray(x)
    h, w = params.ifm_dim
    if x.ndim != 4 or x.shape[1:] != (h, w, params.ifm_channels) or x.shape[0] < 1:
        raise ValueError(
            f"{OP_TYPE} input must be NHWC (N, {h}, {w}, {params.ifm_channels}) with N >= 1, got {x.shape}"
        )
    return _integer_codes(x, params.input_datatype, "input", "inputDataType", "(n, h, w, c)")


def _integer_codes(a: np.ndarray, dt: BaseDataType, what: str, attr: str, axes: str) -> np.ndarray:
    """``a`` as int64 after checking it holds integers within ``dt``; errors name the first bad entry."""
    if np.issubdtype(a.dtype, np.floating):
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            pos = first_index(bad)
            raise ValueError(f"{OP_TYPE} {what} must hold integers; found {a[pos].item()!r} at {axes} = {pos}")
    lo, hi = dt_range(dt)
    out = (a < lo) | (a > hi)
    if out.any():
        pos = first_index(out)
        raise ValueError(f"{OP_TYPE} {what} {a[pos].item()!r} at {axes} = {pos} is outside {attr}={dt.name} [{lo}, {hi}]")
    return a.astype(np.int64)


def winograd_srbs_reference(x_nhwc, U, params: WinogradSRBSParams) -> np.ndarray:
    """The exact int64 NHWC result (validated inputs), via ``winograd_conv2d``."""
    x = check_input(x_nhwc, params)
    U = check_weights(U, params)
    y = winograd_conv2d(x.transpose(0, 3, 1, 2), U, params.m, params.padding)
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1))



def check_output_datatype_holds(odt: BaseDataType, exact: tuple[int, int]) -> None:
    lo, hi = dt_range(odt)
    if exact[0] < lo or exact[1] > hi:
        raise attr_error(
            "outputDataType", odt.name, f"cannot hold the exact output range {list(exact)} of these weights",
            f"types holding it, the smallest being {smallest_datatype(*exact).name}",
        )

