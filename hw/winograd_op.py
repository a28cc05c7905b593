"""The ``WinogradSRBS`` FINN hardware layer: a 3x3 stride-1 convolution computed
with Winograd F(m x m, 3x3) on Winograd-domain, sub-row-balanced sparse weights.

Semantics: exactly :func:`winoforge.winograd.winograd_conv2d` on integers.
Input 0 is the activation tensor NHWC ``(N, H, W, IFMChannels)``, input 1 an
initializer ``U`` of shape ``(OFMChannels, IFMChannels, t, t)`` (``t = m + 2``), the
integer Winograd-domain weight codes; output NHWC ``(N, Ho, Wo, OFMChannels)``,
``Ho = H + 2*Padding - 2``, the exact, unscaled integer result.  As everywhere in
FINN the tensors are float32 carriers of integers.

Two registered ops (see :func:`register`, called once when this module is imported):

* ``WinogradSRBS`` in ``finn.custom_op.fpgadataflow`` -- the generic HW layer;
* ``WinogradSRBS_rtl`` in ``finn.custom_op.fpgadataflow.rtl`` -- what FINN's
  ``SpecializeLayers`` turns it into.  Unlike FINN's own ``*_rtl`` layers it keeps a
  Python execution mode (``exec_mode`` "" or "python"); "rtlsim" raises until the
  RTL exists.  FINN's ``step_hw_codegen`` runs ``PrepareIP``, which for every node
  in the ``.rtl`` domain with ``backend="fpgadataflow"`` creates
  ``code_gen_dir_ipgen`` with ``make_build_dir("code_gen_ipgen_<name>_")`` (only
  if the attribute is empty or not an existing directory -- an existing one is
  taken as cached and nothing is generated) and calls
  ``code_generation_ipgen(model, fpgapart, clk)``, which ``RTLBackend`` forwards to
  :meth:`WinogradSRBS_rtl.generate_hdl`.  That writes the parameters the future
  RTL consumes (packed SRBS weights as ``$readmemh`` files and a JSON of every
  parameter); it writes no Verilog.

Importing the FINN modules used here needs no shim: ``finn.custom_op.fpgadataflow``
(and ``.rtl``) import without ``FINN_BUILD_DIR``, ``XILINX_VIVADO`` or the
``finn.xsi.SimEngine`` stub (measured with finn-plus 1.6.1; those are needed by
``finn.builder`` only, see ``hw/finn_env.py``).  Only :class:`WinogradSRBS_rtl`
code generation through ``PrepareIP`` needs FINN's settings (``FINN_BUILD_DIR``).

Hardware model behind the estimates (all formulas are in the docstrings of
:class:`CycleEstimate`, :meth:`WinogradSRBSParams.estimate_resources`)::

    stream in (SIMD ch x in_bits) -> line buffer (t+m rows) -> input transform
    (SIMD lanes x u_in serial 1-D B^T units, V = B^T d B) -> V buffer (one tile,
    all channels, x2; POS banks) -> PE array: POS Winograd positions x PE output
    channels x SIMD*Keep/SubRow multipliers, each fed by a mux selecting its input
    channel inside the sub-row by the stored index (weights: POS banks) -> adder
    tree -> accumulator over Cin/SIMD folds (POS*PE of them) -> M buffer (t*t per
    PE, x2, POS banks per PE) -> output transform (Y = A^T M A, u_out serial 1-D A^T units per
    PE) -> output reorder buffer (2m rows) -> stream out (OE ch x out_bits, OE >= PE)

Folding: ``PE`` output channels, ``SIMD`` (dense-equivalent) input channels and
``POS`` Winograd positions (a divisor of t*t) are computed in parallel:
``POS * PE * SIMD*Keep/SubRow`` multipliers.  Loop order per frame: tile ->
output-channel fold (OFMChannels/PE) -> position group (t*t/POS; group g holds the
positions ``xi = g*POS + j``, j < POS) -> input-channel fold (IFMChannels/SIMD,
innermost).  ``OE`` (output channels per output-stream beat) is derived, not an
attribute: PE unless the output rate needs more (:attr:`WinogradSRBSParams.out_stream_elems`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
from onnx import NodeProto, helper
from qonnx.core.datatype import BaseDataType, DataType
from qonnx.custom_op.registry import add_op_to_domain
from qonnx.util.basic import get_by_name

import finn.custom_op.fpgadataflow as _fpgadataflow
import finn.custom_op.fpgadataflow.rtl as _fpgadataflow_rtl
from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from finn.util.basic import is_versal

# FINN's RAMB18 planner (exact partition over the SDP aspect ratios, fitted against
# Vivado).  A private name, but finn-plus is pinned to 1.6.1 in pyproject.toml.
from finn.util.resource_models import _bram18_plan

from winoforge.winograd import WinogradSpec, bit_growth, index_bits, pack_srbs, signed_bits, winograd_conv2d
from winoforge.winograd.bits import output_extreme

__all__ = [
    "OP_TYPE",
    "DOMAIN",
    "RTL_DOMAIN",
    "WinogradSRBSParams",
    "CycleEstimate",
    "ResourceEstimate",
    "InternalWidths",
    "WinogradSRBS",
    "WinogradSRBS_rtl",
    "make_winograd_srbs_node",
    "check_weights",
    "exact_output_range",
    "datatype_output_range",
    "smallest_datatype",
    "winograd_srbs_reference",
    "weight_memory_words",
    "choose_folding",
    "register",
    "VALUES_FILE",
    "INDICES_FILE",
    "PARAMS_FILE",
]

OP_TYPE = "WinogradSRBS"
DOMAIN = "finn.custom_op.fpgadataflow"
RTL_DOMAIN = "finn.custom_op.fpgadataflow.rtl"

#: float32 carries every integer of magnitude below 2^24 exactly.
FLOAT32_EXACT_LIMIT = 2**24
#: widest input / weight code: a float32 carrier holds 24-bit integers exactly.
MAX_CODE_BITS = 24

# FINN-R / FINN MVAU (matrixvectoractivation_hls.lut_estimation) constants.
LUT_FIXED = 300  # c0: control, stream handshakes
LUT_OVERHEAD = 1.1  # c1: factor on the datapath LUTs
# FINN MVAU: a memory of at most this depth is built from LUTs rather than BRAM.
LUTRAM_MAX_DEPTH = 128
# Fixed pipeline registers besides the transforms (see CycleEstimate).
MULT_LATENCY = 3
STREAM_REGISTERS = 2

# Generated by WinogradSRBS_rtl.generate_hdl in code_gen_dir_ipgen.
VALUES_FILE = "weights_values.memh"
INDICES_FILE = "weights_indices.memh"
PARAMS_FILE = "params.json"


# --------------------------------------------------------------------------- validation


def _attr_error(attr: str, value, reason: str, allowed=None) -> ValueError:
    text = f"{OP_TYPE} attribute {attr}={value} is not allowed: {reason}"
    if allowed is not None:
        text += f" (allowed: {allowed})"
    return ValueError(text)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _list(values) -> str:
    return ", ".join(str(v) for v in values)


def _int_attr(attr: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _attr_error(attr, repr(value), "must be an integer")
    if value < minimum:
        raise _attr_error(attr, value, f"must be >= {minimum}", f"integers >= {minimum}")
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
            raise _attr_error(attr, value, "not a FINN DataType name", "INT<n>, UINT<n>, BINARY, TERNARY") from None
    allowed = "INT<n>, UINT<n>, BINARY, TERNARY" + (f" with n <= {max_bits}" if max_bits else "")
    if not dt.is_integer() or dt.is_fixed_point() or not dt.min() <= 0 <= dt.max() or dt.name == "BIPOLAR":
        raise _attr_error(attr, dt.name, "must be an integer type whose range contains 0", allowed)
    if max_bits is not None and dt.bitwidth() > max_bits:
        raise _attr_error(
            attr, dt.name, f"codes wider than {max_bits} bits do not fit a float32 carrier exactly", allowed
        )
    return dt


def smallest_datatype(lo: int, hi: int) -> BaseDataType:
    """Smallest UINT<n> (if ``lo >= 0``) or INT<n> holding every integer in ``[lo, hi]``."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    if lo >= 0:
        return DataType[f"UINT{max(1, hi.bit_length())}"]
    return DataType[f"INT{signed_bits(lo, hi)}"]


def _dt_range(dt: BaseDataType) -> tuple[int, int]:
    return int(dt.min()), int(dt.max())


