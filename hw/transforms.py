"""qonnx transformations that carry Winograd layers from the export to FINN's hardware graph.

1. :class:`FuseWinogradSubgraph` (QONNX level, before ``qonnx_to_finn``): each
   exported Winograd subgraph (see
   :func:`winoforge.model.winograd_layer.winograd_conv2d_onnx`) becomes one
   :class:`winoforge.hw.ops.WinogradConv` node holding the integer weight codes,
   followed by a ``Mul`` with the per-output-channel weight scale.  The fixed
   transform kernels are checked against :class:`winoforge.winograd.WinogradSpec`,
   the weight codes are read from the ``Quant`` node exactly (the dequantized
   weights must sit exactly on the quantizer's grid), and the SRBS parameters
   come from the export's metadata.
2. During streamlining, FINN's rules know ``Conv`` but not our node, so
   :class:`MoveScalarMulPastWinograd` (``WinogradConv(x * c) = WinogradConv(x) * c``,
   exact because the layer is linear and zero padding commutes with scaling) and
   :class:`Absorb1BitMulIntoWinograd` (a +-1 per-channel sign after the layer is
   folded into the rows of ``U``; the weights are narrow-range, so negation
   stays in range) play the roles of ``MoveScalarMulPastConv`` and
   ``Absorb1BitMulIntoConv``.
3. :class:`LowerWinogradToHW` replaces each streamlined ``WinogradConv`` (integer
   input) with ``Transpose -> WinogradSRBS (NHWC) -> Transpose``; FINN's transpose
   absorption then removes the transposes between neighbours, as it does for
   lowered convolutions.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.general.intquant import max_int, min_int
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_shapes import InferShapes

from winoforge.winograd import WinogradSpec, bit_growth, signed_bits

from .ops import DOMAIN, integer_valued

__all__ = ["ExactActivationThresholds", "FuseWinogradSubgraph", "MergeForkedTransposes", "MoveScalarMulPastWinograd", "Absorb1BitMulIntoWinograd",
           "LowerWinogradToHW", "UnsupportedNodeError", "layer_metadata"]

class UnsupportedNodeError(ValueError):
    """A node the flow cannot map to hardware; the message names it and its op type."""


def layer_metadata(model) -> dict:
    """The export's Winograd layer parameters; empty for a model winoforge did not export
    (every Winograd layer is then taken as dense)."""
    from .export import LAYERS_KEY, read_metadata

    return read_metadata(model, LAYERS_KEY) or {}


def _producer(model, tensor, op_type, where):
    node = model.find_producer(tensor)
    if node is None or node.op_type != op_type:
        found = "a graph input" if node is None else f"{node.op_type} node {node.name}"
        raise _NoMatch(f"{where}: expected {op_type} producing {tensor}, found {found}")
    return node


class _NoMatch(Exception):
    pass


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _weight_codes(model, tensor: str, where: str):
    """Integer codes and scales of a weight computed as ``Quant -> (Transpose|Reshape)* ->``.

    Returns ``(codes, scales, datatype, nodes)`` with the chain replayed on the codes and on
    the broadcast scales; ``nodes`` are the weight path's nodes (to remove)."""
    chain = []
    node = model.find_producer(tensor)
    while node is not None and node.op_type in ("Transpose", "Reshape"):
        chain.append(node)
        node = model.find_producer(node.input[0])
    if node is None or node.op_type != "Quant" or any(model.get_initializer(i) is None for i in node.input):
        raise _NoMatch(f"{where}: the weight {tensor} is not a constant Quant node (+ Transpose/Reshape)")
    inst = getCustomOp(node)
    values = model.get_initializer(node.input[0]).astype(np.float32)
    scale = np.broadcast_to(model.get_initializer(node.input[1]).astype(np.float32), values.shape)
    zero_point = model.get_initializer(node.input[2])
    if np.any(zero_point != 0):
        raise UnsupportedNodeError(f"Quant node {node.name} (op type Quant): weight zero-points must be 0")
    ctx = {i: model.get_initializer(i) for i in node.input}
    ctx[node.output[0]] = None
    inst.execute_node(ctx, model.graph)
    q = ctx[node.output[0]].astype(np.float64)
    codes = np.round(q / scale)
    off = float(np.abs(q / scale - codes).max()) if q.size else 0.0
    if off > 1e-4:
        raise UnsupportedNodeError(f"Quant node {node.name} (op type Quant): weights are off the grid by {off:.3g}")
    scales = np.array(scale, dtype=np.float64)
    for n in reversed(chain):
        if n.op_type == "Transpose":
            perm = _attr(n, "perm")
            codes, scales = codes.transpose(perm), scales.transpose(perm)
        else:
            shape = model.get_initializer(n.input[1])
            codes, scales = codes.reshape(shape), scales.reshape(shape)
    return codes, scales, inst.get_integer_datatype(model), chain + [node]


