"""The integer-program interpreter on small hand-written programs, against plain numpy references
(numpy only: also runs in the board environment with numpy 1.x).  Conventions follow FINN's
Python execution: see winoforge.runtime.program's module docstring."""

from __future__ import annotations

import json

import numpy as np
import pytest

from winoforge.runtime.program import (FORMAT_VERSION, PARAMS_FILE, PROGRAM_FILE, Program, ProgramError,
                                       datatype_range, save_program)

pytestmark = pytest.mark.portable

rng = np.random.default_rng(0)


def node(name, op, inputs, outputs, attrs, params=None):
    return {"name": name, "op": op, "op_type": op, "inputs": inputs, "outputs": outputs, "attrs": attrs,
            "params": params or {}}


def program(tmp_path, nodes, tensors, params, idt="UINT8", odt=None, load=True):
    """Write a program whose graph input is tensor "x" and output is the last node's first output."""
    out = nodes[-1]["outputs"][0]
    odt = odt or tensors[out][1]
    spec = {
        "format_version": FORMAT_VERSION, "graph_input": "x", "graph_output": out,
        "io": {"idt": idt, "odt": odt, "ishape_normal": tensors["x"][0], "ishape_folded": [*tensors["x"][0], 1],
               "oshape_normal": tensors[out][0], "oshape_folded": [*tensors[out][0], 1]},
        "tensors": {k: {"shape": list(s), "datatype": dt} for k, (s, dt) in tensors.items()},
        "nodes": nodes,
    }
    save_program(tmp_path, spec, params)
    return Program.load(tmp_path) if load else tmp_path


def ints(lo, hi, shape):
    return rng.integers(lo, hi + 1, size=shape)


# ------------------------------------------------------------------ Thresholding


def count_reference(x, thr):
    """#thresholds <= x, per element, channel = last axis; the slow obvious way."""
    out = np.zeros(x.shape, dtype=np.int64)
    for idx in np.ndindex(*x.shape):
        row = thr[0] if thr.shape[0] == 1 else thr[idx[-1]]
        out[idx] = sum(1 for t in row if t <= x[idx])
    return out


def thresholding(tmp_path, thr, act_val=0, odt="UINT2", idt="INT8", shape=(1, 3, 3, 2)):
    c = shape[-1]
    nodes = [node("thr", "Thresholding", ["x"], ["y"],
                  {"NumChannels": c, "numSteps": thr.shape[1], "ActVal": act_val, "inputDataType": idt,
                   "weightDataType": "INT8", "outputDataType": odt}, {"thresholds": "thr"})]
    return program(tmp_path, nodes, {"x": (list(shape), idt), "y": (list(shape), odt)}, {"thr": thr}, idt=idt)


def test_thresholding_counts_thresholds_at_or_below_ties_included(tmp_path):
    thr = np.array([[-2, 0, 3], [1, 1, 5]], dtype=np.int8)  # channel 1 has a repeated threshold
    p = thresholding(tmp_path, thr)
    x = np.array([-3, -2, -1, 0, 1, 2, 3, 4, 5]).repeat(2).reshape(1, 3, 3, 2)  # every value, both channels
    y = p.run(x)
    assert y.dtype == np.int64
    assert np.array_equal(y, count_reference(x, thr))
    # exactly at a threshold counts it: x = 0 on channel 0 -> 2 (-2, 0); x = 1 on channel 1 -> 2 (1, 1)
    assert y[0, 1, 0, 0] == 2 and y[0, 1, 1, 1] == 2
    batch = ints(-128, 127, (5, 3, 3, 2))
    assert np.array_equal(p.run(batch), count_reference(batch, thr))


def test_thresholding_signed_output_and_global_thresholds(tmp_path):
    thr = np.array([[-6, -4, -2, 0, 2, 4, 6]], dtype=np.int8)  # one row for all channels
    p = thresholding(tmp_path, thr, act_val=-4, odt="INT3")
    x = ints(-10, 10, (4, 3, 3, 2))
    y = p.run(x)
    assert np.array_equal(y, count_reference(x, thr) - 4)
    assert y.min() >= -4 and y.max() <= 3


def test_thresholding_unsorted_and_float_thresholds(tmp_path):
    unsorted = np.array([[3, -2, 0], [5, 1, 1]], dtype=np.int8)
    x = ints(-4, 6, (3, 3, 3, 2))
    assert np.array_equal(thresholding(tmp_path / "u", unsorted).run(x), count_reference(x, unsorted))
    floats = np.array([[-1.5, 0.5, 2.0], [0.25, 1.0, 4.75]], dtype=np.float32)
    assert np.array_equal(thresholding(tmp_path / "f", floats).run(x), count_reference(x, floats))


