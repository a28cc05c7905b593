"""Calibrated resource estimates of FINN's RTL layers and of the stitcher's width converters.

FINN's own estimates of the finn-rtllib layers our open flow stitches are far from what these
layers synthesize to (Yosys 0.70 ``read_slang`` + ``synth_xilinx -family xc7 -flatten``,
:func:`winoforge.hw.rtl.synth_counts`; ``benchmarks/rtl_calibration.py``, kinds ``thresholds``,
``swg``, ``dwc``; points and both estimates in ``benchmarks/results/rtl_calibration.json``):

* ``Thresholding_rtl``: FINN counts only its threshold memories as LUTRAM, no comparator
  pipeline and no FF at all;
* ``ConvolutionInputGenerator_rtl``: FINN's ``300 + buffer`` LUT, no FF;
* the ``dwc_axi`` width converters :mod:`winoforge.hw.rtl.stitch` inserts where a producer's bits
  per beat differ from its consumer's: not estimated at all (they are no graph node).

The formulas below were fitted (minimax or least squares of the relative error on a few features
that follow the RTL's structure, coefficients rounded) to those Yosys points; ``tests/hw/test_rtl_layers.py`` and
``tests/hw/test_finn_estimates.py`` hold every recorded point within 25 % in LUT and FF.  LUT
includes LUTs used as distributed RAM, as everywhere in this project.

:func:`node_resources` is what the build sums (``hw/build.py``): FINN's ``node_res_estimation``
for every op, with LUT, FF and BRAM of the two layers above replaced by these formulas;
:func:`width_converters` lists a model's converters (the stitcher's rule, through its code) with
:func:`dwc_resources` each.
"""

from __future__ import annotations

import math

__all__ = ["thresholding_resources", "swg_resources", "dwc_resources", "node_resources", "width_converters",
           "converter_totals", "CALIBRATED_OP_TYPES"]

#: op types whose FINN estimate :func:`node_resources` replaces
CALIBRATED_OP_TYPES = ("Thresholding_rtl", "ConvolutionInputGenerator_rtl")


def _clog2(x: int) -> int:
    return max(0, math.ceil(math.log2(x))) if x > 1 else 0


# --------------------------------------------------------------------------- formulas
# Fitted to Yosys 0.70 (read_slang, synth_xilinx -family xc7 -flatten) on the points of
# benchmarks/rtl_calibration.py (kinds thresholds: 28 points, swg: 20, dwc: 16; minimax or least squares
# of the relative error over the features named, coefficients rounded).

# Thresholding_rtl (finn-rtllib thresholding.sv: per PE a binary search over M = clog2(N+1) pipeline stages,
# stage s reading a ROM of CF * 2^s thresholds of WT bits, CF = C / PE)
THR_LUT_PER_ROM_BIT = 1.6 / 64   # a threshold ROM kept as logic: ~1.6 LUT per 64 bits
THR_LUT_PER_STAGE_BIT = 0.3      # per PE, stage and threshold bit: the comparator (carry chain) and muxes
THR_LUT_PER_STAGE = 11           # per PE and stage: the search pointer's and the handshake's logic
THR_LUT_FIXED = 10
THR_FF_PER_STAGE_BIT = 2.9       # per PE, stage and threshold bit: the pipeline's value/threshold registers
THR_FF_PER_STAGE_M = 2.2         # per PE and stage, times M: the search pointer
THR_FF_FIXED = 63

# ConvolutionInputGenerator_rtl, default style: the line buffer (FINN's get_buffer_depth() x SIMD*bits,
# distributed RAM as Yosys maps it, hw/srbs_estimates._lutram_luts) plus address/control logic
SWG_LUT_PER_BIT = 0.2            # per bit of the buffer word (output register muxing)
SWG_LUT_PER_ADDR_BIT = 29        # per address bit of the buffer: counters, comparators
SWG_LUT_FIXED = -18
SWG_FF_PER_BIT = 0.85
SWG_FF_FIXED = 88
# ... parallel style: k_h - 1 line buffers of (IFMDim_w - k_w) words, the k_h x k_w window and the
# k_h - 1 line buffer outputs in registers
SWG_PAR_LUT_PER_DIM_BIT = 21     # per bit of the image width: the column/row counters
SWG_PAR_FF_FIXED = 45

# dwc_axi (finn-rtllib vpc.sv over g = gcd(IBITS, OBITS) bit lanes)
DWC_LUT_PER_IN_BIT = 0.95        # times min(IBITS/g, 8): the input buffer's lane select
DWC_LUT_PER_OUT_LANE = 2.4       # per output position OBITS/g: the write enables of an up-converter
DWC_LUT_FIXED = 7.5
DWC_FF_PER_BIT = 1.08            # on IBITS + OBITS: the buffer and the output register
DWC_FF_PER_RATIO_BIT = 2.2       # times clog2(max/min): counters
DWC_FF_FIXED = 6


