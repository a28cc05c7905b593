"""Residual networks through the whole flow: a small ResNet student (basic blocks, 1x1 projection
shortcuts, residual sums of two quantized branches) exported, built with FINN (every step verified
bit-exact on real Fashion-MNIST images), packaged, and run on the runtime's simulated device,
equal to the build and to the torch student's integer logits (``np.array_equal``)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from winoforge.hw.build import BuildStepError
from winoforge.hw.flow import build_package, export_run, reference_student

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "fmnist_distill_w4a4_srbs25_resnet.toml"


def _build(root, net, x, raw, name, golden=2, export_check=4):
    export_run(net, root / f"{name}.onnx", check_images=x[:export_check] if export_check else None, progress=False)
    manifest = build_package(root / f"{name}.onnx", name, board="pynq-z2", target_fps=1000,
                             out_root=root / "bits", work_root=root / "build",
                             golden=raw[:golden] if golden else None, progress=False)
    return manifest, root / "bits" / name


@pytest.fixture(scope="module")
def resnet(tmp_path_factory, fmnist):
    x, raw, _ = fmnist
    root = tmp_path_factory.mktemp("resnet")
    net = reference_student(arch="resnet", depth=8, width=8, calibration=x)
    manifest, package = _build(root, net, x, raw, "resnet8")
    return net, manifest, package


def _layers(package):
    return json.loads((package / "reports" / "estimates.json").read_text())["layers"]


def _dataflow_nodes(package):
    from qonnx.core.modelwrapper import ModelWrapper

    from winoforge.hw.build import _dataflow_nodes

    model = ModelWrapper(str(package / "dataflow_model.onnx"))
    return model, _dataflow_nodes(model)


def test_resnet_builds_bit_exact_through_every_step(resnet):
    _, manifest, package = resnet
    steps = json.loads((package / "reports" / "build_steps.json").read_text())
    assert all(s["verified"] for s in steps), [(s["name"], s["note"]) for s in steps if not s["verified"]]
    assert {"step_winograd_streamline", "step_convert_to_hw", "step_check_supported",
            "step_winograd_folding"} <= {s["name"] for s in steps}
    ops = [layer["op_type"] for layer in _layers(package)]
    assert ops.count("WinogradSRBS_rtl") == 7  # stem + 3 blocks x 2: every 3x3 conv in our layer
    # three residual sums (integer additions in the stream, our RTL) + the classifier's float bias at the tail
    assert ops.count("AddStreams_rtl") == 3 and ops.count("ElementwiseAdd_hls") == 1 and ops[-1] == "ElementwiseAdd_hls"
    assert ops.count("DuplicateStreams_rtl") == 3  # each block's input feeds conv1 and the shortcut
    assert manifest["flow"] == "winograd-srbs" and manifest["estimated_fps"] >= 1000


def test_residual_sums_add_integer_codes_of_one_width(resnet):
    from qonnx.custom_op.registry import getCustomOp

    model, nodes = _dataflow_nodes(resnet[2])
    adds = [n for n in nodes if n.op_type == "AddStreams_rtl"]
    assert len(adds) == 3
    for add in adds:
        inst = getCustomOp(add)
        # both branches are signed 5-bit codes on one scale (the block's shared quantizer)
        assert inst.get_nodeattr("lhs_dtype") == inst.get_nodeattr("rhs_dtype") == "INT5", add.name
        assert inst.get_nodeattr("lhs_style") == inst.get_nodeattr("rhs_style") == "input"
        consumer = next(n for n in nodes if add.output[0] in n.input)
        assert consumer.op_type.startswith("Thresholding")  # the block's ReLU quantizer, integer thresholds


def test_projection_shortcuts_are_1x1_mvaus(resnet):
    from qonnx.custom_op.registry import getCustomOp

    model, nodes = _dataflow_nodes(resnet[2])
    mvaus = [n for n in nodes if n.op_type.startswith("MVAU")][:-1]  # the last one is the classifier
    assert [(getCustomOp(n).get_nodeattr("MW"), getCustomOp(n).get_nodeattr("MH")) for n in mvaus] == [(8, 16),
                                                                                                      (16, 32)]
    for mvau in mvaus:
        producer = next(n for n in nodes if mvau.input[0] in n.output)
        assert producer.op_type.startswith("DuplicateStreams")  # it reads the block input (after pooling)
        # with the shortcut's quantizer as its thresholds: signed 5-bit codes on the block's shared scale
        assert getCustomOp(mvau).get_nodeattr("noActivation") == 0
        assert getCustomOp(mvau).get_nodeattr("outputDataType") == "INT5"


def test_simulated_device_equals_the_build_and_torch(resnet, fmnist):
    from winoforge.hw.build import execute_python
    from winoforge.hw.export import head_quantum, output_codes
    from winoforge.runtime import Accelerator

    net, _, package = resnet
    x, raw, _ = fmnist
    golden = np.load(package / "runtime" / "golden.npz")
    images = raw[:8]
    with Accelerator.load(package, backend="sim") as acc:
        assert np.array_equal(acc.execute(golden["input"]), golden["output"])
        device = acc.execute(images.transpose(0, 2, 3, 1).astype(np.uint8))
    from qonnx.core.modelwrapper import ModelWrapper

    built = execute_python(ModelWrapper(str(package / "dataflow_model.onnx")), images, package.parent / "scratch")
    head = head_quantum(net, (1, 28, 28))
    assert np.array_equal(output_codes(head, device), output_codes(head, built["output"]))
    with torch.no_grad():
        logits = net(torch.from_numpy(x[:8])).numpy()
    assert np.array_equal(output_codes(head, device), output_codes(head, logits))


def test_the_stock_finn_baseline_of_a_resnet_builds_bit_exact(resnet, fmnist, tmp_path):
    """`winoforge demo` and `make estimate` build a student's stock-FINN baseline (direct 3x3
    convolutions, same weights) too: a residual graph takes our streamlining in place of FINN's
    step_streamline (which leaves Im2Col behind transposes there), every step verified on real
    images, the simulated device equal to the build and to torch's integer logits."""
    from winoforge.hw.baseline import direct_baseline
    from winoforge.hw.build import has_residual_add
    from winoforge.hw.export import head_quantum, output_codes
    from winoforge.runtime import Accelerator

    net, _, _ = resnet
    x, raw, _ = fmnist
    base = direct_baseline(net)
    export_run(base, tmp_path / "base.onnx", check_images=x[:4], progress=False)
    import onnx

    assert has_residual_add(onnx.load(str(tmp_path / "base.onnx")))
    manifest = build_package(tmp_path / "base.onnx", "base", board="pynq-z2", target_fps=1000, baseline=True,
                             out_root=tmp_path / "bits", work_root=tmp_path / "build", golden=raw[:2], progress=False)
    package = tmp_path / "bits" / "base"
    steps = json.loads((package / "reports" / "build_steps.json").read_text())
    assert manifest["flow"] == "stock-finn-baseline"
    assert all(s["verified"] for s in steps), [(s["name"], s["note"]) for s in steps if not s["verified"]]
    names = [s["name"] for s in steps]
    assert "step_winograd_streamline" in names and "step_streamline" not in names
    ops = [layer["op_type"] for layer in _layers(package)]
    assert "WinogradSRBS_rtl" not in ops and "AddStreams_rtl" in ops and "DuplicateStreams_rtl" in ops
    head = head_quantum(net, (1, 28, 28))
    with Accelerator.load(package, backend="sim") as acc:
        assert acc.self_test()["equal"]
        device = acc.execute(raw[:8].transpose(0, 2, 3, 1).astype(np.uint8))
    with torch.no_grad():
        logits = base(torch.from_numpy(x[:8])).numpy()
    assert np.array_equal(output_codes(head, device), output_codes(head, logits))