def test_thresholding_bipolar_output(tmp_path):
    thr = np.array([[0], [2]], dtype=np.int8)
    x = ints(-3, 3, (2, 3, 3, 2))
    y = thresholding(tmp_path, thr, odt="BIPOLAR").run(x)
    assert np.array_equal(y, 2 * count_reference(x, thr) - 1)
    assert set(np.unique(y)) <= {-1, 1}


# ------------------------------------------------------------------ MVAU


def mvau(tmp_path, w, thr=None, act_val=0, idt="UINT4", wdt="INT4", odt="INT16", shape=(1, 2, 2), xnor=0):
    mw, mh = w.shape
    attrs = {"MW": mw, "MH": mh, "ActVal": act_val, "noActivation": int(thr is None), "binaryXnorMode": xnor,
             "inputDataType": idt, "weightDataType": wdt, "outputDataType": odt}
    params = {"w": w}
    roles = {"weights": "w"}
    if thr is not None:
        params["t"], roles["thresholds"] = thr, "t"
    nodes = [node("mvau", "MVAU", ["x"], ["y"], attrs, roles)]
    return program(tmp_path, nodes, {"x": ([*shape, mw], idt), "y": ([*shape, mh], odt)}, params, idt=idt)


def test_mvau_is_x_times_weights(tmp_path):
    w = ints(-8, 7, (12, 5)).astype(np.int8)  # (MW, MH), FINN's layout
    x = ints(0, 15, (3, 2, 2, 12))
    y = mvau(tmp_path, w).run(x)
    ref = np.einsum("nhwk,km->nhwm", x, w.astype(np.int64))
    assert np.array_equal(y, ref)


def test_mvau_with_thresholds(tmp_path):
    w = ints(-8, 7, (12, 5)).astype(np.int8)
    thr = np.sort(ints(-60, 60, (5, 7)), axis=1).astype(np.int16)
    x = ints(0, 15, (3, 2, 2, 12))
    acc = np.einsum("nhwk,km->nhwm", x, w.astype(np.int64))
    y = mvau(tmp_path / "u", w, thr, odt="UINT3").run(x)
    assert np.array_equal(y, count_reference(acc, thr))
    y = mvau(tmp_path / "s", w, thr, act_val=-4, odt="INT3").run(x)
    assert np.array_equal(y, count_reference(acc, thr) - 4)


def test_mvau_binary_xnor_popcount(tmp_path):
    w = ints(0, 1, (9, 4)).astype(np.int8)
    x = ints(0, 1, (2, 1, 9))
    y = mvau(tmp_path, w, idt="BINARY", wdt="BINARY", odt="UINT4", shape=(1, 1), xnor=1).run(x)
    ref = (x[..., :, None] == w).sum(axis=-2)  # matching bits (XNOR popcount)
    assert np.array_equal(y, ref)


def test_mvau_wide_accumulators_stay_exact(tmp_path):
    """Products beyond float64's 53 bits: the interpreter falls back to int64."""
    w = np.array([[2**30 - 1], [-(2**30)], [2**30 - 3]], dtype=np.int32)
    x = np.array([[[2**31 - 1, 2**31 - 2, 2**31 - 5]]], dtype=np.int64)
    y = mvau(tmp_path, w, idt="INT32", wdt="INT32", odt="INT64", shape=(1, 1)).run(x)
    exact = sum(int(a) * int(b) for a, b in zip(x.ravel(), w.ravel()))
    assert int(y.ravel()[0]) == exact


# ------------------------------------------------------------------ im2col, padding, pooling


def swg_node(name, inp, out, h, w, c, k, s, d=1):
    oh, ow = (h - d * (k - 1) - 1) // s + 1, (w - d * (k - 1) - 1) // s + 1
    return node(name, "ConvolutionInputGenerator", [inp], [out],
                {"IFMDim": [h, w], "IFMChannels": c, "OFMDim": [oh, ow], "ConvKernelDim": [k, k],
                 "Stride": [s, s], "Dilation": [d, d], "depthwise": 0}), (oh, ow)


