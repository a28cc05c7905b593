"""The accelerator's DMA protocol: FINN's zynq-iodma driver, and a simulated device.

FINN's ``zynq-iodma`` shell puts one input DMA (``idma0``) and one output DMA
(``odma0``) around the dataflow pipeline.  Both are Vivado HLS cores with an
``ap_ctrl_hs`` AXI-lite register file:

======  ======================================================================
offset  register
======  ======================================================================
0x00    control: bit 0 ``ap_start`` (write 1 to start), bit 1 ``ap_done``
        (set when the core finished; cleared when read), bit 2 ``ap_idle``
        (set while the core waits for a start)
0x10    buffer address, low 32 bits (the DMA reads / writes DDR there)
0x14    buffer address, high 32 bits
0x1C    batch count: how many images (``num_reps``) to stream
======  ======================================================================

One batch, as FINN's ``driver_base.py`` (``execute_on_buffers``) runs it:

1. the output DMA must be idle (``odma0`` 0x00 bit 2), else the previous batch
   is still running;
2. ``odma0``: address of the output buffer (0x10/0x14), batch count (0x1C),
   start (0x00 = 1) -- the output side first, so the pipeline never stalls;
3. ``idma0``: the same with the input buffer;
4. poll ``odma0`` 0x00 until bit 1 (done) is set.  Here with a timeout: a
   device that never reports done raises :class:`DeviceTimeoutError`.

Runtime-writeable weights (``runtime_weights`` in the package's manifest): each layer that
keeps its weights in a RAM has a weight DMA of its own (``idma1``, ``idma2``... as FINN
names the input DMAs of its shell), an IODMA of the same register map feeding the layer's
weight stream ``in1_V``.  Before the first batch (and whenever the host writes a new set)
:meth:`DataflowDriver.load_weights` copies each layer's ``uint64`` words (little-endian)
into a buffer, flushes it, programs address and batch count 1, starts the DMA and waits
for its done bit.  Until a layer has its whole set it computes nothing: a batch started
earlier never finishes (the driver's timeout says so).

Around it (``execute``): the host folds the input (a reshape to the first
layer's folded shape), packs it (:mod:`.packing`, ``reverse_inner`` and
``reverse_endian`` both true), copies it into the DMA buffer and flushes the
CPU cache; after done it invalidates the cache of the output buffer, copies the
bytes out, unpacks and unfolds them.

:class:`DataflowDriver` implements that against any overlay-like object with
``idma0``/``odma0`` (``read(offset)``/``write(offset, value)``, as ``pynq``'s
``DefaultIP``) and an ``allocate(shape=..., dtype=...)`` that returns uint8
buffers with ``device_address``, ``flush()`` and ``invalidate()`` (as
``pynq.allocate``).  :class:`SimulatedOverlay` is such an object without a board:
register files with the same bits over a :class:`SimulatedMemory` whose buffers
are separate from the CPU's view of them until flushed/invalidated, so the
driver's protocol -- addresses, counts, cache maintenance -- is exercised as on a
board, and a bit-exact ``compute`` callable stands in for the pipeline.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .datatypes import DataType, parse_datatype
from .packing import check_values, finnpy_to_packed_bytearray, packed_bytearray_to_finnpy, packed_shape

__all__ = [
    "AP_CTRL", "AP_START", "AP_DONE", "AP_IDLE", "ADDR_LO", "ADDR_HI", "NUM_REPS", "IO_KEYS",
    "DeviceError", "DeviceTimeoutError", "SimulatedBusError", "IOSpec", "DataflowDriver",
    "SimulatedMemory", "SimulatedBuffer", "SimulatedIODMA", "SimulatedIODMAPair", "SimulatedOverlay",
]

#: control register and its bits
AP_CTRL, AP_START, AP_DONE, AP_IDLE = 0x00, 0x1, 0x2, 0x4
#: buffer address (low / high 32 bits) and batch count registers
ADDR_LO, ADDR_HI, NUM_REPS = 0x10, 0x14, 0x1C
#: the keys of an io spec (FINN's ``io_shape_dict`` for one input and one output)
IO_KEYS = ("idt", "odt", "ishape_normal", "ishape_folded", "oshape_normal", "oshape_folded")


class DeviceError(RuntimeError):
    """The accelerator (or its simulation) did not behave as the protocol requires."""


class DeviceTimeoutError(DeviceError, TimeoutError):
    """The output DMA did not report done within the timeout."""


class SimulatedBusError(DeviceError):
    """A simulated DMA accessed memory outside every allocated buffer."""


class RegisterIP(Protocol):
    """An AXI-lite register file (``pynq.DefaultIP`` has these two methods)."""

    def read(self, offset: int) -> int: ...

    def write(self, offset: int, value: int) -> None: ...


# --------------------------------------------------------------------------- io spec

def _unwrap_single(key: str, value: Any, is_shape: bool) -> Any:
    """FINN's ``io_shape_dict`` holds one-element lists per input/output; accept both forms."""
    if isinstance(value, (list, tuple)) and len(value) > 0:
        nested = isinstance(value[0], (list, tuple))
        if (is_shape and nested) or (not is_shape and not isinstance(value, str)):
            if len(value) != 1:
                raise ValueError(f"io spec '{key}': {len(value)} entries; this runtime drives one input and "
                                 "one output")
            return value[0]
    return value


