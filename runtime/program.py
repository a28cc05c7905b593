"""The simulated device's compute: an *integer program* and its numpy-only interpreter.

A FINN build's accelerator graph (``dataflow_model.onnx``) is exported by
:func:`winoforge.hw.program.export_program` (host environment) into a folder with two
files; :class:`Program` executes it bit-exactly like FINN's Python execution of that
graph (``winoforge.hw.build.execute_python``), with numpy alone (1.26 and 2.x; no
torch, finn, qonnx or onnx), so it also runs in the board environment.

Format (``format_version`` 1)
=============================

``program.json``::

    {
      "format_version": 1,
      "graph_input": "<tensor>", "graph_output": "<tensor>",
      "io": {"idt": "UINT8", "odt": "FLOAT32",           # FINN datatype names
             "ishape_normal": [1, 28, 28, 1], "ishape_folded": [1, 28, 28, 1, 1],
             "oshape_normal": [1, 10], "oshape_folded": [1, 10, 1]},
      "tensors": {"<tensor>": {"shape": [1, ...], "datatype": "UINT4"}, ...},
      "nodes": [{"name": "MVAU_hls_0", "op": "MVAU", "op_type": "MVAU_hls",
                 "inputs": ["<tensor>"], "outputs": ["<tensor>"],
                 "attrs": {...}, "params": {"weights": "n005_weights", ...}}, ...],
      "params": {"n005_weights": {"dtype": "int8", "shape": [144, 32], "sha256": "..."}, ...}
    }

``params.npz``: one array per entry of ``params`` (integer arrays in the smallest
signed dtype holding them where FINN holds integers, float32 where FINN holds
floats); :func:`param_digest` is the sha256 of dtype, shape and little-endian bytes.

Shapes are FINN's (batch dimension first, 1 in the build); :meth:`Program.run` takes
any batch ``N`` and executes each image as FINN would.  Tensors are carried as int64
when their FINN datatype is an integer type and as float32 otherwise.

Ops (``op`` is FINN's generic op; ``op_type`` the node's, e.g. ``Thresholding_rtl``):

``Thresholding``  attrs ``NumChannels, numSteps, ActVal, inputDataType, weightDataType,
    outputDataType``; param ``thresholds (C or 1, numSteps)``.  ``y = #{t : t <= x} + ActVal``
    over the channel (last) axis; ``y = 2y - 1`` for a BIPOLAR output (qonnx ``multithreshold``
    and FINN's ``Thresholding.execute_node``).  A tie ``x == t`` counts the threshold.
``MVAU``  attrs ``MW, MH, ActVal, noActivation, binaryXnorMode, *DataType``; params
    ``weights (MW, MH)`` and, when ``noActivation == 0``, ``thresholds (MH or 1, T)``.
    ``acc = x @ weights`` (x's last axis is MW; exact integers), XNOR-popcount
    ``(x' @ w' + MW) / 2`` with ``x' = 2x - 1, w' = 2w - 1`` for ``binaryXnorMode``
    (``x' = x, w' = w`` for BIPOLAR x BIPOLAR); then thresholds as above except that a
    BIPOLAR output is ``2 * count - 1`` (FINN ignores ``ActVal`` there).
``ConvolutionInputGenerator``  attrs ``IFMDim, IFMChannels, OFMDim, ConvKernelDim, Stride,
    Dilation``: NHWC im2col without padding, output channel ``(ky * kw + kx) * C + c``
    (qonnx ``Im2Col``: kernel row, kernel column, channel -- channel fastest), for
    depthwise and standard generators alike.
``FMPadding``  attrs ``ImgDim, Padding [top, left, bottom, right], NumChannels``: zeros.
``Pool``  attrs ``Function (MaxPool | AccPool | QuantAvgPool), KernelSize, Channels,
    OutImgDims`` (+ ``shift_bits`` for QuantAvgPool): input ``(.., k*k*C)`` viewed as
    ``(.., k*k, C)``; max, sum, or sum ``>> shift_bits`` (arithmetic).
``GlobalAccPool``  attrs ``NumChannels``: sum over H and W.
``WinogradSRBS``  attrs ``m, IFMChannels, OFMChannels, IFMDim, Padding, *DataType``; param
    ``U (OFM, IFM, t, t)``: ``winoforge.winograd.winograd_conv2d`` in int64, NHWC; an output
    outside ``outputDataType`` is refused, as by the layer's Python model.
``Elementwise<Op>`` (``Add Sub Mul Div AbsDiff Max And Or Xor Equal Less LessOrEqual Greater
    GreaterOrEqual BitwiseAnd BitwiseOr BitwiseXor BitShift``)  attrs ``operation, lhs/rhs/out_dtype,
    lhs/rhs/out_shape, lhs/rhs_style`` (+ ``direction``); params ``lhs``/``rhs`` for a ``const``
    side.  As FINN: an integer-typed operand is int64, a float one float32; the numpy
    operation runs in their promoted dtype (int64 x float32 -> float64) and the result is
    rounded to float32 (FINN's tensor type).
``LabelSelect``  attrs ``Labels, K``: indices of the K largest inputs, largest first, ties
    to the lower index (ONNX TopK).
``DuplicateStreams``  attrs ``NumOutputStreams``: copies.
``StreamingDataWidthConverter``, ``StreamingFIFO``, ``TLastMarker``, ``IODMA``: identity (stream-only
    nodes; FINN's Python model of IODMA does nothing, the hardware moves the data unchanged).

Exactness: the interpreter computes integer ops exactly (int64).  FINN's Python
execution carries tensors as float32, so the two agree wherever FINN's float32 values
are exact -- integers below 2^24, which the accumulator datatypes of our builds
guarantee (``WinogradSRBS`` refuses more); ``tests/hw/test_program.py`` checks
equality with ``np.array_equal`` for every tensor.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .datatypes import parse_datatype

__all__ = ["Program", "ProgramError", "FORMAT_VERSION", "SUPPORTED_OPS", "ELEMENTWISE_OPS", "IDENTITY_OPS",
           "PROGRAM_FILE", "PARAMS_FILE", "param_digest", "save_program", "datatype_range"]

FORMAT_VERSION = 1
PROGRAM_FILE = "program.json"
PARAMS_FILE = "params.npz"

#: FINN's elementwise operations and their numpy functions (finn ``elementwise_binary.py``).
_ELEMENTWISE: dict[str, Callable] = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
    "AbsDiff": lambda a, b: np.abs(a - b), "Max": np.maximum,
    "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor,
    "Equal": np.equal, "Less": np.less, "LessOrEqual": np.less_equal, "Greater": np.greater,
    "GreaterOrEqual": np.greater_equal,
    "BitwiseAnd": np.bitwise_and, "BitwiseOr": np.bitwise_or, "BitwiseXor": np.bitwise_xor,
    "BitShift": None,  # direction attribute
}
ELEMENTWISE_OPS = tuple(_ELEMENTWISE)
#: stream-only nodes: FIFOs, width converters, and the DMA/TLAST nodes of a stitched design
IDENTITY_OPS = ("StreamingDataWidthConverter", "StreamingFIFO", "TLastMarker", "IODMA")
SUPPORTED_OPS = ("Thresholding", "MVAU", "ConvolutionInputGenerator", "FMPadding", "Pool", "GlobalAccPool",
                 "WinogradSRBS", "LabelSelect", "DuplicateStreams", *IDENTITY_OPS,
                 *(f"Elementwise{op}" for op in ELEMENTWISE_OPS))

#: float64 holds every integer below this exactly (used to run integer matmuls on BLAS).
_FLOAT64_EXACT = 1 << 53


class ProgramError(ValueError):
    """An invalid, corrupt or unsupported program, or an input it cannot execute."""


# ------------------------------------------------------------------ datatypes


def datatype_range(name: str) -> tuple[int, int] | None:
    """``(min, max)`` of FINN integer datatype ``name`` (``UINT8``, ``INT14``, ``BINARY``,
    ``BIPOLAR``, ``TERNARY``: :func:`winoforge.runtime.datatypes.parse_datatype`); ``None`` for a
    non-integer one (``FLOAT32``, ``FIXED<..>``...).  Unknown names raise :class:`ProgramError`."""
    try:
        dt = parse_datatype(name)
    except ValueError as err:
        if name == "BFLOAT16" or re.fullmatch(r"(FIXED|FLOAT|SCALEDINT)<[0-9, ]+>", name):
            return None
        raise ProgramError(f"unknown FINN datatype {name!r}") from err
    return (int(dt.min), int(dt.max)) if dt.is_integer else None


def _is_integer_dt(name: str) -> bool:
    return datatype_range(name) is not None


# ------------------------------------------------------------------ parameters on disk


def param_digest(value: np.ndarray) -> str:
    """sha256 of a parameter: its dtype, shape and little-endian bytes (same on every platform)."""
    a = np.asarray(value)
    le = a.astype(a.dtype.newbyteorder("<"), copy=False)
    h = hashlib.sha256(f"{le.dtype.str}{list(a.shape)}".encode())
    h.update(np.ascontiguousarray(le).tobytes())
    return h.hexdigest()


_PARAM_DTYPES = ("int8", "int16", "int32", "int64", "float32")


def save_program(folder: str | Path, program: dict, params: dict[str, np.ndarray]) -> dict:
    """Write ``program`` (its ``params`` table filled in from ``params``) and ``params`` into
    ``folder``; returns the program dict.  Used by the exporter and by hand-written tests."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(v) for k, v in params.items()}
    program = dict(program)
    program["params"] = {k: {"dtype": str(v.dtype), "shape": [int(s) for s in v.shape], "sha256": param_digest(v)}
                         for k, v in arrays.items()}
    with open(folder / PARAMS_FILE, "wb") as f:
        np.savez(f, **arrays)
    (folder / PROGRAM_FILE).write_text(json.dumps(program, indent=1) + "\n")
    return program