@pytest.mark.parametrize("k,s,d", [(3, 1, 1), (2, 2, 1), (3, 2, 1), (3, 1, 2)])
def test_im2col_order_is_kernel_row_kernel_col_channel(tmp_path, k, s, d):
    h, w, c = 7, 6, 3
    n, (oh, ow) = swg_node("swg", "x", "y", h, w, c, k, s, d)
    p = program(tmp_path, [n], {"x": ([1, h, w, c], "UINT8"), "y": ([1, oh, ow, k * k * c], "UINT8")}, {})
    x = ints(0, 255, (2, h, w, c))
    y = p.run(x)
    for b, oy, ox, ky, kx, ch in np.ndindex(2, oh, ow, k, k, c):
        assert y[b, oy, ox, (ky * k + kx) * c + ch] == x[b, oy * s + ky * d, ox * s + kx * d, ch]


def test_padding_im2col_mvau_is_a_direct_convolution(tmp_path):
    """FMPadding + ConvolutionInputGenerator + MVAU with weights (ky, kx, cin) x cout = conv2d."""
    h, w, cin, cout = 5, 5, 2, 3
    g = ints(-3, 3, (cout, cin, 3, 3))
    weights = g.transpose(2, 3, 1, 0).reshape(9 * cin, cout).astype(np.int8)  # FINN's MVAU layout for convs
    pad = node("pad", "FMPadding", ["x"], ["xp"], {"ImgDim": [h, w], "Padding": [1, 1, 1, 1], "NumChannels": cin})
    swg, (oh, ow) = swg_node("swg", "xp", "cols", h + 2, w + 2, cin, 3, 1)
    mv = node("mvau", "MVAU", ["cols"], ["y"],
              {"MW": 9 * cin, "MH": cout, "ActVal": 0, "noActivation": 1, "binaryXnorMode": 0,
               "inputDataType": "UINT4", "weightDataType": "INT4", "outputDataType": "INT16"}, {"weights": "w"})
    tensors = {"x": ([1, h, w, cin], "UINT4"), "xp": ([1, h + 2, w + 2, cin], "UINT4"),
               "cols": ([1, oh, ow, 9 * cin], "UINT4"), "y": ([1, oh, ow, cout], "INT16")}
    p = program(tmp_path, [pad, swg, mv], tensors, {"w": weights}, idt="UINT4")
    x = ints(0, 15, (2, h, w, cin))
    every = p.run(x, return_all=True)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    assert np.array_equal(every["xp"], xp)
    ref = np.zeros((2, oh, ow, cout), dtype=np.int64)
    for ky, kx in np.ndindex(3, 3):
        ref += np.einsum("nhwc,oc->nhwo", xp[:, ky:ky + oh, kx:kx + ow], g[:, :, ky, kx])
    assert np.array_equal(every["y"], ref)


@pytest.mark.parametrize("function", ["MaxPool", "AccPool", "QuantAvgPool"])
def test_pooling_over_a_sliding_window(tmp_path, function):
    h, w, c = 6, 4, 3
    swg, (oh, ow) = swg_node("swg", "x", "win", h, w, c, 2, 2)
    attrs = {"Function": function, "KernelSize": [2, 2], "Channels": c, "OutImgDims": [oh, ow],
             "InputDataType": "UINT4", "OutputDataType": "UINT4"}
    if function == "QuantAvgPool":
        attrs["shift_bits"] = 2  # FINN: bit length of 15*4 (6) - output bits (4)
    pool = node("pool", "Pool", ["win"], ["y"], attrs)
    tensors = {"x": ([1, h, w, c], "UINT4"), "win": ([1, oh, ow, 4 * c], "UINT4"), "y": ([1, oh, ow, c], "UINT6")}
    p = program(tmp_path, [swg, pool], tensors, {}, idt="UINT4")
    x = ints(0, 15, (3, h, w, c))
    blocks = x.reshape(3, oh, 2, ow, 2, c)
    ref = {"MaxPool": blocks.max(axis=(2, 4)), "AccPool": blocks.sum(axis=(2, 4)),
           "QuantAvgPool": blocks.sum(axis=(2, 4)) >> 2}[function]
    assert np.array_equal(p.run(x), ref)


def test_global_acc_pool_sums_every_pixel(tmp_path):
    gap = node("gap", "GlobalAccPool", ["x"], ["y"], {"NumChannels": 4})
    p = program(tmp_path, [gap], {"x": ([1, 3, 5, 4], "UINT4"), "y": ([1, 1, 1, 4], "UINT8")}, {}, idt="UINT4")
    x = ints(0, 15, (2, 3, 5, 4))
    assert np.array_equal(p.run(x), x.sum(axis=(1, 2), keepdims=True))