# --------------------------------------------------------------------------- estimates: records


@dataclass(frozen=True)
class CycleEstimate:
    """Expected cycles of one layer invocation (``batch`` frames streamed back to back).

    With ``T = ceil(Ho/m) * ceil(Wo/m)`` tiles per frame (``th x tw``), ``t = m + 2``,
    ``cf = OFMChannels/PE``, ``sf = IFMChannels/SIMD``, ``OE`` output channels per
    output beat (:attr:`WinogradSRBSParams.out_stream_elems`):

    Per frame, in steady state (what sets the throughput; FINN's FPS is
    ``clock / max cycles``):

    * ``main = T * (t^2/POS) * cf * sf`` -- one cycle per (tile, output fold,
      position group, input fold); equals the ideal cycles at the SRBS budget;
    * ``stall = max(0, in_beats - main, window_reads - main, out_beats - main)`` --
      the rate bounds: ``in_beats = H * W * sf`` (the input stream stays
      ``SIMD * in_bits`` wide: a layer needing more input bandwidth is bound by it,
      here), ``window_reads = T * t * sf`` (the input transform reads a tile's t x t
      window of one input fold as t columns, one word from each of t line-buffer
      row banks per cycle), ``out_beats = Ho * Wo * OFMChannels / OE``.  Zero for
      POS = 1 (``t^2 > m^2``: a tile takes longer than its m x m new pixels);
    * ``refill = max(0, need - (t + m - last_band_rows)) * W * sf`` with
      ``need = min(max(t - Padding, 0), H)`` -- the rows of the next frame's first
      tile band that cannot be prefetched into the line buffer (t + m rows) while
      the last band (``last_band_rows`` real input rows) is computed.

    ``total = batch * (main + stall + refill)``: frames overlap -- the next frame's
    rows enter the line buffer while the last band computes, the last band's
    outputs stream from the double-banded output buffer (2m rows) while the next
    frame's first band computes, and the datapath pipeline runs on.  This is the
    convention of FINN's MVAU (``get_exp_cycles`` excludes latency).

    Once per invocation (in :attr:`latency`, not in ``total``):

    * ``fill = need * W * sf`` -- the rows the first tile band needs, streamed before
      it can start;
    * ``drain = (last_cols + (last_rows - 1) * Wo) * OFMChannels / OE`` -- output beats
      of the last band that can only stream after its last tile (``last_rows/cols`` =
      valid outputs of the last tile row/column);
    * ``pipeline = ceil(2t/u_in) (input transform) + MULT_LATENCY + ceil(log2 cin_eff)
      (adder tree, sized for the widest fold so the term does not depend on
      folding) + 1 (accumulate) + ceil((t + m)/u_out) (output transform) +
      STREAM_REGISTERS`` (``u_in``, ``u_out``: 1-D transform units per lane / per PE,
      see :meth:`WinogradSRBSParams.estimate_resources`).

    Monotone: ``main``, the rate bounds and ``refill`` are non-increasing in POS, PE
    and SIMD (``OE`` is non-decreasing in each), so ``total`` is; so are ``fill``,
    ``drain`` and ``pipeline``.
    """

    main: int
    stall: int
    refill: int
    fill: int
    drain: int
    pipeline: int
    batch: int

    @property
    def interval(self) -> int:
        """Steady-state cycles per frame."""
        return self.main + self.stall + self.refill

    @property
    def total(self) -> int:
        return self.batch * self.interval

    @property
    def latency(self) -> int:
        """First input beat to last output beat of one invocation: the first frame's
        fill (its refill is part of it), ``total``, the last frame's drain and the
        pipeline."""
        return self.fill + self.total - self.refill + self.drain + self.pipeline


@dataclass(frozen=True)
class InternalWidths:
    """Bit widths of every stage (two's complement unless noted).

    ``*_bits``: the exact stage ranges from :func:`winoforge.winograd.bit_growth`
    for ``cin_eff = IFMChannels * Keep / SubRow`` accumulated terms per Winograd
    position.  ``datapath_*``: what the hardware needs -- every operation after the
    input codes (the transforms, products, sums) is a ring operation, so computing
    modulo ``2^output_bits`` gives the output exactly whenever it fits
    ``outputDataType``; no stage needs more than ``output_bits``.
    """

    input_bits: int
    input_signed: bool
    weight_bits: int
    weight_signed: bool
    index_bits: int
    input_transform_bits: int
    product_bits: int
    accumulator_bits: int
    output_transform_bits: int
    output_bits: int
    output_signed: bool
    datapath_input_transform_bits: int
    datapath_weight_bits: int
    datapath_product_bits: int
    datapath_accumulator_bits: int


@dataclass(frozen=True)
class ResourceEstimate:
    """LUT, RAMB18, URAM and DSP counts, with the contribution of each component."""

    lut: int
    bram18: int
    uram: int
    dsp: int
    bram_bits: int  # bits held by the BRAM-backed memories (for the efficiency)
    breakdown: dict = field(default_factory=dict)

    def as_finn_dict(self) -> dict:
        """The keys of FINN's ``node_res_estimation``."""
        eff = self.bram_bits / (self.bram18 * 18 * 1024) if self.bram18 else 1
        return {
            "BRAM_18K": self.bram18,
            "BRAM_efficiency": eff,
            "LUT": self.lut,
            "URAM": self.uram,
            "URAM_efficiency": 1,
            "DSP": self.dsp,
        }


def _transform_adders(mat: np.ndarray) -> int:
    """Adders of one direct (unshared) 1-D transform by ``mat``: per row, one fewer
    than its non-zeros, plus one per coefficient that is not a power of two
    (shift-and-add, e.g. ``5x = 4x + x``).  Signs and powers of two are wiring."""
    adders = 0
    for row in np.asarray(mat):
        nz = [abs(int(v)) for v in row if v != 0]
        adders += max(len(nz) - 1, 0) + sum(1 for v in nz if v & (v - 1))
    return adders


def _lutram_luts(width: int, depth: int) -> int:
    """LUTs of a ``depth x width`` LUTRAM: one RAM64X1 per bit per 64 words, as in
    FINN MVAU's ``c2 = width * ceil(depth/64)``; a memory shallower than 64 still
    costs one LUT per bit (``max(depth, 64)``), which keeps the estimate monotone
    in the width when the total bits are fixed.  Banks of one memory are counted as
    its bit columns (``width`` = banks x bank width): LUTRAM is built per bit
    column anyway, and rounding once keeps the count monotone when a memory is
    split into more, shallower banks."""
    if width <= 0 or depth <= 0:
        return 0
    return math.ceil(width * max(depth, 64) / 64)


@dataclass(frozen=True)
class _Memory:
    name: str
    banks: int
    depth: int
    width: int
    style: str  # "block", "distributed", "ultra"


# --------------------------------------------------------------------------- the parameters