# ------------------------------------------------------------------ op semantics


def _count_thresholds(x: np.ndarray, thr: np.ndarray, sorted_rows: bool) -> np.ndarray:
    """``#{t in thr[c] : t <= x[..., c]}`` per element (thr has C rows, or 1 row for all channels)."""
    if sorted_rows:  # searchsorted(side="right") counts the entries <= x of an ascending row
        if thr.shape[0] == 1:
            return np.searchsorted(thr[0], x, side="right").astype(np.int64)
        out = np.empty(x.shape, dtype=np.int64)
        for c in range(thr.shape[0]):
            out[..., c] = np.searchsorted(thr[c], x[..., c], side="right")
        return out
    return np.count_nonzero(x[..., None] >= thr, axis=-1).astype(np.int64)


def _is_sorted_rows(thr: np.ndarray) -> bool:
    return bool(thr.shape[1] < 2 or np.all(thr[:, 1:] >= thr[:, :-1]))


def _exact_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` of int64 arrays, exactly: on float64 (BLAS) when no partial sum can reach 2^53,
    else in int64."""
    if x.size == 0 or w.size == 0:
        return np.matmul(x, w)
    bound = int(np.abs(x).max()) * int(np.abs(w).sum(axis=0).max())
    if bound < _FLOAT64_EXACT:
        return np.matmul(x.astype(np.float64), w.astype(np.float64)).astype(np.int64)
    return np.matmul(x, w)


def _op_thresholding(node, ins, p):
    a = node["attrs"]
    y = _count_thresholds(ins[0], p["thresholds"], node["_sorted"]) + int(a["ActVal"])
    if a["outputDataType"] == "BIPOLAR":
        y = 2 * y - 1
    return [y]


def _op_mvau(node, ins, p):
    a = node["attrs"]
    x, w = ins[0], p["weights"].astype(np.int64)
    mw = int(a["MW"])
    n = x.shape[0]
    xs = x.reshape(n, -1, mw)
    if a["binaryXnorMode"]:
        acc = (_exact_matmul(2 * xs - 1, 2 * w - 1) + mw) // 2
    elif a["inputDataType"] == "BIPOLAR" and a["weightDataType"] == "BIPOLAR":
        acc = (_exact_matmul(xs, w) + mw) // 2
    else:
        acc = _exact_matmul(xs, w)
    if a["noActivation"] == 0:
        count = _count_thresholds(acc, p["thresholds"], node["_sorted"])
        acc = 2 * count - 1 if a["outputDataType"] == "BIPOLAR" else count + int(a["ActVal"])
    return [acc]


def _swg_geometry(a) -> tuple[int, int]:
    (h, w), (kh, kw), (sh, sw), (dh, dw) = a["IFMDim"], a["ConvKernelDim"], a["Stride"], a["Dilation"]
    return (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1


def _op_swg(node, ins, p):
    a = node["attrs"]
    x = ins[0]
    (kh, kw), (sh, sw), (dh, dw) = a["ConvKernelDim"], a["Stride"], a["Dilation"]
    oh, ow = _swg_geometry(a)
    cols = [x[:, ky * dh: ky * dh + sh * (oh - 1) + 1: sh, kx * dw: kx * dw + sw * (ow - 1) + 1: sw, :]
            for ky in range(kh) for kx in range(kw)]
    y = np.stack(cols, axis=3)  # (N, oh, ow, kh*kw, C): kernel position outer, channel inner
    return [y.reshape(x.shape[0], oh, ow, kh * kw * x.shape[3])]


def _op_fmpadding(node, ins, p):
    top, left, bottom, right = node["attrs"]["Padding"]
    return [np.pad(ins[0], ((0, 0), (top, bottom), (left, right), (0, 0)), mode="constant")]


def _op_pool(node, ins, p):
    a = node["attrs"]
    x = ins[0]
    k2 = int(np.prod(a["KernelSize"]))
    v = x.reshape(*x.shape[:-1], k2, int(a["Channels"]))
    fn = a["Function"]
    if fn == "MaxPool":
        return [v.max(axis=-2)]
    total = v.sum(axis=-2)
    return [total if fn == "AccPool" else np.right_shift(total, int(a["shift_bits"]))]


def _op_global_acc_pool(node, ins, p):
    return [ins[0].sum(axis=(1, 2), keepdims=True)]


def _op_winograd(node, ins, p):
    from winoforge.winograd import winograd_conv2d

    a = node["attrs"]
    x = ins[0]
    y = winograd_conv2d(x.transpose(0, 3, 1, 2), p["U"].astype(np.int64), int(a["m"]), int(a["Padding"]))
    y = np.ascontiguousarray(y.transpose(0, 2, 3, 1))
    lo, hi = datatype_range(a["outputDataType"])
    bad = (y < lo) | (y > hi)
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ProgramError(f"node {node['name']} (WinogradSRBS): output {int(y[pos])} at (n, h, w, c) = {pos} is "
                           f"outside outputDataType={a['outputDataType']} [{lo}, {hi}]")
    return [y]


def _op_elementwise(node, ins, p):
    a = node["attrs"]
    operands, it = [], iter(ins)
    for side in ("lhs", "rhs"):
        v = p[side] if a[f"{side}_style"] == "const" else next(it)
        # as FINN: integer-typed operands in int64, float ones as float32 tensors
        operands.append(v.astype(np.int64 if _is_integer_dt(a[f"{side}_dtype"]) else np.float32, copy=False))
    lhs, rhs = operands
    common = np.result_type(lhs.dtype, rhs.dtype)  # dtype promotion only: numpy 1.x and 2.x agree
    lhs, rhs = lhs.astype(common, copy=False), rhs.astype(common, copy=False)
    op = a["operation"]
    fn = _ELEMENTWISE[op]
    if op == "BitShift":
        fn = np.left_shift if a["direction"] == "LEFT" else np.right_shift
    with np.errstate(all="ignore"):
        out = fn(lhs, rhs)
    return [np.asarray(out).astype(np.float32)]  # FINN's tensor type; integer outputs are checked later


def _op_label_select(node, ins, p):
    x = ins[0]
    k = int(node["attrs"]["K"])
    order = np.argsort(-x.astype(np.float64) if x.dtype.kind == "f" else -x, axis=-1, kind="stable")
    return [order[..., :k].astype(np.int64)]


def _op_duplicate(node, ins, p):
    return [ins[0]] * len(node["outputs"])


def _op_identity(node, ins, p):
    return [ins[0]]


_OPS: dict[str, Callable] = {
    "Thresholding": _op_thresholding, "MVAU": _op_mvau, "ConvolutionInputGenerator": _op_swg,
    "FMPadding": _op_fmpadding, "Pool": _op_pool, "GlobalAccPool": _op_global_acc_pool,
    "WinogradSRBS": _op_winograd, "LabelSelect": _op_label_select, "DuplicateStreams": _op_duplicate,
    **{op: _op_identity for op in IDENTITY_OPS},
    **{f"Elementwise{op}": _op_elementwise for op in ELEMENTWISE_OPS},
}
assert set(_OPS) == set(SUPPORTED_OPS)

# ------------------------------------------------------------------ validation

#: attributes each op needs (beyond what the shape checks read)
_REQUIRED_ATTRS = {
    "Thresholding": ("NumChannels", "numSteps", "ActVal", "outputDataType"),
    "MVAU": ("MW", "MH", "ActVal", "noActivation", "binaryXnorMode", "inputDataType", "weightDataType",
             "outputDataType"),
    "ConvolutionInputGenerator": ("IFMDim", "IFMChannels", "OFMDim", "ConvKernelDim", "Stride", "Dilation"),
    "FMPadding": ("ImgDim", "Padding", "NumChannels"),
    "Pool": ("Function", "KernelSize", "Channels", "OutImgDims"),
    "GlobalAccPool": ("NumChannels",),
    "WinogradSRBS": ("m", "IFMChannels", "OFMChannels", "IFMDim", "Padding", "outputDataType"),
    "LabelSelect": ("Labels", "K"),
    "DuplicateStreams": ("NumOutputStreams",),
    "Elementwise": ("operation", "lhs_dtype", "rhs_dtype", "out_dtype", "lhs_shape", "rhs_shape", "out_shape",
                    "lhs_style", "rhs_style"),
}


def _shape_error(node, what: str, got, want) -> ProgramError:
    return ProgramError(f"node {node['name']} ({node['op']}): {what} has shape {list(got)}, expected {list(want)}")


def _check_node(node: dict, ins: list[list[int]], outs: list[list[int]], params: dict[str, np.ndarray]) -> None:
    """Attribute, parameter and shape consistency of one node (shapes with FINN's batch dim)."""
    op, a, name = node["op"], node["attrs"], node["name"]
    family = "Elementwise" if op.startswith("Elementwise") else op
    missing = [k for k in _REQUIRED_ATTRS.get(family, ()) if k not in a]
    if missing:
        raise ProgramError(f"node {name} ({op}): attributes missing: {', '.join(missing)}")
    roles = node["params"]

    def param(role: str) -> np.ndarray:
        if role not in roles:
            raise ProgramError(f"node {name} ({op}): parameter {role!r} is missing")
        return params[roles[role]]

    def expect(what, got, want):
        if list(got) != list(want):
            raise _shape_error(node, what, got, want)

    def n_inputs(k: int):
        if len(ins) != k:
            raise ProgramError(f"node {name} ({op}): needs {k} tensor input(s), has {len(ins)}")

    if family != "Elementwise":
        n_inputs(1)
    if family not in ("DuplicateStreams",) and len(outs) != 1:
        raise ProgramError(f"node {name} ({op}): needs 1 output, has {len(outs)}")
    x = ins[0] if ins else None
    if op == "Thresholding":
        thr = param("thresholds")
        c = int(a["NumChannels"])
        if thr.ndim != 2 or thr.shape[0] not in (1, c) or thr.shape[1] != int(a["numSteps"]):
            raise _shape_error(node, "thresholds", thr.shape, [c, a["numSteps"]])
        expect("input's channel axis", x[-1:], [c])
        expect("output", outs[0], x)
    elif op == "MVAU":
        mw, mh = int(a["MW"]), int(a["MH"])
        expect("weights", param("weights").shape, [mw, mh])
        expect("input's last axis", x[-1:], [mw])
        if outs[0][-1:] != [mh] or int(np.prod(outs[0])) * mw != int(np.prod(x)) * mh:
            raise _shape_error(node, "output", outs[0], [*x[:-1], mh])
        if a["noActivation"] == 0:
            thr = param("thresholds")
            if thr.ndim != 2 or thr.shape[0] not in (1, mh):
                raise _shape_error(node, "thresholds", thr.shape, [mh, "T"])
    elif op == "ConvolutionInputGenerator":
        h, w = a["IFMDim"]
        c = int(a["IFMChannels"])
        kh, kw = a["ConvKernelDim"]
        expect("input", x, [x[0], h, w, c])
        oh, ow = _swg_geometry(a)
        if [oh, ow] != list(a["OFMDim"]) or oh < 1 or ow < 1:
            raise ProgramError(f"node {name} ({op}): OFMDim {a['OFMDim']} does not follow from IFMDim, kernel, "
                               f"stride and dilation ({[oh, ow]})")
        expect("output", outs[0], [x[0], oh, ow, kh * kw * c])
    elif op == "FMPadding":
        h, w = a["ImgDim"]
        top, left, bottom, right = a["Padding"]
        expect("input", x, [x[0], h, w, a["NumChannels"]])
        expect("output", outs[0], [x[0], h + top + bottom, w + left + right, a["NumChannels"]])
    elif op == "Pool":
        if a["Function"] not in ("MaxPool", "AccPool", "QuantAvgPool"):
            raise ProgramError(f"node {name} (Pool): function {a['Function']!r}; supported: MaxPool, AccPool, "
                               "QuantAvgPool")
        if a["Function"] == "QuantAvgPool" and "shift_bits" not in a:
            raise ProgramError(f"node {name} (Pool): QuantAvgPool needs attribute shift_bits")
        k2, ch = int(np.prod(a["KernelSize"])), int(a["Channels"])
        expect("input", x, [x[0], *a["OutImgDims"], k2 * ch])
        expect("output", outs[0], [x[0], *a["OutImgDims"], ch])
    elif op == "GlobalAccPool":
        expect("input's channel axis", x[-1:], [a["NumChannels"]])
        expect("output", outs[0], [x[0], 1, 1, a["NumChannels"]])
    elif op == "WinogradSRBS":
        m, pad = int(a["m"]), int(a["Padding"])
        t = m + 2
        h, w = a["IFMDim"]
        expect("U", param("U").shape, [a["OFMChannels"], a["IFMChannels"], t, t])
        expect("input", x, [x[0], h, w, a["IFMChannels"]])
        expect("output", outs[0], [x[0], h + 2 * pad - 2, w + 2 * pad - 2, a["OFMChannels"]])
    elif family == "Elementwise":
        if a["operation"] not in _ELEMENTWISE:
            raise ProgramError(f"node {name}: elementwise operation {a['operation']!r} is not supported")
        tensors = iter(ins)
        want_inputs = sum(a[f"{s}_style"] != "const" for s in ("lhs", "rhs"))
        n_inputs(want_inputs)
        for side in ("lhs", "rhs"):
            got = param(side).shape if a[f"{side}_style"] == "const" else next(tensors)
            expect(side, got, a[f"{side}_shape"])
        try:
            out = list(np.broadcast_shapes(tuple(a["lhs_shape"]), tuple(a["rhs_shape"])))
        except ValueError as err:
            raise ProgramError(f"node {name}: lhs and rhs do not broadcast: {err}") from None
        expect("out_shape", a["out_shape"], out)
        expect("output", outs[0], out)
    elif op == "LabelSelect":
        expect("input's last axis", x[-1:], [a["Labels"]])
        if not 1 <= int(a["K"]) <= int(a["Labels"]):
            raise ProgramError(f"node {name} (LabelSelect): K={a['K']} must be 1..Labels={a['Labels']}")
        expect("output", outs[0], [*x[:-1], a["K"]])
    elif op == "DuplicateStreams":
        if len(outs) != int(a["NumOutputStreams"]):
            raise ProgramError(f"node {name}: {len(outs)} outputs, NumOutputStreams={a['NumOutputStreams']}")
        for o in outs:
            expect("output", o, x)
    else:  # identity
        if int(np.prod(outs[0])) != int(np.prod(x)):
            raise _shape_error(node, "output", outs[0], x)


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ProgramError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ProgramError(f"{path} is not a readable program: {err}") from None


def _load_params(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise ProgramError(f"{path} is missing")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ProgramError(f"{path} is corrupt: {type(err).__name__}: {err}") from None


# ------------------------------------------------------------------ the program


class Program:
    """An executable integer program (see the module docstring).

    ``Program.load(folder)`` reads ``program.json`` + ``params.npz``; ``Program(spec, params)``
    takes them in memory.  Both validate everything and raise :class:`ProgramError`."""

    def __init__(self, spec: dict, params: dict[str, np.ndarray], source: str = "program"):
        self.source = source
        if not isinstance(spec, dict):
            raise ProgramError(f"{source}: a program is a JSON object")
        version = spec.get("format_version")
        if version != FORMAT_VERSION:
            raise ProgramError(f"{source}: format_version {version!r} is not supported (this runtime reads "
                               f"{FORMAT_VERSION})")
        missing = [k for k in ("graph_input", "graph_output", "io", "tensors", "nodes", "params") if k not in spec]
        if missing:
            raise ProgramError(f"{source}: keys missing: {', '.join(missing)}")
        io = spec["io"]
        missing = [k for k in ("idt", "odt", "ishape_normal", "ishape_folded", "oshape_normal", "oshape_folded")
                   if k not in io]
        if missing:
            raise ProgramError(f"{source}: io keys missing: {', '.join(missing)}")
        self.spec = spec
        self.params = self._check_params(spec["params"], params)
        self.tensors: dict[str, dict] = spec["tensors"]
        for tname, info in self.tensors.items():
            datatype_range(info.get("datatype", ""))  # unknown names raise
            if not isinstance(info.get("shape"), list) or not info["shape"]:
                raise ProgramError(f"{source}: tensor {tname} has no shape")
        self.input_name, self.output_name = spec["graph_input"], spec["graph_output"]
        if self.input_name not in self.tensors or self.output_name not in self.tensors:
            raise ProgramError(f"{source}: the graph input/output tensors are not described in 'tensors'")
        for key in ("idt", "odt"):
            datatype_range(io[key])
        if list(io["ishape_normal"]) != self.tensors[self.input_name]["shape"] or \
                list(io["oshape_normal"]) != self.tensors[self.output_name]["shape"]:
            raise ProgramError(f"{source}: io shapes disagree with the graph input/output tensors")
        if io["idt"] != self.tensors[self.input_name]["datatype"] or \
                io["odt"] != self.tensors[self.output_name]["datatype"]:
            raise ProgramError(f"{source}: io datatypes disagree with the graph input/output tensors")
        for folded, normal in (("ishape_folded", "ishape_normal"), ("oshape_folded", "oshape_normal")):
            if int(np.prod(io[folded])) != int(np.prod(io[normal])):
                raise ProgramError(f"{source}: io {folded} {io[folded]} does not hold {normal} {io[normal]}")
        self.nodes = [dict(n) for n in spec["nodes"]]
        if not self.nodes:
            raise ProgramError(f"{source}: the program has no nodes")
        defined = {self.input_name}
        for node in self.nodes:
            for key in ("name", "op", "inputs", "outputs", "attrs", "params"):
                if key not in node:
                    raise ProgramError(f"{source}: a node lacks {key!r}: {node.get('name', node)}")
            if node["op"] not in _OPS:
                raise ProgramError(f"{source}: node {node['name']} has op {node['op']!r}, which this runtime "
                                   f"does not support; supported: {', '.join(SUPPORTED_OPS)}")
            for role, key in node["params"].items():
                if key not in self.params:
                    raise ProgramError(f"{source}: node {node['name']} refers to parameter {key!r} ({role}), "
                                       "which params.npz does not hold")
            for t in node["inputs"]:
                if t not in defined:
                    raise ProgramError(f"{source}: node {node['name']} reads tensor {t!r} before any node "
                                       "writes it")
            for t in node["outputs"]:
                if t not in self.tensors:
                    raise ProgramError(f"{source}: node {node['name']} writes tensor {t!r}, which 'tensors' "
                                       "does not describe")
                defined.add(t)
            _check_node(node, [self.tensors[t]["shape"] for t in node["inputs"]],
                        [self.tensors[t]["shape"] for t in node["outputs"]],
                        self.params)
            thr_key = node["params"].get("thresholds")
            node["_sorted"] = _is_sorted_rows(self.params[thr_key]) if thr_key else False
            node["_fn"] = _OPS[node["op"]]
            node["_params"] = {role: self.params[key] for role, key in node["params"].items()}
        if self.output_name not in defined:
            raise ProgramError(f"{source}: no node writes the graph output {self.output_name!r}")

    def _check_params(self, table: dict, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for key, info in table.items():
            if key not in params:
                raise ProgramError(f"{self.source}: parameter {key!r} is missing from params.npz")
            value = np.asarray(params[key])
            if str(value.dtype) not in _PARAM_DTYPES or str(value.dtype) != info.get("dtype"):
                raise ProgramError(f"{self.source}: parameter {key!r} has dtype {value.dtype}, expected "
                                   f"{info.get('dtype')} (one of {', '.join(_PARAM_DTYPES)})")
            if list(value.shape) != list(info.get("shape", [])):
                raise ProgramError(f"{self.source}: parameter {key!r} has shape {list(value.shape)}, expected "
                                   f"{info.get('shape')}")
            if param_digest(value) != info.get("sha256"):
                raise ProgramError(f"{self.source}: parameter {key!r} does not match its sha256: corrupt")
            out[key] = value
        return out

    @classmethod
    def load(cls, folder: str | Path) -> "Program":
        """The program in ``folder`` (``program.json`` + ``params.npz``), validated."""
        folder = Path(folder)
        spec = _load_json(folder / PROGRAM_FILE)
        if isinstance(spec, dict) and spec.get("format_version") != FORMAT_VERSION:
            raise ProgramError(f"{folder / PROGRAM_FILE}: format_version {spec.get('format_version')!r} is not "
                               f"supported (this runtime reads {FORMAT_VERSION})")
        return cls(spec, _load_params(folder / PARAMS_FILE), source=str(folder))

    def replace_param(self, node_name: str, role: str, value: Any) -> None:
        """Give node ``node_name`` a new parameter ``role`` (e.g. a ``WinogradSRBS`` node's ``U``
        after the simulated device received new runtime weights): same shape, integer values
        the stored dtype holds; :class:`ProgramError` naming what differs."""
        node = next((n for n in self.nodes if n["name"] == node_name), None)
        if node is None:
            raise ProgramError(f"{self.source}: no node {node_name!r}")
        if role not in node["params"]:
            raise ProgramError(f"{self.source}: node {node_name} has no parameter {role!r} "
                               f"(it has {', '.join(node['params']) or 'none'})")
        old = self.params[node["params"][role]]
        new = np.asarray(value)
        if new.shape != old.shape:
            raise ProgramError(f"{self.source}: node {node_name} {role}: shape {new.shape}, expected {old.shape}")
        if old.dtype.kind in "iu":
            info = np.iinfo(old.dtype)
            if new.dtype.kind not in "iub" or (new.size and (int(new.min()) < info.min or int(new.max()) > info.max)):
                raise ProgramError(f"{self.source}: node {node_name} {role}: values must be integers in "
                                   f"{old.dtype} [{info.min}, {info.max}]")
        new = new.astype(old.dtype)
        self.params = {**self.params, node["params"][role]: new}
        node["_params"] = {**node["_params"], role: new}

    # ---- description

    @property
    def io(self) -> dict[str, Any]:
        """``{idt, odt, ishape_normal, ishape_folded, oshape_normal, oshape_folded}`` (FINN names/shapes)."""
        return dict(self.spec["io"])

    def __repr__(self) -> str:
        ops = ", ".join(n["op"] for n in self.nodes)
        return f"Program({self.source!r}: {len(self.nodes)} nodes: {ops})"

    # ---- execution

    def check_input(self, x) -> np.ndarray:
        """``x`` as the int64 (float32 for a float idt) batch the program takes; raises
        :class:`ProgramError` on a wrong shape, non-integer values or values outside ``idt``."""
        io = self.io
        idt, shape = io["idt"], list(io["ishape_normal"])
        a = np.asarray(x)
        if a.dtype == bool:
            a = a.astype(np.int64)
        if a.dtype.kind not in "iuf":
            raise ProgramError(f"input must be numeric ({idt} values), got dtype {a.dtype}")
        if a.ndim != len(shape) or list(a.shape[1:]) != shape[1:] or a.shape[0] < 1:
            raise ProgramError(f"input must have shape (N, {', '.join(map(str, shape[1:]))}) with N >= 1 "
                               f"({idt} values), got {tuple(a.shape)}")
        rng = datatype_range(idt)
        if rng is None:
            return a.astype(np.float32)
        if a.dtype.kind == "f":
            bad = ~np.isfinite(a) | (a != np.round(a))
            if bad.any():
                pos = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ProgramError(f"input must hold {idt} integers; found {a[pos].item()!r} at {pos}")
        lo, hi = rng
        bad = (a < lo) | (a > hi)
        if idt == "BIPOLAR":
            bad |= a == 0
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ProgramError(f"input value {a[pos].item()!r} at {pos} is outside {idt} [{lo}, {hi}]"
                               + (" (BIPOLAR is -1 or +1)" if idt == "BIPOLAR" else ""))
        return a.astype(np.int64)

    def _carrier(self, node: dict, tname: str, y: np.ndarray, n: int) -> np.ndarray:
        info = self.tensors[tname]
        shape = (n, *info["shape"][1:])
        y = np.asarray(y)
        if y.size != int(np.prod(shape)):
            raise ProgramError(f"node {node['name']} ({node['op']}) produced {y.shape} for tensor {tname}, "
                               f"expected {shape}")
        y = y.reshape(shape)
        if datatype_range(info["datatype"]) is None:
            return y.astype(np.float32, copy=False)
        if y.dtype.kind == "f":
            if not (np.all(np.isfinite(y)) and np.array_equal(y, np.round(y))):
                raise ProgramError(f"node {node['name']} ({node['op']}): tensor {tname} is annotated "
                                   f"{info['datatype']} but the result holds non-integer values")
        return y.astype(np.int64, copy=False)

    def _run_chunk(self, x: np.ndarray, return_all: bool):
        n = x.shape[0]
        ctx = {self.input_name: x}
        for node in self.nodes:
            outs = node["_fn"](node, [ctx[t] for t in node["inputs"]], node["_params"])
            for tname, y in zip(node["outputs"], outs):
                ctx[tname] = self._carrier(node, tname, y, n)
        return ctx if return_all else ctx[self.output_name]

    def run(self, x, return_all: bool = False, batch_size: int = 256):
        """Execute the program on the batch ``x`` (N, ...) of the accelerator's normal input
        (integer values of ``io['idt']``, any numeric dtype).  Returns the output (N, ...):
        float32 for a FLOAT32 ``odt``, else int64; with ``return_all`` a dict of every tensor
        by name (the input included).  ``batch_size`` images execute at a time (memory bound)."""
        x = self.check_input(x)
        if batch_size < 1:
            raise ProgramError(f"batch_size must be >= 1, got {batch_size}")
        chunks = [self._run_chunk(x[i:i + batch_size], return_all) for i in range(0, x.shape[0], batch_size)]
        if not return_all:
            return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        if len(chunks) == 1:
            return chunks[0]
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