class FuseWinogradSubgraph(Transformation):
    """Replace every exported Winograd subgraph by ``WinogradConv -> Mul(s_w)``; see the module docstring."""

    def apply(self, model):
        meta = layer_metadata(model)
        for d2s in model.get_nodes_by_op_type("DepthToSpace"):
            try:
                found = self._match(model, d2s)
            except _NoMatch as e:
                if _layer_name(d2s.name) in meta:
                    raise UnsupportedNodeError(f"Winograd layer {_layer_name(d2s.name)} does not have the exported "
                                               f"pattern at DepthToSpace node {d2s.name}: {e}") from None
                continue
            self._replace(model, found, meta.get(found["layer"], {}))
            model = model.transform(InferShapes())
            return model, True
        return model, False

    @staticmethod
    def _match(model, d2s) -> dict:
        where = f"DepthToSpace {d2s.name}"
        if _attr(d2s, "mode", b"DCR") not in (b"CRD", "CRD"):
            raise _NoMatch(f"{where}: mode must be CRD")
        m = int(_attr(d2s, "blocksize"))
        if m not in (2, 4):
            raise _NoMatch(f"{where}: blocksize {m} is not a Winograd tile (2, 4)")
        spec = WinogradSpec(m)
        t, T = spec.t, spec.t * spec.t
        out_conv = _producer(model, d2s.input[0], "Conv", where)
        r3 = _producer(model, out_conv.input[0], "Reshape", where)
        t2 = _producer(model, r3.input[0], "Transpose", where)
        r2 = _producer(model, t2.input[0], "Reshape", where)
        prod_conv = _producer(model, r2.input[0], "Conv", where)
        r1 = _producer(model, prod_conv.input[0], "Reshape", where)
        t1 = _producer(model, r1.input[0], "Transpose", where)
        r0 = _producer(model, t1.input[0], "Reshape", where)
        in_conv = _producer(model, r0.input[0], "Conv", where)
        pad = _producer(model, in_conv.input[0], "Pad", where)
        x = pad.input[0]
        n, cin, h, w = model.get_tensor_shape(x)
        k_in = model.get_initializer(in_conv.input[1])
        k_out = model.get_initializer(out_conv.input[1])
        if k_in is None or k_out is None:
            raise _NoMatch(f"{where}: transform kernels are not constant")
        cout = k_out.shape[0] // (m * m)
        from winoforge.model.winograd_layer import _onnx_kernels

        want_in, want_out = _onnx_kernels(m, cin, cout)
        if not (np.array_equal(k_in, want_in) and np.array_equal(k_out, want_out)):
            raise _NoMatch(f"{where}: transform kernels differ from F({m},3)'s B^T/A^T")
        if (_attr(in_conv, "group"), list(_attr(in_conv, "strides"))) != (cin, [m, m]) \
                or _attr(prod_conv, "group") != T or _attr(out_conv, "group") != cout:
            raise _NoMatch(f"{where}: group/stride attributes differ from the exported pattern")
        pads = [int(v) for v in model.get_initializer(pad.input[1]).ravel()]
        if _attr(pad, "mode", b"constant") not in (b"constant", "constant") or pads[:2] != [0, 0] or pads[4:6] != [0, 0] \
                or (len(pad.input) > 2 and pad.input[2] and np.any(model.get_initializer(pad.input[2]) != 0)):
            raise _NoMatch(f"{where}: the Pad is not a zero padding of H and W")
        ph, pw = pads[2], pads[3]
        codes, scales, wdt, wnodes = _weight_codes(model, prod_conv.input[1], where)
        if codes.shape != (T * cout, cin, 1, 1):
            raise _NoMatch(f"{where}: product weight has shape {codes.shape}, expected {(T * cout, cin, 1, 1)}")
        U = codes.reshape(t, t, cout, cin).transpose(2, 3, 0, 1)
        S = scales.reshape(t, t, cout, cin).transpose(2, 3, 0, 1)
        s_w = S[:, 0, 0, 0]
        if not np.all(S == s_w[:, None, None, None]):
            raise UnsupportedNodeError(f"Winograd layer {_layer_name(d2s.name)}: the weight scale must be one per "
                                       "output channel (shared by every position and input channel)")
        last, ho, wo = d2s, h + 2 * ph - 2, w + 2 * pw - 2
        crops = []  # the crop to H x W: one Slice, or one per axis
        while len(crops) < 2:
            consumer = model.find_consumer(last.output[0])
            if consumer is None or consumer.op_type != "Slice" or model.is_fork_node(last):
                break
            crops.append(consumer)
            last = consumer
        if list(model.get_tensor_shape(last.output[0])) != [n, cout, ho, wo]:
            raise _NoMatch(f"{where}: output shape {model.get_tensor_shape(last.output[0])} is not "
                           f"{[n, cout, ho, wo]}")
        nodes = [pad, in_conv, r0, t1, r1, prod_conv, r2, t2, r3, out_conv, d2s] + crops
        return {"x": x, "out": last.output[0], "U": U.astype(np.float32), "s_w": s_w.astype(np.float32),
                "wdt": wdt, "m": m, "pads": [ph, pw], "nodes": nodes, "weight_nodes": wnodes,
                "layer": _layer_name(d2s.name)}

    @staticmethod
    def _replace(model, f: dict, meta: dict) -> None:
        graph = model.graph
        base = f["layer"].replace(".", "_") or "winograd"
        u_name, s_name, mid = f"{base}_U", f"{base}_scale", f"{base}_acc"
        model.set_initializer(u_name, f["U"])
        model.set_tensor_datatype(u_name, f["wdt"])
        model.set_initializer(s_name, f["s_w"].reshape(1, -1, 1, 1))
        idx = list(graph.node).index(f["nodes"][0])
        conv = helper.make_node("WinogradConv", [f["x"], u_name], [mid], domain=DOMAIN, name=f"{base}_WinogradConv",
                                m=f["m"], pads=f["pads"], sub_row=int(meta.get("sub_row", 0)),
                                keep=int(meta.get("keep", 0)), layer=f["layer"])
        mul = helper.make_node("Mul", [mid, s_name], [f["out"]], name=f"{base}_WeightScale")
        for node in f["nodes"]:
            graph.node.remove(node)
        for node in f["weight_nodes"]:
            if all(model.find_consumer(o) is None or model.find_consumer(o) in f["nodes"] + f["weight_nodes"]
                   for o in node.output):
                graph.node.remove(node)
        graph.node.insert(idx, mul)
        graph.node.insert(idx, conv)


