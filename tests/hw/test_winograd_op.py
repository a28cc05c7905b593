"""The WinogradSRBS FINN layer: bit-exact Python execution through qonnx, attribute
and weight validation, exact output datatypes, estimates, folding, RTL parameters."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import qonnx_make_model

import finn.custom_op.fpgadataflow as finn_ops
import finn.custom_op.fpgadataflow.rtl as finn_rtl_ops
from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
from finn.util.resource_models import _bram18_plan
from winoforge.hw import winograd_op as wo
from winoforge.hw.srbs_codegen import PARAMS_FILE, weight_files
from winoforge.hw.srbs_estimates import _rtl_parameters, memories
from winoforge.hw.srbs_folding import choose_folding, foldings
from winoforge.hw.srbs_params import ATTRS, DOMAIN, WinogradSRBSParams, allowed_simd, check_weights, pe_steps, pos_steps
from winoforge.hw.srbs_ranges import datatype_output_range, exact_output_range, smallest_datatype
from winoforge.winograd import WinogradSpec, srbs_mask, winograd_conv2d

PART = "xc7z020clg400-1"
INPUT_TYPES = ["BINARY", "UINT2", "UINT4", "INT2", "INT3", "INT4", "TERNARY"]
WEIGHT_TYPES = ["INT2", "INT4", "INT6", "UINT3", "TERNARY"]


# --------------------------------------------------------------------------- helpers


def random_codes(rng, dt_name: str, shape) -> np.ndarray:
    dt = DataType[dt_name]
    return rng.integers(int(dt.min()), int(dt.max()) + 1, size=shape)


def reference(x_nhwc: np.ndarray, U: np.ndarray, m: int, padding: int) -> np.ndarray:
    """winograd_conv2d on int64, NHWC in and out."""
    y = winograd_conv2d(x_nhwc.astype(np.int64).transpose(0, 3, 1, 2), U.astype(np.int64), m, padding)
    return y.transpose(0, 2, 3, 1)


def build_model(U, *, rtl=False, with_weights=True, **kw) -> ModelWrapper:
    """A one-node graph x -> WinogradSRBS(x, U) -> y with annotated datatypes."""
    kw.setdefault("input_datatype", "UINT4")
    kw.setdefault("weight_datatype", "INT4")
    batch = kw.get("batch_size", 1)
    h, w = kw["ifm_dim"]
    node = wo.make_winograd_srbs_node(
        "x", "U", "y", weights=U if with_weights else None, rtl=rtl, name="wino0", **kw
    )
    graph = helper.make_graph(
        [node],
        "winograd_srbs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, h, w, kw["ifm_channels"]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_initializer("U", np.asarray(U, dtype=np.float32))
    model.set_tensor_datatype("x", DataType[kw["input_datatype"]])
    model.set_tensor_datatype("U", DataType[kw["weight_datatype"]])
    return model.transform(InferShapes()).transform(InferDataTypes())


def node_of(model: ModelWrapper):
    return getCustomOp(model.graph.node[0])


@st.composite
def layer_case(draw):
    """Random layer: shapes, paddings, m, SRBS (SubRow, Keep), folding (POS, PE, SIMD), datatypes."""
    m = draw(st.sampled_from([2, 4]))
    sub_row = draw(st.sampled_from([0, 1, 2, 3, 4]))
    keep = draw(st.integers(1, sub_row)) if sub_row else 0
    cin = draw(st.integers(1, 3)) * sub_row if sub_row else draw(st.integers(1, 5))
    cout = draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    padding = max(draw(st.integers(0, 2)), math.ceil((3 - min(h, w)) / 2))
    simd = draw(st.sampled_from([d for d in range(1, cin + 1) if cin % d == 0 and (not sub_row or d % sub_row == 0)]))
    pe = draw(st.integers(1, cout))  # a PE not dividing Cout pads the last output fold
    pos = draw(st.sampled_from([d for d in range(1, (m + 2) ** 2 + 1) if (m + 2) ** 2 % d == 0]))
    idt, wdt = draw(st.sampled_from(INPUT_TYPES)), draw(st.sampled_from(WEIGHT_TYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t = m + 2
    U = random_codes(rng, wdt, (cout, cin, t, t))
    if sub_row:
        U = U * srbs_mask(U, sub_row, keep)
    params = dict(
        m=m, ifm_channels=cin, ofm_channels=cout, ifm_dim=(h, w), padding=padding, sub_row=sub_row,
        keep=keep, pe=pe, simd=simd, pos=pos, input_datatype=idt, weight_datatype=wdt,
        batch_size=draw(st.integers(1, 2)),
    )
    return params, U, rng


# --------------------------------------------------------------------------- registration and execution


def test_both_ops_are_registered_with_finn():
    assert finn_ops.custom_op["WinogradSRBS"] is wo.WinogradSRBS
    assert finn_rtl_ops.custom_op["WinogradSRBS_rtl"] is wo.WinogradSRBS_rtl
    assert issubclass(wo.WinogradSRBS_rtl, wo.WinogradSRBS)


@given(layer_case(), st.booleans())
def test_python_execution_is_bit_exact(case, rtl):
    params, U, rng = case
    model = build_model(U, rtl=rtl, **params)
    h, w = params["ifm_dim"]
    x = random_codes(rng, params["input_datatype"], (params["batch_size"], h, w, params["ifm_channels"]))
    y = execute_onnx(model, {"x": x.astype(np.float32)})["y"]
    expect = reference(x, U, params["m"], params["padding"])
    assert y.dtype == np.float32
    assert list(y.shape) == model.get_tensor_shape("y") == list(expect.shape)
    assert np.array_equal(y, expect)


def test_specialize_layers_makes_the_rtl_variant_which_still_executes():
    rng = np.random.default_rng(1)
    U = random_codes(rng, "INT4", (8, 16, 4, 4))
    U = U * srbs_mask(U, 8, 2)
    kw = dict(m=2, ifm_channels=16, ofm_channels=8, ifm_dim=(6, 5), sub_row=8, keep=2, pe=4, simd=8)
    model = build_model(U, **kw)
    x = random_codes(rng, "UINT4", (1, 6, 5, 16)).astype(np.float32)
    before = execute_onnx(model, {"x": x})["y"]
    model = model.transform(SpecializeLayers(PART))
    node = model.graph.node[0]
    assert (node.op_type, node.domain) == ("WinogradSRBS_rtl", "finn.custom_op.fpgadataflow.rtl")
    assert isinstance(getCustomOp(node), wo.WinogradSRBS_rtl)
    getCustomOp(node).set_nodeattr("exec_mode", "python")
    after = execute_onnx(model, {"x": x})["y"]
    assert np.array_equal(before, after)
    assert np.array_equal(after, reference(x, U, 2, 1))


def test_rtl_node_with_parallel_positions_executes_bit_exactly():
    # the folding (here POS = 8 of 16, PE = 2, SIMD = 4) does not change what the node computes
    rng = np.random.default_rng(11)
    U = random_codes(rng, "INT4", (6, 8, 4, 4))
    U = U * srbs_mask(U, 4, 2)
    kw = dict(m=2, ifm_channels=8, ofm_channels=6, ifm_dim=(7, 6), sub_row=4, keep=2, pe=2, simd=4, pos=8,
              batch_size=2)
    model = build_model(U, rtl=True, **kw)
    node = model.graph.node[0]
    assert (node.op_type, node.domain) == ("WinogradSRBS_rtl", "finn.custom_op.fpgadataflow.rtl")
    inst = node_of(model)
    assert inst.get_nodeattr("POS") == 8 and inst.multipliers() == 8 * 2 * 2
    inst.set_nodeattr("exec_mode", "python")
    x = random_codes(rng, "UINT4", (2, 7, 6, 8))
    y = execute_onnx(model, {"x": x.astype(np.float32)})["y"]
    assert np.array_equal(y, reference(x, U, 2, 1))


def test_rtlsim_is_not_available_yet():
    U = np.ones((2, 2, 4, 4))
    model = build_model(U, m=2, ifm_channels=2, ofm_channels=2, ifm_dim=(4, 4), rtl=True)
    inst = node_of(model)
    inst.set_nodeattr("exec_mode", "rtlsim")
    with pytest.raises(NotImplementedError, match="rtlsim"):
        inst.execute_node({"x": np.zeros((1, 4, 4, 2), np.float32), "U": U.astype(np.float32)}, model.graph)


def test_shapes_and_stream_widths():
    U = np.zeros((8, 12, 6, 6))
    model = build_model(
        U, m=4, ifm_channels=12, ofm_channels=8, ifm_dim=(9, 7), padding=2, sub_row=3, keep=1, pe=2, simd=6,
        batch_size=3, input_datatype="INT3", weight_datatype="INT4", output_datatype="INT12",
    )
    inst = node_of(model)
    assert inst.get_normal_input_shape() == (3, 9, 7, 12)
    assert inst.get_folded_input_shape() == (3, 9, 7, 2, 6)
    assert inst.get_normal_output_shape() == (3, 11, 9, 8)
    assert inst.get_folded_output_shape() == (3, 11, 9, 4, 2)
    assert inst.get_normal_input_shape(1) == (8, 12, 6, 6)
    assert inst.get_instream_width() == 6 * 3 and inst.get_instream_width(1) == 0
    assert inst.get_outstream_width() == 2 * 12
    assert inst.get_number_output_values() == 3 * 11 * 9 * 4
    assert model.get_tensor_shape("y") == [3, 11, 9, 8]
    inst.verify_node()


def test_narrow_input_side_folds_the_input_stream():
    """ISIMD: the input stream carries ISIMD channels a beat (SIMD/ISIMD sub-folds an input fold);
    ISIMD = SIMD is the layer of ISIMD 0, estimates and all; the error names the allowed values."""
    kw = dict(m=2, ifm_channels=16, ofm_channels=8, ifm_dim=(6, 7), padding=1, sub_row=4, keep=1, pe=2, simd=8,
              pos=2, input_datatype="UINT4", weight_datatype="INT4", output_datatype="INT16")
    inst = getCustomOp(wo.make_winograd_srbs_node("x", "U", "y", **kw, isimd=2))
    assert inst.get_folded_input_shape() == (1, 6, 7, 8, 2) and inst.get_instream_width() == 2 * 4
    wide = WinogradSRBSParams(**kw)
    assert wide.replace(isimd=8).cycles() == wide.cycles()
    assert wide.replace(isimd=8).estimate_resources(PART).lut == wide.estimate_resources(PART).lut
    with pytest.raises(ValueError, match=r"attribute ISIMD=3 is not allowed: must be 0 \(the input side as wide as "
                                         r"SIMD\) or divide SIMD=8 \(allowed: 0, 1, 2, 4, 8\)"):
        inst.set_nodeattr("ISIMD", 3)
    assert inst.get_nodeattr("ISIMD") == 2


def test_output_stream_widens_only_when_parallel_positions_need_it():
    # 28x28x1 -> 64, F(2,3): at POS = 16 one output fold of a tile (2x2 pixels x PE channels) is
    # finished every cycle, so PE = 16 channels per beat cannot keep up; a whole pixel (64) can
    kw = dict(m=2, ifm_channels=1, ofm_channels=64, ifm_dim=(28, 28), pe=16, input_datatype="UINT8",
              weight_datatype="INT4", output_datatype="INT16")
    node = wo.make_winograd_srbs_node("x", "U", "y", **kw, pos=16)
    inst = getCustomOp(node)
    assert inst.params().out_stream_elems == 64
    assert inst.get_outstream_width() == 64 * 16 and inst.get_instream_width() == 8
    assert inst.get_folded_output_shape() == (1, 28, 28, 1, 64)
    assert inst.get_number_output_values() == 28 * 28
    assert inst.get_folded_input_shape() == (1, 28, 28, 1, 1)
    assert inst.get_folded_input_shape(1) == (4, 16, 16, 1)  # (bank depth, POS banks, PE, lanes)
    for pos in (1, 2, 4):  # need 4 * POS channels per beat: PE = 16 suffices up to POS = 4
        p = inst.params().replace(pos=pos)
        assert p.out_stream_elems == 16 and p.cycles().stall == 0
    assert inst.params().replace(pos=8).out_stream_elems == 32


# --------------------------------------------------------------------------- attribute validation

GOOD = dict(
    m=2, ifm_channels=16, ofm_channels=16, ifm_dim=(8, 8), padding=1, sub_row=4, keep=2, pe=4, simd=8,
    input_datatype="UINT4", weight_datatype="INT4", output_datatype="INT16", batch_size=1,
    res_type="auto", ram_style="auto",
)
BAD = [
    ("m", dict(m=3)),
    ("m", dict(m=6)),
    ("IFMChannels", dict(ifm_channels=0)),
    ("OFMChannels", dict(ofm_channels=0)),
    ("IFMDim", dict(ifm_dim=(0, 8))),
    ("IFMDim", dict(ifm_dim=(8, 8, 8))),
    ("Padding", dict(padding=-1)),
    ("Padding", dict(ifm_dim=(1, 8), padding=0)),
    ("SubRow", dict(sub_row=3)),
    ("Keep", dict(keep=5)),
    ("Keep", dict(keep=0)),
    ("Keep", dict(sub_row=0, keep=1)),
    ("PE", dict(pe=17)),
    ("PE", dict(pe=0)),
    ("SIMD", dict(simd=2)),
    ("SIMD", dict(simd=32)),
    ("POS", dict(pos=17)),
    ("POS", dict(pos=0)),
    ("POS", dict(pos=32)),
    ("POS", dict(m=4, pos=37)),
    ("inputDataType", dict(input_datatype="FLOAT32")),
    ("inputDataType", dict(input_datatype="BIPOLAR")),
    ("inputDataType", dict(input_datatype="INT32")),
    ("inputDataType", dict(input_datatype="NOTATYPE")),
    ("weightDataType", dict(weight_datatype="FIXED<8,4>")),
    ("outputDataType", dict(output_datatype="FLOAT32")),
    ("batchSize", dict(batch_size=0)),
    ("resType", dict(res_type="fabric")),
    ("ram_style", dict(ram_style="flash")),
    ("ram_style", dict(ram_style="ultra")),  # UltraRAM has no bitstream contents: runtime weights only
    ("runtime_writeable_weights", dict(runtime_weights=2)),
    ("ISIMD", dict(isimd=3)),  # must divide SIMD = 8
    ("ISIMD", dict(isimd=16)),
    ("ISIMD", dict(isimd=-1)),
]


@pytest.mark.parametrize("attr, change", BAD, ids=[f"{a}-{i}" for i, (a, _) in enumerate(BAD)])
def test_bad_attribute_is_named_by_the_factory(attr, change):
    with pytest.raises(ValueError, match=rf"attribute {attr}=.* is not allowed"):
        wo.make_winograd_srbs_node("x", "U", "y", **{**GOOD, **change})


@pytest.mark.parametrize("attr, change", BAD, ids=[f"{a}-{i}" for i, (a, _) in enumerate(BAD)])
def test_bad_attribute_is_named_when_the_op_is_created(attr, change):
    # a node built without the factory: FINN's registry must refuse to wrap it
    attrs = WinogradSRBSParams(**GOOD).to_attributes()
    values = {**GOOD, **change}
    for key, (field, _, _, _) in ATTRS.items():
        if field in change:
            value = values[field]
            attrs[key] = list(value) if isinstance(value, tuple) else value
    node = helper.make_node("WinogradSRBS", ["x", "U"], ["y"], domain=DOMAIN, backend="fpgadataflow", **attrs)
    with pytest.raises(ValueError, match=rf"attribute {attr}=.* is not allowed"):
        getCustomOp(node)


def test_error_message_names_value_reason_and_allowed_values():
    message = ("WinogradSRBS attribute PE=17 is not allowed: must be at most OFMChannels=16 (a PE that does not "
               "divide it pads the last output fold) (allowed: 1..16)")
    with pytest.raises(ValueError, match=re.escape(message)):
        wo.make_winograd_srbs_node("x", "U", "y", **{**GOOD, "pe": 17})


def test_bad_pos_names_the_winograd_positions():
    message = ("WinogradSRBS attribute POS=17 is not allowed: must be at most the t*t=16 Winograd positions of "
               "F(2x2,3x3) (a POS that does not divide them leaves lanes of the last position group idle) "
               "(allowed: 1..16)")
    with pytest.raises(ValueError, match=re.escape(message)):
        wo.make_winograd_srbs_node("x", "U", "y", **{**GOOD, "pos": 17})
    with pytest.raises(ValueError, match=re.escape("allowed: 1..36")):
        wo.make_winograd_srbs_node("x", "U", "y", **{**GOOD, "m": 4, "pos": 37})
    # a POS that does not divide t^2: ceil(t^2 / POS) groups, the last one padded
    p = WinogradSRBSParams(**{**GOOD, "pos": 6})
    assert (p.position_groups, p.padded_positions) == (3, 18)
    assert p.weight_memory_depth == 3 * p.output_folds * (p.ifm_channels // p.simd)
    assert pos_steps(16) == [1, 2, 3, 4, 6, 8, 16] and pos_steps(36) == [1, 2, 3, 4, 5, 6, 8, 9, 12, 18, 36]
    with pytest.raises(ValueError, match="attribute POS=True is not allowed: must be an integer"):
        WinogradSRBSParams(**{**GOOD, "pos": True})


def test_pos_round_trips_through_attributes_and_the_node():
    params = WinogradSRBSParams(**{**GOOD, "pos": 4})
    attrs = params.to_attributes()
    assert attrs["POS"] == 4
    assert WinogradSRBSParams.from_attributes(attrs) == params
    defaults = {k: v for k, v in attrs.items() if k != "POS"}
    assert WinogradSRBSParams.from_attributes(defaults).pos == 1  # optional, default 1
    inst = getCustomOp(wo.make_winograd_srbs_node("x", "U", "y", **GOOD, pos=4))
    assert inst.get_nodeattr("POS") == 4 and inst.params() == params
    assert getCustomOp(wo.make_winograd_srbs_node("x", "U", "y", **GOOD)).get_nodeattr("POS") == 1
    with pytest.raises(ValueError, match="attribute POS=17 is not allowed"):
        inst.set_nodeattr("POS", 17)
    assert inst.get_nodeattr("POS") == 4
    inst.set_nodeattr("POS", 16)
    assert inst.params().pos == 16 and inst.multipliers() == 16 * 4 * 4


def test_missing_required_attribute_is_named():
    node = helper.make_node("WinogradSRBS", ["x", "U"], ["y"], domain=DOMAIN, backend="fpgadataflow", m=2)
    with pytest.raises(ValueError, match="IFMChannels is missing"):
        getCustomOp(node)


def test_set_nodeattr_refuses_a_bad_value_and_keeps_the_old_one():
    inst = getCustomOp(wo.make_winograd_srbs_node("x", "U", "y", **GOOD))
    with pytest.raises(ValueError, match="attribute SIMD=2 is not allowed"):
        inst.set_nodeattr("SIMD", 2)
    assert inst.get_nodeattr("SIMD") == 8
    with pytest.raises(ValueError, match="attribute exec_mode='cppsim' is not allowed"):
        inst.set_nodeattr("exec_mode", "cppsim")
    assert inst.get_nodeattr("exec_mode") == ""
    inst.set_nodeattr("SIMD", 16)
    assert inst.get_nodeattr("SIMD") == 16
    with pytest.raises(ValueError, match="attribute inputDataType=BIPOLAR"):
        inst.set_nodeattr("inputDataType", "BIPOLAR")
    inst.verify_node()


# --------------------------------------------------------------------------- weight and input validation

SMALL = dict(m=2, ifm_channels=8, ofm_channels=2, ifm_dim=(4, 4), sub_row=4, keep=2, simd=4)


def _small_weights():
    U = np.zeros((2, 8, 4, 4))
    U[:, 0] = 1
    U[:, 5] = -2
    return U


def test_weight_shape_is_checked():
    with pytest.raises(ValueError, match=r"shape .*\(2, 8, 4, 4\)"):
        wo.make_winograd_srbs_node("x", "U", "y", weights=np.zeros((2, 8, 3, 3)), **SMALL, input_datatype="UINT4",
                                   weight_datatype="INT4")


def test_non_integer_weight_is_named_with_its_position():
    U = _small_weights()
    U[1, 2, 3, 0] = 0.5
    with pytest.raises(ValueError, match=r"integers; found 0\.5 at \(o, c, a, b\) = \(1, 2, 3, 0\)"):
        check_weights(U, WinogradSRBSParams(**SMALL, input_datatype="UINT4", weight_datatype="INT4",
                                                  output_datatype="INT16"))


def test_weight_outside_its_datatype_is_named():
    U = _small_weights()
    U[0, 5, 1, 2] = 8
    match = r"weight 8\.0 at \(o, c, a, b\) = \(0, 5, 1, 2\) is outside weightDataType=INT4"
    with pytest.raises(ValueError, match=match):
        wo.make_winograd_srbs_node("x", "U", "y", weights=U, **SMALL, input_datatype="UINT4", weight_datatype="INT4")


def test_srbs_violation_names_the_first_sub_row():
    U = _small_weights()
    U[1, 6, 2, 3] = 3  # sub-row 4..7 of output 1 at position (2, 3) now holds channels 5 and 6
    match = r"output channel 1, input channels 4\.\.7, Winograd position \(a, b\) = \(2, 3\) hold 2"
    with pytest.raises(ValueError, match=match):
        wo.make_winograd_srbs_node("x", "U", "y", weights=U, **{**SMALL, "keep": 1}, input_datatype="UINT4",
                                   weight_datatype="INT4")
    wo.make_winograd_srbs_node("x", "U", "y", weights=U, **SMALL, input_datatype="UINT4", weight_datatype="INT4")


@pytest.mark.parametrize(
    "value, match",
    [
        (0.5, r"integers; found 0\.5 at \(n, h, w, c\) = \(0, 1, 2, 3\)"),
        (16, r"input 16\.0 .* outside inputDataType=UINT4"),
        (-1, r"input -1\.0 .* outside inputDataType=UINT4"),
    ],
)
def test_execution_refuses_inputs_outside_their_datatype(value, match):
    model = build_model(_small_weights(), **SMALL)
    x = np.zeros((1, 4, 4, 8), np.float32)
    x[0, 1, 2, 3] = value
    with pytest.raises(ValueError, match=match):
        node_of(model).execute_node({"x": x, "U": model.get_initializer("U")}, model.graph)


def test_execution_refuses_outputs_a_float32_cannot_hold():
    U = np.zeros((1, 1, 4, 4))
    U[0, 0, 1, 1] = 2**15 - 1
    model = build_model(U, m=2, ifm_channels=1, ofm_channels=1, ifm_dim=(4, 4), input_datatype="INT16",
                        weight_datatype="INT16")
    x = np.full((1, 4, 4, 1), 2**15 - 1, np.float32)
    with pytest.raises(ValueError, match=r"magnitude >= 2\^24"):
        node_of(model).execute_node({"x": x, "U": model.get_initializer("U")}, model.graph)


def test_execution_refuses_outputs_outside_the_output_datatype():
    U = np.ones((1, 1, 4, 4))
    model = build_model(U, m=2, ifm_channels=1, ofm_channels=1, ifm_dim=(4, 4))
    inst = node_of(model)
    inst.set_nodeattr("outputDataType", "INT4")  # too narrow for these weights
    x = np.full((1, 4, 4, 1), 15, np.float32)
    with pytest.raises(ValueError, match="outside outputDataType=INT4"):
        inst.execute_node({"x": x, "U": model.get_initializer("U")}, model.graph)


def test_factory_refuses_an_output_datatype_too_small_for_the_weights():
    with pytest.raises(ValueError, match=r"outputDataType=INT4 .* smallest being INT"):
        wo.make_winograd_srbs_node("x", "U", "y", weights=_small_weights(), **SMALL, input_datatype="UINT4",
                                   weight_datatype="INT4", output_datatype="INT4")


# --------------------------------------------------------------------------- output datatypes


def impulse_coefficients(U, m, padding, h, w, cin):
    """G[(n,y,x,o), (h,w,c)]: the output is linear in the image; read the coefficients
    off unit impulses through winograd_conv2d (independent of the op's tile algebra)."""
    eye = np.eye(h * w * cin, dtype=np.int64).reshape(h * w * cin, h, w, cin)
    y = reference(eye, U, m, padding)  # (h*w*cin, Ho, Wo, Cout)
    return y.reshape(h * w * cin, -1).T  # (outputs, inputs)


@given(layer_case())
def test_output_datatype_is_the_exact_range_and_is_reached(case):
    params, U, rng = case
    params = {**params, "batch_size": 1}
    h, w = params["ifm_dim"]
    cin, m, pad = params["ifm_channels"], params["m"], params["padding"]
    idt = DataType[params["input_datatype"]]
    lo_x, hi_x = int(idt.min()), int(idt.max())
    G = impulse_coefficients(U, m, pad, h, w, cin)
    top = np.where(G > 0, G * hi_x, G * lo_x).sum(axis=1)
    bottom = np.where(G > 0, G * lo_x, G * hi_x).sum(axis=1)
    brute = (min(int(bottom.min()), 0), max(int(top.max()), 0))
    p = WinogradSRBSParams(**params, output_datatype="INT32")
    assert exact_output_range(U, p) == brute
    model = build_model(U, **params)
    inst = node_of(model)
    odt = inst.get_output_datatype()
    assert odt == smallest_datatype(*brute)
    assert model.get_tensor_datatype("y") == odt
    # the bound is reached: the input that maximises (minimises) one output
    for k, sign in ((int(np.argmax(top)), 1), (int(np.argmin(bottom)), -1)):
        x = np.where(sign * G[k] > 0, hi_x, lo_x).reshape(1, h, w, cin).astype(np.float32)
        ctx = {"x": x, "U": model.get_initializer("U")}
        inst.execute_node(ctx, model.graph)
        y = ctx["y"].reshape(-1)
        assert y[k] == (top[k] if sign > 0 else bottom[k])
    # sufficient: random extreme inputs stay inside the datatype
    x = np.where(rng.random((4, h, w, cin)) < 0.5, lo_x, hi_x)
    y = reference(x, U, m, pad)
    assert odt.allowed(y).all()
    # the datatype-only bound contains the exact range
    lo_b, hi_b = datatype_output_range(p)
    assert lo_b <= brute[0] and brute[1] <= hi_b


def test_datatype_bound_holds_when_srbs_channels_differ_per_position():
    # F(2,3), UINT4 x INT4, 9 channels, SubRow 9, Keep 1: each of the 9 positions that
    # reach output (0,0) uses its own channel, so the per-channel joint extreme times
    # cin_eff = 1 (what bit_growth(cin_eff) gives, 1395) is beaten: 2340.
    spec = WinogradSpec(2)
    U = np.zeros((1, 9, 4, 4), np.int64)
    positions = [(a, b) for a in range(4) for b in range(4) if spec.AT[0, a] * spec.AT[0, b]]
    e = spec.AT[:, :, None] * spec.BT[None, :, :]
    for c, (a, b) in enumerate(positions):
        kernel = np.outer(spec.BT[a], spec.BT[b]) * spec.AT[0, a] * spec.AT[0, b]
        up, down = (np.clip(kernel, 0, None) * 15).sum(), (np.clip(kernel, None, 0) * 15).sum()
        U[0, c, a, b] = 7 if 7 * up >= -8 * down else -8
    coef = np.einsum("iak,ocab,jbl->ijockl", e, U, e)[0, 0, 0]
    x = np.where(coef > 0, 15, 0).transpose(1, 2, 0)[None]
    achieved = int(reference(x, U, 2, 0)[0, 0, 0, 0])
    assert achieved == 2340
    p = WinogradSRBSParams(m=2, ifm_channels=9, ofm_channels=1, ifm_dim=(4, 4), padding=0, sub_row=9, keep=1,
                              simd=9, input_datatype="UINT4", weight_datatype="INT4", output_datatype="INT32")
    assert datatype_output_range(p)[1] >= achieved
    assert exact_output_range(U, p)[1] == achieved


def test_minimize_accumulator_width_and_weight_bit_width():
    rng = np.random.default_rng(3)
    U = random_codes(rng, "INT3", (4, 8, 4, 4))
    U = U * srbs_mask(U, 4, 1)
    model = build_model(U, **{**SMALL, "ofm_channels": 4, "keep": 1}, weight_datatype="INT8", output_datatype="INT24")
    inst = node_of(model)
    p = inst.params()
    bound = smallest_datatype(*datatype_output_range(p))
    assert inst.minimize_accumulator_width(model, datatype_only=True) == bound
    exact = smallest_datatype(*exact_output_range(U, p))
    assert inst.minimize_accumulator_width(model) == exact == model.get_tensor_datatype("y")
    assert exact.bitwidth() <= bound.bitwidth()
    assert inst.minimize_weight_bit_width(model).bitwidth() <= 3
    # infer_node_datatype widens the output type when the input type grows
    model.set_tensor_datatype("x", DataType["UINT8"])
    model = model.transform(InferDataTypes())
    inst = node_of(model)
    assert inst.get_input_datatype() == DataType["UINT8"]
    lo, hi = exact_output_range(U, inst.params())
    assert inst.get_output_datatype().allowed(lo) and inst.get_output_datatype().allowed(hi)


def test_internal_widths_follow_bit_growth():
    p = WinogradSRBSParams(**{**GOOD, "output_datatype": "INT11"})
    widths = p.internal_widths()
    assert widths.input_transform_bits == 7  # UINT4 through F(2,3)'s B^T: [-30, 30]
    assert widths.index_bits == 2
    assert widths.datapath_accumulator_bits <= widths.output_bits == 11
    assert widths.datapath_product_bits == min(widths.product_bits, 11)


# --------------------------------------------------------------------------- estimates


@st.composite
def estimate_case(draw):
    m = draw(st.sampled_from([2, 4]))
    sub_row = draw(st.sampled_from([0, 2, 4, 8]))
    keep = draw(st.integers(1, sub_row)) if sub_row else 0
    cin = draw(st.sampled_from([1, 2, 3, 4, 6])) * (sub_row or 8)
    if not sub_row and draw(st.booleans()):
        cin = 1  # a first layer
    cout = draw(st.sampled_from([1, 4, 6, 16, 24, 64]))
    size = draw(st.integers(3, 40))
    pes = pe_steps(cout)  # the divisors and the padded steps between them, as choose_folding searches
    simds = allowed_simd(cin, sub_row)
    poss = sorted({-(-(m + 2) ** 2 // g) for g in range(1, (m + 2) ** 2 + 1)})  # the divisors and padded steps
    base = WinogradSRBSParams(
        m=m, ifm_channels=cin, ofm_channels=cout, ifm_dim=(size, draw(st.integers(3, 40))),
        padding=draw(st.integers(0, 2)), sub_row=sub_row, keep=keep,
        input_datatype=draw(st.sampled_from(["UINT2", "UINT4", "INT4", "UINT8"])),
        weight_datatype=draw(st.sampled_from(["INT2", "INT4", "INT8"])),
        output_datatype=draw(st.sampled_from(["INT12", "INT16", "INT24"])),
        res_type=draw(st.sampled_from(["auto", "lut", "dsp"])),
        ram_style=(style := draw(st.sampled_from(["auto", "block", "distributed", "ultra"]))),
        runtime_weights=int(style == "ultra" or draw(st.booleans())),
        batch_size=draw(st.integers(1, 2)), simd=simds[0],
    )
    folding = dict(pos=draw(st.sampled_from(poss)), pe=draw(st.sampled_from(pes)), simd=draw(st.sampled_from(simds)))
    return base, dict(pos=poss, pe=pes, simd=simds), folding


#: parts whose LUTs fall as POS grows: the weight memory holds the same bits at every folding, and a
#: distributed one costs fewer LUTs the shallower POS makes it (no depth muxes: 8 -> 16 channels at
#: POS 1 reads a 2,048 x 4 ROM, 256 LUT; at POS 16 a 128 x 64 one, 176 LUT); so do its load counter
#: and the V select mux, which POS >= t drops
SHRINK_WITH_POS = ("weight_memory", "weight_load", "v_select")


def _costs(p):
    """Cycles, LUTs but those of :data:`SHRINK_WITH_POS`, DSPs, latency."""
    r = p.estimate_resources(PART)
    shrink = sum(r.breakdown[k].get("LUT", 0) for k in SHRINK_WITH_POS)
    return p.exp_cycles(), r.lut - shrink, r.dsp, p.cycles().latency


@given(estimate_case())
def test_estimates_are_monotone_in_pos_pe_and_simd(case):
    """Cycles and latency never grow, DSPs never fall with POS, PE or SIMD.  The RTL's LUTs are not
    monotone in each step (the estimate counts what the RTL instantiates): at POS >= t each position
    reads its own V bank (no V select mux); where (t^2/POS)*Cin/SIMD < t + m the serial output
    transform and its M-collector shift muxes give way to a smaller parallel 2-D one; at PE = OE the
    output buffer needs no lane rotation; counters narrow -- but with LUT multipliers, where both
    ends keep the same output transform, the most parallel folding of an axis never has fewer LUTs
    (but for :data:`SHRINK_WITH_POS`) than its least parallel one.  (Not where
    the transform changes: Yosys counts 1 -> 6 channels on 3x3, F(2,3), PE 6, DSP multipliers at
    2,006 LUT at POS 1 (serial transform) and 1,678 at POS 16 (parallel).)"""
    base, axes, folding = case
    for axis, values in axes.items():
        layers = [base.replace(**{**folding, axis: v}) for v in values]
        costs = [_costs(p) for p in layers]
        for (c1, l1, d1, t1), (c2, l2, d2, t2) in zip(costs, costs[1:]):
            assert c2 <= c1, f"cycles grew with {axis}"
            assert t2 <= t1, f"latency grew with {axis}"
            assert d2 >= d1, f"DSP fell with {axis}"
        first, last = _rtl_parameters(layers[0]), _rtl_parameters(layers[-1])
        if last["MUL_LUT"] and first["OTF_SERIAL"] == last["OTF_SERIAL"]:  # DSP products: only DSPs need grow
            assert costs[-1][1] >= costs[0][1], f"LUT of the most parallel {axis} below the least parallel"


@given(estimate_case())
def test_cycles_are_at_least_ideal(case):
    base, _, folding = case
    p = base.replace(**folding)
    cycles = p.cycles()
    assert cycles.total >= p.ideal_cycles()
    assert cycles.latency >= cycles.total
    # full SRBS budget: main is ideal, but for the padding channels of the last output fold (PE not dividing Cout)
    # and the idle lanes of the last position group (POS not dividing t^2)
    padding = p.padded_ofm_channels / p.ofm_channels * p.padded_positions / p.t**2
    assert cycles.main * p.batch_size == pytest.approx(p.ideal_cycles() * padding)
    density = p.keep / p.sub_row if p.sub_row else 1
    assert p.multipliers == folding["pos"] * folding["pe"] * folding["simd"] * density
    t2 = p.t**2
    cf = -(-p.ofm_channels // p.pe)
    assert cycles.main == p.tiles_per_frame * -(-t2 // p.pos) * cf * (p.ifm_channels // p.simd)
    if p.pos == 1:  # a tile takes longer than streaming its m x m new pixels in and out
        # PE; where PE pads the last fold, the divisor below it (read across the lanes) if the rate allows, else above
        above = min(d for d in range(p.pe, p.ofm_channels + 1) if p.ofm_channels % d == 0)
        below = max(d for d in range(1, p.pe + 1) if p.ofm_channels % d == 0)
        assert cycles.stall == 0 and p.out_stream_elems in (below, above)
        assert p.out_lanes == (p.out_stream_elems < p.pe)


@given(estimate_case())
def test_a_narrower_input_side_costs_cycles_only_where_it_outpaces_the_pe_array(case):
    """Narrowing the input side (ISIMD below SIMD) never speeds a layer up and never costs LUTs in
    the input side; it costs no cycles where a tile's window reads (``t * Cin/ISIMD``, plus the
    hand-over) fit in its PE work -- the reason the search narrows SRBS layers for free."""
    base, _, folding = case
    p = base.replace(**folding)
    layers = [p.replace(isimd=d) for d in range(1, p.simd + 1) if p.simd % d == 0]
    side = lambda q: sum(q.estimate_resources(PART).breakdown[k]["LUT"]  # noqa: E731
                         for k in ("line_buffer_read", "input_transform"))
    for narrow, wide in zip(layers, layers[1:]):
        assert narrow.exp_cycles() >= wide.exp_cycles()
        assert side(narrow) <= side(wide)
        assert narrow.cycles().main == wide.cycles().main  # the PE array's work is the same
    for q in layers:
        reads = q.tiles_per_frame * q.t * q.in_folds
        if q.cycles().main >= max(reads, q.ifm_dim[0] * q.ifm_dim[1] * q.in_folds) and p.cycles().stall == 0:
            assert q.cycles().stall == 0


@given(estimate_case())
def test_pos_widens_the_weight_rom_and_shortens_it_by_the_groups(case):
    base, _, folding = case
    one = base.replace(**{**folding, "pos": 1})
    p = base.replace(**folding)
    mem = {m.name: m for m in memories(p)}
    mem1 = {m.name: m for m in memories(one)}
    w, w1 = mem["weight_memory"], mem1["weight_memory"]
    # G = ceil(t^2 / POS) lines where POS = 1 has t^2 (the last group's idle lanes padded with zeros)
    groups = p.position_groups
    assert w.depth * p.t**2 == w1.depth * groups
    if p.runtime_weights:  # one RAM of 64-bit columns: G lines for t^2, about POS times the columns
        assert w1.banks <= w.banks <= p.pos * w1.banks
        r = _rtl_parameters(p)
        for ram, layer in ((w, p), (w1, one)):  # a single column holds just the line (the pad bits trimmed)
            line = layer.pos * layer.pe * layer.lanes * (r["W_W"] + (r["IDX_W"] if r["HAS_IDX"] else 0))
            assert ram.width == (64 if ram.banks > 1 else line) and ram.banks == -(-line // 64)
    else:  # one ROM (the RTL's): POS times wider
        assert w.banks == w1.banks == 1 and w.width == p.pos * w1.width
    assert mem["line_buffer"] == mem1["line_buffer"]  # line buffers do not depend on POS
    res = p.estimate_resources(PART).breakdown["weight_memory"]
    if w.style == "block":
        assert res["BRAM_18K"] == w.banks * _bram18_plan(w.depth, w.width, False)[0]
    assert p.op_and_param_counts() == one.op_and_param_counts()  # the folding does not change the work


def test_realistic_layer_is_within_ten_percent_of_ideal():
    # 32x32x64 -> 64, F(2,3), PE=8, SIMD=16, keep 2 of 8: 32 multipliers.
    p = WinogradSRBSParams(m=2, ifm_channels=64, ofm_channels=64, ifm_dim=(32, 32), sub_row=8, keep=2, pe=8,
                              simd=16, input_datatype="UINT4", weight_datatype="INT4", output_datatype="INT16")
    assert p.multipliers == 32
    cycles = p.cycles()
    ideal = p.ideal_cycles()
    assert ideal == cycles.main == 16 * 16 * 16 * 8 * 4
    # once per invocation (latency, overlapped by the neighbouring frames in steady state): streaming
    # in the first tile band (3 rows), streaming out the last band's second row after its last tile,
    # and the pipeline
    assert cycles.fill == 3 * 32 * 4 and cycles.drain == (2 + 32) * 8
    assert cycles.stall == cycles.refill == 0  # the next frame's 3 rows fit beside the last band's 3
    assert cycles.total / ideal <= 1.1 and cycles.latency / ideal <= 1.1
    r = p.estimate_resources(PART)
    assert r.dsp == 32 and r.lut > 0 and r.bram18 > 0
    # four positions in parallel: 4x the multipliers, a quarter of the cycles
    p4 = p.replace(pos=4)
    c4 = p4.cycles()
    assert p4.multipliers == 128 and c4.main == p4.ideal_cycles() == ideal / 4
    assert c4.total / p4.ideal_cycles() <= 1.1 and c4.latency / p4.ideal_cycles() <= 1.1
    assert p4.out_stream_elems == 8 and p4.weight_memory_depth == p.weight_memory_depth // 4
    r4 = p4.estimate_resources(PART)
    w, w4 = r.breakdown["weight_memory"], r4.breakdown["weight_memory"]
    assert r4.dsp == 128 and w4["width"] == 4 * w["width"] and w4["depth"] * 4 == w["depth"]
    assert r4.ff > r.ff > 0


def test_first_layer_reaches_ideal_with_parallel_positions():
    # 28x28x1 -> 64, F(2,3): at POS = 1 even PE = 64 needs 196 tiles * 16 positions = 3136 cycles;
    # POS = 16, PE = 16 (256 multipliers) needs 784 -- one input pixel per cycle, the input stream's rate
    base = WinogradSRBSParams(m=2, ifm_channels=1, ofm_channels=64, ifm_dim=(28, 28), input_datatype="UINT8",
                                 weight_datatype="INT4", output_datatype="INT16")
    assert base.replace(pe=64).exp_cycles() == 3136
    p = base.replace(pos=16, pe=16)
    c = p.cycles()
    assert p.multipliers == 256 and c.main == p.ideal_cycles() == 196 * 4 == 28 * 28
    assert c.stall == 0 and c.refill == 0  # input (784 beats), window reads (784) and output keep up
    assert c.total / p.ideal_cycles() <= 1.1
    assert c.fill == 3 * 28 and c.drain == 2 + 28  # a whole pixel per output beat
    assert c.latency == c.fill + c.main + c.drain + c.pipeline  # single frame: ~1.16x ideal
    # more multipliers than the input stream can feed only stall: 1024 multipliers, same cycles
    full = base.replace(pos=16, pe=64)
    assert full.cycles().main == 196 and full.exp_cycles() == 784 == full.cycles().main + full.cycles().stall
    assert choose_folding(base, 784, PART).multipliers == 256


def test_ideal_cycles_count_the_actual_non_zeros():
    rng = np.random.default_rng(5)
    U = random_codes(rng, "INT4", (2, 8, 4, 4))
    U = U * srbs_mask(U, 4, 2)
    U[0] = 0
    model = build_model(U, **SMALL)
    inst = node_of(model)
    assert inst.ideal_cycles(model) == pytest.approx(inst.ideal_cycles() / 2, rel=0.2)
    assert inst.get_exp_cycles() >= inst.ideal_cycles()
    counts = inst.get_op_and_param_counts()
    assert counts["param_weight_4b"] == 16 * 2 * 4 and counts["param_index_2b"] == 16 * 2 * 4
    res = inst.node_res_estimation(PART)
    assert set(res) == {"BRAM_18K", "BRAM_efficiency", "LUT", "URAM", "URAM_efficiency", "DSP", "FF"}
    assert res["FF"] == inst.ff_estimation(PART) > 0


# --------------------------------------------------------------------------- folding


def _foldings(base, axes):
    for pos in axes["pos"]:
        for pe in axes["pe"]:
            for simd in axes["simd"]:
                for isimd in (d for d in range(1, simd + 1) if simd % d == 0):  # the input side: ISIMD | SIMD
                    yield base.replace(pos=pos, pe=pe, simd=simd, isimd=isimd)


@given(estimate_case(), st.floats(0.0, 1.0))
def test_choose_folding_meets_the_target_at_the_least_estimated_cost(case, where):
    base, axes, _ = case
    slowest = base.replace(pos=1, pe=1, simd=axes["simd"][0]).exp_cycles()
    fastest = base.replace(pos=axes["pos"][-1], pe=axes["pe"][-1], simd=axes["simd"][-1]).exp_cycles()
    target = int(fastest + where * (slowest - fastest))
    chosen = choose_folding(base, target, PART)
    assert chosen.exp_cycles() <= target
    # the search space: every (POS, PE, SIMD, ISIMD) of the axes, PE over the padded steps too
    space = list(_foldings(base, axes))
    fold = lambda p: (p.pos, p.pe, p.simd, p.in_simd)  # noqa: E731
    assert {fold(p) for p in space} == {fold(p) for p in foldings(base)}

    # cost: fewest DSPs, fewest LUTs, fewest RAMB18s, fewer cycles, then larger SIMD, larger PE, smaller POS,
    # the wider input side
    def key(p):
        r = p.estimate_resources(PART)
        return r.dsp, r.lut, r.bram18, p.exp_cycles(), -p.simd, -p.pe, p.pos, -p.in_simd

    meets = [p for p in space if p.exp_cycles() <= target]
    div = [key(p) for p in meets if p.t**2 % p.pos == 0]
    pad = [key(p) for p in meets if p.t**2 % p.pos]
    # a padded POS only where it beats the best divisor of t^2 with no more DSPs and RAMB18s
    if div and pad and min(pad) < min(div) and min(pad)[0] <= min(div)[0] and min(pad)[2] <= min(div)[2]:
        assert key(chosen) == min(pad)
    else:
        assert key(chosen) == min(div or pad)


def test_choose_folding_weighs_lut_not_multipliers():
    """With the padded PE steps the fewest multipliers is no longer the cheapest: 64 -> 64 on 7x7
    at 11,048 cycles, (POS, PE, SIMD) = (1, 13, 8) has 26 multipliers but 13 output transforms and M
    collectors; the search takes 32 multipliers at PE 1 at under half the LUTs -- (4, 1, 32)
    with an input side of 2 channels (ISIMD), which the tile's 8 x 8 x 2 cycles of PE work leave
    time for, cheaper than (16, 1, 8) with its 8-channel input side and 16 V banks.  Where 32 ->
    32 channels need 2.9x the speed of PE 4, PE 3 (11 folds, one padding channel) is what it takes."""
    base = WinogradSRBSParams(m=2, ifm_channels=64, ofm_channels=64, ifm_dim=(7, 7), input_datatype="UINT4",
                              weight_datatype="INT4", output_datatype="INT16", sub_row=8, keep=2, simd=8,
                              res_type="lut")
    chosen = choose_folding(base, 11048, PART)
    few = base.replace(pos=1, pe=13, simd=8)
    assert few.exp_cycles() <= 11048 and few.multipliers < chosen.multipliers
    assert (chosen.pos, chosen.pe, chosen.simd, chosen.in_simd) == (4, 1, 32, 2)
    assert 2 * chosen.estimate_resources(PART).lut < few.estimate_resources(PART).lut
    wide = base.replace(pos=16, pe=1, simd=8)
    assert wide.exp_cycles() == chosen.exp_cycles() and wide.multipliers == chosen.multipliers
    assert chosen.estimate_resources(PART).lut < wide.estimate_resources(PART).lut
    dense = base.replace(ifm_channels=32, ofm_channels=32, ifm_dim=(28, 28), sub_row=4, keep=1, pos=16, pe=4)
    padded = choose_folding(dense, dense.replace(pe=3).exp_cycles(), PART)
    assert padded.pe == 3 and padded.output_folds == 11 and padded.padded_ofm_channels == 33


def test_choose_folding_uses_positions_when_channels_run_out():
    # first layer, 28x28x1 -> 64: SIMD is 1 and PE at most 64, so 784 cycles need POS > 1
    base = WinogradSRBSParams(m=2, ifm_channels=1, ofm_channels=64, ifm_dim=(28, 28), input_datatype="UINT8",
                                 weight_datatype="INT4", output_datatype="INT16")
    # 3136 is reachable at POS = 1 (PE = 64), but at 64 multipliers (POS, PE) = (16, 4) is cheaper in
    # the RTL: one output transform (and M collector) per PE, 4 instead of 64, each busy every cycle
    at_3136 = choose_folding(base, 3136, PART)
    assert at_3136.multipliers == 64 and (at_3136.pos, at_3136.pe) == (16, 4)
    assert at_3136.estimate_resources(PART).lut < base.replace(pe=64).estimate_resources(PART).lut
    chosen = choose_folding(base, 784, PART)
    assert chosen.pos > 1 and chosen.multipliers == 256 and chosen.exp_cycles() == 784
    with pytest.raises(ValueError, match=r"target_cycles=783; even full parallelism \(POS=16, PE=64, SIMD=1\) "
                                         r"needs 784 cycles"):
        choose_folding(base, 783, PART)


def test_choose_folding_sets_the_node_and_fails_clearly():
    inst = getCustomOp(wo.make_winograd_srbs_node("x", "U", "y", **GOOD))
    full = inst.params().replace(pos=16, pe=16, simd=16).exp_cycles()
    match = rf"no folding reaches target_cycles={full - 1}.*\(POS=16, PE=16, SIMD=16\) needs {full} cycles"
    with pytest.raises(ValueError, match=match):
        inst.choose_folding(full - 1, PART)
    with pytest.raises(ValueError, match="positive integer"):
        inst.choose_folding(0)
    pe, simd, pos = inst.choose_folding(full, PART)
    assert (pe, simd, pos) == (inst.get_nodeattr("PE"), inst.get_nodeattr("SIMD"), inst.get_nodeattr("POS"))
    assert inst.get_exp_cycles() <= full
    # the cheapest folding reaching full parallelism's cycles (input-bound: 8x8 pixels, one per cycle)
    assert inst.multipliers() < 16 * 16 * 16 // 2
    pe, simd, pos = inst.choose_folding(10**9, PART)
    assert (pe, simd, pos) == (1, 4, 1)  # the slowest folding (SIMD >= SubRow = 4)


# --------------------------------------------------------------------------- RTL parameters


def _read_memh(path, entries, bits, signed):
    """Decode $readmemh words: entry 0 in the least significant bits."""
    words = [int(line, 16) for line in path.read_text().split()]
    out = np.array([[(w >> (e * bits)) & ((1 << bits) - 1) for e in range(entries)] for w in words], np.int64)
    if signed:
        out = np.where(out >= 1 << (bits - 1), out - (1 << bits), out)
    return out


@pytest.mark.parametrize(
    "sub_row, keep, wdt, pos",
    [(4, 2, "INT4", 1), (0, 0, "UINT3", 1), (8, 3, "INT5", 1), (4, 2, "INT4", 4), (0, 0, "UINT3", 16),
     (8, 3, "INT5", 2)],
)
def test_generate_hdl_writes_the_packed_weights_and_parameters(tmp_path, sub_row, keep, wdt, pos):
    rng = np.random.default_rng(7)
    cin, cout, pe, simd = 16, 6, 3, 8
    U = random_codes(rng, wdt, (cout, cin, 4, 4))
    if sub_row:
        U = U * srbs_mask(U, sub_row, keep)
    model = build_model(U, m=2, ifm_channels=cin, ofm_channels=cout, ifm_dim=(5, 5), sub_row=sub_row, keep=keep,
                        pe=pe, simd=simd, pos=pos, weight_datatype=wdt, rtl=True)
    inst = node_of(model)
    inst.set_nodeattr("code_gen_dir_ipgen", str(tmp_path))
    inst.code_generation_ipgen(model, PART, 10.0)  # what FINN's PrepareIP calls
    doc = json.loads((tmp_path / PARAMS_FILE).read_text())
    assert doc["version"] == 2
    assert doc["attributes"]["PE"] == pe and doc["attributes"]["weightDataType"] == wdt
    assert doc["attributes"]["POS"] == pos == doc["derived"]["pos"]
    assert doc["derived"]["multipliers"] == inst.multipliers()
    assert doc["derived"]["cycles"]["total"] == inst.get_exp_cycles()
    assert doc["derived"]["outstream_width"] == inst.get_outstream_width()
    lanes = simd * keep // sub_row if sub_row else simd
    bits = DataType[wdt].bitwidth()
    values_file, indices_file = weight_files(inst.onnx_node.name)
    values = _read_memh(tmp_path / values_file, pos * pe * lanes, bits, DataType[wdt].signed())
    groups = 16 // pos
    depth = groups * (cout // pe) * (cin // simd)
    memory = doc["weight_memory"]
    assert values.shape == (depth, pos * pe * lanes) == (memory["bank_depth"], memory["entries_per_word"])
    assert (memory["banks"], memory["entries_per_bank_word"]) == (pos, pe * lanes)
    L, K = (sub_row, keep) if sub_row else (1, 1)
    if sub_row:
        idx = _read_memh(tmp_path / indices_file, pos * pe * lanes, doc["weight_memory"]["index_bits"], False)
    else:
        assert not (tmp_path / indices_file).exists()
        idx = np.zeros_like(values)
    # rebuild U from the words: line (cout fold, position group, cin fold) x bank j x (pe, sub-row, kept entry),
    # bank j holding Winograd position xi = group * POS + j
    rebuilt = np.zeros((cout, cin, 4, 4), np.int64)
    for word, (f, g, s) in enumerate(np.ndindex(cout // pe, groups, cin // simd)):
        for e in range(pos * pe * lanes):
            j, rest = divmod(e, pe * lanes)
            p, sub, k = rest // lanes, (rest % lanes) // K, rest % K
            xi = g * pos + j
            channel = s * simd + sub * L + idx[word, e]
            rebuilt[f * pe + p, channel, xi // 4, xi % 4] += values[word, e]
    assert np.array_equal(rebuilt, U)


def test_prepare_ip_runs_the_code_generation(tmp_path, monkeypatch):
    import finn.util.settings
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP

    # FINN's settings come from FINN_BUILD_DIR; keep them away from ~/.finn and
    # restore the global afterwards
    monkeypatch.setenv("FINN_BUILD_DIR", str(tmp_path))
    monkeypatch.setenv("FINN_SETTINGS", str(tmp_path / "no-settings.yaml"))
    monkeypatch.setattr(finn.util.settings, "_SETTINGS", None)
    U = np.ones((4, 8, 4, 4))
    U[:, 1::2] = 0
    model = build_model(U, m=2, ifm_channels=8, ofm_channels=4, ifm_dim=(4, 4), sub_row=2, keep=1, pe=2, simd=4)
    model = model.transform(SpecializeLayers(PART)).transform(PrepareIP(PART, 10.0))
    code_gen_dir = node_of(model).get_nodeattr("code_gen_dir_ipgen")
    assert code_gen_dir.startswith(str(tmp_path))
    inst = node_of(model)
    for name in (*weight_files(inst.onnx_node.name), PARAMS_FILE):
        assert (tmp_path / code_gen_dir / name).is_file()
    top = inst.get_nodeattr("gen_top_module")
    assert top == inst.onnx_node.name and (tmp_path / code_gen_dir / f"{top}.sv").is_file()
    tcl = inst.code_generation_ipi()
    assert tcl[-1] == f"create_bd_cell -type module -reference {top} {inst.onnx_node.name}"
    assert all(Path(line.split()[-1]).is_file() for line in tcl[:-1])


def test_runtime_weights_move_the_weight_memory_and_add_the_weight_stream():
    """runtime_writeable_weights=1: the weights (values and indices side by side) in one RAM of
    64-bit columns -- in UltraRAM with ram_style=ultra, where the ROM could not go -- and the
    node's interfaces gain the weight stream in1_V; the rest of the layer is unchanged."""
    zcu = "xczu7ev-ffvc1156-2-e"
    rom = WinogradSRBSParams(**{**GOOD, "pe": 8, "pos": 16, "ifm_channels": 64, "ofm_channels": 64})
    ram = rom.replace(runtime_weights=1, ram_style="ultra")
    e_rom, e_ram = rom.estimate_resources(zcu), ram.estimate_resources(zcu)
    lines, line_bits = rom.position_groups * 8 * 8, 16 * 8 * 4 * (4 + 2)  # G*CF*SF lines of NE*(Wb + idx)
    assert e_ram.breakdown["weight_memory"] == {**e_ram.breakdown["weight_memory"], "style": "ultra",
                                                "banks": math.ceil(line_bits / 64), "depth": lines, "width": 64}
    assert e_ram.uram == math.ceil(line_bits / 64) and e_rom.uram == 0
    assert "index_memory" not in e_ram.breakdown and e_rom.breakdown["index_memory"]["style"] != "ultra"
    assert e_ram.bram18 == e_rom.bram18 - sum(e_rom.breakdown[m]["BRAM_18K"] for m in ("weight_memory",
                                                                                      "index_memory"))
    for unit in ("multipliers", "index_muxes", "adder_trees", "input_transform"):
        assert e_ram.breakdown[unit]["LUT"] == e_rom.breakdown[unit]["LUT"]
    assert ram.cycles() == rom.cycles()
    node = wo.make_winograd_srbs_node("x", "U", "y", **{**GOOD, "runtime_weights": 1, "ram_style": "ultra"},
                                      rtl=True, name="w0")
    inst = getCustomOp(node)
    assert inst.get_nodeattr("runtime_writeable_weights") == 1
    assert [n for n, _ in inst.get_verilog_top_module_intf_names()["s_axis"]] == ["in0_V", "in1_V"]
