"""FINN builds of exported students: our Winograd-SRBS flow and the stock-FINN baseline.

A build is finn-plus's :class:`DataflowBuildConfig` plus a step list that mixes
FINN's own steps (by name) with ours (callables ``step(model, cfg) -> model``):

=================================  ==========================================================
``step_winograd_import``           ours: raw-uint8 input (``x/255`` folded in front), fuse every
                                   Winograd subgraph into ``WinogradConv`` (hw/transforms.py)
``step_qonnx_to_finn``             FINN: ``Quant`` activations -> ``MultiThreshold``
``step_tidy_up``                   FINN
``step_winograd_streamline``       ours: FINN's ``Streamline`` with our rules for ``WinogradConv``,
                                   then ``WinogradConv`` -> ``WinogradSRBS`` (NHWC) and FINN's
                                   lowering / transpose absorption
``step_convert_to_hw``             FINN: the rest to FINN hardware layers
``step_check_supported``           ours: any node left that is not hardware (other than the
                                   float post-processing of the logits) stops the build, named
``step_minimize_bit_width_initial``, ``step_create_dataflow_partition``   FINN
``step_specialize_layers``         FINN's, with ``Pool``/``GlobalAccPool`` on HLS for FINN's folding
``step_winograd_folding``          ours: FINN's ``SetFolding`` for its layers, then PE/SIMD of
                                   every ``WinogradSRBS`` from the same cycle target
``step_open_rtl_layers``           ours (``open_rtl=True``, the default): pooling, global pooling and
                                   the classifier -> our RTL layers (``hw/rtl_ops.py``), same folding
``step_winograd_weights_to_uram``  ours: on a board with UltraRAM whose BRAM the design overflows,
                                   the largest Winograd layers' weights to URAM, written at run time
``step_minimize_bit_width``        FINN
``step_weight_roms_to_bram``       ours: small weight ROMs (logic) to block RAM where it has room
``step_generate_estimate_reports`` FINN
``step_check_resources``           ours: the estimate must fit the board, else a clear error
``step_hw_codegen``                FINN (optional): HDL of FINN's RTL layers, our weight files
=================================  ==========================================================

The baseline is the same network with dense direct 3x3 convolutions through
FINN's stock ``estimate_only_dataflow_steps`` (ConvolutionInputGenerator +
MVAU), with the same board, clock and target.

Every intermediate model is saved (``<work>/intermediate_models/NN_<step>.onnx``).
After every step the model is executed in Python on a golden input and its
output -- as integer codes of the classifier's accumulator, see
:func:`winoforge.hw.export.output_codes` -- must equal the previous level's with
``np.array_equal``; the dataflow partition's own integer output must equal
the level before it too.  FINN's specialised ``*_hls``/``*_rtl`` layers have no
Python mode, so a copy of the graph with each mapped back to its generic op is
executed (shared notes: this view is what matched in the measurements).  A failing
step raises :class:`BuildStepError` naming the step; the models written so far stay.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .finn_env import ensure_finn

__all__ = ["BuildStepError", "BuildResult", "winograd_steps", "baseline_steps", "make_build_config",
           "run_build", "execute_python", "generic_view"]


class BuildStepError(RuntimeError):
    """A build step failed (``step`` names it; ``models_dir`` holds the models written so far)."""

    def __init__(self, step: str, models_dir: Path, cause: BaseException):
        self.step, self.models_dir, self.cause = step, models_dir, cause
        super().__init__(f"build step {step} failed: {type(cause).__name__}: {cause} "
                         f"(models written so far: {models_dir})")


# ------------------------------------------------------------------ our steps


def _raw_uint8_input(model):
    """The accelerator takes raw uint8 pixels: a new graph input, marked UINT8, divided by 255 into
    the exported input (which takes ``x/255``); the first activation quantizer becomes exact
    integer thresholds on the raw pixels (:class:`ExactActivationThresholds`)."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.transformation.infer_shapes import InferShapes

    graph = model.graph
    old = graph.input[0]
    shape = model.get_tensor_shape(old.name)
    raw = helper.make_tensor_value_info("raw_input", TensorProto.FLOAT, shape)
    graph.input.remove(old)
    graph.input.insert(0, raw)
    # Div, not Mul by 1/255: torch's data loader divides, and fl(r/255) != fl(r*fl(1/255)) for some r
    model.set_initializer("input_unscale", np.asarray(255.0, dtype=np.float32))
    graph.node.insert(0, helper.make_node("Div", ["raw_input", "input_unscale"], [old.name], name="InputUnscale"))
    model.set_tensor_datatype("raw_input", DataType["UINT8"])
    return model.transform(InferShapes())


def step_winograd_import(model, cfg):
    """Raw uint8 input, every Winograd subgraph fused into one ``WinogradConv``, and the activation
    quantizers turned into exact integer thresholds."""
    from .transforms import ExactActivationThresholds, FuseWinogradSubgraph

    return _raw_uint8_input(model).transform(FuseWinogradSubgraph()).transform(ExactActivationThresholds())


def step_baseline_import(model, cfg):
    """Raw uint8 input and exact activation thresholds (a baseline has no Winograd layers to fuse)."""
    from .transforms import ExactActivationThresholds

    return _raw_uint8_input(model).transform(ExactActivationThresholds())