def _layer_name(node_name: str) -> str:
    """``/features/block1/conv/DepthToSpace`` -> ``features.block1.conv``."""
    from .export import module_path

    return module_path([p for p in node_name.split("/")[:-1] if p])


def _const_scalar(model, node):
    A = model.get_initializer(node.input[1])
    return A if A is not None and A.size == 1 else None


class MoveScalarMulPastWinograd(Transformation):
    """``Mul(x, c) -> WinogradConv`` becomes ``WinogradConv -> Mul(., c)`` for a constant scalar ``c``."""

    def apply(self, model):
        graph = model.graph
        for mul in list(graph.node):
            if mul.op_type != "Mul" or model.is_fork_node(mul) or _const_scalar(model, mul) is None:
                continue
            conv = model.find_consumer(mul.output[0])
            if conv is None or conv.op_type != "WinogradConv" or conv.input[0] != mul.output[0]:
                continue
            start, mid, end = mul.input[0], mul.output[0], conv.output[0]
            conv.input[0], conv.output[0] = start, mid
            mul.input[0], mul.output[0] = mid, end
            graph.node.remove(mul)
            graph.node.insert(list(graph.node).index(conv) + 1, mul)
            model.set_tensor_datatype(mid, DataType["FLOAT32"])
            model = model.transform(InferShapes())
            return model, True
        return model, False


