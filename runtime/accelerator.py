"""One API over both backends: ``Accelerator.load(package, backend=...)``, ``acc.execute(x)``.

* ``backend="pynq"``: the package's bitstream on a PYNQ board -- ``pynq.Overlay``
  loads ``manifest["bitfile"]`` (a ``.bit`` with its ``.hwh`` next to it; :func:`open_overlay`)
  and :class:`~winoforge.runtime.device.DataflowDriver` drives FINN's IODMAs through
  cacheable ``pynq.allocate``'d buffers (:func:`pynq_allocator`).  Tested against pynq's
  own code with a simulated ``pynq.Device`` (:mod:`winoforge.runtime.pynq_sim`).
* ``backend="sim"``: the same driver against a
  :class:`~winoforge.runtime.device.SimulatedOverlay` whose pipeline is the
  package's bit-exact integer program (``<package>/runtime/program.json``).
* ``backend="rtl"``: the same driver and simulated DMAs, computed by the package's
  stitched RTL under Verilator (:mod:`.rtl_backend`; host environment only).
* ``backend="auto"``: ``pynq`` where the package has a bitfile and ``pynq`` finds a
  device, else ``sim``.

Runtime-writeable weights: a package whose manifest lists ``runtime_weights`` (layers
that keep their weights in a RAM written at run time, one weight DMA each) gets those
streams written through the weight DMAs when it is loaded, on every backend;
:meth:`Accelerator.load_weights` writes new ones (new weights, same bitstream).  The
simulated device computes with the weights its DMAs delivered (decoded by
:mod:`.weights`), the rtl backend feeds them to the stitched design's weight stream.

Loading first verifies the package (every sha256, :mod:`.package`).  The io spec
(datatypes and normal/folded shapes of the accelerator's input and output) comes
from the program (``Program.load(<package>/runtime).io``), whichever backend runs.
``pynq`` is imported only for the pynq backend (and by ``auto`` where a bitfile exists).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .device import DataflowDriver, IOSpec, SimulatedOverlay
from .package import Package, load_package

__all__ = ["Accelerator", "BackendError", "ProgramLike", "BACKENDS", "PROGRAM_DIR", "open_overlay", "to_accelerator_layout",
           "pynq_allocator", "runtime_weight_entries"]

#: backend names :meth:`Accelerator.load` accepts
BACKENDS = ("auto", "pynq", "sim", "rtl")
#: the package sub-folder holding the simulated device's program
PROGRAM_DIR = "runtime"


class BackendError(RuntimeError):
    """The requested backend cannot run here (no bitfile, no pynq, no device...)."""


class ProgramLike(Protocol):
    """What the runtime needs of ``winoforge.runtime.program.Program``."""

    io: Any

    def run(self, x: np.ndarray) -> np.ndarray: ...


def _load_program(folder: Path) -> ProgramLike:
    from .program import Program  # lazily: written separately, only needed here

    return Program.load(folder)


def _import_pynq() -> Any:
    try:
        import pynq  # noqa: PLC0415 -- board-only dependency, imported on demand
    except ImportError as err:
        raise BackendError(f"backend='pynq' needs the pynq package (the board environment, "
                           f"`pip install -e .[board]` on a PYNQ image): {err}") from None
    return pynq


def _bitfile(package: Package) -> Path:
    """The package's ``.bit`` with its ``.hwh``; :class:`BackendError` saying what is missing."""
    bitfile = package.bitfile
    if bitfile is None:
        raise BackendError(f"{package.path} has no bitfile (manifest 'bitfile' is null: it was built where "
                           "Vivado is absent); build the bitstream where Vivado is installed, or use backend='sim'")
    if bitfile.suffix != ".bit" or not bitfile.is_file():
        raise BackendError(f"{package.path}: manifest 'bitfile' {package.manifest.get('bitfile')!r} is not a "
                           ".bit file in the package")
    if not bitfile.with_suffix(".hwh").is_file():
        raise BackendError(f"{package.path}: {bitfile.name} has no {bitfile.with_suffix('.hwh').name} next to "
                           "it; PYNQ needs the hardware handoff file to load an overlay")
    return bitfile


