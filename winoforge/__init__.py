"""winoforge: an FPGA co-design flow for CNN inference.

Subpackages (each a top-level folder of the repository, see DESIGN.md):

* :mod:`winoforge.winograd` -- exact Winograd transforms, SRBS sparsity, op counts (numpy only)
* :mod:`winoforge.model` -- datasets, teachers, Brevitas students, distillation
* :mod:`winoforge.hw` -- QONNX export, FINN build steps, the WinogradSRBS layer
* :mod:`winoforge.runtime` -- deployment packages, PYNQ driver, simulated device
"""

__version__ = "0.1.0"