class Absorb1BitMulIntoWinograd(Transformation):
    """``WinogradConv -> Mul(s)`` with ``s`` in {-1, +1} per output channel (or scalar):
    multiply the rows of ``U`` by ``s`` and drop the Mul, if ``U``'s datatype allows it."""

    def apply(self, model):
        graph = model.graph
        for conv in model.get_nodes_by_op_type("WinogradConv"):
            mul = model.find_consumer(conv.output[0])
            if mul is None or mul.op_type != "Mul" or model.is_fork_node(conv):
                continue
            A = model.get_initializer(mul.input[1])
            if A is None or not np.all(np.isin(A, (-1.0, 1.0))):
                continue
            U = model.get_initializer(conv.input[1])
            if A.size != 1 and (A.ndim != 4 or A.shape[1] != U.shape[0] or A.size != U.shape[0]):
                continue
            Unew = U * A.reshape(-1, 1, 1, 1)
            wdt = model.get_tensor_datatype(conv.input[1])
            if not all(wdt.allowed(v) for v in np.unique(Unew)):
                continue
            model.set_initializer(conv.input[1], Unew.astype(np.float32))
            conv.output[0] = mul.output[0]
            graph.node.remove(mul)
            return model, True
        return model, False


class LowerWinogradToHW(Transformation):
    """``WinogradConv`` (NCHW, integer input) -> ``Transpose -> WinogradSRBS -> Transpose``.

    ``res_type``: the multipliers' resource ("lut", "dsp", "auto"); default "lut", as FINN's
    HLS MVAU defaults to LUT multipliers -- the baseline's convolutions use them, so the
    comparison is like for like.  A folding config can change it per layer."""

    def __init__(self, res_type: str = "lut"):
        super().__init__()
        self.res_type = res_type

    def apply(self, model):
        from .winograd_op import make_winograd_srbs_node

        graph = model.graph
        for conv in model.get_nodes_by_op_type("WinogradConv"):
            inst = getCustomOp(conv)
            idt = model.get_tensor_datatype(conv.input[0])
            if not idt.is_integer():
                raise UnsupportedNodeError(
                    f"WinogradConv node {conv.name} (layer {inst.get_nodeattr('layer')}): its input is {idt.name} "
                    "after streamlining, not integer -- a scale in front of it could not be moved past it")
            U = model.get_initializer(conv.input[1])
            if U is None or not integer_valued(U):
                raise UnsupportedNodeError(f"WinogradConv node {conv.name}: weights must be constant integer codes")
            n, cin, h, w = model.get_tensor_shape(conv.input[0])
            cout = U.shape[0]
            ph, pw = inst.get_nodeattr("pads")
            if ph != pw:
                raise UnsupportedNodeError(f"WinogradConv node {conv.name}: unequal paddings ({ph}, {pw}) are not "
                                           "supported by WinogradSRBS")
            x_nhwc, y_nhwc = conv.input[0] + "_nhwc", conv.output[0] + "_nhwc"
            sub_row, keep = inst.get_nodeattr("sub_row"), inst.get_nodeattr("keep")
            hw = make_winograd_srbs_node(
                x_nhwc, conv.input[1], y_nhwc, name=conv.name.replace("WinogradConv", "WinogradSRBS"),
                m=inst.get_nodeattr("m"), ifm_channels=cin, ofm_channels=cout, ifm_dim=[h, w], padding=ph,
                sub_row=sub_row, keep=keep if sub_row else 0, pe=1, simd=sub_row or 1, batch_size=n,
                res_type=self.res_type,
                input_datatype=idt.name, weight_datatype=model.get_tensor_datatype(conv.input[1]).name, weights=U)
            pre = helper.make_node("Transpose", [conv.input[0]], [x_nhwc], perm=[0, 2, 3, 1],
                                   name=conv.name + "_ToNHWC")
            post = helper.make_node("Transpose", [y_nhwc], [conv.output[0]], perm=[0, 3, 1, 2],
                                    name=conv.name + "_ToNCHW")
            idx = list(graph.node).index(conv)
            graph.node.remove(conv)
            for node in (post, hw, pre):
                graph.node.insert(idx, node)
            model.set_tensor_shape(x_nhwc, [n, h, w, cin])
            model.set_tensor_datatype(x_nhwc, idt)
            return model.transform(InferShapes()), True
        return model, False


