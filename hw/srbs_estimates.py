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

# Calibration against Yosys 0.23 synth_xilinx -family xc7 -flatten of hw/rtl/winograd_srbs_layer.sv
# (benchmarks/rtl_calibration.py, kind "winograd"; results/rtl_calibration.json; held within 25 % by
# tests/hw/test_rtl_layers.py).  LUT counts include LUTs used as distributed RAM.
LUT_LOGIC_SCALE = 1.1  # on the counted logic: control, address arithmetic, handshakes, LUT packing
# Yosys's memory mapping (memory_libmap costs, measured on single memories): a RAM stays LUTRAM while it
# takes fewer than this many RAM32M/RAM64M cells per RAMB18 it would take ...
LUTRAM_CELLS_PER_RAMB18 = 16
# ... a ROM stays logic up to this many bits per RAMB18 (256 x 32 logic, 256 x 36 and 512 x 32 BRAM) ...
ROM_LOGIC_BITS_PER_RAMB18 = 8192
# ... and then takes about one LUT6 per 64 bits
ROM_LOGIC_BITS_PER_LUT = 64
# LUT multipliers (srbs_dot MUL_LUT = 1), measured in their context: one srbs_dot between registers as in
# the layer (V from registers, weights and indices from a ROM's read register), Yosys's LUTs in the cone of
# its product registers, W2-W4 x V6-V11 (the estimate-bias review of the calibration's benchmark-scale
# points).  Yosys's ABC maps for depth first and recovers area off the critical path, so the same
# multiplier has two costs:
#
# * area-mapped -- fed by registers (a dense layer: V straight from the V-buffer registers) it is not the
#   deepest logic of a layer; measured with a deeper path beside it (50 LUTs a 4 x 7-bit multiplier, as in
#   the flattened dense 32->32 POS 16 layer: 51): MUL_LUT_PER_STAGE_BIT LUTs per bit of V per conditional
#   add/subtract stage (Wb - 1 of them) plus MUL_LUT_PER_PRODUCT_BIT per product bit (within 1 % of the
#   four measured widths);
# * behind the SRBS index mux of SubRow = 8 (an 11-input AND-OR per bit) the mux and the multiplier are the
#   deepest LUT logic of the 28x28 and 14x14 layers, and ABC maps both for depth (7- and 8-input functions
#   as LUT6 + MUXF7/MUXF8, LUT1 feed-throughs into the MUXFs): the mux INDEX_MUX_LUT_PER_BIT[SubRow] a bit
#   of V plus DEPTH_MAP_LUT_PER_STAGE_BIT per stage bit of the multiplier (95.5 LUTs a 4 x 7-bit lane
#   measured alone, 88-94 in the flattened bench_rtl1_c32_pos16, against 50 for the multiplier
#   area-mapped; the fit is within 3 % of the four measured widths).  A 2:1 or 4:1 mux fits beside the
#   multiplier's first stage (56-57 LUTs a 4 x 7-bit lane at SubRow 4, either mapping): 1 LUT a bit.
#   On images up to AREA_MAPPED_MAX_DIM wide (F(2,3); 7x7 and 8x8 measured, at 32-128 channels, the line
#   buffer in LUTRAM or BRAM alike: the size_* and bench_rtl5 calibration points) ABC maps the SubRow-8
#   lanes for area (70-75 LUTs a lane in the flattened layer): the mux's INDEX_MUX_LUT_PER_BIT stays, the
#   deeper mapping goes (the estimate was 14-18 % high there before; within 2 % now).  From 14x14 on
#   (14, 15, 28 measured) they are mapped for depth.
#
# The fit before (2.48 / 1.68 per bit on single srbs_dot units, all mapped for depth, divided by
# LUT_LOGIC_SCALE, and mux(SubRow) = 2 LUTs a bit) counted every multiplier at the depth-mapped cost and
# the SubRow-8 mux at two thirds without the deeper mapping behind it: dense layers came out 5-22 % high,
# SRBS layers 6-10 % low, at the networks' scale.
MUL_LUT_PER_STAGE_BIT = 2.08
MUL_LUT_PER_PRODUCT_BIT = 0.66
INDEX_MUX_LUT_PER_BIT = {2: 1.0, 4: 1.0, 8: 3.07}
DEPTH_MAP_LUT_PER_STAGE_BIT = 1.08
AREA_MAPPED_MAX_DIM = 8
# SubRow 2-4 in front of LUT multipliers, in context: the lanes' 1-LUT-a-bit mux and multiplier were
# measured on one srbs_dot alone (56-57 LUTs a 4 x 7-bit lane, mapped for depth, MUXF7s and LUT1
# feed-throughs: the unit is its own deepest logic).  In the flattened layer ABC maps them for area: kept
# as a hierarchy of its own (Yosys keep_hierarchy, the rest of the layer flattened) an 8-lane dot of the
# 32 -> 32 28x28 SIMD 32 layer takes 546 LUTs (704 MUXF7s and 448 LUT1s in its eight copies), flattened
# 454 (125 MUXF7s, 5 LUT1s in the whole layer) -- its lanes and accumulator alone are estimated at 490.
# So the adder tree adds nothing measurable there.  Counting it (1.1 LUT a bit) put the dots of 4 and 8
# lanes 4-19 % high at 14x14 and 28x28 (the six such points), and the folding search capped the 1 of 4
# layers early; without it they are within +0.5..+5.8 %.  Two-lane dots (one tree adder) and 7x7 images
# were not biased (-3.5..+8.3 %, and +1.5, +4.1 %) and keep it.  Measured at 4-bit weights (three add
# stages a multiplier to recover area from) only: fmnist-resnet8's mixed-precision 1 of 4 build, W3 layers
# of 4 and 8 lanes, came out 10-12 % above the estimate without their trees, by about the trees (493, 493,
# 273, 590 LUT against 620, 610, 373, 594 missing), so narrower weights keep the tree.
SMALL_MUX_TREE_ABSORBED = True
# Accumulators: the adder and the first fold's clear in front of the carry chain's DI (measured: 26 LUTs
# for a 13-bit accumulator in the flattened SRBS layer, 30 for 15 bits in the dense one)
ACC_LUT_PER_BIT = 2
# Fixed pipeline registers besides the transforms (see CycleEstimate).
MULT_LATENCY = 3
STREAM_REGISTERS = 2


