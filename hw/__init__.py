"""winoforge.hw -- from a trained student to a FINN dataflow accelerator.

* ``export``: QONNX export of students (Winograd layers as standard-op subgraphs) and
  the exact check against torch on real images.
* ``ops`` / ``transforms``: the fused ``WinogradConv`` node and the qonnx
  transformations that carry it through FINN's streamlining to hardware.
* ``winograd_op``: the ``WinogradSRBS`` FINN hardware layer; importing it registers
  the op with FINN (it imports finn, a few seconds).  Its parts: ``srbs_params``
  (validated parameters, weights, exact semantics), ``srbs_ranges`` (datatypes,
  output ranges), ``srbs_estimates`` (cycles, widths, resources), ``srbs_folding``
  (folding search), ``srbs_codegen`` (weight memories, ``params.json``).
* ``build``: the FINN build (our steps and FINN's), verified after every step;
  ``baseline``: the same network with direct convolutions for stock FINN.
* ``flow``: what the CLI calls -- load, export, build, deployment packages.
* ``boards``: the board table; ``finn_env``: the shims FINN needs without Vivado.

Submodules are imported explicitly (``from winoforge.hw import build``) so that
``import winoforge.hw`` stays cheap.
"""

from .boards import BOARDS, Board, fits, get_board

__all__ = ["BOARDS", "Board", "fits", "get_board"]