# ------------------------------------------------------------------ Winograd, elementwise, labels


def winograd(tmp_path, U, h=6, w=5, odt="INT16", pad=1, m=2):
    cout, cin = U.shape[:2]
    attrs = {"m": m, "IFMChannels": cin, "OFMChannels": cout, "IFMDim": [h, w], "Padding": pad,
             "SubRow": 0, "Keep": 0, "inputDataType": "UINT4", "weightDataType": "INT4", "outputDataType": odt}
    nodes = [node("wino", "WinogradSRBS", ["x"], ["y"], attrs, {"U": "U"})]
    oh, ow = h + 2 * pad - 2, w + 2 * pad - 2
    return program(tmp_path, nodes, {"x": ([1, h, w, cin], "UINT4"), "y": ([1, oh, ow, cout], odt)}, {"U": U},
                   idt="UINT4")


@pytest.mark.parametrize("m", [2, 4])
def test_winograd_srbs_is_the_exact_winograd_convolution(tmp_path, m):
    from winoforge.winograd import direct_conv2d, integer_filter_transform, winograd_conv2d

    t = m + 2
    U = ints(-8, 7, (3, 2, t, t)).astype(np.int8)
    x = ints(0, 15, (2, 6, 5, 2))
    y = winograd(tmp_path, U, m=m, odt="INT24").run(x)
    ref = winograd_conv2d(x.transpose(0, 3, 1, 2), U, m, 1).transpose(0, 2, 3, 1)
    assert np.array_equal(y, ref)
    # and with U from integer 3x3 filters: a scaled direct convolution
    g = ints(-3, 3, (3, 2, 3, 3))
    Ug, scale = integer_filter_transform(g, m)
    y = winograd(tmp_path / "g", Ug.astype(np.int32), m=m, odt="INT32").run(x)
    assert np.array_equal(y, scale * direct_conv2d(x.transpose(0, 3, 1, 2), g, 1).transpose(0, 2, 3, 1))


def test_winograd_output_outside_its_datatype_is_refused(tmp_path):
    U = np.full((1, 1, 4, 4), 7, dtype=np.int8)
    p = winograd(tmp_path, U, odt="INT4")
    with pytest.raises(ProgramError, match=r"node wino \(WinogradSRBS\).*outside outputDataType=INT4"):
        p.run(np.full((1, 6, 5, 1), 15))


