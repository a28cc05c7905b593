"""The WinogradSRBS streaming layer in RTL (``winograd_srbs_layer.sv``): its
parameters from a layer's :class:`~winoforge.hw.winograd_op.WinogradSRBSParams`,
the top-level wrapper with FINN's port names and stream widths, and the files a
layer needs (wrapper, sources, ``$readmemh`` weight files).

Widths come from :func:`winoforge.hw.rtl.unit_parameters` (exact ranges from
``bit_growth``), each capped at the output width: every stage after the input
codes is a ring operation, so computing modulo ``2^out_bits`` gives the output
exactly whenever it fits ``outputDataType`` (which holds the exact output range).

Every folding :func:`~winoforge.hw.winograd_op.choose_folding` can return is
supported (any PE, SIMD, POS, m = 2 and 4, signed or unsigned inputs and
weights, dense or SRBS); :func:`layer_parameters` refuses, naming the field and
its allowed values, what the RTL does not build (m = 6, Padding larger than the
kernel can use).

Weights: a ROM with the bitstream's contents (``$readmemh``; ``ram_style="block"`` puts it
in block RAM, else synthesis maps it: logic where it is small), or, with
``runtime_writeable_weights=1``, a RAM written through a third stream ``in1_V``
(:data:`LOAD_W` bits, the words of
:func:`~winoforge.hw.srbs_codegen.weight_stream_words`; ``ram_style="ultra"`` puts it
in UltraRAM, which takes no contents from a bitstream).  The layer computes once a
whole set is in and may be given a new set between frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from winoforge.hw.rtl import RTL_DIR, RTL_TILES, unit_parameters

__all__ = [
    "LAYER_MODULE",
    "LAYER_SOURCES",
    "layer_parameters",
    "weight_rom_in_block_ram",
    "weight_stream_columns",
    "weight_stream_length",
    "stream_widths",
    "wrapper_source",
    "LayerFiles",
    "write_hdl",
    "write_weights",
    "write_layer",
    "layer_yosys_counts",
]

#: The layer's top module and its sources, dependencies first.
LAYER_MODULE = "winograd_srbs_layer"
LAYER_SOURCES = ("winograd_transform_1d.sv", "winograd_transform_2d.sv", "winograd_input_transform.sv",
                 "winograd_output_transform.sv", "srbs_dot.sv", "winograd_srbs_layer.sv")


#: Bits of one word of a runtime-weight layer's weight stream (``in1_V``; the RTL's LOAD_W):
#: a 64-bit AXI-stream, as a DMA engine or FINN's weight streamers feed it.
LOAD_W = 64


def _roundup8(bits: int) -> int:
    return -(-bits // 8) * 8


def _refuse(field: str, value, reason: str, allowed: str) -> ValueError:
    return ValueError(f"WinogradSRBS RTL: {field}={value} is not supported: {reason} (allowed: {allowed})")


def layer_parameters(params) -> dict[str, int]:
    """SystemVerilog parameters of ``winograd_srbs_layer`` for one layer (without
    the weight file names)."""
    if params.m not in RTL_TILES:
        raise _refuse("m", params.m, "no RTL for this tile", ", ".join(map(str, RTL_TILES)))
    if params.padding > params.t:
        # rows of a band never lie entirely in padding beyond t: keep the window logic simple
        raise _refuse("Padding", params.padding, "a band would start below the padded frame",
                      f"0..{params.t}")
    idt, wdt, odt = params.input_datatype, params.weight_datatype, params.output_datatype
    sub_row, keep = (params.sub_row, params.keep) if params.sparse else (1, 1)
    units = unit_parameters(
        params.m, idt.bitwidth(), bool(idt.signed()), wdt.bitwidth(), sub_row, keep, params.simd,
        w_signed=bool(wdt.signed()), cin=params.ifm_channels,
    )
    it, dot, ot = units["winograd_input_transform"], units["srbs_dot"], units["winograd_output_transform"]
    ob = odt.bitwidth()
    v_w = min(it["OUT_W"], ob)
    return {
        "M": params.m, "H": params.ifm_dim[0], "W": params.ifm_dim[1],
        "CIN": params.ifm_channels, "COUT": params.ofm_channels, "PAD": params.padding,
        "SIMD": params.simd, "ISIMD": params.in_simd, "PE": params.pe, "POS": params.pos,
        "SUBROW": sub_row, "KEEP": keep,
        "IN_W": idt.bitwidth(), "IN_SIGNED": int(bool(idt.signed())),
        "W_W": wdt.bitwidth(), "W_SIGNED": int(bool(wdt.signed())),
        "IDX_W": dot["IDX_W"], "HAS_IDX": int(params.sparse and params.index_bits > 0),
        "VMID_W": min(it["MID_W"], v_w), "V_W": v_w,
        "PROD_W": min(dot["PROD_W"], ob), "SUM_W": min(dot["SUM_W"], ob), "ACC_W": min(dot["ACC_W"], ob),
        "OMID_W": min(ot["MID_W"], ob), "OUT_W": ob, "OE": params.out_stream_elems,
        "NVB": v_buffer_slots(params),
        "MUL_LUT": int(params.mult_style == "lut"),
        "OTF_SERIAL": int(output_transform_serial(params)),
        **({"RUNTIME_W": 1, "LOAD_W": LOAD_W, "URAM": int(params.ram_style == "ultra")}
           if params.runtime_weights else {"ROM_BLOCK": 1} if params.ram_style == "block" else {}),
        **({"ROM_PIPE": 1} if weight_rom_in_block_ram(params) else {}),
    }


def weight_rom_in_block_ram(params) -> bool:
    """Whether the layer's weight ROM lies in block RAM -- ``ram_style = "block"``, or ``auto`` where
    Yosys maps it there (:func:`winoforge.hw.srbs_estimates.memories`' rule, exact on every calibration
    point) -- so that the RTL reads it one issue ahead and registers its line twice (``ROM_PIPE``): a
    block-RAM ROM split by depth puts a LUT mux behind its block RAMs, which with one register sat
    straight in front of the LUT multipliers (ABC mapped the lanes for depth: 1.4-2.2x their LUTs,
    ``benchmarks/results/winograd_layer_synth_nagadomi_*.json``).  A ROM in logic keeps one register
    (with two, Yosys mapped such ROMs 8-84 % larger on the xc7 calibration points).  False for
    runtime-writeable weights (a RAM written by the weight stream).  The value ROM decides for the index
    ROM too: the two stay in step."""
    from winoforge.hw.srbs_estimates import weight_rom_style

    return not params.runtime_weights and weight_rom_style(params) == "block"


def weight_stream_columns(params, r: dict | None = None) -> int:
    """Runtime-writeable weights: the :data:`LOAD_W`-bit words of one weight-memory line
    (``POS * PE * lanes`` values and, SRBS, as many indices); ``r``: the layer's
    :func:`layer_parameters`, where the caller has them."""
    r = layer_parameters(params) if r is None else r
    ne = params.pos * params.pe * params.lanes
    return -(-ne * (r["W_W"] + (r["IDX_W"] if r["HAS_IDX"] else 0)) // LOAD_W)


def weight_stream_length(params) -> int:
    """Words of a runtime-weight layer's weight stream: lines (``(t^2/POS) ceil(Cout/PE) (Cin/SIMD)``)
    times :func:`weight_stream_columns`."""
    lines = params.weight_memory_depth
    return lines * weight_stream_columns(params)


def window_to_pe(params) -> int:
    """Cycles from the window stage's last read of a tile to the PE array's first
    read of it, plus one for the slot's release (winograd_srbs_layer.sv): line
    buffer read, column transform, then the row pass writes V one row a cycle."""
    return params.t + 2


def v_buffer_slots(params) -> int:
    """V buffer slots: 2 (double buffer) where a tile's PE work ``(t^2/POS) * cf * sf``
    covers its ``t * sfi`` window reads (``sfi = IFMChannels/ISIMD``) plus the hand-over;
    else 3, so the window stage runs two tiles ahead and the window reads alone set the pace."""
    pe_work = params.weight_memory_depth  # (t^2/POS) * cf * sf
    return 2 if pe_work >= params.t * params.in_folds + window_to_pe(params) else 3


def output_transform_serial(params) -> bool:
    """One serial 1-D ``A^T`` unit per PE (``t + m`` cycles a tile and output fold)
    where the PE array takes at least that long to accumulate the next output fold
    (``(t^2/POS) * Cin/SIMD`` cycles, the estimate's ``u_out = 1``); else a
    parallel 2-D transform per PE (one fold a cycle)."""
    sf = params.ifm_channels // params.simd
    return params.position_groups * sf >= params.t + params.m


def stream_widths(params) -> tuple[int, int]:
    """FINN's padded stream widths ``(in, out)`` in bits: ``ISIMD * in_bits`` (SIMD where
    ISIMD is 0) and ``OE * out_bits``, each rounded up to a multiple of 8 (AXI-stream)."""
    return (_roundup8(params.in_simd * params.input_datatype.bitwidth()),
            _roundup8(params.out_stream_elems * params.output_datatype.bitwidth()))


def wrapper_source(top: str, params, values_file: str, indices_file: str) -> str:
    """A top module ``top`` with FINN's ports (``ap_clk``, ``ap_rst_n``,
    ``in0_V_*``, ``out0_V_*`` at the padded widths) around ``winograd_srbs_layer``."""
    if not top.isidentifier():
        raise ValueError(f"top module name {top!r} is not a Verilog identifier")
    sv = layer_parameters(params)
    win, wout = stream_widths(params)
    in_bits = params.in_simd * params.input_datatype.bitwidth()
    out_bits = params.out_stream_elems * params.output_datatype.bitwidth()
    w_doc = (f"\n// in1_V {LOAD_W} bits: the weight stream (runtime-writeable weights, "
             "winoforge.hw.srbs_codegen.weight_stream_words)" if params.runtime_weights else "")
    plist = ",\n".join(f"        .{k}({v})" for k, v in sv.items())
    pad_out = f"{{{wout - out_bits}'b0, data}}" if wout > out_bits else "data"
    unused = (f"    logic unused_in;\n    assign unused_in = &{{1'b0, in0_V_TDATA[{win - 1}:{in_bits}]}};\n"
              if win > in_bits else "")
    if params.runtime_weights:  # the weight stream, FINN's name for a layer's second input stream
        w_ports = (f",\n    input  logic [{LOAD_W - 1}:0] in1_V_TDATA,\n    input  logic              in1_V_TVALID,"
                   "\n    output logic              in1_V_TREADY")
        w_conn = ".w_tvalid(in1_V_TVALID), .w_tready(in1_V_TREADY), .w_tdata(in1_V_TDATA)"
        w_wire = ""
    else:
        w_ports, w_conn = "", ".w_tvalid(1'b0), .w_tready(unused_w_tready), .w_tdata('0)"
        w_wire = "\n    logic unused_w_tready;  // the layer's weight stream: not used (weights from $readmemh)"
    for name in (values_file, indices_file):
        if '"' in name or "\\" in name:
            raise ValueError(f"weight file name {name!r} must not contain quotes or backslashes")
    return f"""// {top} -- WinogradSRBS layer (generated by winoforge.hw.rtl.winograd_layer).