def test_a_bias_add_is_not_a_residual_add(tmp_path, fmnist):
    """Only an Add of two computed tensors is a residual sum: a VGG export (its adds take constants,
    quantized biases included) keeps FINN's own step_streamline in the baseline."""
    import onnx
    from onnx import TensorProto, helper

    from winoforge.hw.build import baseline_steps, has_residual_add

    x, _, _ = fmnist
    vgg = reference_student(widths=[8, "M", 16, "M"], calibration=x[:16])
    export_run(vgg, tmp_path / "vgg.onnx", check_images=None, progress=False)
    assert not has_residual_add(onnx.load(str(tmp_path / "vgg.onnx")))
    b = helper.make_tensor("b", TensorProto.FLOAT, [1], [1.0])
    biased = helper.make_graph([helper.make_node("Identity", ["b"], ["qb"]), helper.make_node("Add", ["x", "qb"], ["y"])],
                               "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [b])
    assert not has_residual_add(helper.make_model(biased))
    residual = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["x", "r"], ["y"])],
                                 "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    assert has_residual_add(helper.make_model(residual))
    assert "step_streamline" in baseline_steps() and "step_streamline" not in baseline_steps(residual=True)


def test_unquantized_residual_sum_is_refused_naming_the_node(tmp_path, fmnist):
    x, raw, _ = fmnist
    net = reference_student(arch="resnet", depth=8, width=8, calibration=x[:16])
    block = net.layer2[0]
    block.branch_quant, block.shortcut_quant = nn.Identity(), nn.Identity()  # a float residual sum
    with pytest.raises(BuildStepError) as info:
        _build(tmp_path, net, x, raw, "floatsum", golden=0, export_check=0)
    assert info.value.step == "step_check_supported"
    message = str(info.value)
    assert "node ElementwiseMul_0 (op type ElementwiseMul) computes on FLOAT32 values" in message
    assert "two quantized branches" in message