def _pynq_device_available() -> bool:
    """Whether ``pynq`` imports and finds at least one device (quietly)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pynq  # noqa: PLC0415

            return len(pynq.Device.devices) > 0
    except Exception:  # noqa: BLE001 -- any failure means: no usable board here
        return False


#: PS parameters holding PL clock ``i``'s frequency in MHz, best first (achieved, then requested):
#: Zynq-7000, then Zynq UltraScale+
_CLOCK_PARAMETERS = ("PCW_ACT_FPGA{i}_PERIPHERAL_FREQMHZ", "PCW_FPGA{i}_PERIPHERAL_FREQMHZ",
                     "PSU__CRL_APB__PL{i}_REF_CTRL__ACT_FREQMHZ", "PSU__CRL_APB__PL{i}_REF_CTRL__FREQMHZ")


def _ps_clock_mhz(overlay: Any, index: int) -> float | None:
    """PL clock ``index``'s frequency from the processing system's parameters in the ``.hwh``."""
    for ip in getattr(overlay, "ip_dict", {}).values():
        params = (ip.get("parameters") if isinstance(ip, Mapping) else None) or {}
        for name in _CLOCK_PARAMETERS:
            value = params.get(name.format(i=index))
            try:
                if value is not None and float(value) > 0:
                    return float(value)
            except (TypeError, ValueError):
                continue
    return None


def open_overlay(pynq: Any, bitfile: Path, clock_mhz: float | None = None) -> Any:
    """``pynq.Overlay`` of ``bitfile``, downloaded.

    Constructed with ``download=False`` first: pynq 4.0's metadata parser leaves the PL clock
    frequency ``None`` for Zynq-7000 designs (it reads only UltraScale+ clock parameters), and
    ``Overlay.download`` then fails in ``Clocks.set_pl_clk`` with a ``TypeError`` -- on a
    PYNQ-Z2 as in simulation.  Each enabled clock without a frequency gets it from the PS
    parameters (``PCW_ACT_FPGA<i>_PERIPHERAL_FREQMHZ``...) or, for clock 0, ``clock_mhz``
    (the package's build clock); then the overlay is downloaded.  Other pynq versions, whose
    ``clock_dict`` has no ``frequency`` or a valid one, are left as they are.
    """
    overlay = pynq.Overlay(str(Path(bitfile).resolve()), download=False)
    for index, clock in getattr(overlay, "clock_dict", {}).items():
        if not (isinstance(clock, dict) and clock.get("enable") and "frequency" in clock
                and clock["frequency"] is None):
            continue
        mhz = _ps_clock_mhz(overlay, int(index))
        if mhz is None and int(index) == 0 and clock_mhz:
            mhz = float(clock_mhz)
        if mhz is None:
            raise BackendError(f"{bitfile.name}: PL clock {index} is enabled but neither its .hwh nor the "
                               "manifest gives its frequency; pynq cannot set the clock")
        clock["frequency"] = mhz
    overlay.download()
    return overlay


def pynq_allocator(pynq: Any, overlay: Any) -> Callable[..., np.ndarray]:
    """``allocate(shape=, dtype=)`` for the driver: cacheable buffers on the overlay's device, as
    FINN's zynq-iodma driver allocates them (``pynq.allocate``'s default is non-cacheable
    memory, which makes every CPU access to the buffer uncached and slow).  The driver
    flushes/invalidates around each transfer, which cacheable buffers need."""
    target = getattr(overlay, "device", None)

    def allocate(shape: Any, dtype: Any = np.uint8) -> np.ndarray:
        return pynq.allocate(shape=shape, dtype=dtype, cacheable=True, target=target)

    return allocate


def to_accelerator_layout(x: np.ndarray, image_shape: tuple[int, ...]) -> tuple[np.ndarray, str | None]:
    """``(x in the accelerator's NHWC layout, the layout x came in)``: an ``(N, C, H, W)`` array for
    an ``(H, W, C)`` accelerator is transposed when the shape leaves no doubt (NCHW and NHWC
    shapes differ); anything else is returned as it is, layout "NHWC" or None (not an image batch)."""
    if len(image_shape) != 3 or x.ndim != 4:
        return x, None
    h, w, c = image_shape
    if x.shape[1:] == (h, w, c):
        return x, "NHWC"
    if x.shape[1:] == (c, h, w):
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)), "NCHW"
    return x, None


def runtime_weight_entries(package: Package) -> list[dict[str, Any]]:
    """The manifest's ``runtime_weights``: per layer ``{node, dma, file, words, layout}``, in the
    order of the fabric (the stitched design's weight stream concatenates them so)."""
    from .weights import WeightLayout

    entries = package.manifest.get("runtime_weights") or []
    if not isinstance(entries, list):
        raise BackendError(f"{package.path}: manifest 'runtime_weights' must be a list")
    out, seen = [], set()
    for i, e in enumerate(entries):
        missing = [k for k in ("node", "dma", "file", "words", "layout") if not isinstance(e, dict) or k not in e]
        if missing:
            raise BackendError(f"{package.path}: manifest runtime_weights[{i}] lacks {', '.join(missing)}")
        if e["dma"] in seen or e["dma"] in ("idma0", "odma0"):
            raise BackendError(f"{package.path}: manifest runtime_weights[{i}]: DMA name {e['dma']!r} is taken")
        seen.add(e["dma"])
        layout = WeightLayout.from_dict(e["layout"])
        if layout.words != int(e["words"]):
            raise BackendError(f"{package.path}: manifest runtime_weights[{i}] ({e['node']}): {e['words']} words, "
                               f"its layout makes {layout.words}")
        out.append({**e, "layout": layout})
    return out


def _weight_streams(package: Package, entries: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """``{dma: uint64 words}`` from the package's stream files (sha256-checked by the loader)."""
    streams = {}
    for e in entries:
        words = np.load(package.file(e["file"]), allow_pickle=False)
        if words.ndim != 1 or words.dtype.kind not in "iu" or len(words) != e["layout"].words:
            raise BackendError(f"{package.path}: {e['file']} ({e['node']}): {words.dtype} {words.shape}; expected "
                               f"{e['layout'].words} uint64 words")
        streams[e["dma"]] = words.astype(np.uint64)
    return streams


class _ProgramWithWeights:
    """The sim backend's compute for a package with runtime weights: the integer program (a
    copy of its own), whose ``WinogradSRBS`` nodes take the weights the weight DMAs deliver."""

    def __init__(self, program: Any, entries: list[dict[str, Any]]) -> None:
        from .program import Program

        self.program = Program(program.spec, dict(program.params), source=program.source)
        self.by_dma = {e["dma"]: e for e in entries}

    def load_weights(self, dma: str, words: np.ndarray) -> None:
        from .weights import decode

        e = self.by_dma[dma]
        self.program.replace_param(e["node"], "U", decode(words, e["layout"]))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.program.run(x)


class Accelerator:
    """A loaded deployment package behind one of the backends; build it with :meth:`load`."""

    def __init__(self, package: Package, driver: DataflowDriver, backend: str, program: ProgramLike | None,
                 overlay: Any, weight_entries: list[dict[str, Any]] | None = None) -> None:
        self.package = package
        #: the package's layers with runtime-writeable weights (:func:`runtime_weight_entries`)
        self.weight_entries = list(weight_entries or [])
        self._written: dict[str, np.ndarray] = {}
        self.driver = driver
        self.backend = backend
        self.program = program
        self.overlay = overlay

    @classmethod
    def load(cls, package_path: str | Path, backend: str = "auto", batch_size: int = 1, timeout_s: float = 10.0,
             *, program_loader: Callable[[Path], ProgramLike] | None = None, strict: bool = False,
             rtl_options: Mapping[str, Any] | None = None, **overlay_options: Any) -> Accelerator:
        """Verify the package at ``package_path`` and open it on ``backend``.

        ``batch_size``: images per DMA transfer; ``timeout_s``: how long to wait for the
        output DMA's done bit.  ``program_loader(folder)``: loads the program from
        ``<package>/runtime`` (default ``winoforge.runtime.program.Program.load``).
        ``strict``: refuse files the manifest does not list.  ``overlay_options``: passed to
        :class:`SimulatedOverlay` (sim and rtl backends: ``latency_polls``, ``hang``, ``busy``).
        ``backend="rtl"``: the package's stitched RTL (``rtl/``) under Verilator computes, the host
        applies the float tail (:mod:`.rtl_backend`); ``rtl_options``: ``seed``, ``in_bubble``,
        ``out_stall``, ``build_root``.
        Raises :class:`~winoforge.runtime.package.CorruptPackageError`, :class:`BackendError`,
        ``ValueError``.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}; allowed: {', '.join(BACKENDS)}")
        package = load_package(package_path, strict=strict)
        folder = package.path / PROGRAM_DIR
        if not (folder / "program.json").is_file():
            raise BackendError(f"{package.path} has no {PROGRAM_DIR}/program.json (the io spec and the "
                               "simulated device's program); rebuild the package with this winoforge")
        program = (program_loader or _load_program)(folder)
        io = IOSpec.from_dict(program.io)
        if backend == "auto":
            has_bit = package.bitfile is not None
            backend = "pynq" if has_bit and _pynq_device_available() else "sim"
        if overlay_options and backend not in ("sim", "rtl"):
            raise ValueError(f"overlay options {sorted(overlay_options)} apply to the sim backend only (and to rtl, "
                             "which drives the same simulated device)")
        entries = runtime_weight_entries(package)
        streams = _weight_streams(package, entries) if entries else None
        if backend == "pynq":
            bitfile = _bitfile(package)
            pynq = _import_pynq()
            overlay = open_overlay(pynq, bitfile, package.manifest.get("clock_mhz"))
            driver = DataflowDriver(overlay, pynq_allocator(pynq, overlay), io, batch_size=batch_size,
                                    timeout_s=timeout_s, weights=streams)
        else:
            compute: Any = _ProgramWithWeights(program, entries) if entries else program.run
            if backend == "rtl":
                from .rtl_backend import rtl_compute  # lazily: the harness needs the host environment

                compute = rtl_compute(package.path, program, weight_dmas=[e["dma"] for e in entries],
                                      **dict(rtl_options or {}))
            overlay = SimulatedOverlay(compute, io, weight_dmas={e["dma"]: e["layout"].words for e in entries},
                                       **overlay_options)
            driver = DataflowDriver(overlay, overlay.allocate, io, batch_size=batch_size, timeout_s=timeout_s,
                                    weights=streams)
        return cls(package, driver, backend, program, overlay, entries)

    def load_weights(self, weights: Mapping[str, Any]) -> None:
        """Write new Winograd-domain weights into layers with runtime-writeable weights:
        ``{node name: U (Cout, Cin, t, t) integers}`` (any subset of the layers), encoded as
        the layer's stream (:func:`.weights.encode`: its shape, bit width and SRBS pattern are
        checked, naming the node) and written through its weight DMA.  The bitstream stays."""
        from .weights import WeightStreamError, encode

        by_node = {e["node"]: e for e in self.weight_entries}
        if not by_node:
            raise BackendError(f"{self.package.path}: no layer has runtime-writeable weights (manifest "
                               "runtime_weights is empty); its weights are in the bitstream")
        streams = {}
        for node, U in weights.items():
            if node not in by_node:
                raise ValueError(f"weights: no layer {node!r} with runtime-writeable weights; allowed: "
                                 f"{', '.join(by_node)}")
            try:
                streams[by_node[node]["dma"]] = encode(U, by_node[node]["layout"])
            except WeightStreamError as err:
                raise WeightStreamError(f"layer {node}: {err}") from None
        self.driver.load_weights(streams)
        self._written.update({node: np.asarray(weights[node]).astype(np.int64) for node in weights})

    def weights(self) -> dict[str, np.ndarray]:
        """``{node: U}``: the Winograd-domain weights last written into each layer with runtime-
        writeable weights (the package's, decoded from its streams, until :meth:`load_weights`)."""
        from .weights import decode

        for e in self.weight_entries:
            if e["node"] not in self._written:
                words = np.load(self.package.file(e["file"]), allow_pickle=False)
                self._written[e["node"]] = decode(words, e["layout"])
        return {e["node"]: self._written[e["node"]].copy() for e in self.weight_entries}

    # -- properties
    @property
    def io(self) -> IOSpec:
        """Datatypes and shapes of the accelerator's input and output."""
        return self.driver.io

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one image (``ishape_normal`` without the batch dimension)."""
        return self.io.ishape_normal[1:]

    @property
    def batch_size(self) -> int:
        return self.driver.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.driver.batch_size = value

    # -- running
    #: The layout of the last input checked: "NHWC" (the accelerator's) or "NCHW" (torch's, transposed).
    last_layout: str | None = None

    def check_input(self, x: Any) -> np.ndarray:
        """``x`` as an array after checking shape ``(N, *input_shape)`` and the values' dtype
        and range; ``ValueError`` naming the expected shape and datatype.  Torch's NCHW
        ``(N, C, H, W)`` is taken too where it cannot be mistaken for NHWC (``C, H, W`` not
        all equal) and transposed; :attr:`last_layout` says which layout was used."""
        x = np.asarray(x)
        dt = self.io.idt
        want = f"(N, {', '.join(map(str, self.input_shape))}) {dt.numpy_dtype} array of {dt.allowed_values()}"
        x, self.last_layout = to_accelerator_layout(x, self.input_shape)
        if x.ndim != len(self.io.ishape_normal) or x.shape[1:] != self.input_shape:
            hint = " (one image? add the batch dimension: x[None])" if x.shape == self.input_shape else ""
            raise ValueError(f"input: shape {x.shape}; expected an {want}{hint}")
        if dt.is_integer and x.dtype.kind not in "iub":
            raise ValueError(f"input: dtype {x.dtype}; expected an {want} -- the accelerator takes the raw "
                             f"{dt.name} values, not normalised floats")
        if not dt.is_integer and x.dtype.kind not in "iuf":
            raise ValueError(f"input: dtype {x.dtype}; expected an {want}")
        from .packing import check_values

        return check_values(x, dt, "input")

    def execute(self, x: Any) -> np.ndarray:
        """Outputs of ``N`` inputs: ``x`` of shape ``(N, *ishape_normal[1:])`` (NHWC, the raw
        integer values of ``io.idt``, e.g. uint8 pixels; torch's NCHW too, see :meth:`check_input`)
        -> ``(N, *oshape_normal[1:])`` in the output datatype's exact numpy container."""
        return self.driver.execute(self.check_input(x))

    def predict(self, x: Any) -> np.ndarray:
        """Class indices: the argmax over the last axis of :meth:`execute`'s output."""
        return np.argmax(self.execute(x), axis=-1)

    def throughput(self, x: Any, repeats: int = 1) -> dict[str, float]:
        """Run ``x`` ``repeats`` times; images, seconds, and images per second (wall clock,
        including packing and copies: the end-to-end rate the host sees)."""
        x = self.check_input(x)
        if repeats < 1:
            raise ValueError(f"repeats={repeats} must be >= 1")
        start = time.perf_counter()
        for _ in range(repeats):
            self.driver.execute(x)
        seconds = time.perf_counter() - start
        images = x.shape[0] * repeats
        return {"images": float(images), "seconds": seconds,
                "images_per_s": images / seconds if seconds > 0 else float("inf")}

    def self_test(self) -> dict[str, Any]:
        """Run the package's golden images (``runtime/golden.npz``: the build's verification
        images and FINN's Python execution of the final accelerator graph on them) and compare
        bit for bit: ``{"images", "equal", "mismatches"}``.  ``BackendError`` if the package has
        no golden set (built without ``--verify-images``)."""
        rel = f"{PROGRAM_DIR}/golden.npz"
        if rel not in self.package.manifest["files"]:
            raise BackendError(f"{self.package.path} has no {rel}: build it with golden images (--verify-images)")
        with np.load(self.package.file(rel), allow_pickle=False) as golden:
            x, expected = golden["input"], golden["output"]
        got = self.execute(x)
        equal = got.shape == expected.shape and bool(np.array_equal(got, expected))
        mismatches = int(np.sum(got != expected)) if got.shape == expected.shape else int(expected.size)
        return {"images": int(x.shape[0]), "equal": equal, "mismatches": mismatches}

    def close(self) -> None:
        """Free the DMA buffers."""
        self.driver.free()

    def __enter__(self) -> Accelerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        io = self.io
        return (f"Accelerator({self.package.name!r}, backend={self.backend!r}, batch_size={self.batch_size}, "
                f"input {io.idt.name}{list(io.ishape_normal[1:])} -> output {io.odt.name}{list(io.oshape_normal[1:])})")