def step_winograd_streamline(model, cfg):
    """FINN's ``step_streamline`` with our ``WinogradConv`` rules, then lowering to ``WinogradSRBS``."""
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.reorder import (MakeMaxPoolNHWC, MoveLinearPastEltwiseAdd, MoveLinearPastFork,
                                                        MoveTransposePastFork, MoveTransposePastJoinAdd)
    from qonnx.transformation.general import RemoveUnusedTensors
    from qonnx.transformation.infer_data_layouts import InferDataLayouts as InferLayouts
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    from .transforms import (Absorb1BitMulIntoWinograd, LowerWinogradToHW, MergeForkedTransposes,
                             MoveScalarMulPastWinograd)

    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    for _ in range(8):
        before = model.model.SerializeToString()
        # residual blocks: a scale on a forked activation is copied onto each branch, and the
        # equal scales of the two quantized branches move past their sum (an integer addition)
        model = model.transform(MoveLinearPastFork())
        model = model.transform(MoveLinearPastEltwiseAdd())
        model = model.transform(Streamline())
        model = model.transform(MoveScalarMulPastWinograd())
        model = model.transform(Absorb1BitMulIntoWinograd())
        model = model.transform(InferDataTypes())
        if model.model.SerializeToString() == before:
            break
    model = model.transform(LowerWinogradToHW())
    if model.get_nodes_by_op_type("Conv"):
        model = model.transform(LowerConvsToMatMul())
    # layout: FINN's transpose absorption, plus the rules residual blocks need (a transpose
    # moved into each branch of a fork, and past the residual Add of two transposed branches)
    for _ in range(32):
        before = model.model.SerializeToString()
        for tr in (MergeForkedTransposes(), MakeMaxPoolNHWC(), absorb.AbsorbTransposeIntoMultiThreshold(),
                   MoveTransposePastFork(), MoveTransposePastJoinAdd(), absorb.AbsorbConsecutiveTransposes()):
            model = model.transform(tr)
        if model.model.SerializeToString() == before:
            break
    model = model.transform(Streamline())
    model = model.transform(InferLayouts())
    return model.transform(RemoveUnusedTensors())


def step_streamline_head(model, cfg):
    """Global average pooling -> FINN's ``GlobalAccPool`` (integer sum) + a scalar ``Mul(1/pixels)``,
    then streamline again so the ``Mul`` moves past the classifier's ``MatMul`` (which then has
    integer inputs and becomes an MVAU).  FINN converts the pooling only in ``convert_to_hw``,
    after streamlining, which would leave the classifier in float."""
    from finn.transformation.fpgadataflow.convert_to_hw.global_acc_pool import InferGlobalAccPoolLayer
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.reorder import MoveScalarLinearPastInvariants, MoveScalarMulPastMatMul
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.infer_datatypes import InferDataTypes

    if not model.get_nodes_by_op_type("GlobalAveragePool"):
        return model
    model = model.transform(InferDataLayouts())
    model = model.transform(InferGlobalAccPoolLayer())
    for tr in (MoveScalarLinearPastInvariants(), MoveScalarMulPastMatMul(), Streamline(), InferDataTypes()):
        model = model.transform(tr)
    return model


#: Float nodes allowed after the last hardware layer: the classifier's output scale and bias.
POSTPROCESSING_OPS = {"Mul", "Add", "Reshape", "Flatten", "Transpose"}
#: Nodes allowed before the first hardware layer: the layout change of the input.
PREPROCESSING_OPS = {"Transpose", "Reshape"}


def step_check_supported(model, cfg):
    """Stop with the node's name and op type if anything but trailing post-processing is not hardware."""
    from .transforms import UnsupportedNodeError

    hw = [n for n in model.graph.node if n.domain.startswith("finn.custom_op.fpgadataflow")]
    if not hw:
        raise UnsupportedNodeError("no node was converted to a hardware layer")
    first_hw = min(i for i, n in enumerate(model.graph.node) if n in hw)
    last_hw = max(i for i, n in enumerate(model.graph.node) if n in hw)
    for i, node in enumerate(model.graph.node):
        if node in hw:
            continue
        if (i > last_hw and node.op_type in POSTPROCESSING_OPS) or (i < first_hw and node.op_type in PREPROCESSING_OPS):
            continue
        raise UnsupportedNodeError(f"node {node.name} (op type {node.op_type}) has no hardware implementation "
                                   "in this flow; supported: Winograd 3x3 convolutions, quantized ReLU/identity "
                                   "activations, BatchNorm, max-pooling, global average pooling, quantized Linear, "
                                   "residual sums of two quantized branches")
    _check_integer_core(model, [n for n in model.graph.node if n in hw])
    return model