class MergeForkedTransposes(Transformation):
    """Transposes with the same ``perm`` reading the same output of a ``MaxPool`` (a residual
    block's input after downsampling feeds its first conv and its shortcut) become one Transpose
    whose output forks: FINN's ``MakeMaxPoolNHWC`` looks at one consumer only and would leave the
    other branch reading the wrong layout.  Limited to ``MaxPool`` producers so that it never
    undoes FINN's ``MoveTransposePastFork``."""

    def apply(self, model):
        graph = model.graph
        for node in graph.node:
            if node.op_type != "MaxPool":
                continue
            consumers = model.find_consumers(node.output[0]) or []
            transposes = [c for c in consumers if c.op_type == "Transpose"]
            for i, first in enumerate(transposes):
                for other in transposes[i + 1:]:
                    if list(_attr(other, "perm")) == list(_attr(first, "perm")):
                        for c in model.find_consumers(other.output[0]) or []:
                            for k, name in enumerate(c.input):
                                if name == other.output[0]:
                                    c.input[k] = first.output[0]
                        for k, out in enumerate(graph.output):
                            if out.name == other.output[0]:
                                raise UnsupportedNodeError(f"Transpose node {other.name} feeds the graph output")
                        graph.node.remove(other)
                        return model, True
        return model, False


# --------------------------------------------------------------------------- exact thresholds


def _is_po2(values) -> bool:
    v = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    return bool(v.size and np.all(v > 0) and np.all(np.log2(v) == np.round(np.log2(v))))


def _per_channel(value, channels: int, what: str):
    """A constant broadcast over NCHW as one float32 value per channel (None if it varies elsewhere)."""
    a = np.asarray(value, dtype=np.float32)
    if a.size == 1:
        return np.full(channels, a.ravel()[0], dtype=np.float32)
    if a.ndim == 4 and a.shape[1] == channels and a.size == channels:
        return a.reshape(channels)
    return None


def _activation_quant(model, tensor: str):
    """``(scale, DataType of the codes)`` of the quantized activation ``tensor`` (through MaxPool): a
    Quant node's, or those of a MultiThreshold and the scalar Mul that follows it (an activation
    already converted here); None where neither."""
    node = model.find_producer(tensor)
    while node is not None and node.op_type in ("MaxPool", "Identity"):
        node = model.find_producer(node.input[0])
    if node is None:
        return None
    if node.op_type == "Quant" and model.get_initializer(node.input[0]) is None:
        s, bits = model.get_initializer(node.input[1]), model.get_initializer(node.input[3])
        if s is None or s.size != 1 or bits is None:
            return None
        inst = getCustomOp(node)
        narrow, signed, b = bool(inst.get_nodeattr("narrow")), bool(inst.get_nodeattr("signed")), int(bits.ravel()[0])
        lo, hi = min_int(signed, narrow, b), max_int(signed, narrow, b)
        return float(s.ravel()[0]), DataType[f"INT{b}" if signed else f"UINT{b}"], (int(lo), int(hi))
    if node.op_type == "Mul" and model.get_initializer(node.input[1]) is not None:
        prod = model.find_producer(node.input[0])
        s = model.get_initializer(node.input[1])
        if prod is not None and prod.op_type == "MultiThreshold" and s.size == 1:
            dt = DataType[getCustomOp(prod).get_nodeattr("out_dtype")]
            return float(s.ravel()[0]), dt, (int(dt.min()), int(dt.max()))
    return None