def _shape(key: str, value: Any) -> tuple[int, ...]:
    value = _unwrap_single(key, value, True)
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in value):
        raise ValueError(f"io spec '{key}': {value!r} is not a shape of positive integers")
    return tuple(int(d) for d in value)


@dataclass(frozen=True)
class IOSpec:
    """Datatypes and shapes of the accelerator's one input and one output.

    Shapes include the batch dimension first (FINN writes 1 there); the normal
    shape is the tensor as the model sees it (NHWC), the folded shape the same
    elements as the first/last layer streams them (innermost = one stream word).
    """

    idt: DataType
    odt: DataType
    ishape_normal: tuple[int, ...]
    ishape_folded: tuple[int, ...]
    oshape_normal: tuple[int, ...]
    oshape_folded: tuple[int, ...]

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> IOSpec:
        """Parse an io spec dict (keys :data:`IO_KEYS`, values as FINN writes them:
        ``"DataType['UINT8']"`` or ``"UINT8"``, shapes as lists or tuples, either single
        or FINN's one-element lists).  Raises ``ValueError`` naming the key."""
        if isinstance(spec, IOSpec):
            return spec
        missing = [k for k in IO_KEYS if k not in spec]
        if missing:
            raise ValueError(f"io spec lacks {', '.join(missing)}; required keys: {', '.join(IO_KEYS)}")
        dts = {}
        for key in ("idt", "odt"):
            try:
                dts[key] = parse_datatype(_unwrap_single(key, spec[key], False))
            except ValueError as err:
                raise ValueError(f"io spec '{key}': {err}") from None
        shapes = {key: _shape(key, spec[key]) for key in IO_KEYS[2:]}
        out = cls(dts["idt"], dts["odt"], **shapes)
        for side in ("i", "o"):
            normal, folded = shapes[f"{side}shape_normal"], shapes[f"{side}shape_folded"]
            if normal[0] != folded[0] or math.prod(normal) != math.prod(folded):
                raise ValueError(f"io spec: {side}shape_normal {normal} and {side}shape_folded {folded} do not "
                                 "hold the same elements with the same batch dimension")
        return out

    def to_dict(self) -> dict[str, Any]:
        """The spec in FINN's single-entry form (datatypes as ``"DataType['UINT8']"``)."""
        return {"idt": self.idt.driver_name(), "odt": self.odt.driver_name(),
                "ishape_normal": list(self.ishape_normal), "ishape_folded": list(self.ishape_folded),
                "oshape_normal": list(self.oshape_normal), "oshape_folded": list(self.oshape_folded)}

    @staticmethod
    def batched(shape: tuple[int, ...], n: int) -> tuple[int, ...]:
        """``shape`` with its batch dimension set to ``n``."""
        return (n, *shape[1:])

    def ishape_packed(self, n: int = 1) -> tuple[int, ...]:
        """Packed input bytes of ``n`` images."""
        return packed_shape(self.batched(self.ishape_folded, n), self.idt)

    def oshape_packed(self, n: int = 1) -> tuple[int, ...]:
        """Packed output bytes of ``n`` images."""
        return packed_shape(self.batched(self.oshape_folded, n), self.odt)