def _check_integer_core(model, hw_nodes) -> None:
    """Every hardware layer before the float tail (the classifier's output scale and bias:
    ``Elementwise*`` layers after the last other layer) computes on integers, and is one the
    runtime's integer program executes; else the first one that does not is named.  FINN maps a
    float ``Add``/``Mul`` (e.g. a residual sum of unquantized branches) to a float layer in the
    middle of the stream, which neither this flow's exactness nor its program can take."""
    from winoforge.runtime.program import SUPPORTED_OPS

    from .program import generic_op
    from .transforms import UnsupportedNodeError

    core = [i for i, n in enumerate(hw_nodes) if not n.op_type.startswith("Elementwise")]
    core_nodes = hw_nodes[:core[-1] + 1] if core else []
    for node in core_nodes:  # the root cause first: float values (transposes left around them follow)
        for name in [*node.input, *node.output]:
            dt = model.get_tensor_datatype(name)
            if model.get_initializer(name) is None and not dt.is_integer():
                raise UnsupportedNodeError(
                    f"node {node.name} (op type {node.op_type}) computes on {dt.name} values (tensor {name}) "
                    "inside the accelerator; every layer before the classifier's output scale must be integer "
                    "(a residual block must add two quantized branches sharing one power-of-two scale, as "
                    "model.students' ResNet blocks do)")
    for node in core_nodes:
        if generic_op(node) not in SUPPORTED_OPS and not (node.op_type == "Shuffle" and node is hw_nodes[0]):
            raise UnsupportedNodeError(f"node {node.name} (op type {node.op_type}) inside the accelerator has no "
                                       "counterpart in the integer program (runtime.program); supported: "
                                       + ", ".join(SUPPORTED_OPS))


def step_winograd_folding(model, cfg):
    """Our flow's folding: :func:`step_fps_folding` (our ``WinogradSRBS`` layers to the cycle budget
    ``clock / target_fps`` first, then FINN's SetFolding for its layers)."""
    return step_fps_folding(model, cfg)


#: our RTL ops that FINN's specialization picks itself (FINN has no RTL variant of its own) and
#: that its SetFolding does not know: folded by PE over ``NumChannels`` here
_PE_FOLDED_OURS = ("DuplicateStreams_rtl",)


def _fold_ours(model, target_cycles: int):
    """Fold the layers FINN's SetFolding skips to ``target_cycles``: ``WinogradSRBS``
    (``choose_folding``) and :data:`_PE_FOLDED_OURS` (the smallest PE that meets it)."""
    from qonnx.custom_op.registry import getCustomOp

    for node in model.graph.node:
        if node.op_type.startswith("WinogradSRBS"):
            getCustomOp(node).choose_folding(target_cycles)
        elif node.op_type in _PE_FOLDED_OURS:
            inst = getCustomOp(node)
            channels = int(inst.get_nodeattr("NumChannels"))
            for pe in (d for d in range(1, channels + 1) if channels % d == 0):
                inst.set_nodeattr("PE", pe)
                if inst.get_exp_cycles() <= target_cycles:
                    break
    return model


def step_fps_folding(model, cfg):
    """FINN's ``step_target_fps_parallelization``, with our layers folded first (:func:`_fold_ours`):
    SetFolding skips op types it does not know (``WinogradSRBS``, and ``DuplicateStreams_rtl``, the
    fork of a residual block that FINN's specialization already chose), and one of them left
    unfolded would, through its two-pass relaxation, slow every other layer down to its cycles."""
    from finn.builder.build_dataflow_steps import step_target_fps_parallelization

    if cfg.target_fps:
        target_cycles = int(1e9 / cfg.synth_clk_period_ns / cfg.target_fps)
        model = _each_dataflow_graph(model, lambda m: _fold_ours(m, target_cycles))
    return step_target_fps_parallelization(model, cfg)


def step_check_resources(model, cfg):
    """The whole estimate must fit the board (``hw.boards``), else a clear error naming what does not."""
    from .boards import fits, get_board

    result = fits(resource_totals(model, cfg), get_board(cfg.board))
    if not result.ok:
        raise ValueError(f"the estimated design {result}; lower --target-fps or choose a larger board")
    return model


#: the weight memories :func:`step_weights_to_uram` may move: FINN's MVAUs (``internal_decoupled``) and ours
_URAM_WEIGHT_OPS = ("MVAU_hls", "MVAU_rtl", "WinogradSRBS_rtl")
#: those whose run-time weights the runtime writes (our layer's weight stream, ``runtime_weights`` in the
#: manifest); FINN's MVAUs take theirs over AXI-lite, which the runtime does not drive yet
_RUNTIME_WRITTEN_OPS = ("WinogradSRBS_rtl",)


def _weight_bram18(inst, part: str) -> float:
    """RAMB18s of a layer's weights (FINN's MVAU: its ``bram_estimation``, the weights only)."""
    if inst.onnx_node.op_type.startswith("WinogradSRBS"):
        mems = inst.params().estimate_resources(part).breakdown
        return sum(mems[m]["BRAM_18K"] for m in ("weight_memory", "index_memory") if m in mems)
    return float(inst.bram_estimation(part) if inst.get_nodeattr("mem_mode") == "internal_decoupled" else 0)


def step_weights_to_uram(model, cfg):
    """Where the board has UltraRAM and the estimated BRAM does not fit it: the largest weight
    memories move to URAM (``ram_style="ultra"``, ``runtime_writeable_weights=1``: a URAM takes no
    contents from a bitstream, so these weights are written at run time -- FINN's AXI-lite weight
    interface for its MVAUs, the weight stream ``in1_V`` for ``WinogradSRBS_rtl``), one at a time,
    largest first, while the URAM lasts, until the BRAM fits.  A design that fits, or a board without
    URAM, is left as it is.  Not in the default step lists: the runtime writes the weights of
    ``WinogradSRBS`` layers (manifest ``runtime_weights``) but not yet FINN's AXI-lite MVAU weights
    (``make bench-networks`` uses it for the estimates of the ZCU104 networks, in place of
    :func:`step_winograd_weights_to_uram`)."""
    return _weights_to_uram(model, cfg, _URAM_WEIGHT_OPS)