def _activation_scale(model, tensor: str):
    """Scale of the quantized activation ``tensor`` (see :func:`_activation_quant`)."""
    quant = _activation_quant(model, tensor)
    return None if quant is None else quant[0]


def _winograd_search_range(model, node) -> tuple[int, int] | None:
    """Range of the integer output ``Y`` of ``WinogradConv`` ``node``, as the threshold search needs it:
    the exact range from the bit growth of its input codes (the activation quantizer's range) and its
    integer weights, over all ``Cin`` channels, symmetric (a negated channel searches ``-Y``)."""
    quant = _activation_quant(model, node.input[0])
    U = model.get_initializer(node.input[1])
    if quant is None or U is None or not U.size:
        return None
    _, dt, (xlo, xhi) = quant
    w = signed_bits(min(int(U.min()), -1), max(int(U.max()), 0))
    spec = getCustomOp(node).spec
    if xlo >= 0:
        g = bit_growth(max(1, xhi.bit_length()), w, U.shape[1], spec, in_signed=False, weight_signed=True)
    else:
        g = bit_growth(signed_bits(xlo, xhi), w, U.shape[1], spec, in_signed=True, weight_signed=True)
    reach = max(abs(int(g.output[0])), abs(int(g.output[1])))
    return -reach, reach


def _activation_source(model, tensor: str, channels: int):
    """A quantized activation with a power-of-two scale as the source (the shortcut's re-quantizer
    of a residual block): the integer is its code, the unit its scale."""
    quant = _activation_quant(model, tensor)
    if quant is None or not _is_po2(quant[0]):
        return None
    return {"unit": np.full(channels, quant[0]), "range": quant[2], "negate": None}


def _residual_sum_source(model, add, channels: int):
    """The sum of two quantized activations with power-of-two scales (a residual block's
    branches): the integer is ``c0 * s0/u + c1 * s1/u`` with ``u`` the smaller scale, exact in
    float32 while it stays below 2^24 (checked)."""
    from winoforge.winograd import FLOAT32_EXACT

    quants = [_activation_quant(model, t) for t in add.input]
    if any(q is None or not _is_po2(q[0]) for q in quants):
        return None
    unit = min(q[0] for q in quants)
    mult = [int(round(q[0] / unit)) for q in quants]
    lo = sum(k * q[2][0] for k, q in zip(mult, quants))
    hi = sum(k * q[2][1] for k, q in zip(mult, quants))
    if max(abs(lo), abs(hi)) >= FLOAT32_EXACT:
        return None
    return {"unit": np.full(channels, unit), "range": (lo, hi), "negate": None}