def test_float_postprocessing_follows_finn_numpy_semantics(tmp_path):
    """Mul(int, float32) runs in float64 and rounds to float32; Add(float32, float32) in float32."""
    scale = np.array([0.1234567], dtype=np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    mul = node("mul", "ElementwiseMul", ["x"], ["s"],
               {"operation": "Mul", "lhs_dtype": "INT20", "rhs_dtype": "FLOAT32", "out_dtype": "FLOAT32",
                "lhs_shape": [1, 6], "rhs_shape": [1], "out_shape": [1, 6], "lhs_style": "input",
                "rhs_style": "const"}, {"rhs": "scale"})
    add = node("add", "ElementwiseAdd", ["s"], ["y"],
               {"operation": "Add", "lhs_dtype": "FLOAT32", "rhs_dtype": "FLOAT32", "out_dtype": "FLOAT32",
                "lhs_shape": [1, 6], "rhs_shape": [6], "out_shape": [1, 6], "lhs_style": "input",
                "rhs_style": "const"}, {"rhs": "bias"})
    tensors = {"x": ([1, 6], "INT20"), "s": ([1, 6], "FLOAT32"), "y": ([1, 6], "FLOAT32")}
    p = program(tmp_path, [mul, add], tensors, {"scale": scale, "bias": bias}, idt="INT20")
    x = ints(-(2**19), 2**19 - 1, (50, 6))
    y = p.run(x)
    assert y.dtype == np.float32
    ref = (x.astype(np.float64) * np.float64(scale[0])).astype(np.float32) + bias  # float32 + float32
    assert ref.dtype == np.float32 and np.array_equal(y, ref)


def test_integer_elementwise_and_two_stream_inputs(tmp_path):
    dup = node("dup", "DuplicateStreams", ["x"], ["a", "b"], {"NumChannels": 4, "NumOutputStreams": 2})
    fifo = node("fifo", "StreamingFIFO", ["b"], ["b2"], {})
    add = node("add", "ElementwiseAdd", ["a", "b2"], ["s"],
               {"operation": "Add", "lhs_dtype": "INT5", "rhs_dtype": "INT5", "out_dtype": "INT6",
                "lhs_shape": [1, 2, 4], "rhs_shape": [1, 2, 4], "out_shape": [1, 2, 4], "lhs_style": "input",
                "rhs_style": "input"})
    mx = node("max", "ElementwiseMax", ["s"], ["y"],
              {"operation": "Max", "lhs_dtype": "INT6", "rhs_dtype": "INT6", "out_dtype": "INT6",
               "lhs_shape": [1, 2, 4], "rhs_shape": [4], "out_shape": [1, 2, 4], "lhs_style": "input",
               "rhs_style": "const"}, {"rhs": "floor"})
    t = ([1, 2, 4], "INT5")
    tensors = {"x": t, "a": t, "b": t, "b2": t, "s": ([1, 2, 4], "INT6"), "y": ([1, 2, 4], "INT6")}
    floor = np.array([-3, 0, 2, -16], dtype=np.int8)
    p = program(tmp_path, [dup, fifo, add, mx], tensors, {"floor": floor}, idt="INT5")
    x = ints(-16, 15, (3, 2, 4))
    y = p.run(x)
    assert y.dtype == np.int64 and np.array_equal(y, np.maximum(2 * x, floor))


def test_label_select_top_k_ties_to_the_lower_index(tmp_path):
    ls = node("ls", "LabelSelect", ["x"], ["y"], {"Labels": 5, "K": 3})
    p = program(tmp_path, [ls], {"x": ([1, 5], "INT8"), "y": ([1, 3], "UINT3")}, {}, idt="INT8")
    x = np.array([[1, 7, 3, 7, -2], [0, 0, 0, 0, 0], [-1, -5, 4, 4, 9]])
    assert p.run(x).tolist() == [[1, 3, 2], [0, 1, 2], [4, 2, 3]]


# ------------------------------------------------------------------ the program as a whole


def small(tmp_path, load=True):
    thr = np.array([[64, 128, 192]], dtype=np.int16)
    t = node("thr", "Thresholding", ["x"], ["q"],
             {"NumChannels": 2, "numSteps": 3, "ActVal": 0, "inputDataType": "UINT8", "weightDataType": "UINT8",
              "outputDataType": "UINT2"}, {"thresholds": "thr"})
    g = node("gap", "GlobalAccPool", ["q"], ["y"], {"NumChannels": 2})
    tensors = {"x": ([1, 2, 2, 2], "UINT8"), "q": ([1, 2, 2, 2], "UINT2"), "y": ([1, 1, 1, 2], "UINT4")}
    return program(tmp_path, [t, g], tensors, {"thr": thr}, load=load)


def test_return_all_batches_and_io(tmp_path):
    p = small(tmp_path)
    assert p.io == {"idt": "UINT8", "odt": "UINT4", "ishape_normal": [1, 2, 2, 2], "ishape_folded": [1, 2, 2, 2, 1],
                    "oshape_normal": [1, 1, 1, 2], "oshape_folded": [1, 1, 1, 2, 1]}
    x = ints(0, 255, (7, 2, 2, 2)).astype(np.uint8)
    every = p.run(x, return_all=True, batch_size=3)
    assert set(every) == {"x", "q", "y"} and all(v.shape[0] == 7 for v in every.values())
    q = (x[..., None] >= np.array([64, 128, 192])).sum(-1)
    assert np.array_equal(every["q"], q) and np.array_equal(every["y"], q.sum(axis=(1, 2), keepdims=True))
    assert np.array_equal(p.run(x), every["y"]) and p.run(x).dtype == np.int64
    assert np.array_equal(p.run(x.astype(np.float32)), every["y"])  # integer values in any numeric dtype


def test_bad_inputs_are_refused_naming_the_datatype(tmp_path):
    p = small(tmp_path)
    with pytest.raises(ProgramError, match=r"256 .* outside UINT8 \[0, 255\]"):
        p.run(np.full((1, 2, 2, 2), 256))
    with pytest.raises(ProgramError, match=r"-1 .* outside UINT8"):
        p.run(np.full((1, 2, 2, 2), -1))
    with pytest.raises(ProgramError, match="UINT8 integers; found 1.5"):
        p.run(np.full((1, 2, 2, 2), 1.5))
    with pytest.raises(ProgramError, match="UINT8 integers; found nan"):
        p.run(np.full((1, 2, 2, 2), np.nan))
    with pytest.raises(ProgramError, match=r"shape \(N, 2, 2, 2\)"):
        p.run(np.zeros((2, 2, 2), dtype=np.uint8))  # no batch axis
    with pytest.raises(ProgramError, match="numeric"):
        p.run(np.array([[[["a"]]]]))


def _edit(folder, change):
    spec = json.loads((folder / PROGRAM_FILE).read_text())
    change(spec)
    (folder / PROGRAM_FILE).write_text(json.dumps(spec))


def test_version_missing_files_and_corrupt_params_are_refused(tmp_path):
    folder = small(tmp_path / "v", load=False)
    _edit(folder, lambda s: s.update(format_version=2))
    with pytest.raises(ProgramError, match="format_version 2"):
        Program.load(folder)

    folder = small(tmp_path / "m", load=False)
    (folder / PARAMS_FILE).unlink()
    with pytest.raises(ProgramError, match="params.npz is missing"):
        Program.load(folder)
    with pytest.raises(ProgramError, match="program.json is missing"):
        Program.load(tmp_path / "nowhere")

    folder = small(tmp_path / "k", load=False)
    np.savez(folder / PARAMS_FILE, other=np.zeros(3, dtype=np.int8))
    with pytest.raises(ProgramError, match="'thr' is missing"):
        Program.load(folder)

    folder = small(tmp_path / "c", load=False)
    np.savez(folder / PARAMS_FILE, thr=np.array([[64, 128, 193]], dtype=np.int16))  # one value changed
    with pytest.raises(ProgramError, match="'thr' does not match its sha256"):
        Program.load(folder)

    folder = small(tmp_path / "d", load=False)
    np.savez(folder / PARAMS_FILE, thr=np.array([[64, 128, 192]], dtype=np.int32))
    with pytest.raises(ProgramError, match="'thr' has dtype int32, expected int16"):
        Program.load(folder)

    folder = small(tmp_path / "z", load=False)
    (folder / PARAMS_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ProgramError, match="corrupt"):
        Program.load(folder)

    folder = small(tmp_path / "j", load=False)
    (folder / PROGRAM_FILE).write_text("{not json")
    with pytest.raises(ProgramError, match="not a readable program"):
        Program.load(folder)


def test_inconsistent_programs_are_refused(tmp_path):
    def refused(name, change, match):
        folder = small(tmp_path / name, load=False)
        _edit(folder, change)
        with pytest.raises(ProgramError, match=match):
            Program.load(folder)

    refused("ref", lambda s: s["nodes"][0]["params"].update(thresholds="nope"), "parameter 'nope'")
    refused("role", lambda s: s["nodes"][0].update(params={}), r"node thr \(Thresholding\): parameter 'thresholds' "
                                                               "is missing")
    refused("steps", lambda s: s["nodes"][0]["attrs"].update(numSteps=4), r"thresholds has shape \[1, 3\]")
    refused("chan", lambda s: s["nodes"][0]["attrs"].update(NumChannels=3), "thresholds|channel axis")
    refused("attr", lambda s: s["nodes"][1]["attrs"].pop("NumChannels"), "attributes missing: NumChannels")
    refused("op", lambda s: s["nodes"][1].update(op="Lookup"), r"op 'Lookup'.*supported: Thresholding")
    refused("order", lambda s: s["nodes"].reverse(), "reads tensor 'q' before any node writes it")
    refused("shape", lambda s: s["tensors"]["q"].update(shape=[1, 2, 2, 3]),
            r"thr \(Thresholding\): output has shape \[1, 2, 2, 3\]")
    refused("dtype", lambda s: s["tensors"]["q"].update(datatype="UINT99X"), "unknown FINN datatype")
    refused("io", lambda s: s["io"].update(ishape_normal=[1, 2, 2, 3]), "io shapes disagree")
    refused("out", lambda s: s.update(graph_output="zzz"), "graph input/output tensors are not described")


def test_datatype_ranges():
    assert datatype_range("UINT8") == (0, 255) and datatype_range("INT4") == (-8, 7)
    assert datatype_range("BIPOLAR") == (-1, 1) and datatype_range("BINARY") == (0, 1)
    assert datatype_range("FLOAT32") is None
    with pytest.raises(ProgramError, match="unknown FINN datatype"):
        datatype_range("INTEGER")