@dataclass(frozen=True)
class CycleEstimate:
    """Expected cycles of one layer invocation (``batch`` frames streamed back to back).

    With ``T = ceil(Ho/m) * ceil(Wo/m)`` tiles per frame (``th x tw``), ``t = m + 2``,
    ``cf = ceil(OFMChannels/PE)``, ``sf = IFMChannels/SIMD`` in the PE array's terms and
    ``IFMChannels/ISIMD`` (:attr:`WinogradSRBSParams.in_folds`) in the input side's
    (``in_beats``, ``window_reads``, the refill and fill rows), ``OE`` output channels per
    output beat (:attr:`WinogradSRBSParams.out_stream_elems`):

    Per frame, in steady state (what sets the throughput; FINN's FPS is
    ``clock / max cycles``):

    * ``main = T * (t^2/POS) * cf * sf`` -- one cycle per (tile, output fold,
      position group, input fold); equals the ideal cycles at the SRBS budget;
    * ``stall = max(0, in_beats - main, window_reads - main, out_beats - main)`` --
      the rate bounds: ``in_beats = H * W * sf`` (the input stream stays
      ``ISIMD * in_bits`` wide: a layer needing more input bandwidth is bound by it,
      here), ``window_reads = T * t * sf`` (the input transform reads a tile's t x t
      window of one input fold as t columns, one word from each of t line-buffer
      row banks per cycle), ``out_beats = Ho * Wo * OFMChannels / OE``.  Zero for
      POS = 1 (``t^2 > m^2``: a tile takes longer than its m x m new pixels);
    * ``refill`` -- the PE array's wait for the next frame's first tile where
      ``R = max(0, need - (t + m - last_band_rows))`` rows of it (``need =
      min(max(t - Padding, 0), H)``) cannot be prefetched into the line buffer (t + m
      rows) while the last band (``last_band_rows`` real input rows) is computed:
      ``max(0, R * W * sf + t * sf + (t + 2) - queued - stall)`` (0 where ``R = 0``).
      The window stage releases the last band's rows at its last read and runs up to
      ``NVB`` V-buffer slots ahead of the PE array (``v_buffer_slots``), so the PE
      array still has ``queued = min(NVB, T) * pe_work - t * sf`` cycles of work
      (``pe_work = (t^2/POS) * cf * sf`` a tile) while the R rows stream in, the first
      tile's t x t window is read (``t * sf``) and reaches the V buffer (``t + 2``,
      ``window_to_pe``); a rate bound (``stall``) hides it as well.  The slow RTL
      tier's Padding-0 layers (random shapes 8 and 11) simulate 49 / 64 cycles a
      frame: estimate 50 / 64 (the unoverlapped ``R * W * sf`` said 60 / 76).

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

    Monotone: ``main``, the rate bounds and ``interval = max(main + stall, (T - q) *
    pe_work + R*W*sf + 2 t sf + t + 2)`` (where ``R > 0``; ``q = min(NVB, T)``, and NVB
    only grows with POS, PE and SIMD) are non-increasing in POS, PE, SIMD and ISIMD (``OE`` is
    non-decreasing in each), so ``total`` is; so are ``fill``, ``drain`` and ``pipeline``.
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
    """LUT, RAMB18, URAM, DSP and FF counts, with the contribution of each component."""

    lut: int
    bram18: int
    uram: int
    dsp: int
    bram_bits: int  # bits held by the BRAM-backed memories (for the efficiency)
    breakdown: dict = field(default_factory=dict)
    ff: int = 0

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


# --------------------------------------------------------------------------- cycles


def estimate_cycles(params: WinogradSRBSParams) -> CycleEstimate:
    """See :class:`CycleEstimate` for the formulas."""
    t, m = params.t, params.m
    h, w = params.ifm_dim
    ho, wo = params.out_dim
    th, tw = params.tile_grid
    sf = params.in_folds  # the input side's folds: IFMChannels / ISIMD
    tiles = params.tiles_per_frame
    pe_work = params.weight_memory_depth  # (t^2/POS) * cf * sf: a tile's PE-array cycles, one pass of the weights
    main = tiles * pe_work
    oe = params.out_stream_elems
    in_beats = h * w * sf
    window_reads = tiles * t * sf
    out_beats = ho * wo * params.ofm_channels // oe
    stall = max(0, in_beats - main, window_reads - main, out_beats - main)
    need = min(max(t - params.padding, 0), h)
    r0 = (th - 1) * m - params.padding  # first input row of the last tile band
    last_band_rows = min(h - 1, r0 + t - 1) - max(0, r0) + 1
    refill_rows = max(0, need - (t + m - last_band_rows))
    refill = 0
    if refill_rows:
        from winoforge.hw.rtl.winograd_layer import v_buffer_slots, window_to_pe

        queued = min(v_buffer_slots(params), tiles) * pe_work - t * sf
        refill = max(0, refill_rows * w * sf + t * sf + window_to_pe(params) - queued - stall)
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


def _mux_luts(sources: int) -> int:
    """LUTs per bit of a ``sources``:1 multiplexer: a LUT6 selects 1 of 4 (MUXF7/MUXF8
    combine LUT6 outputs for free)."""
    return 0 if sources <= 1 else math.ceil(sources / 4)


def _rtl_parameters(params: WinogradSRBSParams) -> dict[str, int]:
    """The SystemVerilog parameters of ``hw/rtl/winograd_srbs_layer.sv`` for this layer
    (:func:`winoforge.hw.rtl.winograd_layer.layer_parameters`; its widths, output
    transform and V-buffer slots).  A Padding the RTL refuses (> t) is estimated as
    Padding t: the structure does not depend on it."""
    key = (params.m, params.ifm_dim, params.ifm_channels, params.ofm_channels, min(params.padding, params.t),
           params.simd, params.in_simd, params.pe, params.pos, params.sub_row, params.keep, params.input_datatype.name,
           params.weight_datatype.name, params.output_datatype.name, params.mult_style, params.runtime_weights,
           params.ram_style)
    if key not in _RTL_CACHE:
        from winoforge.hw.rtl.winograd_layer import layer_parameters

        if len(_RTL_CACHE) >= _RTL_CACHE_SIZE:
            _RTL_CACHE.pop(next(iter(_RTL_CACHE)))
        p = params if params.padding <= params.t else params.replace(padding=params.t)
        _RTL_CACHE[key] = layer_parameters(p)
    return _RTL_CACHE[key]


_RTL_CACHE: dict[tuple, dict] = {}
_RTL_CACHE_SIZE = 4096


def _ramb18(depth: int, width: int, versal: bool = False) -> int:
    return _bram18_plan(depth, width, versal)[0]


def _auto_style(mem: Memory) -> str:
    """What Yosys (0.23, ``synth_xilinx -family xc7``) makes of a memory bank on its own:
    a RAM goes to LUTRAM while it takes fewer RAM32M/RAM64M cells than
    ``LUTRAM_CELLS_PER_RAMB18`` per RAMB18 it would take (128 x 16: 12 cells, LUTRAM;
    128 x 36: 24, RAMB18; 128 x 48: 32 for 2, RAMB36); a ROM (``rom``) stays logic up to
    ``ROM_LOGIC_BITS_PER_RAMB18`` bits per RAMB18 it would take."""
    if mem.rom:
        return "logic" if mem.depth * mem.width <= ROM_LOGIC_BITS_PER_RAMB18 * _ramb18(mem.depth, mem.width) \
            else "block"
    cells = _lutram_luts(mem.width, mem.depth) // 4
    return "distributed" if cells < LUTRAM_CELLS_PER_RAMB18 * _ramb18(mem.depth, mem.width) else "block"


def _lutram_luts(width: int, depth: int) -> int:
    """LUTs of one ``depth x width`` simple-dual-port distributed RAM as Yosys maps it:
    RAM32M (4 LUTs, 32 x 6 bits) up to 32 words, else RAM64M (4 LUTs, 64 x 3 bits)
    per 64 words (measured exactly at every calibration point)."""
    if width <= 0 or depth <= 0:
        return 0
    if depth <= 32:
        return 4 * math.ceil(width / 6)
    return 4 * math.ceil(width / 3) * math.ceil(depth / 64)


@dataclass(frozen=True)
class Memory:
    """One memory of the layer: ``banks`` of ``depth x width`` bits in ``style``
    ("block", "distributed", "ultra", or "logic" for a ROM in LUTs)."""

    name: str
    banks: int
    depth: int
    width: int
    style: str = ""
    rom: bool = False


def weight_rom(params: WinogradSRBSParams) -> Memory:
    """The weight (value) ROM: ``weight_memory_depth`` lines of ``POS * PE * lanes`` weights."""
    line = params.pos * params.pe * params.lanes * params.weight_datatype.bitwidth()
    return Memory("weight_memory", 1, params.weight_memory_depth, line, rom=True)


def weight_rom_style(params: WinogradSRBSParams) -> str:
    """Where the weight ROM goes: ``ram_style``, or for ``auto`` where Yosys maps it (:func:`_auto_style`)
    -- the style :func:`memories` gives it."""
    return params.ram_style if params.ram_style != "auto" else _auto_style(weight_rom(params))


def memories(params: WinogradSRBSParams) -> list[Memory]:
    """The memories of the RTL (``winograd_srbs_layer.sv``), each with the style it gets:
    the weight ROMs ``ram_style`` (``auto``: as Yosys maps it, :func:`_auto_style`), the
    others as Yosys maps them."""
    r = _rtl_parameters(params)
    t, m = params.t, params.m
    sf = params.ifm_channels // params.simd
    isimd = params.in_simd  # the input side: ISIMD-wide line buffer words; each V bank SIMD/ISIMD sub-memories
    nb = max(t, params.pos)
    ne = params.pos * params.pe * params.lanes
    wdepth = params.weight_memory_depth
    tw = params.tile_grid[1]
    mems = [
        weight_rom(params),
        Memory("line_buffer", t + m, params.ifm_dim[1] * params.in_folds, isimd * r["IN_W"]),
        Memory("v_buffer", nb * params.input_subfolds, r["NVB"] * sf * -(-t * t // nb), isimd * r["V_W"]),
        # a bank per beat channel, or (OE < PE) per PE lane with a word per output fold
        Memory("output_buffer", m * m * params.output_buffer_banks, 2 * tw * params.output_buffer_pixel_words,
               r["OUT_W"]),
    ]
    if params.runtime_weights:  # one RAM of NCOL LOAD_W-bit columns, values and indices side by side
        # synthesis drops the never-read pad bits of the last column (Yosys: 8 -> 4 channels at POS 1, one 4-bit
        # line of 512, takes 144 LUTRAM, not a 64-bit column's 704 LUT), so one column holds just the line
        cols = _weight_columns(params, r)
        width = r["LOAD_W"] if cols > 1 else _weight_line_bits(params, r)
        mems[0] = Memory("weight_memory", cols, wdepth, width)
    elif r["HAS_IDX"]:
        mems.insert(1, Memory("index_memory", 1, wdepth, ne * r["IDX_W"], rom=True))
    out = []
    for mem in mems:
        weights = mem.rom or mem.name == "weight_memory"
        style = params.ram_style if weights and params.ram_style != "auto" else _auto_style(mem)
        out.append(Memory(mem.name, mem.banks, mem.depth, mem.width, style, mem.rom))
    return out


def _weight_line_bits(params: WinogradSRBSParams, r: dict) -> int:
    """Bits of one weight-memory line: ``POS * PE * lanes`` values and, SRBS, as many indices."""
    return params.pos * params.pe * params.lanes * (r["W_W"] + (r["IDX_W"] if r["HAS_IDX"] else 0))


def _weight_columns(params: WinogradSRBSParams, r: dict) -> int:
    """Runtime-writeable weights: the LOAD_W-bit columns of one weight-memory line
    (:func:`winoforge.hw.rtl.winograd_layer.weight_stream_columns` on the cached parameters)."""
    from winoforge.hw.rtl.winograd_layer import weight_stream_columns

    return weight_stream_columns(params, r)


def _weight_load_luts(params: WinogradSRBSParams, r: dict) -> int:
    """Runtime-writeable weights: the load address counter, the column counter and its
    compare, a write enable per column."""
    cols = _weight_columns(params, r)
    lines = params.weight_memory_depth
    return _bits(lines) + 2 * _bits(cols) + cols


#: units of :func:`_logic_luts` whose LUTs were measured in context (Yosys, flattened): not scaled by
#: :data:`LUT_LOGIC_SCALE` (``index_muxes`` only with LUT multipliers, see :func:`_index_mux_luts`)
MEASURED_UNITS = ("multipliers", "accumulators")


def _measured(name: str, r: dict) -> bool:
    return name in MEASURED_UNITS or (name == "index_muxes" and bool(r["MUL_LUT"]))


def _logic_luts(params: WinogradSRBSParams, r: dict) -> dict[str, int]:
    """LUTs of the RTL's logic, by unit; the counted units before :data:`LUT_LOGIC_SCALE`, the
    measured ones (:func:`_measured`) as they are (see :func:`estimate_resources`)."""
    t, m = params.t, params.m
    bt, at = _transform_adders(params.spec.BT), _transform_adders(params.spec.AT)
    pe, simd, pos, lanes = params.pe, params.simd, params.pos, params.lanes
    isimd, ks = params.in_simd, params.input_subfolds  # the input side's width, its sub-folds
    dots = pos * pe
    nb, groups = max(t, pos), params.position_groups
    sources = [len({(g * pos + j) % nb for g in range(groups)}) for j in range(pos)]
    levels = (lanes - 1).bit_length()
    tree = sum(((1 << levels) >> d) * min(r["PROD_W"] + d, r["SUM_W"]) for d in range(1, levels + 1))
    if r["OTF_SERIAL"]:
        collector = pe * (t - 1) * t * r["ACC_W"]
        otf = pe * (at * r["OUT_W"] + t * r["OMID_W"] + t * m * r["OMID_W"])
    else:
        collector = 0
        otf = pe * (t * at * r["OMID_W"] + m * at * r["OUT_W"])
    oe = r["OE"]
    ob_aw = _bits(2 * params.tile_grid[1] * params.output_buffer_pixel_words)  # an output-buffer address
    if params.out_lanes:  # OE < PE: per lane bank its read address (this fold or the next), per beat channel
        rotate = pe * (ob_aw + 1) + oe * r["OUT_W"] * _mux_luts(pe)  # a PE:1 select of the lanes
    elif oe != pe:  # OE > PE: per output-buffer bank the PE select of its write data ('0 default) and its write
        # address adder (a PE that does not divide OFMChannels: its write enable also compares its PE source
        # with the last fold's channel count)
        padded = params.padded_ofm_channels != params.ofm_channels
        rotate = m * m * oe * (r["OUT_W"] * max(1, _mux_luts(pe)) + ob_aw + padded)
    else:
        rotate = 0
    return {
        "line_buffer_read": t * isimd * r["IN_W"] * _mux_luts(t + m),
        "input_transform": isimd * (bt * (r["VMID_W"] + r["V_W"]) + t * r["VMID_W"] * _mux_luts(t)),
        # (ISIMD < SIMD: each bank's sub-memory write enable compares the sub-fold)
        "v_write": isimd * r["V_W"] * _v_write_mux_luts(t, nb) + (nb * ks if ks > 1 else 0),
        "v_select": simd * r["V_W"] * sum(_mux_luts(s) for s in sources),
        "index_muxes": dots * lanes * _index_mux_luts(params.sub_row, r["V_W"], r["W_W"], bool(r["MUL_LUT"]),
                                                      _lanes_depth_mapped(params)) if r["HAS_IDX"] else 0,
        "multipliers": dots * lanes * _lut_multiplier_luts(r["W_W"], r["V_W"], r["PROD_W"]) if r["MUL_LUT"] else 0,
        # (wide SubRow 2-4 dots of 4-bit LUT multipliers: absorbed in context, see _tree_absorbed)
        "adder_trees": 0 if _tree_absorbed(params, r) else dots * tree,
        # the adder and the first fold's clear (the carry chain's DI operand, a LUT of its own): 2 LUTs a bit;
        # one DSP product: its P register accumulates
        "accumulators": 0 if not r["MUL_LUT"] and lanes == 1 else dots * ACC_LUT_PER_BIT * r["ACC_W"],
        "m_collector": collector,
        "output_transform": otf,
        "output_select": params.output_buffer_banks * r["OUT_W"] * _mux_luts(m * m) + rotate,
        # runtime-writeable weights: the load address and column counters, a write enable per column
        "weight_load": _weight_load_luts(params, r) if params.runtime_weights else 0,
    }


def _tree_absorbed(params: WinogradSRBSParams, r: dict) -> bool:
    """Whether a dot's adder tree costs nothing beyond its lanes (:data:`SMALL_MUX_TREE_ABSORBED`):
    four lanes or more behind SubRow 2-4 index muxes and 4-bit LUT multipliers, on images wider than
    :data:`AREA_MAPPED_MAX_DIM` (:func:`_lanes_depth_mapped`)."""
    return (SMALL_MUX_TREE_ABSORBED and bool(r["MUL_LUT"]) and bool(r["HAS_IDX"]) and 1 < params.sub_row <= 4
            and params.lanes >= 4 and r["W_W"] == 4 and _lanes_depth_mapped(params))


def _bits(n: int) -> int:
    """Width of an address over ``range(n)`` (at least 1)."""
    return max((n - 1).bit_length(), 1)


def _lut_multiplier_luts(wb: int, v: int, prod: int) -> int:
    """LUTs of one shift-and-add multiplier of ``srbs_dot`` (``MUL_LUT = 1``), area-mapped: a
    ``Wb``-bit weight gives ``Wb`` partial products (the shifted V, the sign bit's subtracted;
    an unsigned weight's zero-extension bit is constant), so ``Wb - 1`` conditional
    add/subtract stages, truncated to PROD bits: ``MUL_LUT_PER_STAGE_BIT * (Wb - 1) * V +
    MUL_LUT_PER_PRODUCT_BIT * PROD`` (measured in context, see the constants; not scaled)."""
    return math.ceil(MUL_LUT_PER_STAGE_BIT * (wb - 1) * v + MUL_LUT_PER_PRODUCT_BIT * prod)


def _lanes_depth_mapped(params: WinogradSRBSParams) -> bool:
    """Whether Yosys's ABC maps a SubRow-8 layer's lanes for depth: not on F(2,3) images up to
    :data:`AREA_MAPPED_MAX_DIM` wide (measured, see the constants)."""
    return not (params.m == 2 and max(params.ifm_dim) <= AREA_MAPPED_MAX_DIM)


def _index_mux_luts(sub_row: int, v: int, wb: int, lut_multiplier: bool, depth_mapped: bool = True) -> int:
    """LUTs of one lane's SRBS index mux (``SubRow``:1 over V-bit channels).  Beside a DSP
    multiplier: ``V * mux(SubRow)``, counted (scaled by :data:`LUT_LOGIC_SCALE`).  In front of a
    LUT multiplier, measured (not scaled): ``V * INDEX_MUX_LUT_PER_BIT[SubRow]`` and, from SubRow 8
    on (the mux then makes the lane the layer's deepest logic) where ``depth_mapped``
    (:func:`_lanes_depth_mapped`), the deeper mapping of the multiplier behind it,
    ``DEPTH_MAP_LUT_PER_STAGE_BIT * (Wb - 1) * V`` (see the constants).
    SubRow values not measured: 1 LUT a bit up to 4, ``INDEX_MUX_LUT_PER_BIT[8] * ceil(SubRow / 8)``
    above."""
    if sub_row <= 1:
        return 0
    if not lut_multiplier:
        return v * _mux_luts(sub_row)
    per_bit = INDEX_MUX_LUT_PER_BIT.get(sub_row, 1.0 if sub_row <= 4 else INDEX_MUX_LUT_PER_BIT[8]
                                        * math.ceil(sub_row / 8))
    deeper = DEPTH_MAP_LUT_PER_STAGE_BIT * (wb - 1) * v if sub_row > 4 and depth_mapped else 0
    return math.ceil(v * per_bit + deeper)


def _v_write_mux_luts(t: int, nb: int) -> int:
    """LUTs per bit of one SIMD lane's V-buffer write data, summed over the ``nb`` banks:
    bank b takes column ``(b - i t) mod nb`` of V row i for every row i that has a
    column in it (the row index ``rp_row`` selects; where no row writes, the column of
    the first row that does, a don't-care).  Free where a bank takes the same column
    from every row (nb = t), else ``mux(distinct columns)`` per bank."""
    luts = 0
    for b in range(nb):
        cols = {(b - (i * t) % nb + nb) % nb for i in range(t)} & set(range(t))
        luts += _mux_luts(len(cols))
    return luts


def _ff(params: WinogradSRBSParams, r: dict, styles: dict[str, str]) -> dict[str, int]:
    """Flip-flops of the RTL by unit (see :func:`estimate_resources`)."""
    t, m = params.t, params.m
    t2, rows = t * t, t + m
    pe, simd, pos, lanes = params.pe, params.simd, params.pos, params.lanes
    sf, cf = params.ifm_channels // simd, params.output_folds
    isimd, sfi, ks = params.in_simd, params.in_folds, params.input_subfolds
    th, tw = params.tile_grid
    ho, wo = params.out_dim
    h, w = params.ifm_dim
    oe = r["OE"]
    bits = lambda n: max((n - 1).bit_length(), 1)  # noqa: E731 -- a counter over range(n)
    wdepth = params.weight_memory_depth
    control = (
        2 * (rows + 1).bit_length() + bits(w * sfi) + 3 * bits(rows)  # line buffer, window bank rotation
        + 2 * bits(th) + 2 * bits(tw) + bits(sfi) + 3 * bits(sf) + 3 * bits(t) + 2 * bits(cf)
        + 3 * bits(params.position_groups)
        + (bits(sf) + 3 * bits(ks) if ks > 1 else 0)  # ISIMD < SIMD: the window's fold and sub-fold
        + 2 * ((h + w + 2 * t + 2 * params.padding + 2).bit_length() + 1) + bits(wdepth) + bits(wo)
        + 2 * bits(params.ofm_channels // oe) + 5 * bits(m) + (2 * oe + 1).bit_length() + (t + m).bit_length()
        + (bits(cf) + 2 * (2 * pe + 1).bit_length() if params.out_lanes else 0)  # the beat's first fold and lane
        + t + 3 * 2 + r["NVB"] + 16  # window row flags, slot indices, valid/first/last flags
    )
    levels = (lanes - 1).bit_length()
    dsp_mult = not r["MUL_LUT"]
    dot = (0 if dsp_mult else lanes * r["PROD_W"]) + 3  # the DSP's M register holds the products
    dot += sum(((1 << levels) >> d) * min(r["PROD_W"] + d, r["SUM_W"]) + 3 for d in range(1, levels + 1))
    dot += 1 + (0 if dsp_mult and lanes == 1 else r["ACC_W"])  # one product: its P register accumulates
    lutram = lambda name: styles.get(name) in ("distributed", "logic")  # noqa: E731 -- a read register in FFs
    rom_bits = _weight_line_bits(params, r)  # the read register (its pad bits are never read)
    # in LUTRAM or logic the memory's read register (a BRAM has its own); a ROM in block RAM read one issue
    # ahead (ROM_PIPE) has its line registered once more at stage D
    weight_ff = (rom_bits if lutram("weight_memory") else 0) + (rom_bits if r.get("ROM_PIPE") else 0)
    return {
        "control": control,
        "line_buffer": rows * isimd * r["IN_W"] if lutram("line_buffer") else 0,
        "input_transform": isimd * (2 * t2 - t) * r["VMID_W"],
        "v_buffer": max(t, pos) * simd * r["V_W"] if lutram("v_buffer") else 0,
        "weight_memory": weight_ff,
        "dots": pos * pe * dot,
        "m_collector": (params.position_groups - 1) * pos * pe * r["ACC_W"] + pe * t2 * r["ACC_W"],
        "output_transform": (pe * t * m * r["OMID_W"] if r["OTF_SERIAL"] else pe * m * m * r["OUT_W"]),
        "output_buffer": m * m * params.output_buffer_banks * r["OUT_W"] if lutram("output_buffer") else 0,
        "weight_load": bits(wdepth) + bits(_weight_columns(params, r)) + 1 if params.runtime_weights else 0,
    }


def estimate_resources(params: WinogradSRBSParams, fpgapart: str = "") -> ResourceEstimate:
    """LUT / FF / RAMB18 / URAM / DSP of the RTL (``hw/rtl/winograd_srbs_layer.sv``),
    counted from what it instantiates and calibrated against Yosys 0.23
    ``synth_xilinx -family xc7`` (``benchmarks/rtl_calibration.py``, kind ``winograd``:
    LUT and FF within 25 % at every measured folding, RAMB18 and DSP equal).

    Notation: ``Q = POS``, ``P = PE``, ``S = SIMD``, ``lanes = S*Keep/SubRow``
    (``S`` dense), ``D = Q * P`` dot units, widths as the RTL has them
    (:func:`winoforge.hw.rtl.winograd_layer.layer_parameters`: ``IN``, ``VMID``/``V``
    (input transform), ``PROD``, ``SUM``, ``ACC``, ``OMID``/``OUT`` (output transform)),
    ``nB``/``nA`` adders of one 1-D ``B^T``/``A^T`` (:func:`_transform_adders`),
    ``mux(n) = ceil(n/4)`` LUTs per bit of an n:1 mux (0 for n = 1).

    LUT = LUT_LOGIC_SCALE * (sum of the counted units) + the measured units (LUT
    multipliers, their index muxes, accumulators; :data:`MEASURED_UNITS`) + LUTRAM + ROMs
    in logic:

    * line-buffer read: ``t * S * IN * mux(t + m)`` (t window rows from t+m row banks);
    * input transform: ``S * (nB * (VMID + V) + t VMID mux(t))`` -- two serial 1-D units
      per lane (column, row pass) and the row pass's select of one of the t rows of the
      Z tile (loaded once a fold, clock enable only);
    * V write: ``S * V * sum_banks mux(columns)`` (bank b takes column
      ``(b - i t) mod nB`` of the V row i being written, a don't-care column of another
      row where none writes; :func:`_v_write_mux_luts`): 0 where every bank takes one
      column (``nB`` a multiple of t, as ``nB = t`` or ``t = 4``, ``Q = nB = 16``);
    * V select: ``S * V * sum_j mux(banks position j reads over the position groups)``;
    * LUT multipliers, measured (area-mapped): ``D * lanes * (2.08 (Wb - 1) V + 0.66 PROD)``
      (shift-and-add: ``Wb - 1`` conditional add/subtract stages; :data:`MUL_LUT_PER_STAGE_BIT`,
      :data:`MUL_LUT_PER_PRODUCT_BIT`), 0 for DSP ones;
    * index muxes (SRBS): beside DSP multipliers ``D * lanes * V * mux(SubRow)`` (counted);
      in front of LUT multipliers, measured, ``D * lanes * (V * 3.07 + 1.08 (Wb - 1) V)`` at
      SubRow 8 -- the 8:1 AND-OR mux and the depth-oriented mapping of the multiplier
      behind it, the layer's deepest logic (not on F(2,3) images up to 8 wide: mapped for
      area there, ``V * 3.07`` only) -- and ``D * lanes * V`` at SubRow 2 and 4
      (:func:`_index_mux_luts`);
    * adder trees ``D * sum_levels nodes * min(PROD + d, SUM)`` (0 for 4 lanes or more behind
      SubRow 2-4 index muxes and 4-bit LUT multipliers on images wider than 8: absorbed by their
      area-mapped lanes, :data:`SMALL_MUX_TREE_ABSORBED`); accumulators, measured,
      ``D * 2 ACC`` (the adder and the first fold's clear on the carry chain's DI operand;
      0 for one DSP product a dot: its P register accumulates);
    * M collector ``P * (t-1) t * ACC`` (the shift muxes, serial output transform);
    * output transform: serial ``P * (nA * OUT + t * OMID + t m OMID)`` (1-D unit,
      its input select and Z' shift muxes), parallel ``P * (t nA OMID + m nA OUT)``;
    * output select ``OE * OUT * mux(m^2)`` plus, where the PE channels rotate into
      wider beats (``OE > P``), per output-buffer bank (``m^2 OE``) its write data
      ``OUT * max(1, mux(P))`` (the PE select with its '0 default) and write address
      adder (``ceil(log2(2 TW Cout/OE))`` bits); where they rotate on reading (``OE <
      P``, a padded PE), ``P * OUT * mux(m^2)`` (a bank per lane), per lane its read
      address adder (``ceil(log2(2 TW cf))`` bits and the fold compare) and per beat
      channel ``OUT * mux(P)``;
    * LUTRAM ``banks * luts(depth, width)`` (:func:`_lutram_luts`), ROMs in logic
      ``ceil(bits / 64)``.

    ``Wb`` is the weight width.  Measured unit by unit (Yosys without ``-flatten``, the
    benchmark network's W4A4 layers at POS 8/16, issue 10): the 1-D transforms, the
    output transforms, the LUTRAM and the ROMs in logic match the counts.  The dots were
    measured again in context (flattened, between registers, the LUTs in the cone of their
    registers): Yosys's ABC maps for depth and recovers area off the critical path, so a
    dense layer's multipliers (fed by registers) take the area-mapped 50 LUTs (4 x 7 bits)
    and an SRBS layer's lanes, behind the 8:1 index mux, the depth-mapped 88-95 (see the
    constants).  Counting every multiplier at the depth-mapped cost of a lone unit and the
    mux at ``mux(8) = 2`` LUTs a bit had dense layers 5-22 % high and SRBS layers 6-10 %
    low at the networks' scale (32 -> 32 on 28x28, POS 16); now both are within 5 % there.
    On 7x7 and 8x8 images ABC area-maps the SubRow-8 lanes too (70-75 LUTs a lane in
    ``bench_rtl5_c128_pos16``), which the estimate follows (:func:`_lanes_depth_mapped`).

    FF: the Z tiles of the input transforms ``S (2t^2 - t) VMID``, the dots' pipeline
    (products where LUT multipliers, tree levels, accumulator), the M collector
    ``(t^2 - Q) P ACC + t^2 P ACC``, the output transform's Z' (serial ``P t m OMID``)
    or output register (parallel ``P m^2 OUT``), the read registers of the memories in
    LUTRAM (a BRAM has its own), a block-RAM ROM's line once more (``ROM_PIPE``: stage D's register
    behind the ROM's, so that no depth-split mux sits in front of the lanes), the counters.

    Memories (:func:`memories`): the weight ROM ``(t^2/Q)(Cout/P)(Cin/S)`` x
    ``Q P lanes Wb`` and the index ROM beside it (``ram_style``; ``auto``: logic up to
    ``ROM_LOGIC_BITS_PER_RAMB18`` bits per RAMB18, else BRAM) -- with runtime-writeable
    weights one RAM of ``ceil(Q P lanes (Wb + idx) / 64)`` columns of 64 bits at the same
    depth (``ram_style``, ``ultra``: a URAM288 per column and 4,096 lines), written by the
    weight stream (its counters: ``weight_load``) -- the line buffer ``t + m``
    banks of ``W Cin/S`` x ``S IN``, the V buffer ``max(t, Q)`` banks of
    ``NVB (Cin/S) t^2 / max(t, Q)`` x ``S V``, the output buffer ``m^2 OE`` banks of
    ``2 TW Cout/OE`` x ``OUT`` (``OE < P``: ``m^2 P`` of ``2 TW cf``) -- LUTRAM or BRAM as Yosys chooses (:func:`_auto_style`);
    RAMB18 = banks x FINN's ``_bram18_plan(depth, width)``.

    DSP = ``D * lanes * ceil((Wb + V)/48)`` for DSP multipliers.
    """
    r = _rtl_parameters(params)
    logic = _logic_luts(params, r)
    breakdown: dict = {name: {"LUT": value} for name, value in logic.items()}
    dsp = params.multipliers * math.ceil((r["W_W"] + r["V_W"]) / 48) if not r["MUL_LUT"] else 0
    breakdown["multipliers"]["DSP"] = dsp
    versal = bool(fpgapart) and is_versal(fpgapart)
    lutram = bram18 = uram = bram_bits = 0
    mems = memories(params)
    for mem in mems:
        entry = {"LUT": 0, "BRAM_18K": 0, "URAM": 0, "style": mem.style, "banks": mem.banks,
                 "depth": mem.depth, "width": mem.width}
        if mem.style == "distributed":
            entry["LUT"] = mem.banks * _lutram_luts(mem.width, mem.depth)
        elif mem.style == "logic":
            entry["LUT"] = mem.banks * math.ceil(mem.depth * mem.width / ROM_LOGIC_BITS_PER_LUT)
        elif mem.style == "ultra":
            entry["URAM"] = mem.banks * math.ceil(mem.width / 72) * math.ceil(mem.depth / 4096)
        else:
            entry["BRAM_18K"] = mem.banks * _ramb18(mem.depth, mem.width, versal)
            bram_bits += mem.banks * mem.depth * mem.width
        lutram += entry["LUT"]
        bram18 += entry["BRAM_18K"]
        uram += entry["URAM"]
        breakdown[mem.name] = entry
    ff = _ff(params, r, {mem.name: mem.style for mem in mems})
    for name, value in ff.items():
        breakdown.setdefault(name, {})["FF"] = value
    counted = sum(v for k, v in logic.items() if not _measured(k, r))
    lut = int(LUT_LOGIC_SCALE * counted + sum(logic.values()) - counted + lutram)
    return ResourceEstimate(lut, bram18, uram, dsp, bram_bits, breakdown, ff=int(sum(ff.values())))



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