def step_winograd_weights_to_uram(model, cfg):
    """:func:`step_weights_to_uram` over the layers whose run-time weights the runtime writes
    (``WinogradSRBS_rtl``; FINN's MVAUs keep their BRAM): in the default Winograd steps, so that a
    ZCU104 design whose weights overflow the BRAM builds, its largest Winograd layers' weights in URAM,
    written by the runtime through their weight DMAs when the package is loaded.  Nothing moves on a
    board without URAM or where the BRAM fits.  Before ``step_minimize_bit_width``, so that a moved
    layer's widths are those any weights of its types need (its weights may change at run time), and
    so on the BRAM of the declared weight widths (an overestimate where minimizing narrows them)."""
    return _weights_to_uram(model, cfg, _RUNTIME_WRITTEN_OPS)


def _weights_to_uram(model, cfg, ops: tuple[str, ...]):
    from qonnx.custom_op.registry import getCustomOp

    from .boards import get_board
    from .finn_estimates import node_resources

    board = get_board(cfg.board)
    if board.uram == 0:
        return model
    part = cfg._resolve_fpga_part()
    converters = _converters(model)[0]

    def move(graph_model):
        nodes = [n for n in graph_model.graph.node if n.domain.startswith("finn.custom_op.fpgadataflow")
                 or n.op_type.startswith("WinogradSRBS")]

        res = [node_resources(getCustomOp(n), part) for n in nodes]  # a move re-estimates only its node
        cands = sorted(((_weight_bram18(getCustomOp(n), part), i) for i, n in enumerate(nodes)
                        if n.op_type in ops), reverse=True)
        now = _totals(res, converters)
        for bram, i in cands:
            if now.get("BRAM_18K", 0) <= board.bram18 or bram <= 0:
                break
            inst = getCustomOp(nodes[i])
            before = {a: inst.get_nodeattr(a) for a in ("ram_style", "runtime_writeable_weights")}
            inst.set_nodeattr("runtime_writeable_weights", 1)
            inst.set_nodeattr("ram_style", "ultra")
            moved = node_resources(inst, part)
            after = _totals([*res[:i], moved, *res[i + 1:]], converters)
            if after.get("URAM", 0) > board.uram:  # does not fit the URAM left: the next, smaller one may
                for a, v in before.items():
                    inst.set_nodeattr(a, v)
            else:
                res[i], now = moved, after
        return graph_model

    return _each_dataflow_graph(model, move)


#: the share of the board's RAMB18s :func:`step_weight_roms_to_bram` fills: the rest is left to
#: the FIFOs FINN sizes after the estimates (``step_set_fifo_depths``)
ROM_BRAM_SHARE = 0.9


def step_weight_roms_to_bram(model, cfg):
    """Weight ROMs that synthesis would build from LUTs (small ones: :func:`winoforge.hw.srbs_estimates.memories`,
    ``auto``) move to block RAM (``ram_style="block"``: the RTL's ``ROM_BLOCK``, ``rom_style = "block"``) where
    the board's BRAM has room: the most LUTs saved per RAMB18 first, while the estimated RAMB18s stay within
    :data:`ROM_BRAM_SHARE` of the board's.  ``WinogradSRBS_rtl`` layers with ``ram_style="auto"`` and
    bitstream weights only (a RAM written at run time keeps its style); FINN's own layers keep theirs.  Both
    Winograd flows (dense and SRBS) get it, so their LUT counts compare like for like.  Fashion-MNIST VGG at
    1 of 4, 11,008 cycles a frame: its four 28x28 and 14x14 layers' ROMs (176 x 576 bits and smaller) save an
    estimated 2,796 LUT for 40 RAMB18."""
    from qonnx.custom_op.registry import getCustomOp

    from .boards import get_board
    from .finn_estimates import node_resources

    cap = ROM_BRAM_SHARE * get_board(cfg.board).bram18
    part = cfg._resolve_fpga_part()
    converters = _converters(model)[0]

    def move(graph_model):
        nodes = _dataflow_nodes(graph_model)
        res = [node_resources(getCustomOp(n), part) for n in nodes]
        now = _totals(res, converters).get("BRAM_18K", 0)
        cands = []
        for i, node in enumerate(nodes):
            if not node.op_type.startswith("WinogradSRBS"):
                continue
            inst = getCustomOp(node)
            if inst.get_nodeattr("ram_style") != "auto" or inst.get_nodeattr("runtime_writeable_weights"):
                continue
            inst.set_nodeattr("ram_style", "block")
            block = node_resources(inst, part)
            inst.set_nodeattr("ram_style", "auto")
            saved = res[i].get("LUT", 0) - block.get("LUT", 0)
            cost = block.get("BRAM_18K", 0) - res[i].get("BRAM_18K", 0)
            if saved > 0 and cost > 0:
                cands.append((-saved / cost, i, cost))
        for _, i, cost in sorted(cands):
            if now + cost <= cap:
                getCustomOp(nodes[i]).set_nodeattr("ram_style", "block")
                now += cost
        return graph_model

    return _each_dataflow_graph(model, move)


