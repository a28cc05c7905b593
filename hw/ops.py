"""``WinogradConv``: the fused, layout-agnostic Winograd convolution node of the flow.

ONNX domain ``winoforge.hw.ops`` (qonnx finds the class through this module's
``custom_op`` dict).  :class:`winoforge.hw.transforms.FuseWinogradSubgraph`
replaces each exported Winograd subgraph (``Pad - Conv - shuffle - Conv -
shuffle - Conv - DepthToSpace - Slice``, see
:func:`winoforge.model.winograd_layer.winograd_conv2d_onnx`) by::

    x (NCHW) -> WinogradConv(U_int) -> Mul(s_w per output channel)

so the node itself carries only the *integer* Winograd-domain weight codes.
It lives through FINN's streamlining in NCHW like a ``Conv`` (our own
transformations move scalar scales past it and absorb sign flips into ``U``),
and :class:`winoforge.hw.transforms.LowerWinogradToHW` turns it into the
NHWC hardware layer ``WinogradSRBS`` between two Transposes.

Execution: ``winoforge.winograd.winograd_conv2d`` -- exact int64 when the input
is integer-valued, float64 otherwise -- returned as float32 (FINN's tensor
type); an integer result too large for float32 to hold exactly is refused.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

from winoforge.winograd import FLOAT32_EXACT, WinogradSpec, accumulator_bits, winograd_conv2d

__all__ = ["DOMAIN", "WinogradConv", "custom_op", "FLOAT32_EXACT"]

DOMAIN = "winoforge.hw.ops"


def integer_valued(a: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(a)) and np.array_equal(a, np.round(a)))


def to_float32_exact(y: np.ndarray, where: str) -> np.ndarray:
    """int64 -> float32, refusing magnitudes float32 cannot hold exactly."""
    if y.size and int(np.abs(y).max()) >= FLOAT32_EXACT:
        raise ValueError(f"{where}: an output reaches {int(np.abs(y).max())} >= 2^24, which float32 "
                         "(FINN's tensor type) cannot hold exactly; use narrower bit widths")
    return y.astype(np.float32)


class WinogradConv(CustomOp):
    """3x3 stride-1 convolution ``y = winograd_conv2d(x, U, F(m,3), (pad_h, pad_w))``, NCHW.

    Inputs: ``x`` (N, Cin, H, W); ``U`` (Cout, Cin, t, t) integer codes (initializer).
    Attributes: ``m`` (2, 4), ``pads`` ([pad_h, pad_w]), ``sub_row``/``keep`` (SRBS
    parameters of the trained layer, 0 = dense), ``layer`` (the torch module name).
    """

    def get_nodeattr_types(self):
        return {
            "m": ("i", True, 2, {2, 4}),
            "pads": ("ints", True, [1, 1]),
            "sub_row": ("i", False, 0),
            "keep": ("i", False, 0),
            "layer": ("s", False, ""),
        }

    @property
    def spec(self) -> WinogradSpec:
        return WinogradSpec(self.get_nodeattr("m"))

    def _pads(self) -> tuple[int, int]:
        ph, pw = (int(p) for p in self.get_nodeattr("pads"))
        return ph, pw

    def make_shape_compatible_op(self, model):
        """A ``Conv`` with the t x t weight ``U`` and padding (p, p, p+t-3, p+t-3): the same output
        shape, H + 2p - 2, inferred by ONNX even where the input's shape is not yet known."""
        from onnx import helper

        ph, pw = self._pads()
        t = self.spec.t
        node = self.onnx_node
        return helper.make_node("Conv", [node.input[0], node.input[1]], [node.output[0]], kernel_shape=[t, t],
                                pads=[ph, pw, ph + t - 3, pw + t - 3])

    def infer_node_datatype(self, model):
        node = self.onnx_node
        idt = model.get_tensor_datatype(node.input[0])
        wdt = model.get_tensor_datatype(node.input[1])
        if idt.is_integer() and wdt.is_integer():
            U = model.get_initializer(node.input[1])
            # all Cin channels, also for SRBS layers: the kept channels differ between Winograd
            # positions, so one output can see every channel (Cin*keep/sub_row would be unsound)
            bits = accumulator_bits(idt.bitwidth(), wdt.bitwidth(), U.shape[1], self.spec, in_signed=idt.signed(),
                                    weight_signed=wdt.signed())
            model.set_tensor_datatype(node.output[0], DataType[f"INT{bits}"])
        else:
            model.set_tensor_datatype(node.output[0], DataType["FLOAT32"])

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = np.asarray(context[node.input[0]])
        U = np.asarray(context[node.input[1]])
        if not integer_valued(U):
            raise ValueError(f"WinogradConv {node.name}: the weight {node.input[1]} must hold integer codes")
        if integer_valued(x):
            y = winograd_conv2d(x.astype(np.int64), U.astype(np.int64), self.spec, self._pads())
            context[node.output[0]] = to_float32_exact(y, f"WinogradConv {node.name}")
        else:
            y = winograd_conv2d(x.astype(np.float64), U.astype(np.float64), self.spec, self._pads())
            context[node.output[0]] = y.astype(np.float32)

    def verify_node(self):
        info = []
        if len(self.onnx_node.input) != 2:
            info.append("WinogradConv needs 2 inputs (x, U)")
        if len(self.get_nodeattr("pads")) != 2 or min(self.get_nodeattr("pads")) < 0:
            info.append("pads must be [pad_h, pad_w] >= 0")
        return info


custom_op = {"WinogradConv": WinogradConv}
