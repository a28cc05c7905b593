"""pynq's own code paths without a board: a simulated ``pynq.Device`` holding a FINN IODMA pair.

Board environment only (``pynq`` 4.0.0, numpy<2); nothing in :mod:`winoforge.runtime`
imports this module -- the tests and a user who wants to rehearse the ``pynq`` backend
on a PC do.  Only the *device* is simulated: ``pynq.Overlay``, ``pynq.allocate`` /
``PynqBuffer``, ``MMIO``, ``DefaultIP.read/write`` and ``register_map`` are pynq's own.

* :class:`SimulatedPynqDevice` (a ``pynq.Device``, the seam pynq's ``EmbeddedDevice``
  fills on a Zynq board):

  - memory: ``default_memory``/``get_memory`` return pynq's ``XrtMemory``, so
    ``pynq.allocate`` runs pynq's chain to a ``PynqBuffer`` through ``allocate_bo``,
    ``map_bo``, ``get_device_address``, ``flush`` and ``invalidate``.  A *cacheable*
    buffer (``allocate(..., cacheable=True)``, as FINN's zynq-iodma driver allocates)
    has a CPU copy separate from the device memory, so a missing ``flush()`` /
    ``invalidate()`` shows as stale data, as on a board; a non-cacheable one maps the
    device memory itself.  The device memory is a
    :class:`~winoforge.runtime.device.SimulatedMemory` (DMA outside an allocated,
    unfreed buffer is a :class:`~winoforge.runtime.device.SimulatedBusError`);
  - registers: ``MEMORY_MAPPED`` -- ``mmap(base, length)`` returns a uint32 array whose
    element reads and writes go to the simulated IP mapped at that address;
  - bitstreams: ``get_bitfile_metadata`` parses the ``.hwh`` next to the ``.bit`` with
    the parser pynq's ``EmbeddedDevice`` uses (``RuntimeMetadataParser``), without the
    board's metadata cache and XRT's ``xclbinutil``; ``download`` checks the ``.bit`` header with pynq's ``parse_bit_header``,
    attaches ``idma0``/``odma0`` at their ``.hwh`` addresses and runs pynq's
    ``post_download``.

* :func:`simulated_pynq` installs it as pynq's active device (and simulated PS clocks,
  and a stand-in for the ``munmap`` pynq frees buffers with on a board), yields it, and
  restores pynq's globals afterwards.

* :func:`write_simulated_bitstream` writes the ``.bit`` / ``.hwh`` pair such a device
  loads.  **These files are for the simulated device only; they are not bitstreams**:
  the ``.bit`` has a valid Xilinx header (pynq parses it) around a payload that says so,
  and the ``.hwh`` is a minimal hand-written hardware handoff describing the PS, ``idma0``
  and ``odma0`` with their register maps.  A real board refuses such a file; the
  simulated device refuses every other ``.bit``.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import struct
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import pynq
import pynq.buffer
import pynq.ps
from pynq.pl_server.embedded_device import BitfileHandler, parse_bit_header
from pynq.pl_server.xrt_device import XrtMemory
from pynqmetadata.frontends import Metadata
from pynqmetadata.views.runtime import RuntimeMetadataParser

from .device import (ADDR_HI, ADDR_LO, AP_CTRL, NUM_REPS, DeviceError, IOSpec, SimulatedBusError, SimulatedIODMA,
                     SimulatedIODMAPair, SimulatedMemory)

__all__ = ["FAMILIES", "SIM_DESIGN", "BoardFamily", "SimulatedClocks", "SimulatedPynqDevice", "family_for_part",
           "simulated_pynq", "write_simulated_bitstream"]

#: the design name in the ``.bit`` header of every file :func:`write_simulated_bitstream` writes
SIM_DESIGN = "winoforge_simulated_device_not_a_bitstream"
_PAYLOAD = (b"WINOFORGE SIMULATED DEVICE FILE - NOT A BITSTREAM. Loadable only by "
            b"winoforge.runtime.pynq_sim.SimulatedPynqDevice; a real FPGA rejects it.\n")


# --------------------------------------------------------------------------- board families

@dataclass(frozen=True)
class BoardFamily:
    """What the ``.hwh`` of one Zynq family needs: the PS module, its AXI master to the PL's
    control registers, where IP addresses start, the CPU architecture pynq sees, and the PS
    parameters of the four PL clocks."""

    name: str
    arch: str               # SYSTEMINFO ARCH
    device: str             # SYSTEMINFO DEVICE / PACKAGE / SPEEDGRADE
    package: str
    speedgrade: str
    part: str               # the .bit header's part field
    ps_modtype: str
    ps_vlnv: str
    ps_master: str          # M_AXI_GP0 / M_AXI_HPM0_FPD
    ip_base: int
    cpu_arch: str           # platform.machine() on such a board
    memory_base: int        # where the simulated DMA buffers start (device addresses)

    def clock_parameters(self, clock_mhz: float, divisor0: int) -> dict[str, str]:
        """The PS parameters pynqmetadata reads the PL clocks from (clock 0 enabled)."""
        params: dict[str, str] = {}
        for i in range(4):
            on = "1" if i == 0 else "0"
            if self.ps_modtype == "processing_system7":
                params[f"PCW_FPGA_FCLK{i}_ENABLE"] = on
                params[f"PCW_FCLK{i}_PERIPHERAL_DIVISOR0"] = str(divisor0 if i == 0 else 1)
                params[f"PCW_FCLK{i}_PERIPHERAL_DIVISOR1"] = "1"
                params[f"PCW_FCLK{i}_PERIPHERAL_CLKSRC"] = "IO PLL"
                params[f"PCW_FPGA{i}_PERIPHERAL_FREQMHZ"] = f"{clock_mhz:g}" if i == 0 else "100"
                params[f"PCW_ACT_FPGA{i}_PERIPHERAL_FREQMHZ"] = f"{clock_mhz:.6f}" if i == 0 else "10.000000"
            else:
                params[f"PSU__FPGA_PL{i}_ENABLE"] = on
                params[f"PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR0"] = str(divisor0 if i == 0 else 1)
                params[f"PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR1"] = "1"
                params[f"PSU__CRL_APB__PL{i}_REF_CTRL__SRCSEL"] = "IOPLL"
                params[f"PSU__CRL_APB__PL{i}_REF_CTRL__FREQMHZ"] = f"{clock_mhz:g}" if i == 0 else "100"
                params[f"PSU__CRL_APB__PL{i}_REF_CTRL__ACT_FREQMHZ"] = f"{clock_mhz:.6f}" if i == 0 else "100.0"
        return params


FAMILIES: dict[str, BoardFamily] = {
    # Zynq UltraScale+ (ZCU104, Ultra96, KV260): 64-bit PS, DMA buffers may lie above 4 GiB
    "zynq_ultrascale": BoardFamily("zynq_ultrascale", "zynquplus", "xczu7ev", "ffvc1156", "-2", "xczu7ev-ffvc1156-2-e",
                                   "zynq_ultra_ps_e", "xilinx.com:ip:zynq_ultra_ps_e:3.5", "M_AXI_HPM0_FPD",
                                   0xA000_0000, "aarch64", 0x8_0000_0000),
    # Zynq-7000 (PYNQ-Z1/Z2): 32-bit PS, 512 MiB DDR
    "zynq_7000": BoardFamily("zynq_7000", "zynq", "7z020", "clg400", "-1", "7z020clg400",
                             "processing_system7", "xilinx.com:ip:processing_system7:5.5", "M_AXI_GP0",
                             0x43C0_0000, "armv7l", 0x1800_0000),
}


def family_for_part(part: str) -> str:
    """The :data:`FAMILIES` key of an FPGA part (a package manifest's ``fpga_part``)."""
    p = part.lower()
    if p.startswith("xczu"):
        return "zynq_ultrascale"
    if p.startswith("xc7z"):
        return "zynq_7000"
    raise ValueError(f"fpga part {part!r}: the simulated pynq device knows Zynq-7000 (xc7z...) and Zynq "
                     "UltraScale+ (xczu...) only")


# --------------------------------------------------------------------------- the .bit / .hwh files

#: the simulated IODMAs' registers as the .hwh lists them: (name, offset, fields)
_CTRL_FIELDS = (("AP_START", 0, 1, "read-write"), ("AP_DONE", 1, 1, "read-only"), ("AP_IDLE", 2, 1, "read-only"),
                ("AP_READY", 3, 1, "read-only"), ("RESERVED_1", 4, 3, "read-only"),
                ("AUTO_RESTART", 7, 1, "read-write"), ("RESERVED_2", 8, 24, "read-only"))


def _registers(port: str) -> list[tuple[str, int, tuple]]:
    return [("CTRL", AP_CTRL, _CTRL_FIELDS),
            (f"{port}_1", ADDR_LO, ((f"{port}", 0, 32, "read-write"),)),
            (f"{port}_2", ADDR_HI, ((f"{port}", 0, 32, "read-write"),)),
            ("numReps", NUM_REPS, (("numReps", 0, 32, "read-write"),))]


def _register_xml(name: str, offset: int, fields: tuple) -> str:
    out = [f'            <REGISTER NAME="{name}">',
           f'              <PROPERTY NAME="DESCRIPTION" VALUE="{name}"/>',
           f'              <PROPERTY NAME="ADDRESS_OFFSET" VALUE="{offset}"/>',
           '              <PROPERTY NAME="SIZE" VALUE="32"/>',
           '              <PROPERTY NAME="ACCESS" VALUE="read-write"/>',
           '              <PROPERTY NAME="IS_ENABLED" VALUE="true"/>',
           '              <PROPERTY NAME="RESET_VALUE" VALUE="0"/>',
           '              <FIELDS>']
    for fname, bit, width, access in fields:
        out += [f'                <FIELD NAME="{fname}">',
                f'                  <PROPERTY NAME="DESCRIPTION" VALUE="{fname}"/>',
                f'                  <PROPERTY NAME="ADDRESS_OFFSET" VALUE="{bit}"/>',
                f'                  <PROPERTY NAME="ACCESS" VALUE="{access}"/>',
                f'                  <PROPERTY NAME="BIT_OFFSET" VALUE="{bit}"/>',
                f'                  <PROPERTY NAME="BIT_WIDTH" VALUE="{width}"/>',
                '                </FIELD>']
    out += ['              </FIELDS>', '            </REGISTER>']
    return "\n".join(out)


def _iodma_module(instance: str, port: str, bus: str) -> str:
    regs = "\n".join(_register_xml(*r) for r in _registers(port))
    return f'''    <MODULE COREREVISION="1" FULLNAME="/{instance}" HWVERSION="1.0" INSTANCE="{instance}" IPTYPE="PERIPHERAL" IS_ENABLE="1" MODCLASS="PERIPHERAL" MODTYPE="{instance}" VLNV="xilinx.com:hls:{instance}:1.0">
      <DOCUMENTS/>
      <ADDRESSBLOCKS>
        <ADDRESSBLOCK ACCESS="read-write" INTERFACE="s_axi_control" NAME="Reg" RANGE="65536" USAGE="register">
          <REGISTERS>
{regs}
          </REGISTERS>
        </ADDRESSBLOCK>
      </ADDRESSBLOCKS>
      <PARAMETERS>
        <PARAMETER NAME="Component_Name" VALUE="{instance}"/>
      </PARAMETERS>
      <PORTS/>
      <BUSINTERFACES>
        <BUSINTERFACE BUSNAME="{bus}" DATAWIDTH="32" NAME="s_axi_control" TYPE="SLAVE" VLNV="xilinx.com:interface:aximm:1.0">
          <PARAMETER NAME="PROTOCOL" VALUE="AXI4LITE"/>
        </BUSINTERFACE>
      </BUSINTERFACES>
    </MODULE>'''


def simulated_hwh(family: str = "zynq_ultrascale", clock_mhz: float = 100.0, design: str = SIM_DESIGN,
                  weight_dmas: Sequence[str] = ()) -> str:
    """The text of a minimal ``.hwh`` for :class:`SimulatedPynqDevice`: the PS (PL clock 0 at
    ``clock_mhz``), ``idma0`` and ``odma0`` (FINN's IODMA register maps: ``CTRL`` 0x00,
    buffer address 0x10/0x14, ``numReps`` 0x1C) and the ``weight_dmas`` (runtime-writeable
    weights: ``idma1``..., the same map) at 64 KiB apart from the family's PL base."""
    fam = FAMILIES[family]
    src_mhz = 1000.0
    divisor0 = max(1, min(63, round(src_mhz / clock_mhz)))
    params = "\n".join(f"        <PARAMETER NAME={quoteattr(k)} VALUE={quoteattr(v)}/>"
                       for k, v in fam.clock_parameters(clock_mhz, divisor0).items())
    bus = f"ps_{fam.ps_master}"  # one AXI-lite bus from the PS master to both control ports
    ranges = []
    dmas = [("idma0", "in0_V"), ("odma0", "out_V"), *((name, "in0_V") for name in weight_dmas)]
    for k, (ip, _) in enumerate(dmas):
        base = fam.ip_base + k * 0x1_0000
        ranges.append(f'        <MEMRANGE ADDRESSBLOCK="Reg" BASENAME="C_S_AXI_CONTROL_BASEADDR" '
                      f'BASEVALUE="0x{base:08X}" HIGHNAME="C_S_AXI_CONTROL_HIGHADDR" '
                      f'HIGHVALUE="0x{base + 0xFFFF:08X}" INSTANCE="{ip}" IS_DATA="TRUE" IS_INSTRUCTION="TRUE" '
                      f'MASTERBUSINTERFACE="{fam.ps_master}" MEMTYPE="REGISTER" SLAVEBUSINTERFACE="s_axi_control"/>')
    stamp = datetime.datetime(2000, 1, 1).strftime("%a %b %d %H:%M:%S %Y")
    return f'''<?xml version="1.0" encoding="UTF-8" standalone="no" ?>
<!-- Hardware handoff for winoforge's SIMULATED pynq device (winoforge.runtime.pynq_sim).
     Written by write_simulated_bitstream; describes no real hardware. -->
<EDKSYSTEM EDWVERSION="1.2" TIMESTAMP="{stamp}" VIVADOVERSION="2022.2">

  <SYSTEMINFO ARCH="{fam.arch}" DEVICE="{fam.device}" NAME="{design}" PACKAGE="{fam.package}" SPEEDGRADE="{fam.speedgrade}"/>

  <EXTERNALPORTS/>

  <EXTERNALINTERFACES/>

  <MODULES>
    <MODULE CONFIGURABLE="TRUE" COREREVISION="1" FULLNAME="/ps" HWVERSION="1.0" INSTANCE="ps" IPTYPE="PERIPHERAL" IS_ENABLE="1" IS_PL="FALSE" MODTYPE="{fam.ps_modtype}" VLNV="{fam.ps_vlnv}">
      <DOCUMENTS/>
      <PARAMETERS>
{params}
      </PARAMETERS>
      <PORTS/>
      <BUSINTERFACES>
        <BUSINTERFACE BUSNAME="{bus}" DATAWIDTH="32" NAME="{fam.ps_master}" TYPE="MASTER" VLNV="xilinx.com:interface:aximm:1.0">
          <PARAMETER NAME="PROTOCOL" VALUE="AXI4LITE"/>
        </BUSINTERFACE>
      </BUSINTERFACES>
      <MEMORYMAP>
{chr(10).join(ranges)}
      </MEMORYMAP>
    </MODULE>
{chr(10).join(_iodma_module(ip, port, bus) for ip, port in dmas)}
  </MODULES>

</EDKSYSTEM>
'''


def simulated_bit(family: str = "zynq_ultrascale", design: str = SIM_DESIGN) -> bytes:
    """A ``.bit`` file as pynq's ``parse_bit_header`` reads it (the 13-byte preamble, fields
    ``a`` design, ``b`` part, ``c`` date, ``d`` time, ``e`` payload length + payload), whose
    payload says that it is a file for the simulated device, not a bitstream."""
    fam = FAMILIES[family]

    def field(key: bytes, text: str) -> bytes:
        data = text.encode("ascii") + b"\0"
        return key + struct.pack(">H", len(data)) + data

    payload = _PAYLOAD + b"\0" * (-len(_PAYLOAD) % 4)
    return (struct.pack(">H", 9) + bytes.fromhex("0ff00ff00ff00ff000") + struct.pack(">H", 1)
            + field(b"a", f"{design};UserID=0XFFFFFFFF;Version=2022.2") + field(b"b", fam.part)
            + field(b"c", "2000/01/01") + field(b"d", "00:00:00")
            + b"e" + struct.pack(">I", len(payload)) + payload)


def write_simulated_bitstream(folder: str | Path, name: str = "simulated", family: str = "zynq_ultrascale",
                              clock_mhz: float = 100.0, weight_dmas: Sequence[str] = ()) -> Path:
    """Write ``<folder>/<name>.bit`` and ``<name>.hwh`` for :class:`SimulatedPynqDevice`; the
    ``.bit``'s path.  Files for the simulated device only: they are not bitstreams (module
    docstring).  ``weight_dmas``: the weight DMAs the design has (:func:`simulated_hwh`)."""
    if family not in FAMILIES:
        raise ValueError(f"family={family!r}; allowed: {', '.join(FAMILIES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bit = folder / f"{name}.bit"
    bit.write_bytes(simulated_bit(family))
    bit.with_suffix(".hwh").write_text(simulated_hwh(family, clock_mhz, weight_dmas=weight_dmas), encoding="utf-8")
    return bit


def rehearsal_package(package: str | Path, out: str | Path, family: str | None = None, *,
                      board: str | None = None, fpga_part: str | None = None) -> Path:
    """A copy of deployment ``package`` at ``out`` with a simulated ``.bit``/``.hwh`` (for
    :class:`SimulatedPynqDevice` only) named by the manifest's ``bitfile`` and every sha256
    listed again: what ``Accelerator.load(out, backend="pynq")`` opens inside
    :func:`simulated_pynq`.  ``family`` defaults to the package's FPGA part's; ``board`` and
    ``fpga_part`` replace the manifest's (to rehearse another board family)."""
    import shutil

    from .package import load_package, write_manifest

    source = load_package(package)
    out = Path(out)
    shutil.copytree(source.path, out)
    manifest = dict(source.manifest)
    part = fpga_part or manifest["fpga_part"]
    family = family or family_for_part(part)
    dmas = [e["dma"] for e in manifest.get("runtime_weights") or []]
    bit = write_simulated_bitstream(out, source.name, family=family, clock_mhz=float(manifest["clock_mhz"]),
                                    weight_dmas=dmas)
    info = {k: v for k, v in manifest.items() if k not in ("format_version", "files")}
    info.update(bitfile=bit.name, fpga_part=part, board=board or manifest["board"])
    write_manifest(out, info)
    return out


# --------------------------------------------------------------------------- the device

class SimulatedClocks:
    """Stand-in for pynq's ``_ClocksZynq``/``_ClocksUltrascale`` (which map the PS clock
    registers through ``/dev/mem``): the same arithmetic on a simulated source PLL, so a
    frequency of ``None`` fails exactly as on a board (``TypeError``)."""

    def __init__(self, src_mhz: float = 1000.0, cpu_mhz: float = 1200.0) -> None:
        self.src_mhz = float(src_mhz)
        self.cpu_mhz = float(cpu_mhz)
        self.divisors = {i: (10, 1) for i in range(4)}

    def get_cpu_mhz(self) -> float:
        return self.cpu_mhz

    def get_pl_clk(self, clk_idx: int) -> float:
        if clk_idx not in range(4):
            raise ValueError("Valid PL clock index is 0 - 3.")
        div0, div1 = self.divisors[clk_idx]
        return round(self.src_mhz / (div0 * div1), 6)

    def set_pl_clk(self, clk_idx: int, div0: int | None = None, div1: int | None = None,
                   clk_mhz: float | None = 100.0) -> None:
        if clk_idx not in range(4):
            raise ValueError("Valid PL clock index is 0 - 3.")
        if div0 is None and div1 is None:
            wanted = self.src_mhz / clk_mhz  # type: ignore[operator]  # None -> TypeError, as pynq's
            div0, div1 = min(((a, b) for a in range(1, 64) for b in range(1, 64)),
                             key=lambda d: abs(d[0] * d[1] - wanted))
        elif div1 is None:
            div1 = round(self.src_mhz / clk_mhz / div0)  # type: ignore[operator]
        elif div0 is None:
            div0 = round(self.src_mhz / clk_mhz / div1)  # type: ignore[operator]
        if not (0 < div0 < 64 and 0 < div1 < 64):
            raise ValueError("Frequency divider value out of range.")
        self.divisors[clk_idx] = (int(div0), int(div1))


class _RegisterWindow(np.ndarray):
    """``mmap``'s uint32 array: each element read or written is a register access of the
    simulated IP at ``base + 4 * index`` (slices and views keep their offset)."""

    _device: SimulatedPynqDevice | None
    _base: int

    def __array_finalize__(self, obj: Any) -> None:
        self._device, self._base = None, 0
        if isinstance(obj, _RegisterWindow) and obj._device is not None:
            offset = self.__array_interface__["data"][0] - obj.__array_interface__["data"][0]
            self._device, self._base = obj._device, obj._base + offset

    def _address(self, index: Any) -> int | None:
        if self._device is None or self.ndim != 1 or self.dtype != np.uint32:
            return None
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            return None  # a slice or fancy index: a view, no access yet
        i = int(index) + (self.shape[0] if index < 0 else 0)
        if not 0 <= i < self.shape[0]:
            raise IndexError(f"register word {int(index)} outside the {self.shape[0]}-word window at {self._base:#x}")
        return self._base + 4 * i

    def __getitem__(self, index: Any) -> Any:
        address = self._address(index)
        if address is None:
            return super().__getitem__(index)
        assert self._device is not None
        return np.uint32(self._device.register_read(address))

    def __setitem__(self, index: Any, value: Any) -> None:
        address = self._address(index)
        if address is None:
            raise DeviceError("simulated registers are written one 32-bit word at a time")
        assert self._device is not None
        self._device.register_write(address, int(value))


@dataclass
class _BufferObject:
    """One simulated XRT buffer object: its device address and the CPU's view of it."""

    address: int
    size: int
    cacheable: bool
    cpu: np.ndarray
    freed: bool = False


class _SimulatedMunmap:
    """What pynq's ``PynqBuffer.freebuffer`` calls on a board (``libc.munmap``): releases the
    simulated buffer object mapped at that CPU address."""

    def __init__(self, device: SimulatedPynqDevice) -> None:
        self.device = device

    def munmap(self, pointer: Any, length: int) -> int:
        address = pointer.value if isinstance(pointer, ctypes.c_void_p) else int(pointer)
        self.device.release_mapping(int(address or 0), int(length))
        return 0


class SimulatedPynqDevice(pynq.Device):
    """A Zynq board's PS + PL for pynq, with the PL a FINN IODMA pair around
    ``pl.compute`` (module docstring).

    ``pl``: the :class:`~winoforge.runtime.device.SimulatedIODMAPair` (its ``memory`` is
    the board's DDR); ``family``: a :data:`FAMILIES` key.  Attributes for tests:
    :attr:`downloads` (the ``.bit`` files loaded), :attr:`bos` (buffer objects by address),
    :attr:`register_log` ((op, address, value) of every register access).
    """

    def __init__(self, pl: SimulatedIODMAPair, family: str = "zynq_ultrascale",
                 tag: str = "winoforge_simulated0") -> None:
        super().__init__(tag)
        if family not in FAMILIES:
            raise ValueError(f"family={family!r}; allowed: {', '.join(FAMILIES)}")
        self.family = FAMILIES[family]
        self.pl = pl
        self.memory: SimulatedMemory = pl.memory
        self.name = f"winoforge simulated {family}"
        self.arch = self.family.cpu_arch
        self.capabilities = {"REGISTER_RW": False, "MEMORY_MAPPED": True, "CALLABLE": False}
        self.timestamp = ""
        self.bitfile_name: str | None = None
        self.downloads: list[str] = []
        self.bos: dict[int, _BufferObject] = {}
        self.register_log: list[tuple[str, int, int]] = []
        self._ips: dict[int, tuple[int, SimulatedIODMA]] = {}  # base -> (range, ip)
        self._buffers: list[weakref.ref[Any]] = []  # PynqBuffers are unhashable: no WeakSet

    # -- memory (pynq's XrtMemory calls these)
    @property
    def default_memory(self) -> XrtMemory:
        """The PS DDR (the bank at base address 0), as ``EmbeddedDevice.default_memory``."""
        if not self.downloads:
            raise RuntimeError("Overlay is not downloaded")  # as EmbeddedDevice without a loaded design
        for desc in self.mem_dict.values():
            if desc.get("base_address") == 0:
                return self.get_memory(desc)
        raise RuntimeError("XRT design does not contain PS memory")

    def get_memory(self, description: Mapping[str, Any]) -> XrtMemory:
        return _TrackedMemory(self, dict(description))

    def allocate_bo(self, size: int, idx: int, cacheable: Any) -> _BufferObject:
        address = self.memory.reserve(size)
        device_bytes = self.memory.region(address)
        # cacheable: the CPU works on its own cached copy (flush/invalidate needed);
        # otherwise the CPU maps the DDR itself
        cpu = np.zeros(max(int(size), 1), np.uint8) if cacheable else device_bytes
        bo = _BufferObject(address, int(size), bool(cacheable), cpu)
        self.bos[address] = bo
        return bo

    def map_bo(self, bo: _BufferObject) -> memoryview:
        return memoryview(bo.cpu)[:bo.size]

    def get_device_address(self, bo: _BufferObject) -> int:
        return bo.address

    def _span(self, bo: _BufferObject, offset: int, ptr: int, size: int) -> slice:
        if bo.freed:
            raise SimulatedBusError(f"cache maintenance on the freed buffer at {bo.address:#x}")
        if ptr != bo.cpu.__array_interface__["data"][0] + offset or offset < 0 or offset + size > bo.size:
            raise DeviceError(f"cache maintenance of {size} bytes at offset {offset} does not lie in the buffer at "
                              f"{bo.address:#x} ({bo.size} bytes)")
        return slice(offset, offset + size)

    def flush(self, bo: _BufferObject, offset: int, ptr: int, size: int) -> None:
        span = self._span(bo, offset, ptr, size)
        if bo.cacheable:
            self.memory.write(bo.address + offset, bo.cpu[span])

    def invalidate(self, bo: _BufferObject, offset: int, ptr: int, size: int) -> None:
        span = self._span(bo, offset, ptr, size)
        if bo.cacheable:
            bo.cpu[span] = self.memory.read(bo.address + offset, size)

    def release_mapping(self, cpu_address: int, length: int) -> None:
        """``munmap`` of a buffer's CPU mapping: frees its buffer object (later DMA there is a
        bus error)."""
        for bo in self.bos.values():
            if not bo.freed and bo.cpu.__array_interface__["data"][0] == cpu_address:
                bo.freed = True
                self.memory.free(bo.address)
                return
        raise DeviceError(f"munmap of {length} bytes at {cpu_address:#x}: no buffer of this device is mapped there")

    def free_all(self) -> None:
        """Free every buffer still allocated (the board is switched off)."""
        buffers, self._buffers = [ref() for ref in self._buffers], []
        for buf in buffers:
            if buf is not None:
                buf.freebuffer()

    # -- registers (pynq's MMIO calls mmap once per IP; the array's accesses land here)
    def mmap(self, base_addr: int, length: int) -> np.ndarray:
        window = np.zeros(int(length) >> 2, np.uint32).view(_RegisterWindow)
        window._device, window._base = self, int(base_addr)
        return window

    def _ip_at(self, address: int) -> tuple[SimulatedIODMA, int]:
        for base, (size, ip) in self._ips.items():
            if base <= address < base + size:
                return ip, address - base
        raise SimulatedBusError(f"register access at {address:#x}: no IP of the loaded design is mapped there")

    def register_read(self, address: int) -> int:
        ip, offset = self._ip_at(address)
        value = ip.read(offset)
        self.register_log.append(("read", address, value))
        return value

    def register_write(self, address: int, value: int) -> None:
        ip, offset = self._ip_at(address)
        self.register_log.append(("write", address, value))
        ip.write(offset, value)

    # -- bitstreams
    def get_bitfile_metadata(self, bitfile_name: str, partial: bool = False) -> Any:
        """pynq's ``EmbeddedDevice`` path (``BitfileHandler.get_parser``) for a ``.bit`` with its
        ``.hwh``, without the two board-only parts: the metadata cache (a pickle of whatever
        the board last loaded) and the synthetic xclbin (made by XRT's ``xclbinutil``) that
        registers the PS DDR with XRT -- here the ``PSDDR`` bank is added directly."""
        handler = BitfileHandler(bitfile_name)
        hwh = Path(bitfile_name).with_suffix(".hwh")
        if handler.get_hwh_data() is None:
            raise RuntimeError("Unable to find metadata for bitstream")
        parser = RuntimeMetadataParser(Metadata(input=hwh))
        if not any(v.get("base_address") == 0 for v in parser.mem_dict.values()):
            parser.mem_dict["PSDDR"] = {"idx": 0, "size": 1 << 31, "base_address": 0, "tag": "PSDDR",
                                        "type": "DDR", "raw_type": 0, "used": 1, "streaming": False}
        if not partial:
            parser.refresh_hierarchy_dict()
        parser.bin_data = handler.get_bin_data()  # pynq's bit2bin: the .bit header must parse
        parser.xclbin_data = None
        parser.dtbo_data = handler.get_dtbo_data()
        return parser

    def gen_cache(self, bitstream: Any, parser: Any = None) -> None:
        """pynq writes its metadata cache into its own package on a board; not here."""

    def download(self, bitstream: Any, parser: Any = None) -> None:
        data = Path(bitstream.bitfile_name).read_bytes()
        try:
            header = parse_bit_header(data)
        except Exception as err:  # noqa: BLE001 -- pynq raises struct.error, IndexError, RuntimeError...
            raise RuntimeError(f"{bitstream.bitfile_name} is not a Xilinx .bit file: {err}") from None
        if not header.get("design", "").startswith(SIM_DESIGN):
            raise RuntimeError(f"{bitstream.bitfile_name}: design {header.get('design')!r} is a real bitstream; the "
                               "simulated device loads only files written by write_simulated_bitstream")
        if parser is None:
            raise RuntimeError(f"{bitstream.bitfile_name}: no .hwh metadata")
        self._ips = {}
        for name, ip in self.pl.dmas.items():
            if name not in parser.ip_dict:
                raise RuntimeError(f"{bitstream.bitfile_name}: the .hwh has no {name}")
            desc = parser.ip_dict[name]
            self._ips[int(desc["phys_addr"])] = (int(desc["addr_range"]), ip)
        self.downloads.append(str(bitstream.bitfile_name))
        self.post_download(bitstream, parser, self.name)

    def __repr__(self) -> str:
        return f"SimulatedPynqDevice({self.name!r}, loaded={self.bitfile_name!r})"


class _TrackedMemory(XrtMemory):
    """pynq's ``XrtMemory``, remembering the buffers it allocated so that leaving
    :func:`simulated_pynq` can free them while the ``munmap`` stand-in is still there."""

    def allocate(self, shape: Any, dtype: Any, **kwargs: Any) -> Any:
        buf = super().allocate(shape, dtype, **kwargs)
        self.device._buffers.append(weakref.ref(buf))
        return buf


# --------------------------------------------------------------------------- activation

_MISSING = object()


def _load_compute(package: Any) -> tuple[Callable[[np.ndarray], np.ndarray], IOSpec, dict[str, int]]:
    """The package's integer program as the PL's compute (taking the weights its weight DMAs
    deliver, where it has runtime-writeable weights), its io, and ``{weight DMA: words}``."""
    from .accelerator import _ProgramWithWeights, runtime_weight_entries
    from .package import Package, load_package
    from .program import Program

    pkg = package if isinstance(package, Package) else load_package(package)
    program = Program.load(pkg.path / "runtime")
    entries = runtime_weight_entries(pkg)
    compute = _ProgramWithWeights(program, entries) if entries else program.run
    return compute, IOSpec.from_dict(program.io), {e["dma"]: e["layout"].words for e in entries}


@contextlib.contextmanager
def simulated_pynq(package_or_compute: Any, io: IOSpec | Mapping[str, Any] | None = None, *,
                   family: str = "zynq_ultrascale", memory_base: int | None = None, latency_polls: int = 0,
                   hang: bool = False, busy: bool = False) -> Iterator[SimulatedPynqDevice]:
    """Install a :class:`SimulatedPynqDevice` as pynq's active device for the ``with`` block.

    ``package_or_compute``: a deployment package (path or ``Package``: the device computes
    with its integer program, ``io`` from it) or a ``compute(x_normal) -> y_normal`` callable
    (then ``io`` is required).  ``family``: a :data:`FAMILIES` key; ``memory_base``: the
    first DMA buffer address (default: the family's); ``latency_polls``, ``hang``, ``busy``:
    as :class:`~winoforge.runtime.device.SimulatedIODMAPair`.

    Sets ``pynq.Device._devices``/``active_device``, ``pynq.ps.Clocks`` (``_real_instance``,
    ``device``) and ``pynq.buffer``'s ``libc``/``ctypes`` (the ``munmap`` that frees buffers);
    on leaving, frees the buffers still allocated and restores all of them as they were.
    """
    weight_dmas: dict[str, int] = {}
    if callable(package_or_compute):
        if io is None:
            raise ValueError("simulated_pynq(compute, io): io is required with a compute callable")
        compute, spec = package_or_compute, IOSpec.from_dict(io)
    else:
        compute, spec, weight_dmas = _load_compute(package_or_compute)
        if io is not None:
            spec = IOSpec.from_dict(io)
    if family not in FAMILIES:
        raise ValueError(f"family={family!r}; allowed: {', '.join(FAMILIES)}")
    fam = FAMILIES[family]
    memory = SimulatedMemory(base=fam.memory_base if memory_base is None else memory_base)
    pl = SimulatedIODMAPair(compute, spec, memory=memory, latency_polls=latency_polls, hang=hang, busy=busy,
                            weight_dmas=weight_dmas)
    device = SimulatedPynqDevice(pl, family)

    Device, Clocks = pynq.Device, pynq.ps.Clocks
    saved = [(Device, "_devices"), (Device, "_active_device"), (Clocks, "_real_instance"), (Clocks, "device"),
             (pynq.buffer, "libc"), (pynq.buffer, "ctypes")]
    before = [(owner, name, owner.__dict__.get(name, _MISSING) if isinstance(owner, type)
               else getattr(owner, name, _MISSING)) for owner, name in saved]
    try:
        Device._devices = [device]
        Device.active_device = device
        Clocks._real_instance = SimulatedClocks()
        Clocks.device = device
        pynq.buffer.libc = _SimulatedMunmap(device)
        pynq.buffer.ctypes = ctypes
        yield device
    finally:
        try:
            device.free_all()
        finally:
            for owner, name, value in before:
                if value is _MISSING:
                    if name in vars(owner):
                        delattr(owner, name)
                else:
                    setattr(owner, name, value)