@pytest.mark.slow
def test_resnet_config_student_builds_bit_exact(tmp_path, fmnist):
    """The configs/ ResNet student (untrained, calibrated): every step verified, simulated device equal."""
    from winoforge.model.students import StudentConfig, build_student, winograd_layers
    from winoforge.runtime import Accelerator

    x, raw, _ = fmnist
    student = tomllib.loads(CONFIG.read_text())["student"]
    keep = tomllib.loads(CONFIG.read_text())["prune"]["keep"]
    torch.manual_seed(0)
    net = build_student(StudentConfig(**student), 1, 10)
    for layer in winograd_layers(net).values():
        layer.update_mask(keep)
    net.train()
    with torch.no_grad():
        net(torch.from_numpy(x))
    net.eval()
    _, package = _build(tmp_path, net, x, raw, "config", golden=2)
    steps = json.loads((package / "reports" / "build_steps.json").read_text())
    assert all(s["verified"] for s in steps)
    golden = np.load(package / "runtime" / "golden.npz")
    with Accelerator.load(package, backend="sim") as acc:
        assert np.array_equal(acc.execute(golden["input"]), golden["output"])


@pytest.fixture(scope="module")
def resnet16_fast(tmp_path_factory, fmnist):
    """ResNet-8 of width 16 built at 18,102 FPS (5,524 cycles; on a ZCU104: its estimate is over
    PYNQ-Z2's LUT) with the networks benchmark's MVAU cap (``mvau_wwidth_max=1024``; FINN's
    default is 36)."""
    x, _, _ = fmnist
    root = tmp_path_factory.mktemp("resnet16")
    net = reference_student(arch="resnet", depth=8, width=16, calibration=x)
    export_run(net, root / "r.onnx", check_images=None, progress=False)
    manifest = build_package(root / "r.onnx", "r", board="zcu104", target_fps=18102, out_root=root / "bits",
                             work_root=root / "build", golden=None, progress=False, mvau_wwidth_max=1024)
    return manifest, root / "bits" / "r"


def test_residual_forks_are_folded_to_the_target(resnet16_fast):
    """FINN's specialization picks our ``DuplicateStreams_rtl`` and its SetFolding skips op types it
    does not know: a fork left at PE=1 (28x28x16: 12,544 cycles) made SetFolding's relaxation slow
    every layer of ResNet-8 down to it, whatever the target. ``step_fps_folding`` folds the forks
    first: at an 18,102 FPS target (5,524 cycles) every layer meets it."""
    layers = _layers(resnet16_fast[1])
    forks = [layer for layer in layers if layer["op_type"] == "DuplicateStreams_rtl"]
    assert len(forks) == 3 and forks[0]["cycles"] < 12544
    assert max(layer["cycles"] for layer in layers) <= 5524


def test_the_mvau_folding_cap_reaches_finn_and_the_manifest(resnet16_fast):
    """``build_package(mvau_wwidth_max=...)`` folds the projections as the networks benchmark's
    estimates do: the 16 -> 32 projection on 14x14 (W4) must take at most 5,524 cycles, which all 16
    channels a cycle at PE 1 (6,272) miss; under FINN's default cap (SIMD x 4 bits <= 36) SetFolding
    then steps back to SIMD 8 and takes PE 4 (3,136 cycles), with 1024 it keeps SIMD 16 at PE 2
    (3,136 cycles, two threshold lanes instead of four). The manifest records the cap, so that
    ``make bitfile`` folds the same way."""
    from qonnx.custom_op.registry import getCustomOp

    manifest, package = resnet16_fast
    assert manifest["mvau_wwidth_max"] == 1024
    model, _ = _dataflow_nodes(package)
    projections = [getCustomOp(n) for n in model.graph.node
                   if n.op_type.startswith("MVAU") and getCustomOp(n).get_nodeattr("noActivation") == 0]
    assert len(projections) == 2
    first = next(p for p in projections if p.get_nodeattr("MW") == 16)
    assert (first.get_nodeattr("SIMD"), first.get_nodeattr("PE")) == (16, 2)