# --------------------------------------------------------------------------- driver

class DataflowDriver:
    """FINN's zynq-iodma driver protocol (module docstring) for one input and one output.

    ``overlay``: has ``idma0``/``odma0`` register files.  ``allocate(shape=, dtype=)``:
    returns DMA buffers (``pynq.allocate``).  ``io``: an :class:`IOSpec` or its dict.
    Buffers hold ``batch_size`` images; :meth:`execute` runs any number of images in
    batches of at most ``batch_size``.
    """

    def __init__(self, overlay: Any, allocate: Callable[..., np.ndarray], io: IOSpec | Mapping[str, Any],
                 batch_size: int = 1, timeout_s: float = 10.0, poll_interval_s: float = 1e-4,
                 weights: Mapping[str, Any] | None = None) -> None:
        """``weights``: ``{weight DMA name: uint64 words}`` of the layers with runtime-writeable
        weights (module docstring), written by :meth:`load_weights` before the first batch."""
        self.io = IOSpec.from_dict(io)
        for ip in ("idma0", "odma0"):
            if not hasattr(overlay, ip):
                raise DeviceError(f"the overlay has no '{ip}' (FINN's zynq-iodma shell names its DMAs "
                                  "idma0/odma0); is this a FINN dataflow bitstream?")
        #: the weight DMAs written so far, with the number of words each got
        self.weights_loaded: dict[str, int] = {}
        self.overlay = overlay
        self.idma: RegisterIP = overlay.idma0
        self.odma: RegisterIP = overlay.odma0
        self._allocate = allocate
        if not timeout_s > 0:
            raise ValueError(f"timeout_s={timeout_s!r} must be > 0")
        self.timeout_s = float(timeout_s)
        self.poll_interval_s = float(poll_interval_s)
        self.ibuf: np.ndarray | None = None
        self.obuf: np.ndarray | None = None
        self._batch_size = 0
        self.batch_size = batch_size
        if weights:
            self.load_weights(weights)

    # -- buffers
    @property
    def batch_size(self) -> int:
        """Images per DMA transfer; setting it reallocates the buffers."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"batch_size={value!r} must be a positive integer")
        self.free()
        self._batch_size = int(value)
        self.ibuf = self._allocate(shape=self.io.ishape_packed(self._batch_size), dtype=np.uint8)
        self.obuf = self._allocate(shape=self.io.oshape_packed(self._batch_size), dtype=np.uint8)

    def free(self) -> None:
        """Release the DMA buffers (``freebuffer`` where the buffers have it)."""
        for buf in (self.ibuf, self.obuf):
            release = getattr(buf, "freebuffer", None)
            if callable(release):
                release()
        self.ibuf = self.obuf = None

    # -- fold / pack (as FINN's driver_base.py)
    def fold_input(self, x: np.ndarray) -> np.ndarray:
        """Normal ``(n, *ishape_normal[1:])`` -> folded ``(n, *ishape_folded[1:])``."""
        return x.reshape(self.io.batched(self.io.ishape_folded, x.shape[0]))

    def pack_input(self, folded: np.ndarray) -> np.ndarray:
        """Folded values -> packed DMA bytes."""
        return finnpy_to_packed_bytearray(folded, self.io.idt, reverse_inner=True, reverse_endian=True,
                                          field="input")

    def unpack_output(self, packed: np.ndarray, n: int) -> np.ndarray:
        """Packed DMA bytes of ``n`` images -> folded values (exact integer container)."""
        return packed_bytearray_to_finnpy(packed, self.io.odt, self.io.batched(self.io.oshape_folded, n),
                                          reverse_inner=True, reverse_endian=True, out_dtype=None,
                                          field="output")

    def unfold_output(self, folded: np.ndarray) -> np.ndarray:
        """Folded ``(n, *oshape_folded[1:])`` -> normal ``(n, *oshape_normal[1:])``."""
        return folded.reshape(self.io.batched(self.io.oshape_normal, folded.shape[0]))

    # -- runtime-writeable weights
    def load_weights(self, weights: Mapping[str, Any]) -> None:
        """Write each layer's weight set through its weight DMA, one DMA after the other:
        ``weights`` maps the DMA's name (``idma1``...) to the layer's ``uint64`` words.  Each
        set goes through a buffer of its own (little-endian words, flushed), batch count 1;
        the call returns once every DMA reported done (:class:`DeviceTimeoutError` after
        ``timeout_s``).  Call it between batches to change the weights."""
        if not isinstance(weights, Mapping) or not weights:
            raise ValueError("weights: a non-empty mapping {weight DMA name: uint64 words}")
        streams = {}
        for name, words in weights.items():
            if name in ("idma0", "odma0") or not hasattr(self.overlay, str(name)):
                raise DeviceError(f"weights: the overlay has no weight DMA {name!r} (the package's manifest names "
                                  "one per layer with runtime-writeable weights: runtime_weights[].dma)")
            arr = np.asarray(words)
            if arr.ndim != 1 or arr.dtype.kind not in "iu" or not len(arr):
                raise ValueError(f"weights[{name!r}]: a non-empty 1-D array of uint64 words, got {arr.dtype} "
                                 f"{arr.shape}")
            streams[name] = np.ascontiguousarray(arr.astype(np.uint64)).astype("<u8").view(np.uint8)
        for name, data in streams.items():
            dma: RegisterIP = getattr(self.overlay, name)
            status = int(dma.read(AP_CTRL))
            if not status & AP_IDLE:
                raise DeviceError(f"weight DMA {name} is not idle ({name} 0x00 = {status:#x}); reload the overlay")
            buf = self._allocate(shape=(data.size,), dtype=np.uint8)
            try:
                np.copyto(buf, data)
                buf.flush()
                address = int(buf.device_address)
                dma.write(ADDR_LO, address & 0xFFFFFFFF)
                dma.write(ADDR_HI, (address >> 32) & 0xFFFFFFFF)
                dma.write(NUM_REPS, 1)
                dma.write(AP_CTRL, AP_START)
                self._wait_done(dma, f"weight DMA {name}", f"the weights ({data.size // 8} words) did not finish")
            finally:
                release = getattr(buf, "freebuffer", None)
                if callable(release):
                    release()
            self.weights_loaded[name] = data.size // 8

    # -- the protocol
    def execute_on_buffers(self, n: int | None = None) -> None:
        """Run ``n`` images (default ``batch_size``) from the input buffer into the output
        buffer: idle check, odma then idma programmed and started, wait for done."""
        n = self._batch_size if n is None else int(n)
        if not 1 <= n <= self._batch_size:
            raise ValueError(f"n={n} images: must be 1..batch_size ({self._batch_size})")
        assert self.ibuf is not None and self.obuf is not None
        status = int(self.odma.read(AP_CTRL))
        if not status & AP_IDLE:
            raise DeviceError(f"output DMA is not idle (odma0 0x00 = {status:#x}, bit 2 clear): a previous "
                              "batch is still running or the accelerator is wedged; reload the overlay")
        for dma, buf in ((self.odma, self.obuf), (self.idma, self.ibuf)):
            address = int(buf.device_address)
            dma.write(ADDR_LO, address & 0xFFFFFFFF)
            dma.write(ADDR_HI, (address >> 32) & 0xFFFFFFFF)
            dma.write(NUM_REPS, n)
            dma.write(AP_CTRL, AP_START)
        self.wait_until_finished()

    def wait_until_finished(self) -> None:
        """Poll ``odma0`` 0x00 until bit 1 (done) is set; :class:`DeviceTimeoutError` after
        ``timeout_s``.  Busy-polls first (a batch takes microseconds to milliseconds),
        then sleeps ``poll_interval_s`` between reads."""
        hint = "" if self.weights_loaded or not hasattr(self.overlay, "idma1") else (
            "; the overlay has a weight DMA (idma1) and no weights were written: a layer with runtime-writeable "
            "weights computes nothing before its weights are written (load_weights)")
        self._wait_done(self.odma, "output DMA odma0", "the accelerator did not finish",
                        "the pipeline may be stalled, or the bitstream does not match this package" + hint)

    def _wait_done(self, dma: RegisterIP, label: str, what: str, why: str = "") -> None:
        deadline = time.monotonic() + self.timeout_s
        polls = 0
        while True:
            status = int(dma.read(AP_CTRL))
            if status & AP_DONE:
                return
            polls += 1
            if time.monotonic() > deadline:
                raise DeviceTimeoutError(
                    f"{what} within {self.timeout_s:g} s: {label} 0x00 = {status:#x} (bit 1 'done' never set, "
                    f"{polls} reads)" + (f"; {why}" if why else ""))
            if polls > 1000:
                time.sleep(self.poll_interval_s)

    def execute(self, x: np.ndarray) -> np.ndarray:
        """Outputs ``(N, *oshape_normal[1:])`` (the output datatype's exact numpy container) of
        inputs ``x`` of shape ``(N, *ishape_normal[1:])``, in batches of ``batch_size``."""
        x = np.asarray(x)
        expected = self.io.batched(self.io.ishape_normal, x.shape[0] if x.ndim else 0)
        if x.shape != expected:
            raise ValueError(f"input: shape {x.shape}; expected (N, {', '.join(map(str, expected[1:]))})")
        check_values(x, self.io.idt, "input")
        outputs = []
        assert self.ibuf is not None and self.obuf is not None
        for start in range(0, x.shape[0], self._batch_size):
            chunk = x[start:start + self._batch_size]
            n = chunk.shape[0]
            packed = self.pack_input(self.fold_input(chunk))
            np.copyto(self.ibuf[:n], packed)
            self.ibuf.flush()
            self.execute_on_buffers(n)
            self.obuf.invalidate()
            out_packed = np.array(self.obuf[:n], dtype=np.uint8, copy=True)
            outputs.append(self.unfold_output(self.unpack_output(out_packed, n)))
        if not outputs:
            return np.zeros(self.io.batched(self.io.oshape_normal, 0), dtype=self.io.odt.numpy_dtype)
        return np.concatenate(outputs, axis=0)


# --------------------------------------------------------------------------- simulation

class SimulatedBuffer(np.ndarray):
    """A DMA buffer of :class:`SimulatedMemory`: the array is the CPU's (cached) view;
    :meth:`flush` writes it to the device memory, :meth:`invalidate` reads it back."""

    device_address: int
    _memory: SimulatedMemory | None

    def __array_finalize__(self, obj: Any) -> None:
        self.device_address, self._memory = 0, None
        if isinstance(obj, SimulatedBuffer) and obj._memory is not None and self.base is not None:
            # a view (slice, reshape) of a DMA buffer: its address is the parent's plus the offset
            offset = self.__array_interface__["data"][0] - obj.__array_interface__["data"][0]
            if 0 <= offset < max(obj.nbytes, 1):
                self.device_address, self._memory = obj.device_address + offset, obj._memory

    @property
    def physical_address(self) -> int:
        return self.device_address

    def _bytes(self) -> np.ndarray:
        if self._memory is None:
            raise DeviceError("flush/invalidate on an array that is not (a view of) an allocated DMA buffer")
        if not self.flags.c_contiguous:
            raise DeviceError("flush/invalidate on a non-contiguous view of a DMA buffer")
        return self.view(np.ndarray).reshape(-1).view(np.uint8)

    def flush(self) -> None:
        """CPU cache -> device memory."""
        data = self._bytes()
        assert self._memory is not None
        self._memory.write(self.device_address, data)

    def invalidate(self) -> None:
        """Device memory -> CPU cache."""
        data = self._bytes()
        assert self._memory is not None
        data[:] = self._memory.read(self.device_address, data.size)

    def freebuffer(self) -> None:
        """Return the memory region (later accesses to its addresses are bus errors)."""
        if self._memory is not None:
            self._memory.free(self.device_address)
            self._memory = None


class SimulatedMemory:
    """Device memory made of the allocated buffers only: a DMA access outside one
    allocated region (wrong address, or a transfer longer than the buffer) raises
    :class:`SimulatedBusError`.  Addresses start at ``base`` (default above 4 GiB, so
    the high address register 0x14 matters) and are ``align``-byte aligned."""

    def __init__(self, base: int = 0x8_0000_0000, align: int = 4096) -> None:
        self.base = int(base)
        self.align = int(align)
        self._next = self.base
        self._regions: dict[int, np.ndarray] = {}

    def allocate(self, shape: int | Sequence[int], dtype: Any = np.uint8, **_: Any) -> SimulatedBuffer:
        """A zeroed :class:`SimulatedBuffer` (``pynq.allocate``'s signature; extra keywords ignored)."""
        buf = np.zeros(shape, dtype=dtype).view(SimulatedBuffer)
        buf.device_address = self.reserve(buf.nbytes)
        buf._memory = self
        return buf

    def reserve(self, nbytes: int) -> int:
        """Allocate a zeroed region of ``nbytes`` bytes (at least 1); its device address."""
        address = self._next
        nbytes = max(int(nbytes), 1)
        self._next += -(-nbytes // self.align) * self.align
        self._regions[address] = np.zeros(nbytes, dtype=np.uint8)
        return address

    def region(self, address: int) -> np.ndarray:
        """The device memory of the region allocated at ``address`` (the array itself, not a copy)."""
        if address not in self._regions:
            raise SimulatedBusError(f"no buffer allocated at {address:#x}")
        return self._regions[address]

    def free(self, address: int) -> None:
        self._regions.pop(address, None)

    def _region(self, address: int, nbytes: int) -> tuple[np.ndarray, int]:
        for start, data in self._regions.items():
            if start <= address < start + data.size:
                if address + nbytes > start + data.size:
                    raise SimulatedBusError(
                        f"DMA access of {nbytes} bytes at {address:#x} runs past the end of the buffer at "
                        f"{start:#x} ({data.size} bytes): buffer too small for the programmed batch")
                return data, address - start
        raise SimulatedBusError(f"DMA access of {nbytes} bytes at {address:#x}: no buffer allocated there")

    def read(self, address: int, nbytes: int) -> np.ndarray:
        """A copy of ``nbytes`` bytes at ``address``."""
        data, offset = self._region(address, nbytes)
        return data[offset:offset + nbytes].copy()

    def write(self, address: int, payload: np.ndarray) -> None:
        """Write the bytes of ``payload`` at ``address``."""
        payload = np.ascontiguousarray(payload).reshape(-1).view(np.uint8)
        data, offset = self._region(address, payload.size)
        data[offset:offset + payload.size] = payload


class SimulatedIODMA:
    """The register file of one simulated IODMA (``ap_ctrl_hs``; offsets in the module
    docstring).  ``ap_done`` is cleared when 0x00 is read, as in Vivado HLS cores."""

    def __init__(self, name: str, on_start: Callable[[SimulatedIODMA], None]) -> None:
        self.name = name
        self._on_start = on_start
        self.regs: dict[int, int] = {ADDR_LO: 0, ADDR_HI: 0, NUM_REPS: 0}
        self.running = False
        self.done = False
        #: reads of 0x00 left before done shows (``None``: not finishing), set by :meth:`finish`
        self._finish_in: int | None = None
        #: every (op, offset, value) the driver issued, for tests
        self.log: list[tuple[str, int, int]] = []

    @property
    def address(self) -> int:
        return self.regs[ADDR_LO] | (self.regs[ADDR_HI] << 32)

    @property
    def count(self) -> int:
        return self.regs[NUM_REPS]

    def read(self, offset: int) -> int:
        if offset == AP_CTRL:
            if self.running and self._finish_in is not None:
                if self._finish_in == 0:
                    self.running, self.done, self._finish_in = False, True, None
                else:
                    self._finish_in -= 1
            value = (AP_START if self.running else 0) | (AP_DONE if self.done else 0) | (
                0 if self.running else AP_IDLE)
            self.done = False  # clear on read
        elif offset in self.regs:
            value = self.regs[offset]
        else:
            raise DeviceError(f"{self.name}: read of unmapped register {offset:#x}")
        self.log.append(("read", offset, value))
        return value

    def finish(self, after_reads: int = 0) -> None:
        """Let the running core report done on the ``after_reads``-th next read of 0x00
        (0: the next read)."""
        self._finish_in = int(after_reads)

    def write(self, offset: int, value: int) -> None:
        value = int(value)
        if not 0 <= value <= 0xFFFFFFFF:
            raise DeviceError(f"{self.name}: write of {value:#x} to {offset:#x} does not fit 32 bits")
        self.log.append(("write", offset, value))
        if offset == AP_CTRL:
            if value & AP_START:
                if self.running:
                    raise DeviceError(f"{self.name}: started while running")
                self.running, self.done = True, False
                self._on_start(self)
        elif offset in self.regs:
            self.regs[offset] = value
        else:
            raise DeviceError(f"{self.name}: write to unmapped register {offset:#x}")


class SimulatedIODMAPair:
    """The programmable logic of a FINN zynq-iodma design without a board: ``idma0`` ->
    pipeline -> ``odma0`` over a :class:`SimulatedMemory` (module docstring).

    When both ``idma0`` and ``odma0`` were started, the device reads the packed input of
    ``count`` images at idma's address, unpacks it (``io.idt``, folded shape), calls
    ``compute(x_normal) -> y_normal`` on the whole batch, checks the result against
    ``io.odt`` and the output shape, packs it and writes it at odma's address; both DMAs
    then report done (``odma0`` after ``latency_polls`` reads of its control register).

    ``weight_dmas``: ``{name: words}`` of the layers with runtime-writeable weights, each a
    simulated weight DMA (attribute ``name``) whose start delivers its words to
    ``compute.load_weights(name, words)``; until every one has, a batch hangs.

    Fault injection: ``hang=True``: done never comes; ``busy=True``: odma0 never idle.
    Shared by :class:`SimulatedOverlay` (this runtime's own stand-in for an overlay) and
    :class:`winoforge.runtime.pynq_sim.SimulatedPynqDevice` (a ``pynq.Device`` under pynq's
    own ``Overlay``/``allocate``/``MMIO``).
    """

    def __init__(self, compute: Callable[[np.ndarray], np.ndarray], io: IOSpec | Mapping[str, Any],
                 memory: SimulatedMemory | None = None, latency_polls: int = 0, hang: bool = False,
                 busy: bool = False, weight_dmas: Mapping[str, int] | None = None) -> None:
        self.io = IOSpec.from_dict(io)
        self.compute = compute
        self.memory = memory if memory is not None else SimulatedMemory()
        self.latency_polls = int(latency_polls)
        self.idma0 = SimulatedIODMA("idma0", self._started)
        self.odma0 = SimulatedIODMA("odma0", self._started)
        #: runtime-writeable weights: weight DMA name -> words of its layer's set
        self.weight_dmas = {str(k): int(v) for k, v in (weight_dmas or {}).items()}
        for name in self.weight_dmas:
            if name in ("idma0", "odma0") or not name.isidentifier():
                raise ValueError(f"weight DMA name {name!r}: allowed: identifiers other than idma0/odma0 (idma1...)")
            setattr(self, name, SimulatedIODMA(name, self._weights_started))
        #: the words each weight DMA delivered last (what the layers hold)
        self.weights: dict[str, np.ndarray] = {}
        self.hang = bool(hang)
        if busy:
            self.odma0.running = True  # and never finishes: not idle
        #: number of batches run, and the images they held
        self.batches = 0
        self.images = 0

    @property
    def dmas(self) -> dict[str, SimulatedIODMA]:
        """Every DMA of the design by name: ``idma0``, ``odma0`` and the weight DMAs."""
        return {"idma0": self.idma0, "odma0": self.odma0, **{n: getattr(self, n) for n in self.weight_dmas}}

    def _weights_started(self, dma: SimulatedIODMA) -> None:
        """A weight DMA streams its buffer ``count`` times into its layer's weight stream; the
        layer keeps the last whole set.  ``compute.load_weights(name, words)`` (where the
        compute has it) gets the words: the simulated layers compute with what arrived."""
        words, reps = self.weight_dmas[dma.name], dma.count
        if reps < 1:
            raise DeviceError(f"{dma.name}: batch count 0x1C = {reps}; a weight DMA streams its set at least once")
        raw = self.memory.read(dma.address, words * 8 * reps)
        got = raw.reshape(reps, words * 8)[-1].copy().view("<u8").astype(np.uint64)
        load = getattr(self.compute, "load_weights", None)
        if callable(load):
            load(dma.name, got)
        self.weights[dma.name] = got
        dma.running, dma.done = False, True

    def _started(self, dma: SimulatedIODMA) -> None:
        if not (self.idma0.running and self.odma0.running) or self.hang:
            return
        if any(name not in self.weights for name in self.weight_dmas):
            return  # a layer without its weights never starts: the batch hangs, as on the board
        n = self.idma0.count
        if n != self.odma0.count or n < 1:
            raise DeviceError(f"batch counts differ or are zero: idma0 0x1C = {n}, odma0 0x1C = {self.odma0.count}")
        io = self.io
        raw = self.memory.read(self.idma0.address, math.prod(io.ishape_packed(n)))
        folded = packed_bytearray_to_finnpy(raw.reshape(io.ishape_packed(n)), io.idt,
                                            io.batched(io.ishape_folded, n), reverse_inner=True,
                                            reverse_endian=True, out_dtype=None, field="idma0 stream")
        y = np.asarray(self.compute(folded.reshape(io.batched(io.ishape_normal, n))))
        expected = io.batched(io.oshape_normal, n)
        if y.shape != expected:
            raise DeviceError(f"simulated pipeline returned shape {y.shape}; the io spec says {expected}")
        try:
            check_values(y, io.odt, "simulated pipeline output")
        except ValueError as err:
            raise DeviceError(str(err)) from None
        packed = finnpy_to_packed_bytearray(y.reshape(io.batched(io.oshape_folded, n)), io.odt,
                                            reverse_inner=True, reverse_endian=True)
        self.memory.write(self.odma0.address, packed)
        self.batches += 1
        self.images += n
        # the input DMA is done once it streamed its buffer; the output DMA reports done
        # after `latency_polls` further reads of its control register
        self.idma0.running, self.idma0.done = False, True
        self.odma0.finish(self.latency_polls)


class SimulatedOverlay(SimulatedIODMAPair):
    """A FINN zynq-iodma overlay without a board and without pynq: the
    :class:`SimulatedIODMAPair` as ``overlay.idma0``/``overlay.odma0``, and ``allocate``
    (over :attr:`memory`) providing the DMA buffers, like ``pynq.allocate``."""

    def allocate(self, shape: int | Sequence[int], dtype: Any = np.uint8, **kwargs: Any) -> SimulatedBuffer:
        return self.memory.allocate(shape, dtype, **kwargs)
