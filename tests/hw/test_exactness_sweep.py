"""Issue 13: every student the trainer accepts can be exact through the float32 stages, or it is
refused up front, named; the threshold search covers the layer's exact range."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from winoforge.hw.ops import DOMAIN as OPS_DOMAIN
from winoforge.hw.transforms import _winograd_search_range
from winoforge.model.mixed_precision import exact_candidates
from winoforge.model.students import (FLOAT32_EXACT, StudentConfig, build_student, float32_exact_problem,
                                      float32_exact_problems)
from winoforge.winograd import WinogradSpec, bit_growth, winograd_conv2d
from winoforge.winograd.bits import output_extreme, value_range

# The found case (configs/fmnist_distill_w4a4_mixed.toml, m = 4): block1 W8 on the 8-bit image,
# block2 W4A6, block3 W6A3, block4 W3A3 (layer_bits keep (weight, output activation) widths).
FOUND = {"features.block1": (8, 6), "features.block2": (4, 3), "features.block3": (6, 3), "features.block4": (3, 3)}
WIDTHS = [16, 16, "M", 32, 32, "M"]


def _stages_fit(m, in_bits, w_bits, cin) -> bool:
    g = bit_growth(in_bits, w_bits, cin, WinogradSpec(m), in_signed=False, weight_signed=True)
    return max(max(abs(lo), abs(hi)) for lo, hi in (g.input_transform, g.product, g.accumulator, g.output)) \
        < FLOAT32_EXACT


def test_the_found_case_is_refused_before_training_naming_layers_range_and_fix():
    with pytest.raises(ValueError) as info:
        build_student(StudentConfig(m=4, widths=WIDTHS, layer_bits=FOUND), 1, 10)
    text = str(info.value)
    assert "layer features.block1: F(4x4,3x3) with 8-bit unsigned inputs, 8-bit weights and 1 input channels" in text
    assert "[-135905565, 135900975]" in text  # the exact 29-bit output range (winoforge bits --m 4 ...)
    assert "what fits: weight bits <= 5, or input activation bits <= 5, or m=2" in text
    assert "layer features.block2: F(4x4,3x3) with 6-bit unsigned inputs, 4-bit weights and 16" in text
    assert "features.block3" not in text and "features.block4" not in text  # 3-bit input codes: they fit


def test_uniform_w4a4_f43_and_the_found_widths_at_m2_are_accepted():
    assert float32_exact_problems(build_student(StudentConfig(m=4, widths=WIDTHS), 1, 10)) == []
    assert float32_exact_problems(build_student(StudentConfig(m=2, widths=WIDTHS, layer_bits=FOUND), 1, 10)) == []


@settings(max_examples=25, deadline=None)
@given(m=st.sampled_from([2, 4]), in_bits=st.integers(2, 8), w_bits=st.integers(2, 8),
       cin=st.sampled_from([1, 3, 16, 32, 64]))
def test_the_rule_is_the_exact_stage_ranges(m, in_bits, w_bits, cin):
    problem = float32_exact_problem("L", m, in_bits, w_bits, cin)
    assert (problem is None) == _stages_fit(m, in_bits, w_bits, cin)
    if problem:
        assert problem.startswith("layer L: ") and "what fits" in problem


def test_export_refuses_a_student_the_builder_would_have_refused(tmp_path):
    from winoforge.hw.export import export_student

    model = build_student(StudentConfig(m=4, widths=WIDTHS, layer_bits=FOUND), 1, 10, check_exact=False)
    with pytest.raises(ValueError, match=r"export refused: layer features.block1: .*cannot be built bit-exact"):
        export_student(model, tmp_path / "m.onnx", (1, 28, 28))
    assert not (tmp_path / "m.onnx").exists()


def test_mixed_precision_offers_only_widths_the_flow_builds_exactly():
    probe = build_student(StudentConfig(m=4, widths=WIDTHS), 1, 10, check_exact=False)
    pairs = [(w, a) for w in (2, 3, 4, 6, 8) for a in (2, 3, 4, 6, 8)]
    classifier = probe.quant_layer_names[-1]
    options = {"features.block1": [(w, 8) for w in (2, 3, 4, 6, 8)], "features.block2": pairs,
               "features.block4": pairs, classifier: pairs}
    out = exact_candidates(probe, options)
    assert out["features.block1"] == [(2, 8), (3, 8), (4, 8)]  # W5 fits too, but is not a candidate
    assert (4, 4) in out["features.block2"] and (4, 6) not in out["features.block2"]
    assert (4, 4) in out["features.block4"] and (8, 8) not in out["features.block4"]
    assert out[classifier] == pairs  # no Winograd layer: nothing to filter
    for name in ("features.block2", "features.block4"):
        cin = probe.quant_layers[name].in_channels
        assert out[name] == [(w, a) for w, a in pairs if _stages_fit(4, a, w, cin)]
    with pytest.raises(ValueError, match=r"mixed_precision.candidates: none can be built exactly for layer "
                                         r"features.block1: .*allowed: add narrower"):
        exact_candidates(probe, {"features.block1": [(8, 8), (6, 8)]})


def _winograd_after_quant(bits: int, U: np.ndarray, m: int) -> ModelWrapper:
    cout, cin, t, _ = U.shape
    nodes = [
        helper.make_node("Quant", ["x", "s", "z", "b"], ["xq"], domain="qonnx.custom_op.general", name="q",
                         signed=0, narrow=0, rounding_mode="ROUND"),
        helper.make_node("WinogradConv", ["xq", "U"], ["y"], domain=OPS_DOMAIN, name="wc", m=m, pads=[1, 1]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, 8, 8])])
    model = ModelWrapper(qonnx_make_model(graph))
    for name, value in (("s", 1 / 256), ("z", 0.0), ("b", float(bits))):
        model.set_initializer(name, np.asarray(value, dtype=np.float32))
    model.set_initializer("U", U.astype(np.float32))
    return model


def test_the_threshold_search_covers_the_exact_range_past_2_23():
    # F(4,3), W5 codes on the 8-bit image: accepted (every stage below 2^24), yet |Y| reaches
    # 1.67e7, twice the old fixed search bound 2^23
    assert float32_exact_problem("L", 4, 8, 5, 1) is None
    U = np.full((2, 1, 6, 6), -16)
    U[1] = 15
    model = _winograd_after_quant(8, U, 4)
    lo, hi = _winograd_search_range(model, model.graph.node[1])
    g = bit_growth(8, 5, 1, WinogradSpec(4), in_signed=False, weight_signed=True)
    assert hi == -lo == max(abs(g.output[0]), abs(g.output[1])) > 1 << 23


# ------------------------------------------------------------------ float stages at the witnesses


def _witness(m: int, in_bits: int, w_bits: int, maximize: bool | None = None):
    """``(value, d, u)``: the tile and narrow-range weights that reach the largest output magnitude
    of one channel of F(m,3) (``maximize`` None: whichever extreme is larger), from the exact
    branch and bound of :func:`winoforge.winograd.bits.output_extreme`."""
    spec, q = WinogradSpec(m), (1 << (w_bits - 1)) - 1
    x_range = value_range(in_bits, False)
    found = [(output_extreme(spec, x_range, (-q, q), i, j, mx), mx) for i in range(m) for j in range(m)
             for mx in ((True, False) if maximize is None else (maximize,))]
    (value, d, u), _ = max(found, key=lambda f: abs(f[0][0]))
    return value, d, u


def _witness_images(m: int, d_list, size: int, channels: int) -> np.ndarray:
    """One image per tile ``d`` (uint8 codes): ``d`` in every channel at every tile of the padded
    grid that lies inside the image, two tiles apart (tiles overlap by two pixels)."""
    t = m + 2
    out = np.zeros((len(d_list), channels, size, size), np.int64)
    for n, d in enumerate(d_list):
        for r in range(m - 1, size - t + 1, 2 * m):
            for c in range(m - 1, size - t + 1, 2 * m):
                out[n, :, r:r + t, c:c + t] = d
    return out


@pytest.mark.parametrize("in_bits,w_bits,cin", [(8, 5, 1), (4, 4, 32), (5, 4, 16), (8, 3, 4), (8, 4, 2)])
def test_float_stages_are_exact_at_the_witnesses_of_accepted_f43_layers(in_bits, w_bits, cin):
    """Partial sums: an accepted F(4,3) layer driven to its exact output extremes computes them
    exactly in float32 in torch's GEMM kernels and in the export's convolutions (any summation
    order: a partial sum is the output with some weights at 0, so it lies in the checked range)."""
    from winoforge.model.winograd_layer import winograd_conv2d_onnx, winograd_conv2d_torch

    assert float32_exact_problem("L", 4, in_bits, w_bits, cin) is None
    top, d_hi, u_hi = _witness(4, in_bits, w_bits, True)
    bottom, d_lo, u_lo = _witness(4, in_bits, w_bits, False)
    x = _witness_images(4, [d_hi, d_lo], 16, cin)
    U = np.stack([np.broadcast_to(u, (cin, 6, 6)) for u in (u_hi, u_lo, -u_hi, u_lo)])
    ref = winograd_conv2d(x, U, WinogradSpec(4), (1, 1))
    assert ref.max() == cin * top and ref.min() == cin * bottom  # the witnesses reach the extremes
    for fn in (winograd_conv2d_torch, winograd_conv2d_onnx):
        y = fn(torch.from_numpy(x).float(), torch.from_numpy(U).float(), WinogradSpec(4), 1).numpy()
        assert y.dtype == np.float32 and np.array_equal(y, ref.astype(np.float32)) and np.array_equal(y, ref)


def test_a_layer_just_past_the_rule_breaks_float32_at_its_witness():
    """The rule is not vacuous: F(4,3) W6 on the 8-bit image (refused) loses exactness in torch."""
    from winoforge.model.winograd_layer import winograd_conv2d_torch

    assert float32_exact_problem("L", 4, 8, 6, 1) is not None
    _, d, u = _witness(4, 8, 6)
    x = _witness_images(4, [d], 16, 1)
    ref = winograd_conv2d(x, u[None, None], WinogradSpec(4), (1, 1))
    y = winograd_conv2d_torch(torch.from_numpy(x).float(), torch.from_numpy(u[None, None]).float(), WinogradSpec(4), 1)
    assert np.abs(ref).max() >= FLOAT32_EXACT and not np.array_equal(y.numpy(), ref)
