"""ExactActivationThresholds: integer thresholds that reproduce BatchNorm + ReLU + Quant exactly."""

from __future__ import annotations

import numpy as np
import pytest
import qonnx.core.onnx_exec as oxe
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import qonnx_make_model

import winoforge.hw.ops  # noqa: F401  (registers WinogradConv)
from winoforge.hw.ops import DOMAIN
from winoforge.hw.transforms import ExactActivationThresholds


def _quant(name, inp, out, scale_name, bits_name, signed=0, narrow=0):
    return helper.make_node("Quant", [inp, scale_name, "zero", bits_name], [out], name=name,
                            domain="qonnx.custom_op.general", signed=signed, narrow=narrow, rounding_mode="ROUND")


def _winograd_model(cin, cout, U, s_w, a, b, s_out, bits=4, h=6, w=6):
    """x -> Quant(1/16, 8 bit) -> WinogradConv(U) -> Mul(s_w) -> Mul(a) -> Add(b) -> Relu -> Quant(s_out)."""
    nodes = [
        _quant("q_in", "x", "xq", "s_in", "b8"),
        helper.make_node("WinogradConv", ["xq", "U"], ["acc"], domain=DOMAIN, name="wc", m=2, pads=[1, 1]),
        helper.make_node("Mul", ["acc", "s_w"], ["t1"], name="mul_w"),
        helper.make_node("Mul", ["t1", "a"], ["t2"], name="bn_mul"),
        helper.make_node("Add", ["t2", "b"], ["t3"], name="bn_add"),
        helper.make_node("Relu", ["t3"], ["t4"], name="relu"),
        _quant("q_out", "t4", "y", "s_out", "bits"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, h, w])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, h, w])])
    model = ModelWrapper(qonnx_make_model(graph))
    inits = {"s_in": np.float32(1 / 16), "b8": np.float32(8), "zero": np.float32(0), "U": U.astype(np.float32),
             "s_w": s_w.reshape(1, -1, 1, 1).astype(np.float32), "a": a.reshape(1, -1, 1, 1).astype(np.float32),
             "b": b.reshape(1, -1, 1, 1).astype(np.float32), "s_out": np.float32(s_out), "bits": np.float32(bits)}
    for k, v in inits.items():
        model.set_initializer(k, np.asarray(v, dtype=np.float32))
    model.set_tensor_datatype("U", DataType["INT4"])
    return model.transform(InferShapes())


def _run(model, x):
    return oxe.execute_onnx(model, {"x": x})["y"]


@pytest.mark.parametrize("ties", [False, True])
def test_thresholds_reproduce_bn_relu_quant_exactly(ties):
    rng = np.random.default_rng(1 if ties else 0)
    cin, cout = 4, 6
    U = rng.integers(-7, 8, size=(cout, cin, 4, 4))
    s_w = np.float32(2.0) ** rng.integers(-6, -2, size=cout)
    if ties:  # values land exactly on the quantizer's half steps: round-half-even must be reproduced
        a = np.ones(cout, dtype=np.float32) * np.where(np.arange(cout) % 2, -1, 1)
        b = np.float32(0.25) * np.ones(cout, dtype=np.float32)
        s_out = 0.5
    else:  # arbitrary BatchNorm affine, some channels with a negative slope
        a = rng.normal(0, 1, cout).astype(np.float32)
        b = rng.normal(0, 1, cout).astype(np.float32)
        s_out = 0.125
    model = _winograd_model(cin, cout, U, s_w, a, b, s_out)
    exact = model.transform(ExactActivationThresholds())
    assert [n.op_type for n in exact.graph.node].count("MultiThreshold") == 1
    assert not any(n.op_type in ("Relu", "Add") for n in exact.graph.node)
    for _ in range(30):
        x = (rng.integers(0, 256, size=(1, cin, 6, 6)) / 16).astype(np.float32)
        assert np.array_equal(_run(model, x), _run(exact, x))


def test_raw_input_thresholds_are_integers_and_exact():
    """graph input UINT8 -> Div(255) -> Quant: the first layer's thresholds on raw pixels."""
    nodes = [helper.make_node("Div", ["r", "c255"], ["x"], name="div"), _quant("q", "x", "y", "s", "bits")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 1, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 16, 16])])
    model = ModelWrapper(qonnx_make_model(graph))
    for k, v in {"c255": 255.0, "s": 2.0 ** -8, "bits": 8.0, "zero": 0.0}.items():
        model.set_initializer(k, np.asarray(v, dtype=np.float32))
    model.set_tensor_datatype("r", DataType["UINT8"])
    model = model.transform(InferShapes())
    exact = model.transform(ExactActivationThresholds())
    thr = [exact.get_initializer(n.input[1]) for n in exact.graph.node if n.op_type == "MultiThreshold"][0]
    assert np.array_equal(thr, np.round(thr))  # integer thresholds on the raw pixel values
    r = np.arange(256, dtype=np.float32).reshape(1, 1, 16, 16)  # every possible pixel
    assert np.array_equal(oxe.execute_onnx(model, {"r": r})["y"], oxe.execute_onnx(exact, {"r": r})["y"])


def test_non_power_of_two_input_scale_is_left_to_finn():
    rng = np.random.default_rng(3)
    model = _winograd_model(2, 2, rng.integers(-7, 8, size=(2, 2, 4, 4)), np.float32([0.25, 0.25]),
                            np.float32([1.3, 0.7]), np.float32([0.1, -0.2]), 0.125)
    model.set_initializer("s_in", np.asarray(0.1, dtype=np.float32))
    exact = model.transform(ExactActivationThresholds())
    assert "MultiThreshold" not in [n.op_type for n in exact.graph.node if n.name != "q_in"]