// FINN stream ports: in0_V {win} bits ({params.in_simd} x {params.input_datatype.name}),
// out0_V {wout} bits ({params.out_stream_elems} x {params.output_datatype.name}).{w_doc}
module {top} (
    input  logic              ap_clk,
    input  logic              ap_rst_n,
    input  logic [{win - 1}:0] in0_V_TDATA,
    input  logic              in0_V_TVALID,
    output logic              in0_V_TREADY,
    output logic [{wout - 1}:0] out0_V_TDATA,
    output logic              out0_V_TVALID,
    input  logic              out0_V_TREADY{w_ports}
);
    logic [{out_bits - 1}:0] data;{w_wire}
    winograd_srbs_layer #(
{plist},
        .VALUES_FILE("{values_file}"),
        .INDICES_FILE("{indices_file}")
    ) u_layer (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .in_tvalid(in0_V_TVALID), .in_tready(in0_V_TREADY), .in_tdata(in0_V_TDATA[{in_bits - 1}:0]),
        .out_tvalid(out0_V_TVALID), .out_tready(out0_V_TREADY), .out_tdata(data),
        {w_conn}
    );
    assign out0_V_TDATA = {pad_out};
{unused}endmodule
"""


@dataclass(frozen=True)
class LayerFiles:
    """What :func:`write_layer` wrote: the wrapper, the sources (wrapper last) and
    the weight files."""

    top: str
    wrapper: Path
    sources: list[Path]
    weight_files: list[Path]


def write_hdl(params, out_dir: Path | str, top: str, *, weight_path: str = "",
              copy_sources: bool = True) -> list[Path]:
    """Write ``<top>.sv`` (the wrapper; its ``$readmemh`` files are
    :func:`~winoforge.hw.srbs_codegen.weight_files` ``(top)``, prefixed with
    ``weight_path``: "" = relative, read from the simulator's working directory,
    or an absolute folder) and, with ``copy_sources``, the layer's sources into
    ``out_dir``.  Returns the sources, wrapper last."""
    from winoforge.hw.srbs_codegen import weight_files

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = (weight_path.rstrip("/") + "/") if weight_path else ""
    values_file, indices_file = weight_files(top)
    wrapper = out / f"{top}.sv"
    wrapper.write_text(wrapper_source(top, params, prefix + values_file, prefix + indices_file))
    sources = []
    for name in LAYER_SOURCES:
        src = RTL_DIR / name
        if copy_sources:
            dst = out / name
            dst.write_text(src.read_text())
            src = dst
        sources.append(src)
    return [*sources, wrapper]


def write_weights(params, U: np.ndarray, out_dir: Path | str, top: str) -> list[Path]:
    """The ``$readmemh`` files of weights ``U`` for the layer ``top`` in ``out_dir``."""
    from winoforge.hw import srbs_codegen as cg
    from winoforge.hw.srbs_params import check_weights

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    U = check_weights(U, params)
    values, indices = cg.weight_memory_words(U, params)
    values_file, indices_file = cg.weight_files(top)
    files = [out / values_file]
    files[0].write_text("\n".join(cg._hex_lines(values, params.weight_datatype.bitwidth())) + "\n")
    if params.index_bits:
        files.append(out / indices_file)
        files[1].write_text("\n".join(cg._hex_lines(indices, params.index_bits)) + "\n")
    return files


def write_layer(params, U: np.ndarray, out_dir: Path | str, top: str, *, weight_path: str = "",
                copy_sources: bool = True) -> LayerFiles:
    """:func:`write_hdl` and :func:`write_weights` into ``out_dir``."""
    sources = write_hdl(params, out_dir, top, weight_path=weight_path, copy_sources=copy_sources)
    return LayerFiles(top, sources[-1], sources, write_weights(params, U, out_dir, top))


def layer_yosys_counts(params, U: np.ndarray, family: str = "xc7") -> dict:
    """Yosys ``synth_xilinx`` counts of the whole layer with weights ``U``
    (:func:`winoforge.hw.rtl.synth_counts`)."""
    import tempfile

    from winoforge.hw.rtl import synth_counts

    with tempfile.TemporaryDirectory(prefix="winoforge_layer_") as tmp:
        files = write_layer(params, U, tmp, "layer_top")
        return synth_counts(files.sources, "layer_top", family=family, cwd=tmp)