# ONNX attribute name -> (WinogradSRBSParams field, onnx type, required, default)
_ATTRS: dict[str, tuple[str, str, bool, object]] = {
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
}
_RES_TYPES = ("auto", "lut", "dsp")
_RAM_STYLES = ("auto", "block", "distributed", "ultra")
_EXEC_MODES = ("", "python", "rtlsim")


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

    def __post_init__(self) -> None:
        m = self.m
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m not in (2, 4):
            raise _attr_error("m", m, "only F(2x2,3x3) and F(4x4,3x3) are supported", "2, 4")
        cin = _int_attr("IFMChannels", self.ifm_channels, 1)
        cout = _int_attr("OFMChannels", self.ofm_channels, 1)
        dim = self.ifm_dim
        if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool):
            dim = (dim, dim)
        ok = isinstance(dim, (tuple, list, np.ndarray)) and len(dim) == 2
        if not ok or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in dim):
            shown = list(dim) if isinstance(dim, (tuple, list, np.ndarray)) else repr(dim)
            raise _attr_error("IFMDim", shown, "must be two integers [H, W] >= 1", "[H, W] with H, W >= 1")
        dim = (int(dim[0]), int(dim[1]))
        pad = _int_attr("Padding", self.padding, 0)
        if min(dim) + 2 * pad < 3:
            need = math.ceil((3 - min(dim)) / 2)
            raise _attr_error(
                "Padding", pad, f"IFMDim={list(dim)} padded by {pad} is smaller than the 3x3 kernel",
                f"Padding >= {need}",
            )
        sub_row = _int_attr("SubRow", self.sub_row, 0)
        if sub_row and cin % sub_row:
            raise _attr_error(
                "SubRow", sub_row, f"must be 0 (dense) or divide IFMChannels={cin}", _list([0] + _divisors(cin))
            )
        keep = _int_attr("Keep", self.keep, 0)
        if sub_row == 0 and keep != 0:
            raise _attr_error("Keep", keep, "a dense layer (SubRow=0) has no Keep", "0")
        if sub_row and not 1 <= keep <= sub_row:
            raise _attr_error("Keep", keep, f"must be 1..SubRow={sub_row}", f"1..{sub_row}")
        pe = _int_attr("PE", self.pe, 1)
        if cout % pe:
            raise _attr_error("PE", pe, f"must divide OFMChannels={cout}", _list(_divisors(cout)))
        simd = _int_attr("SIMD", self.simd, 1)
        simd_ok = _allowed_simd(cin, sub_row)
        if simd not in simd_ok:
            reason = f"must divide IFMChannels={cin}" + (f" and be a multiple of SubRow={sub_row}" if sub_row else "")
            raise _attr_error("SIMD", simd, reason, _list(simd_ok))
        pos = _int_attr("POS", self.pos, 1)
        t2 = (int(m) + 2) ** 2
        if t2 % pos:
            raise _attr_error("POS", pos, f"must divide the t*t={t2} Winograd positions of F({m}x{m},3x3)",
                              _list(_divisors(t2)))
        idt = _datatype_attr("inputDataType", self.input_datatype, MAX_CODE_BITS)
        wdt = _datatype_attr("weightDataType", self.weight_datatype, MAX_CODE_BITS)
        odt = _datatype_attr("outputDataType", self.output_datatype, None)
        batch = _int_attr("batchSize", self.batch_size, 1)
        if self.res_type not in _RES_TYPES:
            raise _attr_error("resType", self.res_type, "unknown multiplier style", _list(_RES_TYPES))
        if self.ram_style not in _RAM_STYLES:
            raise _attr_error("ram_style", self.ram_style, "unknown weight memory style", _list(_RAM_STYLES))
        for name, value in (
            ("m", int(m)), ("ifm_channels", cin), ("ofm_channels", cout), ("ifm_dim", dim), ("padding", pad),
            ("sub_row", sub_row), ("keep", keep), ("pe", pe), ("simd", simd), ("pos", pos), ("input_datatype", idt),
            ("weight_datatype", wdt), ("output_datatype", odt), ("batch_size", batch),
        ):
            object.__setattr__(self, name, value)

    # ---- conversions

    @classmethod
    def from_attributes(cls, attrs: dict) -> "WinogradSRBSParams":
        """From a mapping ONNX attribute name -> value (missing optional ones default)."""
        kwargs = {}
        for attr, (fname, _, required, default) in _ATTRS.items():
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
        for attr, (fname, _, _, _) in _ATTRS.items():
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
        """Winograd positions computed one after another: ``t^2 / POS``."""
        return self.t**2 // self.pos

    @property
    def index_bits(self) -> int:
        return index_bits(self.sub_row) if self.sparse else 0

    @property
    def weight_memory_depth(self) -> int:
        """Words of each of the POS weight-memory banks (all read at one address):
        ``(t^2/POS) * (OFMChannels/PE) * (IFMChannels/SIMD)``."""
        return self.position_groups * (self.ofm_channels // self.pe) * (self.ifm_channels // self.simd)

    @property
    def band_cycles(self) -> int:
        """Compute cycles of one tile band: ``tw * (t^2/POS) * cf * sf``."""
        cf, sf = self.ofm_channels // self.pe, self.ifm_channels // self.simd
        return self.tile_grid[1] * self.position_groups * cf * sf

    @property
    def out_stream_elems(self) -> int:
        """``OE``, output channels per output-stream beat: the smallest divisor of
        OFMChannels that is >= PE and lets one tile band's outputs (``min(m, Ho)``
        rows x Wo pixels x OFMChannels) stream within that band's compute
        (:attr:`band_cycles`), so the double-banded output buffer never blocks the
        PE array; OFMChannels (a whole pixel per beat) if no divisor is enough (the
        stall term of :class:`CycleEstimate` then counts the difference).

        PE for POS = 1 (a band's outputs need at most ``PE * m^2/t^2 < PE`` channels
        per cycle); wider only when positions run in parallel, e.g. a first layer
        (IFMChannels = 1) at POS = t^2 finishes an output fold of a tile (m^2 pixels)
        every cycle.  Non-decreasing in POS, PE and SIMD.
        """
        rows = min(self.m, self.out_dim[0])
        need = math.ceil(rows * self.out_dim[1] * self.ofm_channels / self.band_cycles)
        floor = max(self.pe, need)
        return next((d for d in _divisors(self.ofm_channels) if d >= floor), self.ofm_channels)

    @property
    def input_transform_units(self) -> int:
        """``u_in``: serial 1-D ``B^T`` units per SIMD lane.  The t x t transform of one
        input fold is 2t 1-D transforms (``ceil(2t/u_in)`` cycles); its V values serve
        all ``cf = OFMChannels/PE`` output folds, whose compute takes
        ``(t^2/POS) * cf`` cycles per input fold, so ``u_in = ceil(2 POS / (t cf))``: 1
        for POS <= t/2 * cf; POS*SIMD values per cycle at cf = 1; 2t (a fully
        parallel 2-D transform) at POS = t^2, cf = 1."""
        return math.ceil(2 * self.pos / (self.t * (self.ofm_channels // self.pe)))

    @property
    def output_transform_units(self) -> int:
        """``u_out``: serial 1-D ``A^T`` units per PE.  The transform of one output
        fold's t x t accumulators is t + m 1-D transforms; one output fold of a tile
        is accumulated in ``(t^2/POS) * sf`` cycles (``sf = IFMChannels/SIMD``; the M
        buffer is double), so ``u_out = ceil(POS (t+m) / (t^2 sf))``: 1 at POS = 1;
        POS*PE accumulators consumed per cycle at sf = 1."""
        sf = self.ifm_channels // self.simd
        return math.ceil(self.pos * (self.t + self.m) / (self.t**2 * sf))

    @property
    def mult_style(self) -> str:
        """``resType``; "auto" picks DSPs when inputs and weights have >= 4 bits (the
        rule FINN's SpecializeLayers uses to choose the DSP-based MVAU_rtl)."""
        if self.res_type != "auto":
            return self.res_type
        big = self.input_datatype.bitwidth() >= 4 and self.weight_datatype.bitwidth() >= 4
        return "dsp" if big else "lut"

    # ---- cycles

    def cycles(self) -> CycleEstimate:
        """See :class:`CycleEstimate` for the formulas."""
        t, m = self.t, self.m
        h, w = self.ifm_dim
        ho, wo = self.out_dim
        th, tw = self.tile_grid
        cf, sf = self.ofm_channels // self.pe, self.ifm_channels // self.simd
        tiles = self.tiles_per_frame
        main = tiles * self.position_groups * cf * sf
        oe = self.out_stream_elems
        in_beats = h * w * sf
        window_reads = tiles * t * sf
        out_beats = ho * wo * self.ofm_channels // oe
        stall = max(0, in_beats - main, window_reads - main, out_beats - main)
        need = min(max(t - self.padding, 0), h)
        r0 = (th - 1) * m - self.padding  # first input row of the last tile band
        last_band_rows = min(h - 1, r0 + t - 1) - max(0, r0) + 1
        refill = max(0, need - (t + m - last_band_rows)) * w * sf
        fill = need * w * sf
        last_rows, last_cols = ho - (th - 1) * m, wo - (tw - 1) * m
        drain = (last_cols + (last_rows - 1) * wo) * self.ofm_channels // oe
        adder_depth = math.ceil(math.log2(max(self.cin_eff, 2)))
        pipeline = (
            math.ceil(2 * t / self.input_transform_units) + MULT_LATENCY + adder_depth + 1
            + math.ceil((t + m) / self.output_transform_units) + STREAM_REGISTERS
        )
        return CycleEstimate(main, stall, refill, fill, drain, pipeline, self.batch_size)

    def exp_cycles(self) -> int:
        return self.cycles().total

    def nonzero_multiplies(self, nonzero_weights: int | None = None) -> int:
        """Winograd-domain multiplies with a non-zero weight per invocation:
        ``batch * T * nnz(U)``; ``nnz(U)`` defaults to the SRBS budget
        ``t^2 * OFMChannels * cin_eff``."""
        nnz = self.t**2 * self.ofm_channels * self.cin_eff if nonzero_weights is None else int(nonzero_weights)
        return self.batch_size * self.tiles_per_frame * nnz

    def ideal_cycles(self, nonzero_weights: int | None = None) -> float:
        """``nonzero multiplies / multipliers``: every multiplier busy every cycle."""
        return self.nonzero_multiplies(nonzero_weights) / self.multipliers

    # ---- widths

    def internal_widths(self) -> InternalWidths:
        """Stage widths for the RTL (see :class:`InternalWidths`)."""
        key = (self.m, self.ifm_channels, self.sub_row, self.keep, self.input_datatype.name,
               self.weight_datatype.name, self.output_datatype.name)
        if key not in _WIDTHS_CACHE:
            if len(_WIDTHS_CACHE) >= _WIDTHS_CACHE_SIZE:
                _WIDTHS_CACHE.pop(next(iter(_WIDTHS_CACHE)))
            _WIDTHS_CACHE[key] = self._internal_widths()
        return _WIDTHS_CACHE[key]

    def _internal_widths(self) -> InternalWidths:
        idt, wdt, odt = self.input_datatype, self.weight_datatype, self.output_datatype
        growth = bit_growth(
            idt.bitwidth(), wdt.bitwidth(), self.cin_eff, self.spec,
            in_signed=idt.signed(), weight_signed=wdt.signed(),
        )
        acc = _position_accumulator_ranges(self)
        at = self.spec.AT
        # first output-transform pass Z = A^T M (m x t), interval over the positions
        z_lo = z_hi = 0
        for i in range(self.m):
            for b in range(self.t):
                lo = hi = 0
                for a in range(self.t):
                    c = int(at[i, a])
                    mlo, mhi = acc[a, b]
                    lo += min(c * mlo, c * mhi)
                    hi += max(c * mlo, c * mhi)
                z_lo, z_hi = min(z_lo, lo), max(z_hi, hi)
        ob = odt.bitwidth()
        return InternalWidths(
            input_bits=idt.bitwidth(),
            input_signed=bool(idt.signed()),
            weight_bits=wdt.bitwidth(),
            weight_signed=bool(wdt.signed()),
            index_bits=self.index_bits,
            input_transform_bits=growth.input_transform_bits,
            product_bits=growth.product_bits,
            accumulator_bits=growth.accumulator_bits,
            output_transform_bits=max(signed_bits(z_lo, z_hi), signed_bits(*datatype_output_range(self))),
            output_bits=ob,
            output_signed=bool(odt.signed()),
            datapath_input_transform_bits=min(growth.input_transform_bits, ob),
            datapath_weight_bits=min(wdt.bitwidth(), ob),
            datapath_product_bits=min(growth.product_bits, ob),
            datapath_accumulator_bits=min(growth.accumulator_bits, ob),
        )

    # ---- resources

    def _memories(self) -> list[_Memory]:
        t, m = self.t, self.m
        h, w = self.ifm_dim
        ho, wo = self.out_dim
        widths = self.internal_widths()
        auto = lambda depth: "block" if depth > LUTRAM_MAX_DEPTH else "distributed"  # noqa: E731
        wdepth = self.weight_memory_depth
        wstyle = auto(wdepth) if self.ram_style == "auto" else self.ram_style
        word = self.pe * self.lanes * (self.weight_datatype.bitwidth() + self.index_bits)
        line_depth = w * self.ifm_channels // self.simd
        v_depth = 2 * self.position_groups * self.ifm_channels // self.simd
        oe = self.out_stream_elems
        g = math.gcd(self.pe, oe)  # output-buffer bank: written PE/g, read OE/g banks at a time
        out_depth = wo * self.ofm_channels // oe
        return [
            _Memory("weight_memory", self.pos, wdepth, word, wstyle),
            _Memory("line_buffer", t + m, line_depth, self.simd * self.input_datatype.bitwidth(), auto(line_depth)),
            _Memory("v_buffer", self.pos, v_depth, self.simd * widths.datapath_input_transform_bits, auto(v_depth)),
            _Memory("m_buffer", self.pos * self.pe, 2 * self.position_groups, widths.datapath_accumulator_bits,
                    "distributed"),
            _Memory("output_buffer", 2 * m * oe // g, out_depth, g * widths.output_bits, auto(out_depth)),
        ]

    def estimate_resources(self, fpgapart: str = "") -> ResourceEstimate:
        """LUT / RAMB18 / URAM / DSP estimate, in the spirit of FINN's MVAU estimates.

        Notation: ``Q = POS``, ``P = PE``, ``S = SIMD``, ``L = SubRow``, ``K = Keep``,
        ``lanes = S*K/L`` (``S`` dense), ``NM = Q * P * lanes`` multipliers, ``Wb``
        weight bits, ``A`` the input-transform (V) width, ``Acc`` the accumulator
        width, ``Ob`` the output width -- datapath widths, each capped at ``Ob``
        (:class:`InternalWidths`).  ``nB`` / ``nA``: adders of one 1-D ``B^T`` /
        ``A^T`` transform (:func:`_transform_adders`; F(2,3): 4 / 4, F(4,3): 18 / 14).
        ``u_in = ceil(2Q / (t * Cout/P))`` and ``u_out = ceil(Q (t+m) / (t^2 * Cin/S))``:
        1-D transform units per SIMD lane / per PE that keep up with the PE array
        (:attr:`input_transform_units`, :attr:`output_transform_units`; both 1 at
        ``Q = 1``).

        LUT = 300 + 1.1 * (mult + mux + adder_tree + acc + in_tf + out_tf) + LUTRAM

        * ``mult = NM * (2*ceil((Wb+A)/6) - 1) * (Wb+A)`` for LUT multipliers
          (FINN-R, as MVAU_hls), 0 for DSP ones;
        * ``mux = NM * A * ceil((L-K)/3)``: the k-th kept index of a sub-row is one
          of ``L-K+1`` positions (indices ascend), a LUT6 is a 4:1 mux;
        * ``adder_tree = Q * P * (Wb+A) * (2*lanes - 1)`` (FINN-R; one tree per
          position and PE);
        * ``acc = Q * P * Acc`` (FINN: one LUT per accumulator bit);
        * ``in_tf = S * u_in * nB * A``: serial 1-D transforms per SIMD lane, 2t uses
          per tile and channel fold (its t x t result registers are FFs); they
          produce ``S * u_in * t/2 >= Q * S / (Cout/P)`` V values per cycle, what
          the PE array reads (Q positions x S channels per cycle, each V value
          reused by the Cout/P output folds);
        * ``out_tf = P * u_out * nA * Ob``: serial 1-D transforms per PE, t + m uses
          per tile and output fold; they take the ``Q * P`` accumulators the PE
          array finishes every ``Cin/S`` cycles;
        * LUTRAM = ``ceil(banks * width * max(depth, 64) / 64)`` per distributed
          memory (:func:`_lutram_luts`).

        DSP = ``NM * ceil((Wb+A)/48)`` for DSP multipliers (FINN MVAU_hls).  No
        DSP packing: FINN's MVU packs several weights against one shared activation,
        but here every multiplier reads its own, index-selected activation.

        Memories (``banks x depth x width``; "auto" = BRAM above 128 words, else
        LUTRAM, as FINN MVAU; RAMB18 = banks x FINN's ``_bram18_plan(depth, width)``,
        planned per bank; URAM ``banks * ceil(width/72) * ceil(depth/4096)``):

        * weights: ``Q`` banks (bank j holds position ``g*Q + j`` of every position
          group g; all read at one address) of ``(t^2/Q) * (Cout/P) * (Cin/S)`` x
          ``P * lanes * (Wb + index_bits)`` -- the same bits as one memory at any Q --
          style ``ram_style``;
        * line buffer: ``t + m`` banks of ``W * Cin/S`` x ``S * in_bits`` (t rows of
          the current tile band, m rows filling for the next one) -- independent of
          Q: the input stream and the window reads bound the cycles instead
          (:class:`CycleEstimate`);
        * V buffer: ``Q`` banks of ``2 * (t^2/Q) * Cin/S`` x ``S * A`` (one tile, all
          channels, double; Q positions read per cycle);
        * M buffer: ``Q * P`` banks of ``2 t^2/Q`` x ``Acc`` (LUTRAM; one per
          accumulator);
        * output reorder buffer: 2m rows of ``Wo * Cout`` x ``Ob``, as
          ``2m * OE/G`` banks of ``Wo * Cout/OE`` x ``G * Ob`` with
          ``G = gcd(P, OE)`` (the PE array writes P channels, the stream reads OE; for
          ``OE = P``: ``2m`` banks of ``P * Ob``).

        Stream widths: in ``S * in_bits``, out ``OE * Ob`` (:attr:`out_stream_elems`).

        Monotone: LUT and DSP are non-decreasing in POS, PE and SIMD (every logic
        term grows with Q, P or S -- ``u_in`` with Q and P, ``u_out`` with Q and S; a
        memory of fixed total bits only gets wider, more banked or shallower, which
        never lowers its LUTRAM count, and may move from BRAM to LUTRAM).
        """
        widths = self.internal_widths()
        wb, a = widths.datapath_weight_bits, widths.datapath_input_transform_bits
        acc, ob = widths.datapath_accumulator_bits, widths.output_bits
        nm, lanes = self.multipliers, self.lanes
        trees = self.pos * self.pe
        style = self.mult_style
        logic = {
            "multipliers": nm * (2 * math.ceil((wb + a) / 6) - 1) * (wb + a) if style == "lut" else 0,
            "index_muxes": nm * a * math.ceil((self.sub_row - self.keep) / 3) if self.sparse else 0,
            "adder_trees": trees * (wb + a) * (2 * lanes - 1),
            "accumulators": trees * acc,
            "input_transform": self.simd * self.input_transform_units * _transform_adders(self.spec.BT) * a,
            "output_transform": self.pe * self.output_transform_units * _transform_adders(self.spec.AT) * ob,
        }
        breakdown = {name: {"LUT": value} for name, value in logic.items()}
        breakdown["control"] = {"LUT": LUT_FIXED}
        dsp = nm * math.ceil((wb + a) / 48) if style == "dsp" else 0
        breakdown["multipliers"]["DSP"] = dsp
        versal = bool(fpgapart) and is_versal(fpgapart)
        lutram = bram18 = uram = bram_bits = 0
        for mem in self._memories():
            entry = {"LUT": 0, "BRAM_18K": 0, "URAM": 0, "style": mem.style, "banks": mem.banks,
                     "depth": mem.depth, "width": mem.width}
            if mem.style == "distributed":
                entry["LUT"] = _lutram_luts(mem.banks * mem.width, mem.depth)
            elif mem.style == "ultra":
                entry["URAM"] = mem.banks * math.ceil(mem.width / 72) * math.ceil(mem.depth / 4096)
            else:
                entry["BRAM_18K"] = mem.banks * _bram18_plan(mem.depth, mem.width, versal)[0]
                bram_bits += mem.banks * mem.depth * mem.width
            lutram += entry["LUT"]
            bram18 += entry["BRAM_18K"]
            uram += entry["URAM"]
            breakdown[mem.name] = entry
        lut = int(LUT_FIXED + LUT_OVERHEAD * sum(logic.values()) + lutram)
        return ResourceEstimate(lut, bram18, uram, dsp, bram_bits, breakdown)

    # ---- op and parameter counts

    def op_and_param_counts(self) -> dict[str, int]:
        """FINN-style counts per invocation: Winograd-domain MACs (non-zero weight
        slots), transform additions, and stored weights / indices.  Like FINN's MVAU
        counts they do not depend on the folding (POS, PE, SIMD): parallel units do
        the same operations sooner."""
        widths = self.internal_widths()
        tiles = self.batch_size * self.tiles_per_frame
        t, m = self.t, self.m
        a, wb = widths.input_transform_bits, widths.weight_bits
        counts: dict[str, int] = {}

        def add(key: str, value: int) -> None:
            counts[key] = counts.get(key, 0) + int(value)

        add(f"op_mac_{min(a, wb)}bx{max(a, wb)}b", self.nonzero_multiplies())
        add(f"op_add_{a}b", tiles * self.ifm_channels * 2 * t * _transform_adders(self.spec.BT))
        add(f"op_add_{widths.output_bits}b", tiles * self.ofm_channels * (t + m) * _transform_adders(self.spec.AT))
        stored = t * t * self.ofm_channels * self.cin_eff
        add(f"param_weight_{wb}b", stored)
        if self.index_bits:
            add(f"param_index_{self.index_bits}b", stored)
        return counts


# Widths depend on a few parameters only; estimates ask for them many times.
_WIDTHS_CACHE: dict[tuple, InternalWidths] = {}
_WIDTHS_CACHE_SIZE = 256


def _allowed_simd(cin: int, sub_row: int) -> list[int]:
    return [d for d in _divisors(cin) if sub_row == 0 or d % sub_row == 0]


def _position_accumulator_ranges(params: WinogradSRBSParams) -> dict[tuple[int, int], tuple[int, int]]:
    """Exact range of ``M_ab = sum of cin_eff products U * V_ab`` per position."""
    spec = params.spec
    xlo, xhi = _dt_range(params.input_datatype)
    wlo, whi = _dt_range(params.weight_datatype)
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


# --------------------------------------------------------------------------- datatypes


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
    x_range = _dt_range(params.input_datatype)
    w_range = _dt_range(params.weight_datatype)
    acc = _position_accumulator_ranges(params)
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
    xlo, xhi = _dt_range(params.input_datatype)
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


def _exact_range_cached(U: np.ndarray, params: WinogradSRBSParams) -> tuple[int, int]:
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


# --------------------------------------------------------------------------- weights and inputs


def _first_index(mask: np.ndarray) -> tuple[int, ...]:
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
            xi, o, g = _first_index(over)
            raise ValueError(
                f"{OP_TYPE} weights are not SRBS(SubRow={L}, Keep={K}): output channel {o}, input "
                f"channels {g * L}..{g * L + L - 1}, Winograd position (a, b) = ({xi // t}, {xi % t}) "
                f"hold {counts[xi, o, g]} non-zeros"
            )
    return U


def _check_input(x: np.ndarray, params: WinogradSRBSParams) -> np.ndarray:
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
            pos = _first_index(bad)
            raise ValueError(f"{OP_TYPE} {what} must hold integers; found {a[pos].item()!r} at {axes} = {pos}")
    lo, hi = _dt_range(dt)
    out = (a < lo) | (a > hi)
    if out.any():
        pos = _first_index(out)
        raise ValueError(f"{OP_TYPE} {what} {a[pos].item()!r} at {axes} = {pos} is outside {attr}={dt.name} [{lo}, {hi}]")
    return a.astype(np.int64)


def winograd_srbs_reference(x_nhwc, U, params: WinogradSRBSParams) -> np.ndarray:
    """The exact int64 NHWC result (validated inputs), via ``winograd_conv2d``."""
    x = _check_input(x_nhwc, params)
    U = check_weights(U, params)
    y = winograd_conv2d(x.transpose(0, 3, 1, 2), U, params.m, params.padding)
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1))


# --------------------------------------------------------------------------- folding


def choose_folding(params: WinogradSRBSParams, target_cycles: int, fpgapart: str = "") -> WinogradSRBSParams:
    """The folding (POS, PE, SIMD) with the fewest multipliers ``POS * PE * lanes``
    whose expected cycles are at most ``target_cycles``.

    Ties (same number of multipliers) go to fewer expected cycles (at equal
    multipliers only the stall and refill terms differ), then to fewer estimated
    LUTs, then fewer RAMB18s, and only then (exact ties) to the larger SIMD, then
    the larger PE, i.e. the smaller POS.

    The LUT estimate rather than a fixed order of the dimensions decides, because
    at equal multipliers the multipliers, index muxes and weight bits are the same
    and what differs goes either way: larger SIMD means fewer adder trees,
    accumulators and M-buffer banks per multiplier but more input-transform units
    and a wider, shallower line buffer (BRAM -> LUTRAM); larger PE more
    output-transform units and a wider output buffer; larger POS better-used serial
    transform units (``u_in`` and ``u_out`` stay 1 until POS exceeds ``t/2 * Cout/PE``
    resp. ``t^2/(t+m) * Cin/SIMD``) but a banked V buffer.  E.g. 32x32x64 -> 64,
    F(2,3), SubRow 8, Keep 2, UINT4 x INT4 at 128 multipliers: (POS, PE, SIMD) =
    (8, 8, 8) has the fewest LUTs (9525), (1, 8, 64) 11817, (1, 64, 8) 17116.  The
    final static order follows FINN's SetFolding (SIMD before PE) and prefers the
    plain, unbanked design (small POS).

    ``ValueError`` if even full parallelism ``POS = t^2, PE = OFMChannels,
    SIMD = IFMChannels`` needs more cycles (the cycles are non-increasing in each).
    """
    if isinstance(target_cycles, bool) or not isinstance(target_cycles, (int, np.integer)) or target_cycles < 1:
        raise ValueError(f"target_cycles must be a positive integer, got {target_cycles!r}")
    fits = []
    for pos in _divisors(params.t**2):
        for pe in _divisors(params.ofm_channels):
            for simd in _allowed_simd(params.ifm_channels, params.sub_row):
                cand = params.replace(pos=pos, pe=pe, simd=simd)
                cycles = cand.exp_cycles()
                if cycles <= target_cycles:
                    fits.append((cand.multipliers, cycles, cand))
    if not fits:
        full = params.replace(pos=params.t**2, pe=params.ofm_channels, simd=params.ifm_channels)
        raise ValueError(
            f"{OP_TYPE}: no folding reaches target_cycles={int(target_cycles)}; even full parallelism "
            f"(POS={full.pos}, PE={full.pe}, SIMD={full.simd}) needs {full.exp_cycles()} cycles"
        )
    fewest = min(key[:2] for key in fits)
    best, best_key = None, None
    for nm, cycles, cand in fits:  # resources only for the cheapest candidates
        if (nm, cycles) != fewest:
            continue
        res = cand.estimate_resources(fpgapart)
        key = (res.lut, res.bram18, -cand.simd, -cand.pe, cand.pos)
        if best_key is None or key < best_key:
            best, best_key = cand, key
    return best


# --------------------------------------------------------------------------- node factory


def _datatype_name(value) -> str:
    return value.name if isinstance(value, BaseDataType) else str(value)


def make_winograd_srbs_node(
    input_name: str,
    weight_name: str,
    output_name: str,
    *,
    m: int,
    ifm_channels: int,
    ofm_channels: int,
    ifm_dim,
    input_datatype,
    weight_datatype,
    output_datatype=None,
    padding: int = 1,
    sub_row: int = 0,
    keep: int = 0,
    pe: int = 1,
    simd: int = 1,
    pos: int = 1,
    batch_size: int = 1,
    res_type: str = "auto",
    ram_style: str = "auto",
    weights=None,
    rtl: bool = False,
    name: str = "",
) -> NodeProto:
    """A validated ``WinogradSRBS`` (or, with ``rtl=True``, ``WinogradSRBS_rtl``) node.

    Folding: ``pe``, ``simd`` and ``pos`` (node attributes PE, SIMD, POS; see
    :func:`choose_folding`).

    ``output_datatype`` defaults to the smallest type holding the exact output range
    of ``weights`` when given (:func:`exact_output_range`), else the sound bound
    :func:`datatype_output_range`.  ``weights``, if given, are validated
    (:func:`check_weights`) and must fit the output datatype.
    """
    for label, tensor in (("input_name", input_name), ("weight_name", weight_name), ("output_name", output_name)):
        if not isinstance(tensor, str) or not tensor:
            raise ValueError(f"{label} must be a non-empty tensor name, got {tensor!r}")
    probe_odt = output_datatype if output_datatype is not None else "INT32"
    params = WinogradSRBSParams(
        m=m, ifm_channels=ifm_channels, ofm_channels=ofm_channels, ifm_dim=ifm_dim,
        input_datatype=_datatype_name(input_datatype), weight_datatype=_datatype_name(weight_datatype),
        output_datatype=_datatype_name(probe_odt), padding=padding, sub_row=sub_row, keep=keep,
        pe=pe, simd=simd, pos=pos, batch_size=batch_size, res_type=res_type, ram_style=ram_style,
    )
    if weights is not None:
        U = check_weights(weights, params)
        exact = exact_output_range(U, params)
        if output_datatype is None:
            params = params.replace(output_datatype=smallest_datatype(*exact))
        else:
            _check_output_datatype_holds(params.output_datatype, exact)
    elif output_datatype is None:
        params = params.replace(output_datatype=smallest_datatype(*datatype_output_range(params)))
    return helper.make_node(
        OP_TYPE + ("_rtl" if rtl else ""),
        [input_name, weight_name],
        [output_name],
        domain=RTL_DOMAIN if rtl else DOMAIN,
        name=name,
        backend="fpgadataflow",
        **params.to_attributes(),
    )


def _check_output_datatype_holds(odt: BaseDataType, exact: tuple[int, int]) -> None:
    lo, hi = _dt_range(odt)
    if exact[0] < lo or exact[1] > hi:
        raise _attr_error(
            "outputDataType", odt.name, f"cannot hold the exact output range {list(exact)} of these weights",
            f"types holding it, the smallest being {smallest_datatype(*exact).name}",
        )


# --------------------------------------------------------------------------- the FINN ops


class WinogradSRBS(HWCustomOp):
    """Generic FINN HW layer; executes bit-exactly in Python (exec_mode "" / "python")."""

    def __init__(self, onnx_node, **kwargs):
        super().__init__(onnx_node, **kwargs)
        self.params()  # validate on creation

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        for attr, (_, kind, required, default) in _ATTRS.items():
            attrs[attr] = (kind, required, default)
        # HWCustomOp allows "", "rtlsim", "cppsim"; this op has a Python mode and no HLS.
        # Validated by params(), which gives the error message the attribute deserves.
        attrs["exec_mode"] = ("s", False, "")
        return attrs

    # ---- parameters and validation

    def params(self) -> WinogradSRBSParams:
        """The validated parameters (``ValueError`` naming a bad attribute)."""
        values = {}
        for attr in _ATTRS:
            if get_by_name(self.onnx_node.attribute, attr) is not None:
                values[attr] = self.get_nodeattr(attr)
        params = WinogradSRBSParams.from_attributes(values)
        mode = self.get_nodeattr("exec_mode")
        if mode not in _EXEC_MODES:
            raise _attr_error("exec_mode", repr(mode), "no such execution mode (no HLS variant: no cppsim)",
                              ", ".join(repr(v) for v in _EXEC_MODES))
        return params

    def set_nodeattr(self, name, value):
        """As FINN's, but a layer attribute that would make the node invalid raises
        ``ValueError`` and leaves the node unchanged."""
        if name not in _ATTRS and name != "exec_mode":
            return super().set_nodeattr(name, value)
        old = get_by_name(self.onnx_node.attribute, name)
        saved = copy.deepcopy(old) if old is not None else None
        super().set_nodeattr(name, value)
        try:
            self.params()
        except ValueError:
            attrs = self.onnx_node.attribute
            index = next(i for i, a in enumerate(attrs) if a.name == name)
            if saved is None:
                del attrs[index]
            else:
                attrs[index].CopyFrom(saved)
            raise
        return None

    def verify_node(self):
        """Raise ``ValueError`` on a bad attribute or wiring; else FINN-style messages."""
        self.params()
        if self.get_nodeattr("backend") != "fpgadataflow":
            raise _attr_error("backend", self.get_nodeattr("backend"), "must be fpgadataflow", "fpgadataflow")
        node = self.onnx_node
        if len(node.input) != 2 or len(node.output) != 1:
            raise ValueError(
                f"{OP_TYPE} needs 2 inputs (activations, weights) and 1 output, "
                f"got {len(node.input)} inputs and {len(node.output)} outputs"
            )
        return ["Attribute backend is set correctly", "All necessary attributes exist and are valid",
                "The number of inputs and outputs is correct"]

    def weights(self, model) -> np.ndarray | None:
        """The validated int64 weights from ``model``'s initializer (None if absent)."""
        U = model.get_initializer(self.onnx_node.input[1])
        return None if U is None else check_weights(U, self.params())

    # ---- datatypes

    def get_input_datatype(self, ind=0):
        if ind == 0:
            return DataType[self.get_nodeattr("inputDataType")]
        if ind == 1:
            return DataType[self.get_nodeattr("weightDataType")]
        raise ValueError(f"{OP_TYPE} has inputs 0 (activations) and 1 (weights), not {ind}")

    def get_output_datatype(self, ind=0):
        return DataType[self.get_nodeattr("outputDataType")]

    def infer_node_datatype(self, model):
        """Take the input tensor's datatype; widen ``outputDataType`` (never narrow --
        that is :meth:`minimize_accumulator_width`'s job) if it no longer holds the
        output range; annotate the output tensor."""
        node = self.onnx_node
        idt = model.get_tensor_datatype(node.input[0])
        if idt != self.get_input_datatype(0):
            self.set_nodeattr("inputDataType", idt.name)
        params = self.params()
        U = self.weights(model)
        rng = _exact_range_cached(U, params) if U is not None else datatype_output_range(params)
        lo, hi = _dt_range(params.output_datatype)
        if rng[0] < lo or rng[1] > hi:
            self.set_nodeattr("outputDataType", smallest_datatype(min(rng[0], lo), max(rng[1], hi)).name)
        model.set_tensor_datatype(node.output[0], self.get_output_datatype())

    def minimize_accumulator_width(self, model, datatype_only=False):
        """Set ``outputDataType`` to the smallest type holding the output range: exact
        for the weights in ``model`` (:func:`exact_output_range`), or the sound bound
        :func:`datatype_output_range` when ``datatype_only`` or without weights.
        (Unlike MVAU, a last node is not rounded up to a multiple of 8 bits.)"""
        params = self.params()
        U = None if datatype_only else self.weights(model)
        rng = _exact_range_cached(U, params) if U is not None else datatype_output_range(params)
        odt = smallest_datatype(*rng)
        self.set_nodeattr("outputDataType", odt.name)
        model.set_tensor_datatype(self.onnx_node.output[0], odt)
        return odt

    def minimize_weight_bit_width(self, model, datatype_only=False):
        """As MVAU: shrink ``weightDataType`` to the smallest type holding the weights."""
        U = None if datatype_only else self.weights(model)
        if U is not None and U.size:
            wdt = smallest_datatype(min(int(U.min()), 0), max(int(U.max()), 0))
            self.set_nodeattr("weightDataType", wdt.name)
        return self.get_input_datatype(1)

    def internal_widths(self) -> InternalWidths:
        return self.params().internal_widths()

    # ---- shapes and streams

    def get_normal_input_shape(self, ind=0):
        p = self.params()
        if ind == 0:
            return (p.batch_size, *p.ifm_dim, p.ifm_channels)
        if ind == 1:
            return (p.ofm_channels, p.ifm_channels, p.t, p.t)
        raise ValueError(f"{OP_TYPE} has inputs 0 and 1, not {ind}")

    def get_folded_input_shape(self, ind=0):
        p = self.params()
        if ind == 0:
            return (p.batch_size, *p.ifm_dim, p.ifm_channels // p.simd, p.simd)
        if ind == 1:  # the weight memory: POS banks, words of PE x lanes entries
            return (p.weight_memory_depth, p.pos, p.pe, p.lanes)
        raise ValueError(f"{OP_TYPE} has inputs 0 and 1, not {ind}")

    def get_normal_output_shape(self, ind=0):
        p = self.params()
        return (p.batch_size, *p.out_dim, p.ofm_channels)

    def get_folded_output_shape(self, ind=0):
        """``OE = out_stream_elems`` channels per beat (PE unless the output rate needs more)."""
        p = self.params()
        oe = p.out_stream_elems
        return (p.batch_size, *p.out_dim, p.ofm_channels // oe, oe)

    def get_instream_width(self, ind=0):
        """``SIMD * in_bits`` at any POS (an input-rate bound in the cycles instead)."""
        if ind == 0:
            return self.get_nodeattr("SIMD") * self.get_input_datatype(0).bitwidth()
        if ind == 1:
            return 0  # weights live in the layer's own memory: no stream
        raise ValueError(f"{OP_TYPE} has inputs 0 and 1, not {ind}")

    def get_outstream_width(self, ind=0):
        """``OE * out_bits``, ``OE = out_stream_elems`` (PE for POS = 1)."""
        return self.params().out_stream_elems * self.get_output_datatype().bitwidth()

    def make_shape_compatible_op(self, model):
        shape = model.get_tensor_shape(self.onnx_node.input[0])
        p = self.params()
        expect = (*p.ifm_dim, p.ifm_channels)
        if shape is not None and len(shape) == 4 and tuple(shape[1:]) != expect:
            raise ValueError(
                f"{OP_TYPE} input {self.onnx_node.input[0]} has shape {shape}, attributes say (N, {expect})"
            )
        return super().make_shape_compatible_op(model)

    # ---- execution

    def execute_node(self, context, graph):
        """Bit-exact Python model: ``winograd_conv2d`` on int64.  Refuses inputs or
        weights that are not integers within their datatypes, and outputs that a
        float32 carrier or ``outputDataType`` cannot hold."""
        mode = self.get_nodeattr("exec_mode")
        params = self.params()
        if mode == "rtlsim":
            raise NotImplementedError(
                f"{OP_TYPE} node {self.onnx_node.name}: exec_mode='rtlsim' needs the layer's RTL, which does "
                "not exist yet; use exec_mode '' or 'python' (bit-exact Python model)"
            )
        node = self.onnx_node
        y = winograd_srbs_reference(context[node.input[0]], context[node.input[1]], params)
        big = np.abs(y) >= FLOAT32_EXACT_LIMIT
        if big.any():
            pos = _first_index(big)
            raise ValueError(
                f"{OP_TYPE} node {node.name}: output {int(y[pos])} at (n, h, w, c) = {pos} has magnitude "
                f">= 2^24, which a float32 carrier cannot hold exactly"
            )
        odt = params.output_datatype
        lo, hi = _dt_range(odt)
        out = (y < lo) | (y > hi)
        if out.any():
            pos = _first_index(out)
            raise ValueError(
                f"{OP_TYPE} node {node.name}: output {int(y[pos])} at (n, h, w, c) = {pos} is outside "
                f"outputDataType={odt.name} [{lo}, {hi}]; run minimize_accumulator_width or widen it"
            )
        context[node.output[0]] = y.astype(np.float32)

    # ---- estimates

    def cycle_estimate(self) -> CycleEstimate:
        return self.params().cycles()

    def get_exp_cycles(self):
        return self.params().exp_cycles()

    def multipliers(self) -> int:
        """``POS * PE * SIMD*Keep/SubRow``."""
        return self.params().multipliers

    def ideal_cycles(self, model=None) -> float:
        """``nonzero multiplies / multipliers``, counting the weights' actual non-zeros
        when ``model`` holds them, else the SRBS budget."""
        U = self.weights(model) if model is not None else None
        return self.params().ideal_cycles(None if U is None else int(np.count_nonzero(U)))

    def resource_estimate(self, fpgapart: str = "") -> ResourceEstimate:
        return self.params().estimate_resources(fpgapart)

    def lut_estimation(self, fpgapart):
        return self.resource_estimate(fpgapart).lut

    def bram_estimation(self, fpgapart):
        return self.resource_estimate(fpgapart).bram18

    def uram_estimation(self, fpgapart):
        return self.resource_estimate(fpgapart).uram

    def dsp_estimation(self, fpgapart):
        return self.resource_estimate(fpgapart).dsp

    def bram_efficiency_estimation(self, fpgapart):
        return self.resource_estimate(fpgapart).as_finn_dict()["BRAM_efficiency"]

    def get_op_and_param_counts(self):
        return self.params().op_and_param_counts()

    def choose_folding(self, target_cycles: int, fpgapart: str = "") -> tuple[int, int, int]:
        """Set PE, SIMD and POS by :func:`choose_folding`; returns ``(PE, SIMD, POS)``."""
        chosen = choose_folding(self.params(), target_cycles, fpgapart)
        self.set_nodeattr("PE", chosen.pe)
        self.set_nodeattr("SIMD", chosen.simd)
        self.set_nodeattr("POS", chosen.pos)
        return chosen.pe, chosen.simd, chosen.pos


# --------------------------------------------------------------------------- RTL parameters


def _hex_lines(entries: np.ndarray, bits: int) -> list[str]:
    """``$readmemh`` words: row r of ``entries (depth, n)`` packed with entry 0 in the
    least significant ``bits``; two's complement of negative values."""
    depth, n = entries.shape
    nibbles = math.ceil(n * bits / 4)
    shifts = np.arange(bits, dtype=np.int64)
    hex_digits = np.array(list("0123456789abcdef"))
    lines: list[str] = []
    for start in range(0, depth, 4096):  # row chunks bound the memory of the bit matrix
        raw = entries[start : start + 4096].astype(np.int64) & ((1 << bits) - 1)
        rows = raw.shape[0]
        bitmat = ((raw[:, :, None] >> shifts) & 1).astype(np.uint8).reshape(rows, n * bits)
        bitmat = np.pad(bitmat, ((0, 0), (0, nibbles * 4 - n * bits)))
        values = (bitmat.reshape(rows, nibbles, 4) << np.arange(4, dtype=np.uint8)).sum(axis=-1)[:, ::-1]
        lines.extend("".join(row) for row in hex_digits[values])
    return lines


def weight_memory_words(U: np.ndarray, params: WinogradSRBSParams) -> tuple[np.ndarray, np.ndarray]:
    """Packed SRBS weights in the order the PE array reads them: ``(values, indices)``,
    each ``(depth, POS * PE * lanes)`` -- a row is the words of the POS banks at one
    address, side by side.

    Word order: output-channel fold, position group g, input-channel fold
    (innermost).  Entry ``(j * PE + pe) * lanes + s * Keep + k`` of a word is bank j's
    entry ``pe * lanes + s * Keep + k``: the k-th kept entry of sub-row s (of this input
    fold) of output channel ``fold * PE + pe`` at Winograd position ``xi = g * POS + j``
    (``xi = a*t + b``).  POS = 1 is a single bank.  A dense layer packs as SubRow =
    Keep = 1 (no indices).
    """
    L, K = (params.sub_row, params.keep) if params.sparse else (1, 1)
    packed = pack_srbs(np.asarray(U, dtype=np.int64), L, K)
    pos, pe, simd = params.pos, params.pe, params.simd
    groups, cf, sf = params.position_groups, params.ofm_channels // pe, params.ifm_channels // simd
    shape = (groups, pos, cf, pe, sf, simd // L, K)

    def order(a: np.ndarray) -> np.ndarray:  # (g, j, f, pe, s, sub-row, k) -> (f, g, s | j, pe, sub-row, k)
        return a.reshape(shape).transpose(2, 0, 4, 1, 3, 5, 6).reshape(cf * groups * sf, params.multipliers)

    return order(packed.values), order(packed.indices)


class WinogradSRBS_rtl(WinogradSRBS, RTLBackend):  # noqa: N801 - FINN's naming convention
    """The specialised layer.  Executes in Python like :class:`WinogradSRBS` (FINN's
    ``RTLBackend.execute_node`` knows only rtlsim); its code generation writes the
    parameters of the future RTL, no HDL."""

    def execute_node(self, context, graph):
        return WinogradSRBS.execute_node(self, context, graph)

    def generate_hdl(self, model, fpgapart, clk):
        """Write, into ``code_gen_dir_ipgen``: ``weights_values.memh`` and (SRBS)
        ``weights_indices.memh`` -- ``$readmemh`` lines of the POS weight banks side by
        side, see :func:`weight_memory_words` -- and ``params.json`` with every node
        attribute (POS included), the derived parameters and the bank layout."""
        raw_dir = self.get_nodeattr("code_gen_dir_ipgen")
        if not raw_dir or not Path(raw_dir).is_dir():
            raise ValueError(
                f"{OP_TYPE} node {self.onnx_node.name}: code_gen_dir_ipgen {raw_dir!r} is not a directory"
            )
        code_gen_dir = Path(raw_dir)
        params = self.params()
        U = self.weights(model)
        if U is None:
            raise ValueError(
                f"{OP_TYPE} node {self.onnx_node.name}: weights {self.onnx_node.input[1]} are not an initializer"
            )
        _check_output_datatype_holds(params.output_datatype, _exact_range_cached(U, params))
        values, indices = weight_memory_words(U, params)
        wbits = params.weight_datatype.bitwidth()
        (code_gen_dir / VALUES_FILE).write_text("\n".join(_hex_lines(values, wbits)) + "\n")
        files = {"values": VALUES_FILE}
        if params.index_bits:
            (code_gen_dir / INDICES_FILE).write_text("\n".join(_hex_lines(indices, params.index_bits)) + "\n")
            files["indices"] = INDICES_FILE
        document = self._parameter_document(params, U, files, fpgapart, clk)
        (code_gen_dir / PARAMS_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")

    def _parameter_document(self, params, U, files, fpgapart, clk) -> dict:
        cycles = params.cycles()
        lo, hi = _exact_range_cached(U, params)
        attributes = {}
        for name in self.get_nodeattr_types():
            value = self.get_nodeattr(name)
            attributes[name] = value.tolist() if isinstance(value, np.ndarray) else value
        return {
            "format": "winoforge.WinogradSRBS.params",
            "version": 2,
            "node": self.onnx_node.name,
            "op_type": self.onnx_node.op_type,
            "attributes": attributes,
            "derived": {
                "t": params.t,
                "out_dim": list(params.out_dim),
                "tile_grid": list(params.tile_grid),
                "lanes": params.lanes,
                "pos": params.pos,
                "position_groups": params.position_groups,
                "multipliers": params.multipliers,
                "out_stream_elems": params.out_stream_elems,
                "instream_width": self.get_instream_width(0),
                "outstream_width": self.get_outstream_width(0),
                "input_transform_units": params.input_transform_units,
                "output_transform_units": params.output_transform_units,
                "cin_eff": params.cin_eff,
                "exact_output_range": [lo, hi],
                "nonzero_weights": int(np.count_nonzero(U)),
                "cycles": {**asdict(cycles), "interval": cycles.interval, "total": cycles.total,
                           "latency": cycles.latency},
                "ideal_cycles": params.ideal_cycles(int(np.count_nonzero(U))),
            },
            "widths": asdict(params.internal_widths()),
            "transforms": {"AT": params.spec.AT.tolist(), "BT": params.spec.BT.tolist()},
            "weight_memory": {
                "files": files,
                "depth": params.weight_memory_depth,
                "entries_per_word": params.multipliers,
                "banks": params.pos,
                "bank_depth": params.weight_memory_depth,
                "entries_per_bank_word": params.pe * params.lanes,
                "value_bits": params.weight_datatype.bitwidth(),
                "value_signed": bool(params.weight_datatype.signed()),
                "index_bits": params.index_bits,
                "word_order": "output-channel fold, position group g (t*t/POS groups), input-channel fold "
                "(innermost); a line of a file is the words of all POS banks at one address",
                "bank_layout": "bank j (0 <= j < POS) is entries [j*PE*lanes, (j+1)*PE*lanes) of every line, "
                "i.e. bits [j*PE*lanes*bits, (j+1)*PE*lanes*bits); at position group g it holds Winograd "
                "position xi = g*POS + j (xi = a*t + b); all banks are read at the same address",
                "entry_order": "entry e = (j*PE + pe)*lanes + s*Keep + k at bits [e*bits, (e+1)*bits) (entry 0 "
                "least significant): bank j, k-th kept entry (indices ascending) of sub-row s of the fold, "
                "output channel fold*PE + pe; index = input channel within the sub-row",
            },
            "target": {"fpgapart": fpgapart, "clk_ns": clk},
        }

    def get_rtl_file_list(self, abspath=False):
        raise NotImplementedError(
            f"{OP_TYPE}_rtl has no RTL yet: code generation writes only its parameters "
            f"({VALUES_FILE}, {INDICES_FILE}, {PARAMS_FILE})"
        )

    def code_generation_ipi(self):
        raise NotImplementedError(f"{OP_TYPE}_rtl has no RTL yet: it cannot be stitched into a Vivado design")


# --------------------------------------------------------------------------- registration


def register() -> None:
    """Register both ops with FINN's registries (idempotent).

    FINN's ``register_custom_op`` puts the class into
    ``finn.custom_op.fpgadataflow.custom_op`` / ``.rtl.custom_op``, the dictionaries
    qonnx's ``getCustomOp`` and FINN's ``SpecializeLayers`` consult;
    ``add_op_to_domain`` also refreshes qonnx's lookup cache.  Called once below,
    when this module is imported.
    """
    _fpgadataflow.register_custom_op(WinogradSRBS)
    _fpgadataflow_rtl.register_custom_op(WinogradSRBS_rtl)
    add_op_to_domain(DOMAIN, WinogradSRBS)
    add_op_to_domain(RTL_DOMAIN, WinogradSRBS_rtl)


register()