def _thr_geometry(inst) -> dict:
    c, pe, n = (int(inst.get_nodeattr(a)) for a in ("NumChannels", "PE", "numSteps"))
    return {"C": c, "PE": pe, "N": n, "WT": inst.get_input_datatype(1).bitwidth(), "M": _clog2(n + 1),
            "CF": c // pe}


def _thr_as_calibrated(inst) -> bool:
    """FINN's defaults, as our builds make them and as calibrated: no forced BRAM/URAM, one threshold set."""
    return all(int(inst.get_nodeattr(a)) == 0 for a in ("depth_trigger_bram", "depth_trigger_uram", "mlo_max_iter",
                                                         "bodies"))


def thresholding_resources(inst) -> dict:
    """``{LUT, FF, BRAM_18K}`` of a ``Thresholding_rtl`` (FINN's default ``depth_trigger_*`` = 0, one
    threshold set).  Per PE and stage ``s < M = clog2(N+1)`` a ROM of ``CF * 2^s`` x ``WT`` bits; each is
    logic or BRAM as Yosys maps a ROM (:func:`winoforge.hw.srbs_estimates._auto_style`: logic up to
    8192 bits per RAMB18 it would take -- exact at all 17 points), BRAM = FINN's RAMB18 plan of it::

        LUT = 1.6 * (logic ROM bits) / 64 + 0.3 * PE * M * WT + 11 * PE * M + 10
        FF  = 2.9 * PE * M * WT + 2.2 * PE * M^2 + 63

    Minimax-fitted on the 28 points of the calibration: 19 with sorted random thresholds (C 1..512, PE
    1..64, N 7, 15, 255, WT 8..20) and 9 with thresholds as builds make them (a per-channel arithmetic
    progression, what a uniform quantizer after BatchNorm becomes; the ramp of the 8-bit input
    quantizer).  ROM contents move the counts (random ROMs cost more logic than progressions, a ramp
    saves registers), which a formula of the geometry cannot see: within 23 % (LUT) and 14 % (FF) at
    every point, and within 23 % / 11 % on the 17 threshold layers of ``make bench-rtl``'s three
    networks."""
    from .srbs_estimates import Memory, _auto_style, _ramb18

    g = _thr_geometry(inst)
    rom_bits = bram = 0
    for stage in range(g["M"]):
        mem = Memory("thresholds", g["PE"], g["CF"] * 2**stage, g["WT"], rom=True)
        if _auto_style(mem) == "logic":
            rom_bits += mem.banks * mem.depth * mem.width
        else:
            bram += mem.banks * _ramb18(mem.depth, mem.width)
    pmw = g["PE"] * g["M"] * g["WT"]
    lut = (THR_LUT_PER_ROM_BIT * rom_bits + THR_LUT_PER_STAGE_BIT * pmw + THR_LUT_PER_STAGE * g["PE"] * g["M"]
           + THR_LUT_FIXED)
    ff = THR_FF_PER_STAGE_BIT * pmw + THR_FF_PER_STAGE_M * g["PE"] * g["M"] ** 2 + THR_FF_FIXED
    return {"LUT": int(round(lut)), "FF": int(round(ff)), "BRAM_18K": int(bram)}


def swg_resources(inst) -> dict:
    """``{LUT, FF, BRAM_18K}`` of a ``ConvolutionInputGenerator_rtl`` with a distributed line buffer
    (``W = SIMD * bits``).  Default style (buffer depth ``D`` = FINN's ``get_buffer_depth()``)::

        LUT = LUTRAM(D x W) + 0.2 * W + 29 * clog2(D) - 18        FF = 0.85 * W + 88

    parallel style (``k_h - 1`` buffers of ``IFMDim_w - k_w`` words; the window in registers)::

        LUT = (k_h - 1) * LUTRAM((IFMDim_w - k_w) x W) + 21 * clog2(IFMDim_w)
        FF  = W * (k_h * k_w + k_h - 1) + 45

    ``LUTRAM``: Yosys's RAM32M/RAM64M mapping (:func:`winoforge.hw.srbs_estimates._lutram_luts`).
    Default style fitted on 14 points (kernel 2 and 3, stride 1 and 2, depthwise and not, 3..512
    channels, W 4..256), the parallel style on 6 (kernel 2 and 3, W 24..256, image width 8..32)."""
    from .srbs_estimates import _lutram_luts

    width = int(inst.get_nodeattr("SIMD")) * inst.get_input_datatype().bitwidth()
    k_h, k_w = (int(k) for k in inst.get_nodeattr("ConvKernelDim"))
    if inst.select_impl_style() == "parallel":
        dim_w = int(inst.get_nodeattr("IFMDim")[1])
        depth = dim_w - ((k_w - 1) * int(inst.get_nodeattr("Dilation")[1]) + 1)
        lut = (k_h - 1) * _lutram_luts(width, depth) + SWG_PAR_LUT_PER_DIM_BIT * _clog2(dim_w)
        ff = width * (k_h * k_w + k_h - 1) + SWG_PAR_FF_FIXED
    else:
        depth = int(inst.get_buffer_depth())
        lut = _lutram_luts(width, depth) + SWG_LUT_PER_BIT * width + SWG_LUT_PER_ADDR_BIT * _clog2(depth) \
            + SWG_LUT_FIXED
        ff = SWG_FF_PER_BIT * width + SWG_FF_FIXED
    return {"LUT": int(round(lut)), "FF": int(round(ff)), "BRAM_18K": 0}


def dwc_resources(ibits: int, obits: int) -> dict:
    """FINN's resource keys for one ``dwc_axi #(.IBITS(ibits), .OBITS(obits))`` (``g = gcd``)::

        LUT = 0.95 * IBITS * min(IBITS/g, 8) + 2.4 * OBITS/g + 7.5
        FF  = 1.08 * (IBITS + OBITS) + 2.2 * clog2(max(IBITS, OBITS) // min(IBITS, OBITS)) + 6

    Fitted on 16 pairs: 2..512 bits, ratios 1.5 to 32 both ways."""
    g = math.gcd(ibits, obits)
    lut = DWC_LUT_PER_IN_BIT * ibits * min(ibits // g, 8) + DWC_LUT_PER_OUT_LANE * (obits // g) + DWC_LUT_FIXED
    ff = DWC_FF_PER_BIT * (ibits + obits) + DWC_FF_PER_RATIO_BIT * _clog2(max(ibits, obits) // min(ibits, obits)) \
        + DWC_FF_FIXED
    return {"LUT": int(round(lut)), "FF": int(round(ff)), "BRAM_18K": 0, "BRAM_efficiency": 1, "URAM": 0,
            "URAM_efficiency": 1, "DSP": 0}


# --------------------------------------------------------------------------- the op estimates


def _finn(inst, fpgapart: str) -> dict:
    return {k: v for k, v in inst.node_res_estimation(fpgapart).items()}


def node_resources(inst, fpgapart: str) -> dict:
    """FINN's ``node_res_estimation`` of ``inst``; for ``Thresholding_rtl`` (FINN's default memory
    triggers, one threshold set) and ``ConvolutionInputGenerator_rtl`` (distributed line buffer, FINN's
    default) with ``LUT``, ``FF`` and ``BRAM_18K`` from :func:`thresholding_resources` /
    :func:`swg_resources`.  Every other op (and those two in other settings, not calibrated) is
    returned as FINN (or our op) estimates it."""
    est = _finn(inst, fpgapart)
    op = inst.onnx_node.op_type
    if op == "Thresholding_rtl" and _thr_as_calibrated(inst):
        cal = thresholding_resources(inst)
    elif op == "ConvolutionInputGenerator_rtl" and inst.get_nodeattr("ram_style") == "distributed":
        cal = swg_resources(inst)
    else:
        return est
    est.update(cal)
    if cal.get("BRAM_18K", 0) == 0:
        est["BRAM_efficiency"] = 1
    return est


# --------------------------------------------------------------------------- width converters


def width_converters(model) -> list[dict]:
    """The ``dwc_axi`` converters the stitched design of ``model`` will contain, each
    ``{"partition", "fifo", "ibits", "obits", "resources"}`` (``resources``: :func:`dwc_resources`).

    ``model``: a dataflow partition's model, or a parent model whose ``StreamingDataflowPartition``
    nodes are each read (``partition``: the partition node's name, else None).  The stitcher's rule,
    through its own code: its stages and streams (:func:`winoforge.hw.rtl.stitch.fabric_edges`) and
    the converter list :mod:`winoforge.hw.rtl_synth` reads off a stitched design.  A model the
    stitcher refuses, or one not yet specialized (``*_rtl``/``*_hls`` layers), raises
    :class:`~winoforge.hw.rtl.stitch.StitchError`."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from .rtl.stitch import StitchedDesign, StitchError, _stage, fabric_edges, split_fabric
    from .rtl_synth import _converters

    parts = model.get_nodes_by_op_type("StreamingDataflowPartition")
    graphs = [(p.name, ModelWrapper(getCustomOp(p).get_nodeattr("model"))) for p in parts] or [(None, model)]
    out = []
    for part, graph in graphs:
        fabric, _tail = split_fabric(graph)
        for node in fabric:  # a generic op's stream widths are not final before FINN's specialization
            if not node.op_type.endswith(("_rtl", "_hls")):
                raise StitchError(f"node {node.name} ({node.op_type}) is not specialized to an RTL or HLS layer; "
                                  "the width converters are known after step_specialize_layers")
        stages = [_stage(graph, node) for node in fabric]
        design = StitchedDesign(folder=None, top="", sources=[], stages=stages, fifo_depths=[],
                                in_width=stages[0].in_width, out_width=stages[-1].out_width, io={},
                                fabric_output=fabric[-1].output[0], edges=fabric_edges(graph, fabric))
        for conv in _converters(design):
            out.append({"partition": part, **conv, "resources": dwc_resources(conv["ibits"], conv["obits"])})
    return out


def converter_totals(converters: list[dict]) -> dict:
    """The summed ``resources`` of :func:`width_converters`' list (FINN's keys)."""
    total: dict = {}
    for conv in converters:
        for k, v in conv["resources"].items():
            total[k] = total.get(k, 0) + v
    return total
