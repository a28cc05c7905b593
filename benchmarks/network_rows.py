"""The rows of ``benchmarks/networks.py`` (issue 12): what names a row, and the RTL builds of
``benchmarks/rtl.py`` (``rtl.json``, ``rtl_rows.json``) applied to the rows -- FPS from the
Verilator-simulated cycles, resources by Yosys (:func:`apply_rtl`).  ``networks.py`` imports these;
``rtl.py --rows`` names its builds by :func:`row_key`."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"

#: the SRBS pattern of the shipped students (and of rows recorded before rows named their ``sub_row``)
SUB_ROW = 8
#: the row each flow's folding is capped by (no more LUT and DSP than its final figures)
REFERENCE_FLOW = {"winograd_dense": "finn", "srbs": "winograd_dense"}

#: bench-rtl's networks (``benchmarks/results/rtl.json``) that are rows of this benchmark: the PYNQ-Z2
#: benchmark network there is ``hw_estimates.WIDTHS`` (= ``VGG_PYNQ``), W4A4, SRBS 2/8, uniform widths.
#: ``rtl_rows.json`` (``bench-rtl --rows``) names its rows itself (each network's ``row``).
RTL_ROWS = {"pynq-z2-benchmark": ("fmnist-vgg", "srbs", 0.25, False, SUB_ROW)}
RTL_FILES = ("rtl.json", "rtl_rows.json")
CLOCK_HZ = 100e6
_ROW_FIGURES = ("fps", "lut", "ff", "bram", "dsp", "uram")
#: a faster build over its row's reference by at most this share of the reference's LUT is worth rebuilding
#: on a changed RTL (:func:`stale_builds`): the RTL changes so far moved whole designs by 1-6 %
NEAR_MISS = 0.05


def row_sub_row(row: dict) -> int | None:
    """An SRBS row's sub-row length (:data:`SUB_ROW` where the row predates the field); None for
    the dense flows."""
    return (row.get("sub_row") or SUB_ROW) if row["flow"] == "srbs" else None


def row_pattern(row: dict) -> str | None:
    """An SRBS row's pattern, ``"2of8"``, ``"1of4"``... (keep from its density where the row
    predates the field); None for the dense flows."""
    sub_row = row_sub_row(row)
    return f"{row.get('keep') or round(row['density'] * sub_row)}of{sub_row}" if sub_row else None


def row_key(row: dict) -> tuple:
    """``(network, flow, density, mixed_precision, sub_row)``: what names a row of this benchmark (a
    row here, a network's ``row`` in ``rtl_rows.json``)."""
    return row["network"], row["flow"], row["density"], row["mixed_precision"], row_sub_row(row)


def rtl_networks(results: Path = RESULTS) -> list[tuple[tuple, dict, str]]:
    """``(row key, bench-rtl network, file)`` for every network ``make bench-rtl`` built that is a
    row here, at the row's folding or at a candidate folding of its flow (``rtl.py --rows
    NETWORK:FLOW@FPS``); a build in ``rtl_rows.json`` replaces one of ``rtl.json`` of the same row
    and folding (estimated cycles per frame)."""
    found = {}
    for name, net in recorded_builds(results):
        row = net.get("row")
        key = row_key(row) if row else RTL_ROWS.get(net["name"])
        if key is not None:
            found[(key, net["cycles_per_frame_est"])] = (key, net, f"benchmarks/results/{name}")
    return list(found.values())


def recorded_builds(results: Path = RESULTS) -> list[tuple[str, dict]]:
    """``(file name, network)`` for every network recorded in :data:`RTL_FILES` under ``results``, in file
    order (``rtl.json`` first: a build of ``rtl_rows.json`` comes after one of the same name there)."""
    return [(name, net) for name in RTL_FILES if (results / name).is_file()
            for net in json.loads((results / name).read_text()).get("networks", [])]


def winograd_layer_parameters(package: Path) -> dict[str, dict]:
    """Each ``WinogradSRBS_rtl`` layer of a built package: its node ``attributes`` (those
    :class:`~winoforge.hw.srbs_params.WinogradSRBSParams` takes, from ``hdl/<layer>/params.json``) and the
    SystemVerilog parameters its top module instantiates the layer with (``rtl``, read from
    ``rtl/<layer>.sv``): what Python generated the RTL with, which the digests of the ``.sv`` sources
    do not cover (:func:`layer_parameters_current`)."""
    from winoforge.hw.srbs_params import ATTRS

    out = {}
    for path in sorted((Path(package) / "hdl").glob("WinogradSRBS_rtl_*/params.json")):
        name = path.parent.name
        attrs = json.loads(path.read_text())["attributes"]
        top = (Path(package) / "rtl" / f"{name}.sv").read_text()
        out[name] = {"attributes": {k: attrs[k] for k in ATTRS if k in attrs},
                     "rtl": {k: int(v) for k, v in re.findall(r"\.([A-Z][A-Z0-9_]*)\((-?\d+)\)", top)}}
    return out


def layer_parameters_current(net: dict) -> bool | None:
    """Whether the current Python (:func:`winoforge.hw.rtl.winograd_layer.layer_parameters`) generates every
    WinogradSRBS layer of a build with the parameters the build recorded (``winograd_layers``,
    :func:`winograd_layer_parameters`); None for builds recorded without them."""
    from winoforge.hw.rtl.winograd_layer import layer_parameters
    from winoforge.hw.srbs_params import WinogradSRBSParams

    layers = net.get("winograd_layers")
    if not layers:
        return None
    return all(layer_parameters(WinogradSRBSParams.from_attributes(rec["attributes"])) == rec["rtl"]
               for rec in layers.values())


def built_on_current_rtl(net: dict) -> bool | None:
    """Whether a bench-rtl build's RTL is the current one: the digests of the sources its design
    used (``rtl_files``, ``rtl.py``) against :func:`winoforge.hw.rtl.rtl_file_digests`, and where the build
    recorded them the parameters Python generated its WinogradSRBS layers with
    (:func:`layer_parameters_current`); for builds recorded before those, the digest of all our sources
    (``rtl_digest``) against :func:`winoforge.hw.rtl.rtl_sources_digest`, and before that whether git finds ``hw/rtl``
    unchanged since the build's commit (``None``: unknown -- no commit, or no git checkout)."""
    import subprocess

    from winoforge.hw.rtl import rtl_file_digests, rtl_sources_digest

    if net.get("rtl_files"):
        current = rtl_file_digests()
        return (all(current.get(f) == h for f, h in net["rtl_files"].items())
                and layer_parameters_current(net) is not False)
    if net.get("rtl_digest"):
        return net["rtl_digest"] == rtl_sources_digest()
    commit = net.get("git_commit")
    if not commit:
        return None
    run = subprocess.run(["git", "diff", "--quiet", commit, "--", "hw/rtl"], cwd=ROOT.parent, capture_output=True)
    return {0: True, 1: False}.get(run.returncode)


def references_first(rows: list[dict]) -> list[dict]:
    """``rows`` with every reference before the rows it caps (:data:`REFERENCE_FLOW`: stock FINN, then dense
    Winograd, then SRBS; other flows last), in their order otherwise."""
    flows = ["finn", "winograd_dense", "srbs"]
    return sorted(rows, key=lambda r: flows.index(r["flow"]) if r["flow"] in flows else len(flows))


def apply_rtl(rows: list[dict], rtl: list[tuple[tuple, dict, str]]) -> None:
    """Where ``make bench-rtl`` built, simulated and synthesized a row's network (same network, flow,
    density, pattern, mixed precision; :func:`rtl_networks`) the row takes the RTL's figures: FPS from
    the Verilator-simulated cycles per frame, LUT/FF/BRAM/DSP from Yosys (every layer, FIFO and
    converter, summed), ``source: "rtl"``; its estimates move to ``estimate``.

    * A build at the row's folding (the same estimated cycles per frame) gives the row its figures.
    * A build at another folding of the row's flow replaces the row's folding where it is faster and
      *measured* within the row's limits: Yosys LUT and DSP no more than the final figures of the row
      that capped it (``REFERENCE_FLOW``; references are applied first) and the board, 0 mismatches.
      The search caps each flow on estimates, which err by a few per cent either way; a folding just
      past the estimate's cap can hold under Yosys (``rtl.chosen`` says so).
    * Where the row's own build is *over* those limits by Yosys, the fastest build within them
      replaces it even if it is slower (else the row keeps its own build, marked ``!`` in the table).
    * ``rtl.current_rtl`` says whether the build's RTL is the current one (:func:`built_on_current_rtl`;
      ``rtl*`` in the table where it is not: the RTL computes the same integers, but its counts and
      cycles may have moved since).
    Re-applicable: a row that is already ``rtl`` starts again from its ``estimate``."""
    from winoforge.hw.boards import fits, get_board

    by_key: dict[tuple, list] = {}
    for key, net, origin in rtl:
        if net.get("yosys_complete"):
            by_key.setdefault(key, []).append((net, origin))
    for row in rows:
        if "rtl" in row:  # back to the estimates, then again from the current RTL results
            row.update(row.pop("estimate"), source="estimate")
            del row["rtl"]
    for row in references_first(rows):
        nets = by_key.get(row_key(row), [])
        if not row.get("fps") or not nets:
            continue
        chosen = next(((n, o) for n, o in nets if n["cycles_per_frame_est"] == row.get("max_cycles")), None)
        fps = CLOCK_HZ / chosen[0]["cycles_per_frame_sim"] if chosen else row["fps"]
        ref = next((r for r in rows if r["network"] == row["network"]
                    and r["flow"] == REFERENCE_FLOW.get(row["flow"]) and r.get("fps")), None)
        same = chosen[0] if chosen else None

        def within(n: dict) -> bool:
            return (n["mismatches"] == 0 and ref is not None
                    and n["yosys"]["lut"] <= ref["lut"] and n["yosys"]["dsp"] <= ref["dsp"]
                    and fits({"LUT": n["yosys"]["lut"], "BRAM_18K": build_bram18(n)[0], "DSP": n["yosys"]["dsp"],
                              "URAM": n["yosys"].get("uram", row.get("uram") or 0)}, get_board(row["board"])).ok)

        # faster builds within the limits; where the row's own build is over them, slower ones too
        own_over = same is not None and ref is not None and not within(same)
        better = [(n, o) for n, o in nets if n is not same and within(n)
                  and (own_over or CLOCK_HZ / n["cycles_per_frame_sim"] > fps)]
        why = None
        if better:
            folded = chosen
            chosen = min(better, key=lambda no: no[0]["cycles_per_frame_sim"])
            why = (f"fastest build of this flow measured within {ref['flow']}'s LUT/DSP ({ref['lut']:.0f}, "
                   f"{ref['source']}) and the board; the estimates capped the search at {row['fps']:.0f} FPS"
                   + (f" ({CLOCK_HZ / folded[0]['cycles_per_frame_sim']:.0f} simulated"
                      + (f", {folded[0]['yosys']['lut']} LUT by Yosys: over" if own_over else "") + ")"
                      if folded else ""))
        if chosen is None:
            continue
        net, origin = chosen
        row["estimate"] = {k: row.get(k) for k in (*_ROW_FIGURES, "max_cycles", "target_fps")}
        y = net["yosys"]
        bram18, bram_from = build_bram18(net)
        row.update(fps=CLOCK_HZ / net["cycles_per_frame_sim"], lut=y["lut"], ff=y["ff"], bram=bram18 / 2,
                   dsp=y["dsp"], uram=y.get("uram", row.get("uram")), source="rtl",
                   max_cycles=net["cycles_per_frame_est"],
                   target_fps=net.get("row", {}).get("target_fps", row.get("target_fps")))
        row["rtl"] = {"from": origin, "network": net["name"], "images": net["images"],
                      "current_rtl": built_on_current_rtl(net),
                      "mismatches": net["mismatches"], "cycles_per_frame_sim": net["cycles_per_frame_sim"],
                      "cycles_per_frame_est": net["cycles_per_frame_est"], "yosys_whole": net.get("yosys_whole"),
                      "note": "FPS from Verilator's cycles per frame at 100 MHz; LUT/FF/BRAM (RAMB18 / 2)/DSP "
                              "(URAM where the build counted it) by Yosys synth_xilinx, every layer, FIFO and "
                              "converter summed",
                      "bram_from": bram_from,
                      **({"chosen": why} if why else {})}


def build_bram18(net: dict) -> tuple[float, str]:
    """A recorded RTL build's block RAM in RAMB18s and where the figure comes from: Yosys's count where the
    build records its unit (``bram_unit``, :data:`winoforge.hw.rtl.BRAM_UNIT`: a RAMB36 counts two), else the
    build's own estimate -- builds recorded before session 25 summed RAMB18 and RAMB36 cells one each, so
    their Yosys figure undercounts wherever synthesis chose RAMB36 (a 256 -> 256 layer of cifar-vgg-nagadomi:
    68 RAMB36 + 6 RAMB18 recorded as 74 where it is 142; its estimate, 143)."""
    from winoforge.hw.rtl import BRAM_UNIT

    if net.get("bram_unit") == BRAM_UNIT:
        return net["yosys"]["bram"], "yosys"
    return (net.get("est") or {}).get("bram") or 0, ("estimate (this build's Yosys count took a RAMB36 as one "
                                                     "RAMB18, the count before session 25)")


def folding_fps(cycles: float) -> int:
    """The target FPS whose cycle budget (``int(CLOCK_HZ / fps)``, as the build's folding search takes it) is
    the least that still holds ``cycles`` a frame: the ``@FPS`` that asks ``rtl.py --rows`` for the folding
    of a build of those cycles again, whatever target it was first built at."""
    return int(CLOCK_HZ // cycles)


def rebuild_spec(row: dict, net: dict) -> str:
    """The ``rtl.py --rows`` argument that rebuilds build ``net`` of ``row`` at the folding it was built at:
    ``NETWORK:FLOW`` for a build of the row's own folding while that is still the folding the row's search
    takes; else -- a candidate, or a row whose search has moved since (an estimate refit: fmnist-resnet8's
    mixed 1 of 4 row went from 6,272 to 4,704 cycles) -- ``NETWORK:FLOW@FPS`` with FPS the
    :func:`folding_fps` of the build's cycles.  Not the target it was first built at: the search at that
    target may take another folding now (fmnist-vgg's 4 of 8 candidate @2016 was built at 32,768 cycles;
    at 2016 FPS the search now takes 49,152)."""
    base = f"{row['network']}:{net['name'][len(row['network']) + 1:]}".split("@")[0]
    built, now = (net.get("row") or {}), row.get("estimate", row)
    if "@" in net["name"] or (built.get("max_cycles") and built["max_cycles"] != now.get("max_cycles")):
        cycles = built.get("max_cycles") or net.get("cycles_per_frame_est")
        if cycles:
            return f"{base}@{folding_fps(cycles)}"
    return base


def stale_builds(rows: list[dict], rtl: list[tuple[tuple, dict, str]]) -> list[dict]:
    """The RTL builds the ``rtl`` rows stand on (their own folding's, or the candidate :func:`apply_rtl` gave
    them), and their flows' faster builds that were over the reference by no more than :data:`NEAR_MISS` when
    measured (another RTL may put them within), that were built on an RTL that has changed since
    (:func:`built_on_current_rtl` not True), each once, in the order a rebuild round takes them: by network,
    :func:`references_first` (a row's choice among its builds is against its reference's figures).  Each
    entry: the rows it backs, the build, ``spec`` -- the ``rtl.py --rows`` argument that rebuilds it
    (``None`` for ``rtl.json``'s benchmark network: ``make bench-rtl`` rebuilds that) --, ``cifar`` (a
    CIFAR-sized build: 50 random images and ``--no-whole``, as those rows were built), and the build's
    previous wall time."""
    builds = {net["name"]: (key, net, origin) for key, net, origin in rtl}
    out: dict[str, dict] = {}
    for row in references_first(rows):
        name = (row.get("rtl") or {}).get("network") if row.get("source") == "rtl" else None
        if name not in builds:
            continue
        label = row["flow"] if row["flow"] != "srbs" else f"srbs {row_pattern(row)}" + (
            " mixed" if row["mixed_precision"] else "")
        taken = builds[name][1]["cycles_per_frame_sim"]
        ref = next((r for r in rows if r["network"] == row["network"] and r["flow"] == REFERENCE_FLOW.get(row["flow"])
                    and r.get("lut")), None)
        near = ref["lut"] * (1 + NEAR_MISS) if ref else 0.0

        def near_miss(n: dict) -> bool:  # faster, bit-exact, and over the reference by no more than NEAR_MISS
            return n["cycles_per_frame_sim"] < taken and n["mismatches"] == 0 and n["yosys"]["lut"] <= near

        mine = [(n, f"{label} (a faster build, over its reference then)" if n["name"] != name else label)
                for key, n, _ in builds.values() if key == row_key(row) and (n["name"] == name or near_miss(n))]
        for net, why in sorted(mine, key=lambda nw: nw[0]["name"] != name):
            if built_on_current_rtl(net) is True:
                continue
            network, build = row["network"], net["name"]
            entry = out.setdefault(build, {
                "network": network, "rows": [], "build": build, "origin": builds[build][2],
                "spec": rebuild_spec(row, net) if build.startswith(network + "-") else None,
                "cifar": network.startswith("cifar-"), "wall_s": (net.get("wall_s") or {}).get("total")})
            entry["rows"].append(why)
    order = list(dict.fromkeys(r["network"] for r in rows))
    return sorted(out.values(), key=lambda e: order.index(e["network"]))


def _layer_part(net: dict, layer: dict) -> tuple[str, str | None, int | None]:
    """A recorded layer's part in :func:`compare_builds`, its SRBS pattern and its multipliers: a WinogradSRBS
    layer is a part of its own (pattern ``dense``, ``1of4``...; from the build's ``winograd_layers``, ``?``
    where the build predates them), every other layer a part of its op type (pattern and multipliers None)."""
    if not layer["op_type"].startswith("WinogradSRBS"):
        return layer["op_type"], None, None
    rtl = ((net.get("winograd_layers") or {}).get(layer["name"]) or {}).get("rtl")
    if rtl is None:
        return layer["name"], "?", None
    pattern = f"{rtl['KEEP']}of{rtl['SUBROW']}" if rtl["HAS_IDX"] else "dense"
    return layer["name"], pattern, rtl["PE"] * rtl["POS"] * rtl["SIMD"] // rtl["SUBROW"] * rtl["KEEP"]


def compare_builds(a: dict, b: dict) -> list[dict]:
    """Where two recorded RTL builds' Yosys LUTs differ (``rtl.py --compare A B``): a part per WinogradSRBS
    layer, one per other op type (summed), the FIFOs, the width converters, and the total -- the sum of the
    parts, as the builds' ``yosys`` figure is.  Each part: ``part``, and per build (pairs a, b) ``lut``,
    ``count`` (layers, FIFOs or converters in it), ``cycles`` (a WinogradSRBS layer's simulated cycles per
    frame; the total's: the frame's), ``pattern`` and ``multipliers`` (a WinogradSRBS layer's; the total's:
    all of them, None where one is unknown); ``delta`` = b - a in LUT.  A part one build lacks counts 0 there."""
    parts: dict[str, dict] = {}

    def add(side: int, name: str, lut: int, cycles=None, pattern=None, mults=None) -> None:
        p = parts.setdefault(name, {"part": name, **{k: [None, None] for k in ("cycles", "pattern", "multipliers")},
                                    "lut": [0, 0], "count": [0, 0]})
        p["lut"][side] += lut
        p["count"][side] += 1
        for key, value in (("cycles", cycles), ("pattern", pattern), ("multipliers", mults)):
            if value is not None:
                p[key][side] = value

    for side, net in enumerate((a, b)):
        for layer in net["layers"]:
            name, pattern, mults = _layer_part(net, layer)
            add(side, name, layer["yosys"]["lut"], layer["cycles_sim"] if pattern else None, pattern, mults)
        for fifo in net.get("fifos", []):
            add(side, "FIFOs", fifo["yosys"]["lut"])
        for conv in net.get("converters", []):
            add(side, "width converters", conv["yosys"]["lut"])
    out = [{**{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()}, "delta": p["lut"][1] - p["lut"][0]}
           for p in parts.values()]
    total = tuple(sum(p["lut"][s] for p in out) for s in (0, 1))
    out.append({"part": "total", "lut": total, "delta": total[1] - total[0],
                "count": tuple(sum(p["count"][s] for p in out) for s in (0, 1)),
                "cycles": (a["cycles_per_frame_sim"], b["cycles_per_frame_sim"]), "pattern": (None, None),
                "multipliers": tuple(_total_multipliers(out, s) for s in (0, 1))})
    return out


def _total_multipliers(parts: list[dict], side: int) -> int | None:
    """All WinogradSRBS layers' multipliers in one build of :func:`compare_builds`; None where a layer's are
    not recorded (a build that predates ``winograd_layers``)."""
    mults = [p["multipliers"][side] for p in parts if p["pattern"][side] is not None]
    return None if None in mults else sum(mults)


def format_compare(a: dict, b: dict) -> str:
    """:func:`compare_builds` as a table."""
    def n(v) -> str:
        return "" if v is None else f"{v:,.0f}"

    lines = [f"A = {a['name']}, B = {b['name']}: LUT by Yosys, cycles per frame simulated",
             f"{'part':36s} {'pattern':>13s} {'A LUT':>8s} {'B LUT':>8s} {'B - A':>8s} {'A cycles':>9s} "
             f"{'B cycles':>9s} {'A mult':>7s} {'B mult':>7s}"]
    for p in compare_builds(a, b):
        pa, pb = p["pattern"]
        pattern = "" if pa is None and pb is None else (pa or "-") if pa == pb else f"{pa or '-'} -> {pb or '-'}"
        label = p["part"] if p["pattern"] != (None, None) or p["part"] == "total" else \
            f"{p['part']} ({p['count'][0]}/{p['count'][1]})"
        lines.append(f"{label:36s} {pattern:>13s} {n(p['lut'][0]):>8s} {n(p['lut'][1]):>8s} {p['delta']:>+8,d} "
                     f"{n(p['cycles'][0]):>9s} {n(p['cycles'][1]):>9s} {n(p['multipliers'][0]):>7s} "
                     f"{n(p['multipliers'][1]):>7s}")
    return "\n".join(lines)