class ExactActivationThresholds(Transformation):
    """Replace ``source -> (Mul|Div|Add|Relu)* -> Quant`` (an activation quantizer after BatchNorm)
    by ``source -> MultiThreshold -> Mul(scale)`` whose thresholds reproduce the float32 computation
    of the exported graph -- and of torch, which rounds identically (``AffineBatchNorm2d``) --
    exactly, for every input.

    FINN's streamlining absorbs the affine ops into thresholds by float arithmetic
    (``thr - b``, ``/ a``), which disagrees with ``round((y*a + b) / s)`` when a value lies within
    rounding error of a threshold: measured, a few codes per image of a W4A4 VGG, breaking the
    bit-exact check between build steps.  Here the source is an integer grid -- the raw uint8
    input (unit 1), a ``WinogradConv`` of a power-of-two-scaled input (unit ``s_x``), or a
    ``Conv`` of power-of-two-scaled input and weights (unit ``s_x * s_w[o]``) -- so the chain is a
    monotone function of an integer ``Y``, and each threshold is found by binary search over ``Y``
    evaluating the chain exactly as the executors do (float32, the same op order, round half to
    even, clip).  A channel whose chain has a negative slope gets its producer's weights negated
    (narrow-range weights, so this is exact) and the search runs on ``-Y``.  Where any condition
    fails (non-power-of-two scales, other ops, forks) the chain is left to FINN.
    """

    OPS = ("Mul", "Div", "Add", "Relu")

    def apply(self, model):
        for quant in model.get_nodes_by_op_type("Quant"):
            if model.get_initializer(quant.input[0]) is not None:
                continue  # a weight quantizer
            plan = self._plan(model, quant)
            if plan is not None:
                self._replace(model, quant, plan)
                return model.transform(InferShapes()), True
        return model, False

    def _plan(self, model, quant):
        inst = getCustomOp(quant)
        scale, zero, bits = (model.get_initializer(i) for i in quant.input[1:4])
        if scale is None or scale.size != 1 or zero is None or np.any(zero != 0) or bits is None:
            return None
        if inst.get_nodeattr("rounding_mode").upper() not in ("ROUND", "HALF_EVEN"):
            return None
        signed = bool(inst.get_nodeattr("signed"))
        chain, tensor = [], quant.input[0]
        node = model.find_producer(tensor)
        while node is not None and node.op_type in self.OPS and not model.is_fork_node(node):
            if node.op_type != "Relu" and model.get_initializer(node.input[1]) is None:
                if node.op_type == "Add":
                    break  # a residual sum of two activations: the source (see _source)
                return None
            chain.insert(0, node)
            tensor = node.input[0]
            node = model.find_producer(tensor)
        shape = model.get_tensor_shape(tensor)
        if shape is None or len(shape) != 4:
            return None
        channels = shape[1]
        source = self._source(model, tensor, node, channels)
        if source is None:
            return None
        consts = []
        for op in chain:
            c = None if op.op_type == "Relu" else _per_channel(model.get_initializer(op.input[1]), channels, op.name)
            if op.op_type != "Relu" and c is None:
                return None
            consts.append((op.op_type, c))
        sign = np.ones(channels)
        for op_type, c in consts:
            if op_type in ("Mul", "Div"):
                sign *= np.sign(c)
        sign[sign == 0] = 1
        if np.any(sign < 0) and source["negate"] is None:
            return None
        s = np.float32(scale.ravel()[0])
        lo_code = min_int(signed, bool(inst.get_nodeattr("narrow")), int(bits.ravel()[0]))
        hi_code = max_int(signed, bool(inst.get_nodeattr("narrow")), int(bits.ravel()[0]))

        unit = source["unit"].astype(np.float32)

        def codes(Y):  # Y: (C, K) integers -> the exported graph's codes, evaluated as it does
            v = (Y * sign[:, None] * unit[:, None]).astype(np.float32)
            for op_type, c in consts:
                if op_type == "Relu":
                    v = np.maximum(v, np.float32(0))
                elif op_type == "Mul":
                    v = v * c[:, None]
                elif op_type == "Div":
                    v = v / c[:, None]
                else:
                    v = v + c[:, None]
            q = np.clip(v / s, lo_code, hi_code)
            return np.round(q)

        K = int(hi_code - lo_code)
        levels = np.arange(lo_code + 1, hi_code + 1, dtype=np.float64)[None, :].repeat(channels, 0)
        lo = np.full((channels, K), source["range"][0], dtype=np.int64)
        hi = np.full((channels, K), source["range"][1] + 1, dtype=np.int64)  # hi: known to reach (sentinel)
        while np.any(hi - lo > 0):
            mid = (lo + hi) // 2
            reached = codes(mid.astype(np.float64)) >= levels
            open_ = hi - lo > 0
            hi = np.where(open_ & reached, mid, hi)
            lo = np.where(open_ & ~reached, mid + 1, lo)
        thresholds = (hi * unit[:, None]).astype(np.float32)
        if not np.array_equal(thresholds.astype(np.float64), hi * unit[:, None].astype(np.float64)):
            return None  # a threshold not exact in float32
        return {"tensor": tensor, "chain": chain, "thresholds": thresholds, "sign": sign, "scale": s,
                "bits": int(bits.ravel()[0]), "narrow": bool(inst.get_nodeattr("narrow")), "negate": source["negate"],
                "signed": signed, "lo_code": int(lo_code)}

    def _source(self, model, tensor, producer, channels):
        if producer is None:  # a graph input of integers
            dt = model.get_tensor_datatype(tensor)
            if not dt.is_integer() or dt.bitwidth() > 16:
                return None
            return {"unit": np.ones(channels), "range": (int(dt.min()), int(dt.max())), "negate": None}
        if producer.op_type == "WinogradConv":
            s_x = _activation_scale(model, producer.input[0])
            if s_x is None or not _is_po2(s_x):
                return None
            search = _winograd_search_range(model, producer)
            if search is None:
                return None
            return {"unit": np.full(channels, s_x), "range": search, "negate": ("winograd", producer)}
        if producer.op_type == "Conv" and len(producer.input) == 2:
            s_x = _activation_scale(model, producer.input[0])
            wq = model.find_producer(producer.input[1])
            if s_x is None or not _is_po2(s_x) or wq is None or wq.op_type != "Quant":
                return None
            w_scale = model.get_initializer(wq.input[1])
            winst = getCustomOp(wq)
            if w_scale is None or not _is_po2(w_scale) or model.get_initializer(wq.input[0]) is None:
                return None
            per_out = np.broadcast_to(w_scale.reshape(-1) if w_scale.size > 1 else w_scale.ravel(), (channels,))
            negate = ("conv", wq) if winst.get_nodeattr("signed") and winst.get_nodeattr("narrow") else None
            # |Y| <= max over output channels of sum |weight codes| * max |x|: reached by some input
            codes = np.abs(np.round(model.get_initializer(wq.input[0]) / w_scale)).reshape(channels, -1)
            x_range = _activation_quant(model, producer.input[0])[2]
            reach = int(codes.sum(axis=1).max()) * max(abs(x_range[0]), abs(x_range[1]))
            return {"unit": s_x * per_out.astype(np.float64), "range": (-reach, reach), "negate": negate}
        if producer.op_type == "Add" and all(model.get_initializer(i) is None for i in producer.input):
            return _residual_sum_source(model, producer, channels)
        return _activation_source(model, tensor, channels)

    @staticmethod
    def _replace(model, quant, plan) -> None:
        graph = model.graph
        flip = plan["sign"] < 0
        if np.any(flip):
            kind, node = plan["negate"]
            name = node.input[1] if kind == "winograd" else node.input[0]
            W = model.get_initializer(name).copy()
            W[flip] = -W[flip]
            model.set_initializer(name, W)
        base = quant.name.strip("/").replace("/", "_") or "act"
        thr, out = f"{base}_thresholds", f"{base}_codes"
        model.set_initializer(thr, plan["thresholds"])
        model.set_initializer(f"{base}_scale", np.asarray(plan["scale"], dtype=np.float32))
        idx = list(graph.node).index(plan["chain"][0] if plan["chain"] else quant)
        out_dt = f"{'INT' if plan['signed'] else 'UINT'}{plan['bits']}"
        # codes lo_code + (thresholds passed): a signed quantizer's codes start below 0
        bias = {"out_bias": float(plan["lo_code"])} if plan["lo_code"] else {}
        mt = helper.make_node("MultiThreshold", [plan["tensor"], thr], [out], domain="qonnx.custom_op.general",
                              name=f"{base}_MultiThreshold", out_dtype=out_dt, data_layout="NCHW", **bias)
        mul = helper.make_node("Mul", [out, f"{base}_scale"], [quant.output[0]], name=f"{base}_Scale")
        for node in plan["chain"] + [quant]:
            graph.node.remove(node)
        graph.node.insert(idx, mul)
        graph.node.insert(idx, mt)
        model.set_tensor_datatype(out, DataType[out_dt])
