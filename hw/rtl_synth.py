"""Yosys synthesis of a stitched accelerator: every layer, every FIFO, next to the estimates.

``synth_design(folder)`` synthesizes (``synth_xilinx -family xc7``, or ``xcup`` for
UltraScale+ parts; :func:`yosys_family`) each layer of a stitched design from its own
sources and each FIFO at its sized depth and width, and sums them into the network's
counts.  A layer Yosys cannot read is reported with Yosys's message instead of counts,
and the network total says which layers it lacks: Yosys 0.23 (Debian) does not parse
the SystemVerilog of finn-rtllib (``int unsigned`` parameters, packages), so FINN's
``Thresholding_rtl``/``ConvolutionInputGenerator_rtl`` and the width converters have no
Yosys counts here -- Vivado or a newer SystemVerilog frontend is needed for them.

Counts: ``lut`` (LUT1..6 plus the LUTs of distributed RAM), ``ff``, ``bram`` (RAMB18/RAMB36 cells), ``dsp``; estimates come
from the package's ``reports/estimates.json`` (FINN's ``node_res_estimation``):
``LUT``, ``FF`` where FINN gives it, ``BRAM_18K``, ``DSP``.
"""

from __future__ import annotations

import json
from pathlib import Path

from .rtl import synth_counts
from .rtl.stitch import FIFO_SOURCE, StitchedDesign

__all__ = ["yosys_family", "synth_design", "estimate_keys", "RESOURCE_KEYS"]

RESOURCE_KEYS = ("lut", "ff", "bram", "dsp")


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
    return {"lut": counts["LUT"] + counts["LUTRAM"], "ff": counts["FF"], "bram": counts["BRAM"], "dsp": counts["DSP"]}


def estimate_keys(resources: dict) -> dict:
    """FINN's estimate keys as ours (``None`` where FINN gives no figure)."""
    def get(*names):
        for n in names:
            if n in resources:
                return resources[n]
        return None

    return {"lut": get("LUT"), "ff": get("FF"), "bram": get("BRAM_18K", "BRAM"), "dsp": get("DSP")}


def synth_design(design: StitchedDesign | str | Path, family: str = "xc7", estimates: dict | None = None) -> dict:
    """``{"layers": [...], "fifos": [...], "network": {...}}`` (module docstring)."""
    design = design if isinstance(design, StitchedDesign) else StitchedDesign.load(design)
    est = {e["name"]: e for e in (estimates or {}).get("layers", [])}
    layers, total, missing = [], dict.fromkeys(RESOURCE_KEYS, 0), []
    for st in design.stages:
        entry = {"name": st.name, "op_type": st.op_type,
                 "est": estimate_keys(est.get(st.name, {}).get("resources", {}))}
        try:
            entry["yosys"] = _small(synth_counts([design.folder / f for f in st.files], st.name, family=family,
                                                 cwd=design.folder))
            for k in RESOURCE_KEYS:
                total[k] += entry["yosys"][k]
        except RuntimeError as err:
            first = next((line for line in str(err).splitlines() if "ERROR" in line), str(err).splitlines()[0])
            # named inside the design's folder, not by this machine's absolute path
            first = first.replace(f"{Path(design.folder).resolve()}/", "")
            entry["yosys"], entry["yosys_error"] = None, first.strip()
            missing.append(st.name)
        layers.append(entry)
    fifos, cache = [], {}
    # FIFO i carries design.edges[i] (a branching design has one per stream); a chain: layer i-1's output
    widths = ([design.in_width if e["src"] < 0 else design.stages[e["src"]].out_ports[e["src_port"]][2]
               for e in design.edges] if design.edges else
              [design.in_width] + [st.out_width for st in design.stages])
    for i, (depth, width) in enumerate(zip(design.fifo_depths, widths)):
        if (depth, width) not in cache:
            cache[depth, width] = _small(synth_counts([FIFO_SOURCE], "wf_fifo", {"DEPTH": depth, "WIDTH": width},
                                                      family=family))
        fifos.append({"index": i, "depth": depth, "width": width, "yosys": cache[depth, width]})
        for k in RESOURCE_KEYS:
            total[k] += cache[depth, width][k]
    converters = (sum(1 for e in design.edges if e["src"] >= 0 and e["dst"] >= 0
                      and design.stages[e["src"]].out_ports[e["src_port"]][1]
                      != design.stages[e["dst"]].in_ports[e["dst_port"]][1]) if design.edges else
                  sum(1 for prev, st in zip([None, *design.stages], design.stages)
                      if prev is not None and prev.out_bits != st.in_bits))
    est_total = {k: sum((lay["est"][k] or 0) for lay in layers) for k in RESOURCE_KEYS}
    return {"family": family, "layers": layers, "fifos": fifos,
            "network": {"yosys": total, "est": est_total, "complete": not missing and converters == 0,
                        "layers_without_yosys_counts": missing, "width_converters_not_counted": converters}}


def write_report(design_folder: str | Path, out: str | Path, family: str, estimates: dict | None = None) -> dict:
    report = synth_design(design_folder, family, estimates)
    Path(out).write_text(json.dumps(report, indent=2) + "\n")
    return report


#: where a package keeps its Yosys report
SYNTH_REPORT = "reports/yosys.json"


def synth_package(package: str | Path) -> dict:
    """Synthesize a package's stitched RTL for its part's family, write :data:`SYNTH_REPORT`
    into the package and re-write its manifest (every sha256 checked before, listed after)."""
    from winoforge.runtime.package import load_package, write_manifest
    from winoforge.runtime.rtl_backend import RTL_DIR

    pkg = load_package(package)
    folder = pkg.path / RTL_DIR
    if not (folder / "stitched.json").is_file():
        raise FileNotFoundError(f"{pkg.path} has no stitched RTL ({RTL_DIR}/stitched.json); build it with "
                                "`winoforge build ... --rtl`")
    estimates = json.loads((pkg.path / "reports" / "estimates.json").read_text())
    report = synth_design(folder, yosys_family(pkg.manifest["fpga_part"]), estimates)
    (pkg.path / SYNTH_REPORT).write_text(json.dumps(report, indent=2) + "\n")
    info = {k: v for k, v in pkg.manifest.items() if k not in ("files", "format_version")}
    info["yosys"] = SYNTH_REPORT
    write_manifest(pkg.path, info)
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m winoforge.hw.rtl_synth PACKAGE`` (``make synth``)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m winoforge.hw.rtl_synth",
                                description="Yosys synth_xilinx of every layer and FIFO of a package's stitched RTL")
    p.add_argument("package")
    args = p.parse_args(argv)
    try:
        report = synth_package(args.package)
    except (FileNotFoundError, ValueError) as err:
        print(f"make synth: {err}")
        return 1
    print(f"{'layer':40s} {'yosys lut/ff/bram/dsp':>24s}   {'estimate lut/ff/bram/dsp':>24s}")
    fmt = lambda d: "/".join("-" if d is None or d.get(k) is None else f"{d[k]:.0f}" for k in RESOURCE_KEYS)  # noqa: E731
    for lay in report["layers"]:
        ys = fmt(lay["yosys"]) if lay["yosys"] else "not read: " + lay["yosys_error"][-40:]
        print(f"{lay['name']:40s} {ys:>24s}   {fmt(lay['est']):>24s}")
    net = report["network"]
    print(f"{'network (layers + FIFOs)':40s} {fmt(net['yosys']):>24s}   {fmt(net['est']):>24s}"
          + ("" if net["complete"] else f"  -- without {', '.join(net['layers_without_yosys_counts'])} and "
                                        f"{net['width_converters_not_counted']} width converter(s)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