def step_runtime_weights(model, cfg):
    """Every ``WinogradSRBS_rtl`` keeps its weights in a RAM written at run time
    (``runtime_writeable_weights=1``, FINN's attribute; the memory style stays as folded): the
    host writes them through each layer's weight DMA when it loads the package, and may write new
    ones without a new bitstream (``Accelerator.load_weights``).  ``winoforge build
    --runtime-weights``."""
    from qonnx.custom_op.registry import getCustomOp

    def mark(graph_model):
        for node in graph_model.graph.node:
            if node.op_type.startswith("WinogradSRBS"):
                getCustomOp(node).set_nodeattr("runtime_writeable_weights", 1)
        return graph_model

    return _each_dataflow_graph(model, mark)


def runtime_weight_layers(model) -> list[tuple[str, object, np.ndarray]]:
    """``[(node name, WinogradSRBSParams, U)]`` of the ``WinogradSRBS`` nodes with runtime-writeable
    weights, in graph order (the stitched design's weight stream takes their sets in this order),
    in ``model`` or its dataflow partitions."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    graphs = [ModelWrapper(getCustomOp(p).get_nodeattr("model"))
              for p in model.get_nodes_by_op_type("StreamingDataflowPartition")] or [model]
    out = []
    for graph_model in graphs:
        for node in graph_model.graph.node:
            if node.op_type.startswith("WinogradSRBS"):
                inst = getCustomOp(node)
                params = inst.params()
                if params.runtime_weights:
                    out.append((node.name, params, inst.weights(graph_model)))
    return out


def _each_dataflow_graph(model, fn):
    """``fn(graph_model) -> graph_model`` on ``model`` and on every dataflow partition's model
    (saved back in place)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    for p in model.get_nodes_by_op_type("StreamingDataflowPartition"):
        path = getCustomOp(p).get_nodeattr("model")
        fn(ModelWrapper(path)).save(path)
    return fn(model)


def _prefer_hls_pooling(model):
    from qonnx.custom_op.registry import getCustomOp

    for node in model.graph.node:
        if node.op_type in ("Pool", "GlobalAccPool"):
            inst = getCustomOp(node)
            if not inst.get_nodeattr("preferred_impl_style"):
                inst.set_nodeattr("preferred_impl_style", "hls")
    return model


def step_specialize_layers(model, cfg):
    """FINN's ``step_specialize_layers`` with ``Pool`` and ``GlobalAccPool`` kept on their HLS variants
    (unless a ``preferred_impl_style`` is set): FINN's folding (``SetFolding``) knows only
    ``Pool_hls``/``GlobalAccPool_hls``; :func:`step_open_rtl_layers` swaps in our RTL afterwards."""
    from finn.builder.build_dataflow_steps import step_specialize_layers as finn_step

    return finn_step(_each_dataflow_graph(model, _prefer_hls_pooling), cfg)


def step_open_rtl_layers(model, cfg):
    """The open-RTL path (``hw/rtl_ops.py``): after FINN's folding, ``Pool_hls`` -> ``Pool_rtl``,
    ``GlobalAccPool_hls`` -> ``GlobalAccPool_rtl``, the classifier (``MVAU_hls``/``MVAU_rtl``
    without activation), 1x1 projection shortcuts and the convolutions the Winograd layer does not
    take (stride 2: an MVAU after a sliding window; thresholds inside) -> ``MVAU_lut_rtl``,
    and the residual layers ``DuplicateStreams_hls`` -> ``DuplicateStreams_rtl``, integer
    ``ElementwiseAdd_hls`` of two streams -> ``AddStreams_rtl``, with FINN's folding; a node our RTL
    cannot take stops the build, named."""
    return _open_rtl_layers(model, conv_mvau=True)


def step_open_rtl_layers_stock(model, cfg):
    """:func:`step_open_rtl_layers` for the stock-FINN baseline: its convolutions (an MVAU after a
    sliding window) stay FINN's MVAU, the layers FINN has only in HLS become our RTL."""
    return _open_rtl_layers(model, conv_mvau=False)


def _open_rtl_layers(model, conv_mvau: bool):
    from .rtl_ops import OpenRTLLayers

    return _each_dataflow_graph(model, lambda m: m.transform(OpenRTLLayers(conv_mvau=conv_mvau)))


# ------------------------------------------------------------------ step lists

FINN_FRONT = ["step_qonnx_to_finn", "step_tidy_up"]
FINN_BACK = ["step_minimize_bit_width_initial", "step_create_dataflow_partition", step_specialize_layers]


def winograd_steps(codegen: bool = False, open_rtl: bool = True, runtime_weights: bool = False) -> list:
    """Our flow.  ``open_rtl``: pooling, global pooling and the classifier become our RTL layers
    (every layer then plain SystemVerilog, simulated by Verilator); ``False`` keeps FINN's HLS /
    DSP variants (the vendor path, where Vivado and Vitis HLS exist).  ``runtime_weights``: the
    Winograd layers' weights are written at run time (:func:`step_runtime_weights`)."""
    steps = [step_winograd_import, *FINN_FRONT, step_winograd_streamline, step_streamline_head, "step_convert_to_hw",
             step_check_supported,
             *FINN_BACK, step_winograd_folding, *([step_runtime_weights] if runtime_weights else []),
             *([step_open_rtl_layers] if open_rtl else []), step_winograd_weights_to_uram,
             "step_minimize_bit_width", step_weight_roms_to_bram, "step_generate_estimate_reports",
             step_check_resources]
    return steps + (["step_hw_codegen"] if codegen else [])


