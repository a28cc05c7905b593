"""Export of an accelerator's *integer program* for the simulated device.

:func:`export_program` takes the dataflow model of a FINN build (the accelerator's
graph after the last build step: FINN hardware layers, possibly specialised to
``*_hls`` / ``*_rtl``, and our ``WinogradSRBS``) and writes

* ``program.json`` -- every node in graph order with its generic op, its tensors and
  the attributes its integer semantics need, the shape and FINN datatype of every
  tensor, and the accelerator's I/O description (``io``);
* ``params.npz`` -- the node parameters (weights, thresholds, Winograd ``U`` codes,
  elementwise constants): integer arrays in the smallest safe signed dtype where FINN
  holds integers, float32 where it holds floats; exact values, each with its sha256.

:class:`winoforge.runtime.program.Program` (numpy only; its module docstring
describes the format) executes such a program bit-exactly like FINN's Python
execution of the model (``hw.build.execute_python``).  Streaming-only nodes (data
width converters, FIFOs) become identities; any op without integer semantics here
stops the export with the node named (:class:`UnsupportedProgramNode`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from winoforge.runtime.program import (ELEMENTWISE_OPS, FORMAT_VERSION, IDENTITY_OPS, PARAMS_FILE, PROGRAM_FILE,
                                       SUPPORTED_OPS, Program, save_program)

__all__ = ["export_program", "generic_op", "UnsupportedProgramNode", "PROGRAM_FILE", "PARAMS_FILE"]

_HW_DOMAIN = "finn.custom_op.fpgadataflow"


class UnsupportedProgramNode(ValueError):
    """A node of the dataflow model that the integer program cannot express."""


def generic_op(node) -> str:
    """FINN's generic op of ``node``: ``MVAU_hls`` / ``MVAU_rtl`` -> ``MVAU`` (as ``hw.build.generic_view``);
    our own RTL layers by ``hw.rtl_ops.GENERIC_OP`` (``MVAU_lut_rtl`` -> ``MVAU``)."""
    if node.domain == f"{_HW_DOMAIN}.rtl":
        from .rtl_ops import GENERIC_OP

        if node.op_type in GENERIC_OP:
            return GENERIC_OP[node.op_type]
    for style in ("hls", "rtl"):
        if node.domain == f"{_HW_DOMAIN}.{style}" and node.op_type.endswith(f"_{style}"):
            return node.op_type[: -len(style) - 1]
    return node.op_type


def _unsupported(node, why: str = "") -> UnsupportedProgramNode:
    supported = ", ".join(sorted(SUPPORTED_OPS))
    return UnsupportedProgramNode(
        f"node {node.name} (op type {node.op_type}) cannot be exported to the integer program"
        f"{': ' + why if why else ''}; supported ops: {supported} (and their *_hls/*_rtl variants)")


# ------------------------------------------------------------------ parameters


def _integer_dtype(lo: int, hi: int):
    for dt in (np.int8, np.int16, np.int32, np.int64):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return dt
    raise ValueError(f"integer range [{lo}, {hi}] does not fit int64")


def _as_param(node, role: str, value: np.ndarray, datatype) -> np.ndarray:
    """``value`` (FINN's float32 initializer) as an exact integer array when ``datatype`` is an
    integer type, else float32."""
    value = np.asarray(value)
    if datatype.is_integer():
        if np.issubdtype(value.dtype, np.floating):
            if not np.all(np.isfinite(value)) or not np.array_equal(value, np.round(value)):
                raise _unsupported(node, f"its {role} are annotated {datatype.name} but hold non-integer values")
        ints = value.astype(np.int64)
        if not np.array_equal(ints, value):
            raise _unsupported(node, f"its {role} do not fit int64")
        lo, hi = (int(ints.min()), int(ints.max())) if ints.size else (0, 0)
        return ints.astype(_integer_dtype(lo, hi))
    return value.astype(np.float32)


def _initializer(model, node, index: int, role: str) -> np.ndarray:
    name = node.input[index]
    value = model.get_initializer(name)
    if value is None:
        raise _unsupported(node, f"its {role} ({name}) is not an initializer "
                           "(external/streamed parameters are not supported)")
    return value


# ------------------------------------------------------------------ per-op attributes


def _attrs(inst, names) -> dict[str, Any]:
    out = {}
    for name in names:
        value = inst.get_nodeattr(name)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, (list, tuple, np.ndarray)):
            value = [int(v) for v in value]
        elif isinstance(value, (np.integer,)):
            value = int(value)
        out[name] = value
    return out


def _thresholding(model, node, inst, add_param):
    attrs = _attrs(inst, ["NumChannels", "numSteps", "ActVal", "inputDataType", "weightDataType",
                          "outputDataType", "numInputVectors"])
    thr = _initializer(model, node, 1, "thresholds")
    tdt = model.get_tensor_datatype(node.input[1])
    add_param("thresholds", _as_param(node, "thresholds", thr, tdt))
    return [node.input[0]], attrs


def _mvau(model, node, inst, add_param):
    attrs = _attrs(inst, ["MW", "MH", "ActVal", "noActivation", "binaryXnorMode", "inputDataType",
                          "weightDataType", "outputDataType", "accDataType", "numInputVectors"])
    wdt = model.get_tensor_datatype(node.input[1])
    if not wdt.is_integer():
        raise _unsupported(node, f"its weights are {wdt.name}, not integers")
    add_param("weights", _as_param(node, "weights", _initializer(model, node, 1, "weights"), wdt))
    if attrs["noActivation"] == 0:
        tdt = model.get_tensor_datatype(node.input[2])
        add_param("thresholds", _as_param(node, "thresholds", _initializer(model, node, 2, "thresholds"), tdt))
    return [node.input[0]], attrs


def _swg(model, node, inst, add_param):
    attrs = _attrs(inst, ["IFMDim", "IFMChannels", "OFMDim", "ConvKernelDim", "Stride", "Dilation",
                          "depthwise", "inputDataType", "outputDataType"])
    return [node.input[0]], attrs


def _fmpadding(model, node, inst, add_param):
    return [node.input[0]], _attrs(inst, ["ImgDim", "Padding", "NumChannels", "inputDataType"])


def _pool(model, node, inst, add_param):
    attrs = _attrs(inst, ["Function", "KernelSize", "Channels", "OutImgDims", "InputDataType", "OutputDataType"])
    fn = attrs["Function"]
    if fn == "QuantAvgPool":  # FINN's shift: from the bit widths, see finn's Pool.execute_node
        ibits = inst.get_input_datatype().bitwidth()
        obits = inst.get_output_datatype().bitwidth()
        k2 = int(np.prod(attrs["KernelSize"]))
        attrs["shift_bits"] = max(int((2**ibits - 1) * k2).bit_length() - obits, 0)
    elif fn not in ("MaxPool", "AccPool"):
        raise _unsupported(node, f"pool function {fn} (float mean) has no integer semantics; "
                           "supported: MaxPool, AccPool, QuantAvgPool")
    return [node.input[0]], attrs


def _global_acc_pool(model, node, inst, add_param):
    return [node.input[0]], _attrs(inst, ["NumChannels", "inputDataType", "numInputVectors"])


def _winograd(model, node, inst, add_param):
    attrs = _attrs(inst, ["m", "IFMChannels", "OFMChannels", "IFMDim", "Padding", "SubRow", "Keep",
                          "inputDataType", "weightDataType", "outputDataType"])
    U = inst.weights(model)  # validated int64 codes
    if U is None:
        raise _unsupported(node, f"its weights ({node.input[1]}) are not an initializer")
    add_param("U", U.astype(_integer_dtype(int(U.min()), int(U.max())) if U.size else np.int8))
    return [node.input[0]], attrs


def _elementwise(model, node, inst, add_param):
    from qonnx.core.datatype import DataType

    attrs = _attrs(inst, ["lhs_dtype", "rhs_dtype", "out_dtype", "lhs_shape", "rhs_shape", "out_shape"])
    op = generic_op(node)[len("Elementwise"):]
    attrs["operation"] = op
    if op == "BitShift":
        attrs["direction"] = inst.get_nodeattr("direction")
    inputs = []
    for i, side in enumerate(("lhs", "rhs")):
        value = model.get_initializer(node.input[i])
        attrs[f"{side}_style"] = "input" if value is None else "const"
        if value is None:
            inputs.append(node.input[i])
        else:
            add_param(side, _as_param(node, f"{side} constant", value, DataType[attrs[f"{side}_dtype"]]))
    return inputs, attrs


def _label_select(model, node, inst, add_param):
    return [node.input[0]], _attrs(inst, ["Labels", "K", "inputDataType", "outputDataType", "numInputVectors"])


def _duplicate(model, node, inst, add_param):
    return [node.input[0]], _attrs(inst, ["NumChannels", "NumOutputStreams", "inputDataType"])


def _identity(model, node, inst, add_param):
    return [node.input[0]], {}


_EXPORTERS: dict[str, Callable] = {
    "Thresholding": _thresholding, "MVAU": _mvau, "ConvolutionInputGenerator": _swg, "FMPadding": _fmpadding,
    "Pool": _pool, "GlobalAccPool": _global_acc_pool, "WinogradSRBS": _winograd, "LabelSelect": _label_select,
    "DuplicateStreams": _duplicate,
    **{op: _identity for op in IDENTITY_OPS},
    **{f"Elementwise{op}": _elementwise for op in ELEMENTWISE_OPS},
}
assert set(_EXPORTERS) == set(SUPPORTED_OPS), "hw.program and runtime.program disagree on the supported ops"


# ------------------------------------------------------------------ export


def _datatype_name(model, tensor: str) -> str:
    return model.get_tensor_datatype(tensor).name


def _shape(model, tensor: str) -> list[int]:
    shape = model.get_tensor_shape(tensor)
    if shape is None:
        raise ValueError(f"tensor {tensor} has no shape in the dataflow model (run InferShapes)")
    return [int(s) for s in shape]


def export_program(model, out_dir: str | Path) -> dict:
    """Write ``program.json`` and ``params.npz`` of the accelerator graph ``model`` (a qonnx
    ``ModelWrapper`` or a path to ``dataflow_model.onnx``) into ``out_dir``; returns the program
    dict.  Raises :class:`UnsupportedProgramNode` naming the first node it cannot express."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    import winoforge.hw.rtl_ops  # noqa: F401  (registers Pool_rtl, GlobalAccPool_rtl, MVAU_lut_rtl)
    import winoforge.hw.winograd_op  # noqa: F401  (registers WinogradSRBS and WinogradSRBS_rtl)

    if not isinstance(model, ModelWrapper):
        model = ModelWrapper(str(model))
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ValueError(f"the accelerator graph must have one input and one output, has "
                         f"{len(graph.input)} and {len(graph.output)}")
    iname, oname = graph.input[0].name, graph.output[0].name
    tensors = {iname: {"shape": _shape(model, iname), "datatype": _datatype_name(model, iname)}}
    params: dict[str, np.ndarray] = {}
    nodes = []
    for index, node in enumerate(graph.node):
        op = generic_op(node)
        exporter = _EXPORTERS.get(op)
        if exporter is None or (node.domain != _HW_DOMAIN and not node.domain.startswith(_HW_DOMAIN + ".")):
            raise _unsupported(node)
        inst = getCustomOp(node)
        keys: dict[str, str] = {}

        def add_param(role: str, value: np.ndarray, _index=index, _keys=keys) -> None:
            key = f"n{_index:03d}_{role}"
            params[key] = np.ascontiguousarray(value)
            _keys[role] = key

        inputs, attrs = exporter(model, node, inst, add_param)
        for t in node.output:
            tensors[t] = {"shape": _shape(model, t), "datatype": _datatype_name(model, t)}
        nodes.append({"name": node.name, "op": op, "op_type": node.op_type, "inputs": list(inputs),
                      "outputs": list(node.output), "attrs": attrs, "params": keys})
    if not nodes:
        raise ValueError("the accelerator graph has no nodes")
    first = next(n for n in graph.node if iname in n.input)
    last = next(n for n in graph.node if oname in n.output)
    io = {
        "idt": _datatype_name(model, iname), "odt": _datatype_name(model, oname),
        "ishape_normal": _shape(model, iname),
        "ishape_folded": [int(s) for s in getCustomOp(first).get_folded_input_shape(0)],
        "oshape_normal": _shape(model, oname),
        "oshape_folded": [int(s) for s in getCustomOp(last).get_folded_output_shape(0)],
    }
    program = {"format_version": FORMAT_VERSION, "graph_input": iname, "graph_output": oname, "io": io,
               "tensors": tensors, "nodes": nodes}
    program = save_program(out_dir, program, params)
    Program(program, params, source=str(out_dir))  # the runtime's own validation, at export time
    return program
