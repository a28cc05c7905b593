"""QONNX export of students, its check against torch, and the fusion into WinogradConv."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from winoforge.hw.export import HEAD_KEY, LAYERS_KEY, check_export, export_student, output_codes, read_metadata
from winoforge.hw.flow import reference_student
from winoforge.model.students import winograd_layers
from winoforge.model.winograd_layer import winograd_conv2d_onnx, winograd_conv2d_torch

WIDTHS = [8, "M", 16, "M"]


@pytest.fixture(scope="module")
def images(fmnist):
    return fmnist


@given(m=st.sampled_from([2, 4]), h=st.integers(1, 11), w=st.integers(1, 11), ph=st.integers(0, 2),
       pw=st.integers(0, 2), cin=st.integers(1, 5), cout=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_onnx_form_equals_the_custom_function(m, h, w, ph, pw, cin, cout, seed):
    if h + 2 * ph < 3 or w + 2 * pw < 3:
        return
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, cin, h, w, generator=g, dtype=torch.float64)
    U = torch.randn(cout, cin, m + 2, m + 2, generator=g, dtype=torch.float64)
    a = winograd_conv2d_onnx(x, U, m, (ph, pw))
    b = winograd_conv2d_torch(x, U, m, (ph, pw))
    assert a.shape == b.shape
    # float64 sums of at most 36 * cin products of O(1) values, in two different orders:
    # differences are a few ulps of the O(100) magnitudes, far below 1e-9
    assert torch.allclose(a, b, rtol=0, atol=1e-9)


@pytest.mark.parametrize("weight_quant", ["po2", "float"])
def test_export_equals_torch_on_real_images(tmp_path, images, weight_quant):
    x, _, _ = images
    net = reference_student(widths=WIDTHS, weight_quant=weight_quant, calibration=x)
    onnx_model = export_student(net, tmp_path / "s.onnx", (1, 28, 28))
    result = check_export(net, onnx_model, x[:24])
    assert result.exact, result.mismatches
    assert set(result.quant_layers) == {"input_quant", "features.block1.relu", "features.block2.relu"}
    # the comparison is not vacuous: the activations are not all zero
    with torch.no_grad():
        assert net.features.block2.relu(net.features.block2.bn(net.features.block2.conv(
            net.features.pool1(net.features.block1(net.input_quant(torch.from_numpy(x[:4]))))))).int().abs().sum() > 0


def test_export_check_finds_a_changed_weight(tmp_path, images):
    x, _, _ = images
    net = reference_student(widths=WIDTHS, calibration=x)
    onnx_model = export_student(net, tmp_path / "s.onnx", (1, 28, 28))
    quant = [n for n in onnx_model.graph.node if n.op_type == "Quant" and "block2/conv/weight" in n.name][0]
    U = onnx_model.get_initializer(quant.input[0]).copy()
    U[0, 0] += 10 * np.abs(U).max()  # a large change: position (0, 0) of channel 0 saturates
    onnx_model.set_initializer(quant.input[0], U)
    result = check_export(net, onnx_model, x[:8])
    assert not result.exact
    assert "features.block2.relu" in result.mismatches or "logits" in result.mismatches


def test_export_metadata_and_head(tmp_path, images):
    x, _, _ = images
    net = reference_student(widths=WIDTHS, calibration=x)
    onnx_model = export_student(net, tmp_path / "s.onnx", (1, 28, 28))
    layers = read_metadata(onnx_model, LAYERS_KEY)
    assert layers["features.block1.conv"]["sub_row"] == 0  # Cin=1: dense fallback
    assert (layers["features.block2.conv"]["sub_row"], layers["features.block2.conv"]["keep"]) == (8, 2)
    head = read_metadata(onnx_model, HEAD_KEY)
    with torch.no_grad():
        logits = net(torch.from_numpy(x[:8])).numpy()
    codes = output_codes(head, logits)
    # the codes are the classifier's integer accumulator: W_int @ (sum of pooled activation codes)
    fc = net.classifier.fc
    with torch.no_grad():
        w_int = torch.round(fc.quant_weight().value / fc.quant_weight().scale).numpy().astype(np.int64)
    acts = {}
    hook = net.features.block2.relu.register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    with torch.no_grad():
        net(torch.from_numpy(x[:8]))
    hook.remove()
    pooled = torch.nn.functional.max_pool2d(acts["a"].int().double(), 2).sum(dim=(2, 3)).numpy().astype(np.int64)
    assert np.array_equal(codes, pooled @ w_int.T)
    with pytest.raises(AssertionError, match="integer grid"):
        output_codes(head, logits + 0.5 * np.asarray(head["quantum"]))


@pytest.mark.parametrize("m, widths", [(2, WIDTHS), (4, WIDTHS), (2, [8, "M", 8, "M", 16])])  # last: 7x7, cropped
def test_fusion_is_exact_and_carries_the_integer_weights(tmp_path, images, m, widths):
    import qonnx.core.onnx_exec as oxe

    from winoforge.hw.transforms import FuseWinogradSubgraph

    x, _, _ = images
    net = reference_student(widths=widths, m=m, calibration=x)
    onnx_model = export_student(net, tmp_path / "s.onnx", (1, 28, 28))
    fused = onnx_model.transform(FuseWinogradSubgraph())
    convs = fused.get_nodes_by_op_type("WinogradConv")
    assert len(convs) == len(winograd_layers(net))
    assert not fused.get_nodes_by_op_type("DepthToSpace") and not fused.get_nodes_by_op_type("Slice")
    for node, (name, layer) in zip(convs, winograd_layers(net).items()):
        assert np.array_equal(fused.get_initializer(node.input[1]).astype(np.int64), layer.int_weight().numpy())
        scale = fused.get_initializer(fused.find_consumer(node.output[0]).input[1]).ravel()
        assert np.array_equal(scale, layer.weight_scale().numpy().astype(np.float32))
    iname, oname = onnx_model.graph.input[0].name, onnx_model.graph.output[0].name
    for i in range(4):
        a = oxe.execute_onnx(onnx_model, {iname: x[i:i + 1]})[oname]
        b = oxe.execute_onnx(fused, {iname: x[i:i + 1]})[oname]
        assert np.array_equal(a, b)


def test_fusion_refuses_a_changed_transform(tmp_path, images):
    from winoforge.hw.transforms import FuseWinogradSubgraph, UnsupportedNodeError

    x, _, _ = images
    net = reference_student(widths=WIDTHS, calibration=x)
    onnx_model = export_student(net, tmp_path / "s.onnx", (1, 28, 28))
    d2s = [n for n in onnx_model.graph.node if n.op_type == "DepthToSpace" and "block2" in n.name][0]
    out_conv = onnx_model.find_producer(d2s.input[0])
    k = onnx_model.get_initializer(out_conv.input[1]).copy()
    k[0, 0, 0, 0] += 1
    onnx_model.set_initializer(out_conv.input[1], k)
    with pytest.raises(UnsupportedNodeError, match="features.block2.conv.*A\\^T"):
        onnx_model.transform(FuseWinogradSubgraph())


def test_resnet_student_export_is_exact(tmp_path, images):
    from winoforge.model.students import StudentConfig, build_student

    x, _, _ = images
    torch.manual_seed(0)
    net = build_student(StudentConfig(arch="resnet", depth=8, width=8, weight_quant="po2", act_quant="po2"), 1, 10)
    net.train()
    with torch.no_grad():
        net(torch.from_numpy(x))
    net.eval()
    result = check_export(net, export_student(net, tmp_path / "r.onnx", (1, 28, 28)), x[:8])
    assert result.exact, result.mismatches
    assert {"layer1.0.relu1", "layer3.0.relu"} <= set(result.quant_layers)


def test_finn_shims_leave_a_real_vivado_alone(tmp_path, monkeypatch):
    from winoforge.hw import finn_env

    vivado = tmp_path / "Vivado" / "2024.2"
    vivado.mkdir(parents=True)
    monkeypatch.setenv("XILINX_VIVADO", str(vivado))
    for var in ("FINN_BUILD_DIR", "FINN_SETTINGS"):  # restored after the test
        monkeypatch.setenv(var, os.environ.get(var, ""))
    assert finn_env.vivado_available()
    finn_env.ensure_finn(tmp_path / "finn")
    assert os.environ["XILINX_VIVADO"] == str(vivado)
    monkeypatch.setenv("XILINX_VIVADO", finn_env.FAKE_VIVADO)
    assert not finn_env.vivado_available() or __import__("shutil").which("vivado")