def baseline_steps(open_rtl: bool = True, residual: bool = False) -> list:
    """Stock FINN (``estimate_only_dataflow_steps``), with the same raw-uint8 input import and checks
    (``open_rtl`` as in :func:`winograd_steps`).  ``residual``: our flow's streamlining
    (:func:`step_winograd_streamline`: FINN's ``Streamline`` plus the fork and residual-add rules) in
    place of FINN's ``step_streamline``, which leaves a residual network's convolutions in NCHW
    behind transposes (``Im2Col`` unconverted, refused by :func:`step_check_supported`); with no
    Winograd layer in the model the rest of that step changes nothing.  ``build_package`` sets it
    where the graph has a residual sum (:func:`has_residual_add`)."""
    streamline = step_winograd_streamline if residual else "step_streamline"
    return [step_baseline_import, *FINN_FRONT, streamline, step_streamline_head, "step_convert_to_hw",
            step_check_supported,
            *FINN_BACK, step_fps_folding, "step_apply_folding_config",
            *([step_open_rtl_layers_stock] if open_rtl else []), "step_minimize_bit_width",
            "step_generate_estimate_reports"]


def has_residual_add(model) -> bool:
    """Does the ONNX graph (a ``ModelProto`` or qonnx ``ModelWrapper``) have an ``Add`` both of whose
    inputs are computed from the graph's input -- a residual sum -- rather than one that adds a
    constant (a bias, quantized or not)?  The nodes are taken in the graph's topological order."""
    graph = model.graph
    live = {t.name for t in graph.input}
    for node in graph.node:
        ins = [t for t in node.input if t]
        if node.op_type == "Add" and len(ins) == 2 and all(t in live for t in ins):
            return True
        if any(t in live for t in ins):
            live.update(node.output)
    return False


# ------------------------------------------------------------------ execution


def _dataflow_nodes(model):
    """The nodes of the dataflow partition (or of the model itself before partitioning)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    parts = model.get_nodes_by_op_type("StreamingDataflowPartition")
    if not parts:
        return [n for n in model.graph.node if n.domain.startswith("finn.custom_op.fpgadataflow")]
    nodes = []
    for p in parts:
        nodes.extend(ModelWrapper(getCustomOp(p).get_nodeattr("model")).graph.node)
    return nodes


def generic_view(model, scratch: Path):
    """A copy in which FINN's specialised ``*_hls``/``*_rtl`` nodes are their generic ops again
    (Python-executable); dataflow partitions are rewritten the same way into ``scratch``."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from .program import generic_op

    view = copy.deepcopy(model)
    for node in view.graph.node:
        op = generic_op(node)
        if op != node.op_type:
            node.domain, node.op_type = "finn.custom_op.fpgadataflow", op
        if node.op_type == "StreamingDataflowPartition":
            inst = getCustomOp(node)
            child = generic_view(ModelWrapper(inst.get_nodeattr("model")), scratch)
            scratch.mkdir(parents=True, exist_ok=True)
            path = scratch / f"generic_{node.name}.onnx"
            child.save(str(path))
            inst.set_nodeattr("model", str(path))
    return view


def execute_python(model, raw: np.ndarray, scratch: Path) -> dict[str, np.ndarray]:
    """Execute ``model`` on the raw uint8 image batch ``raw`` (N, C, H, W): returns the output and,
    where a dataflow partition exists, its integer output (key ``"dataflow"``)."""
    import qonnx.core.onnx_exec as oxe

    import winoforge.hw.ops  # noqa: F401
    import winoforge.hw.rtl_ops  # noqa: F401
    import winoforge.hw.winograd_op  # noqa: F401

    view = generic_view(model, scratch)
    iname, oname = view.graph.input[0].name, view.graph.output[0].name
    x, shape = _graph_input(view, raw)
    parts = view.get_nodes_by_op_type("StreamingDataflowPartition")
    outs: dict[str, list[np.ndarray]] = {"output": [], "dataflow": []}
    for i in range(0, len(x), shape[0]):
        ctx = oxe.execute_onnx(view, {iname: x[i:i + shape[0]]}, return_full_exec_context=bool(parts))
        outs["output"].append(ctx[oname])
        if parts:
            outs["dataflow"].append(ctx[parts[0].output[0]])
    return {k: np.concatenate(v) for k, v in outs.items() if v}


