"""winoforge.runtime -- run a deployment package, on a PYNQ board or a simulated device.

numpy only (numpy 1.x on PYNQ images, 2.x on the host); ``pynq`` is imported only by
the pynq backend.

* :mod:`.datatypes` -- FINN datatype names (``"UINT8"``, ``"DataType['INT4']"``, ...).
* :mod:`.packing` -- FINN's packed DMA byte format (``finnpy_to_packed_bytearray`` and
  back), byte for byte as FINN, vectorised.
* :mod:`.package` -- load a deployment package and verify every sha256.
* :mod:`.device` -- FINN's zynq-iodma driver protocol and a register-level simulated
  device.
* :mod:`.program` -- the accelerator's integer program (exported by ``winoforge.hw.program``)
  and its numpy interpreter, the simulated device's compute.
* :mod:`.accelerator` -- ``Accelerator.load(path, backend="auto"|"pynq"|"sim")``,
  ``acc.execute(x)``, ``acc.predict(x)``.
* :mod:`.pynq_sim` (board environment, not imported here) -- a simulated ``pynq.Device``
  under pynq's own ``Overlay``/``allocate``/``MMIO``, to run the pynq backend without a board.
"""

from .accelerator import BACKENDS, Accelerator, BackendError
from .datatypes import DataType, parse_datatype
from .device import (DataflowDriver, DeviceError, DeviceTimeoutError, IOSpec, SimulatedBusError, SimulatedMemory,
                     SimulatedOverlay)
from .package import PACKAGE_FORMAT, CorruptPackageError, Package, load_package, verify_package
from .packing import check_values, finnpy_to_packed_bytearray, packed_bytearray_to_finnpy, packed_shape
from .program import Program, ProgramError

__all__ = [
    "Accelerator", "BACKENDS", "BackendError",
    "DataType", "parse_datatype",
    "DataflowDriver", "DeviceError", "DeviceTimeoutError", "IOSpec", "SimulatedBusError", "SimulatedMemory",
    "SimulatedOverlay",
    "PACKAGE_FORMAT", "CorruptPackageError", "Package", "load_package", "verify_package",
    "check_values", "finnpy_to_packed_bytearray", "packed_bytearray_to_finnpy", "packed_shape",
    "Program", "ProgramError",
]
