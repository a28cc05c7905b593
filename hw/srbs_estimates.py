"""Cycle and resource estimates of a WinogradSRBS layer, and its internal widths.

Hardware model behind the estimates (the formulas are in the docstrings of
:class:`CycleEstimate` and :func:`estimate_resources`)::

    stream in (SIMD ch x in_bits) -> line buffer (t+m rows) -> input transform
    (SIMD lanes x u_in serial 1-D B^T units, V = B^T d B) -> V buffer (one tile,
    all channels, x2; POS banks) -> PE array: POS Winograd positions x PE output
    channels x SIMD*Keep/SubRow multipliers, each fed by a mux selecting its input
    channel inside the sub-row by the stored index (weights: POS banks) -> adder
    tree -> accumulator over Cin/SIMD folds (POS*PE of them) -> M buffer (t*t per

Functions of :class:`~winoforge.hw.srbs_params.WinogradSRBSParams` (which offers
them as methods: ``params.cycles()``, ``params.estimate_resources()``, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from finn.util.basic import is_versal

# FINN's RAMB18 planner (exact partition over the SDP aspect ratios, fitted against
# Vivado).  A private name, but finn-plus is pinned to 1.6.1 in pyproject.toml.
from finn.util.resource_models import _bram18_plan

from winoforge.winograd import bit_growth, signed_bits

from .srbs_ranges import datatype_output_range, position_accumulator_ranges

if TYPE_CHECKING:
    from .srbs_params import WinogradSRBSParams

__all__ = [
    "CycleEstimate",
    "InternalWidths",
    "ResourceEstimate",
    "estimate_cycles",
    "nonzero_multiplies",
    "ideal_cycles",
    "internal_widths",
    "Memory",
    "memories",
    "estimate_resources",
    "op_and_param_counts",
]

# FINN-R / FINN MVAU (matrixvectoractivation_hls.lut_estimation) constants.
LUT_FIXED = 300  # c0: control, stream handshakes
LUT_OVERHEAD = 1.1  # c1: factor on the datapath LUTs
# FINN MVAU: a memory of at most this depth is built from LUTs rather than BRAM.
LUTRAM_MAX_DEPTH = 128
# Fixed pipeline registers besides the transforms (see CycleEstimate).
MULT_LATENCY = 3
STREAM_REGISTERS = 2


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
      see :func:`estimate_resources`).

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
class Memory:
    """One memory of the layer: ``banks`` of ``depth x width`` bits in ``style``."""

    name: str
    banks: int
    depth: int
    width: int
    style: str  # "block", "distributed", "ultra"


# --------------------------------------------------------------------------- cycles


def estimate_cycles(params: WinogradSRBSParams) -> CycleEstimate:
    """See :class:`CycleEstimate` for the formulas."""
    t, m = params.t, params.m
    h, w = params.ifm_dim
    ho, wo = params.out_dim
    th, tw = params.tile_grid
    cf, sf = params.ofm_channels // params.pe, params.ifm_channels // params.simd
    tiles = params.tiles_per_frame
    main = tiles * params.position_groups * cf * sf
    oe = params.out_stream_elems
    in_beats = h * w * sf
    window_reads = tiles * t * sf
    out_beats = ho * wo * params.ofm_channels // oe
    stall = max(0, in_beats - main, window_reads - main, out_beats - main)
    need = min(max(t - params.padding, 0), h)
    r0 = (th - 1) * m - params.padding  # first input row of the last tile band
    last_band_rows = min(h - 1, r0 + t - 1) - max(0, r0) + 1
    refill = max(0, need - (t + m - last_band_rows)) * w * sf
    fill = need * w * sf
    last_rows, last_cols = ho - (th - 1) * m, wo - (tw - 1) * m
    drain = (last_cols + (last_rows - 1) * wo) * params.ofm_channels // oe
    adder_depth = math.ceil(math.log2(max(params.cin_eff, 2)))
    pipeline = (
        math.ceil(2 * t / params.input_transform_units) + MULT_LATENCY + adder_depth + 1
        + math.ceil((t + m) / params.output_transform_units) + STREAM_REGISTERS
    )
    return CycleEstimate(main, stall, refill, fill, drain, pipeline, params.batch_size)


def nonzero_multiplies(params: WinogradSRBSParams, nonzero_weights: int | None = None) -> int:
    """Winograd-domain multiplies with a non-zero weight per invocation:
    ``batch * T * nnz(U)``; ``nnz(U)`` defaults to the SRBS budget
    ``t^2 * OFMChannels * cin_eff``."""
    nnz = params.t**2 * params.ofm_channels * params.cin_eff if nonzero_weights is None else int(nonzero_weights)
    return params.batch_size * params.tiles_per_frame * nnz


def ideal_cycles(params: WinogradSRBSParams, nonzero_weights: int | None = None) -> float:
    """``nonzero multiplies / multipliers``: every multiplier busy every cycle."""
    return nonzero_multiplies(params, nonzero_weights) / params.multipliers


# --------------------------------------------------------------------------- widths

# Widths depend on a few parameters only; estimates ask for them many times.
_WIDTHS_CACHE: dict[tuple, InternalWidths] = {}
_WIDTHS_CACHE_SIZE = 256


def internal_widths(params: WinogradSRBSParams) -> InternalWidths:
    """Stage widths for the RTL (see :class:`InternalWidths`)."""
    key = (params.m, params.ifm_channels, params.sub_row, params.keep, params.input_datatype.name,
           params.weight_datatype.name, params.output_datatype.name)
    if key not in _WIDTHS_CACHE:
        if len(_WIDTHS_CACHE) >= _WIDTHS_CACHE_SIZE:
            _WIDTHS_CACHE.pop(next(iter(_WIDTHS_CACHE)))
        _WIDTHS_CACHE[key] = _internal_widths(params)
    return _WIDTHS_CACHE[key]


def _internal_widths(params: WinogradSRBSParams) -> InternalWidths:
    idt, wdt, odt = params.input_datatype, params.weight_datatype, params.output_datatype
    growth = bit_growth(
        idt.bitwidth(), wdt.bitwidth(), params.cin_eff, params.spec,
        in_signed=idt.signed(), weight_signed=wdt.signed(),
    )
    acc = position_accumulator_ranges(params)
    at = params.spec.AT
    # first output-transform pass Z = A^T M (m x t), interval over the positions
    z_lo = z_hi = 0
    for i in range(params.m):
        for b in range(params.t):
            lo = hi = 0
            for a in range(params.t):
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
        index_bits=params.index_bits,
        input_transform_bits=growth.input_transform_bits,
        product_bits=growth.product_bits,
        accumulator_bits=growth.accumulator_bits,
        output_transform_bits=max(signed_bits(z_lo, z_hi), signed_bits(*datatype_output_range(params))),
        output_bits=ob,
        output_signed=bool(odt.signed()),
        datapath_input_transform_bits=min(growth.input_transform_bits, ob),
        datapath_weight_bits=min(wdt.bitwidth(), ob),
        datapath_product_bits=min(growth.product_bits, ob),
        datapath_accumulator_bits=min(growth.accumulator_bits, ob),
    )



# --------------------------------------------------------------------------- resources


def memories(params: WinogradSRBSParams) -> list[Memory]:
    t, m = params.t, params.m
    h, w = params.ifm_dim
    ho, wo = params.out_dim
    widths = internal_widths(params)
    auto = lambda depth: "block" if depth > LUTRAM_MAX_DEPTH else "distributed"  # noqa: E731
    wdepth = params.weight_memory_depth
    wstyle = auto(wdepth) if params.ram_style == "auto" else params.ram_style
    word = params.pe * params.lanes * (params.weight_datatype.bitwidth() + params.index_bits)
    line_depth = w * params.ifm_channels // params.simd
    v_depth = 2 * params.position_groups * params.ifm_channels // params.simd
    oe = params.out_stream_elems
    g = math.gcd(params.pe, oe)  # output-buffer bank: written PE/g, read OE/g banks at a time
    out_depth = wo * params.ofm_channels // oe
    return [
        Memory("weight_memory", params.pos, wdepth, word, wstyle),
        Memory("line_buffer", t + m, line_depth, params.simd * params.input_datatype.bitwidth(), auto(line_depth)),
        Memory("v_buffer", params.pos, v_depth, params.simd * widths.datapath_input_transform_bits, auto(v_depth)),
        Memory("m_buffer", params.pos * params.pe, 2 * params.position_groups, widths.datapath_accumulator_bits,
                "distributed"),
        Memory("output_buffer", 2 * m * oe // g, out_depth, g * widths.output_bits, auto(out_depth)),
    ]


def estimate_resources(params: WinogradSRBSParams, fpgapart: str = "") -> ResourceEstimate:
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
    widths = internal_widths(params)
    wb, a = widths.datapath_weight_bits, widths.datapath_input_transform_bits
    acc, ob = widths.datapath_accumulator_bits, widths.output_bits
    nm, lanes = params.multipliers, params.lanes
    trees = params.pos * params.pe
    style = params.mult_style
    logic = {
        "multipliers": nm * (2 * math.ceil((wb + a) / 6) - 1) * (wb + a) if style == "lut" else 0,
        "index_muxes": nm * a * math.ceil((params.sub_row - params.keep) / 3) if params.sparse else 0,
        "adder_trees": trees * (wb + a) * (2 * lanes - 1),
        "accumulators": trees * acc,
        "input_transform": params.simd * params.input_transform_units * _transform_adders(params.spec.BT) * a,
        "output_transform": params.pe * params.output_transform_units * _transform_adders(params.spec.AT) * ob,
    }
    breakdown = {name: {"LUT": value} for name, value in logic.items()}
    breakdown["control"] = {"LUT": LUT_FIXED}
    dsp = nm * math.ceil((wb + a) / 48) if style == "dsp" else 0
    breakdown["multipliers"]["DSP"] = dsp
    versal = bool(fpgapart) and is_versal(fpgapart)
    lutram = bram18 = uram = bram_bits = 0
    for mem in memories(params):
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



def op_and_param_counts(params: WinogradSRBSParams) -> dict[str, int]:
    """FINN-style counts per invocation: Winograd-domain MACs (non-zero weight
    slots), transform additions, and stored weights / indices.  Like FINN's MVAU
    counts they do not depend on the folding (POS, PE, SIMD): parallel units do
    the same operations sooner."""
    widths = internal_widths(params)
    tiles = params.batch_size * params.tiles_per_frame
    t, m = params.t, params.m
    a, wb = widths.input_transform_bits, widths.weight_bits
    counts: dict[str, int] = {}

    def add(key: str, value: int) -> None:
        counts[key] = counts.get(key, 0) + int(value)

    add(f"op_mac_{min(a, wb)}bx{max(a, wb)}b", nonzero_multiplies(params))
    add(f"op_add_{a}b", tiles * params.ifm_channels * 2 * t * _transform_adders(params.spec.BT))
    add(f"op_add_{widths.output_bits}b", tiles * params.ofm_channels * (t + m) * _transform_adders(params.spec.AT))
    stored = t * t * params.ofm_channels * params.cin_eff
    add(f"param_weight_{wb}b", stored)
    if params.index_bits:
        add(f"param_index_{params.index_bits}b", stored)
    return counts