def _graph_input(view, raw: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The raw uint8 images as ``view``'s input takes them, and that input's shape."""
    from qonnx.core.datatype import DataType

    iname = view.graph.input[0].name
    raw = np.asarray(raw, dtype=np.float32)
    # as torch's data loader: a float32 division (the exported graph takes x/255)
    x = raw if view.get_tensor_datatype(iname) == DataType["UINT8"] else raw / np.float32(255.0)
    shape = view.get_tensor_shape(iname)
    if list(x.shape[1:]) != list(shape[1:]) and list(x.shape[1:]) == [shape[3], shape[1], shape[2]]:
        x = x.transpose(0, 2, 3, 1)  # the graph takes NHWC
    return x, shape


def first_difference(before, after, raw: np.ndarray, scratch: Path) -> str:
    """Where two levels first differ on ``raw``: for the first batch (in order) on which any tensor
    of both levels differs, the first node of ``after`` (in graph order) whose output tensor also
    exists at the level ``before``, with the same shape, and holds other values.  An empty string
    when no shared tensor differs on any image."""
    import qonnx.core.onnx_exec as oxe

    views = [generic_view(model, scratch) for model in (before, after)]
    inputs = [_graph_input(view, raw) for view in views]
    for start in range(0, len(raw), inputs[1][1][0]):
        ctx_a, ctx_b = (oxe.execute_onnx(view, {view.graph.input[0].name: x[start:start + shape[0]]},
                                         return_full_exec_context=True) for view, (x, shape) in zip(views, inputs))
        for node in views[1].graph.node:
            for name in node.output:
                a, b = ctx_a.get(name), ctx_b.get(name)
                if a is None or b is None or np.shape(a) != np.shape(b) or np.array_equal(a, b):
                    continue
                images = f"image {start}" if inputs[1][1][0] == 1 else f"images {start}.."
                return (f"; first difference at node {node.name or '(unnamed)'} ({node.op_type}), tensor {name}: "
                        f"{int((np.asarray(a) != np.asarray(b)).sum())} of {np.size(a)} values differ ({images})")
    return ""


# ------------------------------------------------------------------ running


@dataclass
class StepRecord:
    name: str
    seconds: float
    model: str
    verified: bool | None
    note: str = ""


@dataclass
class BuildResult:
    name: str
    board: str
    out_dir: Path
    steps: list[StepRecord]
    model: Any = field(repr=False)
    estimates: dict = field(default_factory=dict)
    # the last step's Python execution on the golden images ("output": the model's output)
    golden_outputs: dict | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        return {"name": self.name, "board": self.board, "out_dir": str(self.out_dir),
                "steps": [asdict(s) for s in self.steps], "estimates": self.estimates}


def make_build_config(out_dir: Path, board: str, target_fps: float | None, clock_mhz: float | None = None,
                      folding_config: Path | None = None, mvau_wwidth_max: int | None = None):
    """finn-plus's ``DataflowBuildConfig`` for an estimate / code-generation build.

    ``mvau_wwidth_max``: FINN's cap on an MVAU's weight-stream width per PE (FINN's default
    36 bits keeps a 3x3 first layer with one input channel at SIMD 9, i.e. far from the
    target throughput); the hardware benchmark raises it so the baseline can unroll."""
    ensure_finn(Path(out_dir) / "finn_build_dir")
    from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType

    from .boards import get_board

    b = get_board(board)
    clock = clock_mhz or b.clock_mhz
    kwargs = dict(output_dir=str(out_dir), synth_clk_period_ns=1000.0 / clock, board=b.finn_board,
                  generate_outputs=[DataflowOutputType.ESTIMATE_REPORTS], verbose=False)
    if target_fps:
        kwargs["target_fps"] = int(target_fps)
    if folding_config:
        kwargs["folding_config_file"] = str(folding_config)
    if mvau_wwidth_max:
        kwargs["mvau_wwidth_max"] = int(mvau_wwidth_max)
    return DataflowBuildConfig(**kwargs)


def _resolve(step):
    if callable(step):
        return step.__name__, step
    from finn.builder.build_dataflow_steps import build_dataflow_step_lookup

    return step, build_dataflow_step_lookup[step]


@contextlib.contextmanager
def _quiet(log_path: Path, step_name: str):
    """FINN prints progress and warnings; they go to ``build.log`` instead of the terminal."""
    import logging

    with open(log_path, "a") as log:
        log.write(f"==== {step_name}\n")
        log.flush()
        handler = logging.StreamHandler(log)
        finn_logger = logging.getLogger("finn_logger")  # finn.util.logging.log
        old_propagate = finn_logger.propagate
        finn_logger.addHandler(handler)
        finn_logger.propagate = False
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            finn_logger.removeHandler(handler)
            finn_logger.propagate = old_propagate


def run_build(onnx_path: str | os.PathLike, cfg, steps: Sequence, golden: np.ndarray | None = None,
              head: dict | None = None, progress: bool = True, name: str = "build") -> BuildResult:
    """Run ``steps`` on the exported model at ``onnx_path``; verify after each step on ``golden``
    (raw uint8 images, (N, C, H, W)) when given.  ``head``: the export's output quantum
    (default: read from the model's metadata)."""
    out_dir = Path(cfg.output_dir)
    ensure_finn(out_dir / "finn_build_dir")
    from qonnx.core.modelwrapper import ModelWrapper

    import winoforge.hw.ops  # noqa: F401  (our domains must be importable for every executor)
    import winoforge.hw.rtl_ops  # noqa: F401
    import winoforge.hw.winograd_op  # noqa: F401

    from .export import HEAD_KEY, output_codes, read_metadata

    models_dir = out_dir / "intermediate_models"
    models_dir.mkdir(parents=True, exist_ok=True)
    scratch = out_dir / "verification_views"
    model = ModelWrapper(str(onnx_path))
    head = head or read_metadata(model, HEAD_KEY)
    reference = None
    if golden is not None:
        reference = execute_python(model, golden, scratch)
    records: list[StepRecord] = []
    resolved = [_resolve(s) for s in steps]
    iterator = resolved
    if progress:
        from tqdm import tqdm

        iterator = tqdm(resolved, desc=f"build {name}", unit="step")
    before_path = str(onnx_path)
    for i, (step_name, fn) in enumerate(iterator, start=1):
        t0 = time.perf_counter()
        path = models_dir / f"{i:02d}_{step_name}.onnx"
        try:
            with _quiet(out_dir / "build.log", step_name):
                model = fn(model, cfg)
            model.save(str(path))
            verified, note = None, ""
            if golden is not None:
                got = execute_python(model, golden, scratch)
                verified, note = _compare(reference, got, head)
                if not verified:
                    where = first_difference(ModelWrapper(before_path), model, golden, scratch)
                    raise AssertionError(f"Python execution differs from the previous level: {note}{where}")
                reference = {**reference, **got}
            before_path = str(path)
        except Exception as exc:  # noqa: BLE001 -- re-raised with the step named
            raise BuildStepError(step_name, models_dir, exc) from exc
        records.append(StepRecord(step_name, time.perf_counter() - t0, str(path), verified, note))
    result = BuildResult(name, cfg.board, out_dir, records, model, golden_outputs=reference)
    result.estimates = estimate_summary(model, cfg)
    (out_dir / "winoforge_build.json").write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    return result


def _compare(reference: dict, got: dict, head: dict | None) -> tuple[bool, str]:
    from .export import output_codes

    if head:
        a, b = output_codes(head, reference["output"]), output_codes(head, got["output"])
    else:
        a, b = reference["output"], got["output"]
    if not np.array_equal(a, b):
        return False, f"output codes differ in {int((a != b).sum())} of {a.size} places"
    note = "output codes equal"
    if "dataflow" in got and "dataflow" in reference:
        if not np.array_equal(reference["dataflow"], got["dataflow"]):
            return False, "the dataflow partition's integer output changed"
        note += "; dataflow integer output equal"
    return True, note


# ------------------------------------------------------------------ estimates


def _converters(model) -> tuple[list[dict], str | None]:
    """The width converters of the stitched design (:func:`winoforge.hw.finn_estimates.width_converters`),
    or ``([], why)`` where the stitcher would refuse the graph (the converters are then not counted)."""
    from .finn_estimates import width_converters
    from .rtl.stitch import StitchError

    try:
        return width_converters(model), None
    except StitchError as err:
        return [], str(err)


def resource_totals(model, cfg) -> dict[str, float]:
    """Sum of the per-node estimates (LUT, FF, BRAM_18K, DSP, URAM) over the dataflow nodes --
    :func:`winoforge.hw.finn_estimates.node_resources`: FINN's, with Thresholding_rtl and
    ConvolutionInputGenerator_rtl calibrated on Yosys -- plus the stitched design's width converters."""
    from qonnx.custom_op.registry import getCustomOp

    from .finn_estimates import node_resources

    part = cfg._resolve_fpga_part()
    return _totals([node_resources(getCustomOp(node), part) for node in _dataflow_nodes(model)],
                   _converters(model)[0])


def _totals(node_estimates: list[dict], converters: list[dict]) -> dict[str, float]:
    """The numeric resources of the nodes' and the converters' estimates summed (efficiencies left out)."""
    totals: dict[str, float] = {}
    for est in [*node_estimates, *(conv["resources"] for conv in converters)]:
        for k, v in est.items():
            if isinstance(v, (int, float)) and "efficiency" not in k.lower():
                totals[k] = totals.get(k, 0) + v
    return totals


def estimate_summary(model, cfg) -> dict:
    """Per-layer cycles and resources (:func:`resource_totals`' estimates), the width converters of the
    stitched design (``converters``; not graph nodes, so not under ``layers``), the slowest layer, and
    FPS at the build clock."""
    from qonnx.custom_op.registry import getCustomOp

    from winoforge.hw.swg_cycles import exp_cycles

    from .finn_estimates import node_resources

    part = cfg._resolve_fpga_part()
    layers = []
    for node in _dataflow_nodes(model):
        inst = getCustomOp(node)
        entry = {"name": node.name, "op_type": node.op_type, "cycles": exp_cycles(inst),
                 "resources": {k: v for k, v in node_resources(inst, part).items() if isinstance(v, (int, float))}}
        if hasattr(inst, "ideal_cycles"):
            entry.update(ideal_cycles=int(inst.ideal_cycles()), multipliers=int(inst.multipliers()))
        layers.append(entry)
    if not layers:
        return {}
    converters, why = _converters(model)
    clock_hz = 1e9 / cfg.synth_clk_period_ns
    slowest = max(layers, key=lambda e: e["cycles"])
    summary = {"clock_mhz": clock_hz / 1e6, "layers": layers, "converters": converters,
               "totals": _totals([e["resources"] for e in layers], converters),
               "max_cycles": slowest["cycles"], "slowest": slowest["name"], "fps": clock_hz / max(slowest["cycles"], 1)}
    if why:
        summary["converters_not_counted"] = why
    return summary
