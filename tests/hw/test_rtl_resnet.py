"""The residual layers in open RTL and a whole ResNet accelerator under Verilator (issue 12).

A ResNet-8 student of width 8 (three basic blocks, two with 1x1 projection shortcuts) built by
``build_package(rtl=True)``: every layer of the fabric is plain SystemVerilog -- our
``DuplicateStreams_rtl`` (fork), ``AddStreams_rtl`` (residual sum) and ``MVAU_lut_rtl`` with
thresholds (projection), next to the WinogradSRBS, FINN's Thresholding/SWG RTL and our pooling
-- stitched with one FIFO per stream (the branches included), FIFOs sized by simulation, and
the whole accelerator simulated on real Fashion-MNIST images with bubbles and back-pressure,
compared with ``np.array_equal`` to the package's integer program.  A broken fork and a broken
adder must be caught.

And ``downsample="stride"``: a ResNet whose stages start with a stride-2 3x3 convolution and a
stride-2 1x1 projection (as the teacher) builds bit-exact through every step and runs on the
simulated device.  Our Winograd layer is stride 1, so those convolutions are FINN's
``ConvolutionInputGenerator`` (stride 2) + our ``MVAU_lut_rtl`` with thresholds (fast tier); the whole
stride-2 accelerator also simulates bit-exact under Verilator (rtl, slow).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

# the whole-accelerator tests (rtl, slow): one ResNet build with its RTL + 4 Verilator builds,
# 30 min measured on 2 cores shared with other jobs (7 passed)

OURS = {"DuplicateStreams_rtl": 3, "AddStreams_rtl": 3, "MVAU_lut_rtl": 3}  # 2 projections + classifier


@pytest.fixture(scope="module")
def resnet_rtl(tmp_path_factory, fmnist, tool):
    pytest.importorskip("finn")
    tool("g++")
    from qonnx.core.modelwrapper import ModelWrapper

    from winoforge.hw.flow import build_package, export_run, reference_student
    from winoforge.runtime.program import Program

    x, raw, _ = fmnist
    root = tmp_path_factory.mktemp("resnet_rtl")
    net = reference_student(arch="resnet", depth=8, width=8, calibration=x)
    export_run(net, root / "resnet8.onnx", check_images=None, progress=False)
    manifest = build_package(root / "resnet8.onnx", "resnet8", board="pynq-z2", target_fps=1000,
                             out_root=root / "bits", work_root=root / "build", golden=raw[:2], rtl=True,
                             progress=False)
    package = root / "bits" / "resnet8"
    (last,) = (root / "build" / "resnet8" / "intermediate_models").glob("*_step_hw_codegen.onnx")
    images = raw[2:6].transpose(0, 2, 3, 1).astype(np.int64)
    return {"root": root, "manifest": manifest, "package": package, "model": ModelWrapper(str(last)),
            "images": images, "tensors": Program.load(package / "runtime").run(images, return_all=True)}


@pytest.mark.rtl
@pytest.mark.slow
def test_every_residual_layer_is_open_rtl(resnet_rtl):
    from qonnx.custom_op.registry import getCustomOp

    ops = [n.op_type for n in resnet_rtl["model"].graph.node]
    for op, count in OURS.items():
        assert ops.count(op) == count, (op, ops)
    # only the logits' float scale and bias stay FINN's (run by the host after the fabric)
    assert [op for op in ops if op.endswith("_hls")] == ["ElementwiseMul_hls", "ElementwiseAdd_hls"]
    projections = [n for n in resnet_rtl["model"].graph.node if n.op_type == "MVAU_lut_rtl"][:-1]
    assert [getCustomOp(n).get_nodeattr("noActivation") for n in projections] == [0, 0]
    steps = json.loads((resnet_rtl["package"] / "reports" / "build_steps.json").read_text())
    assert all(s["verified"] for s in steps), [(s["name"], s["note"]) for s in steps if not s["verified"]]
    assert "step_open_rtl_layers" in [s["name"] for s in steps]


@pytest.mark.rtl
@pytest.mark.slow
def test_stitched_resnet_has_a_fifo_per_stream(resnet_rtl):
    from winoforge.hw.rtl.stitch import StitchedDesign, fabric_edges

    design = StitchedDesign.load(resnet_rtl["package"] / "rtl")
    edges = fabric_edges(resnet_rtl["model"])
    assert design.edges == edges and len(design.fifo_depths) == len(edges) == len(design.stages) + 1 + 3
    forks = [i for i, st in enumerate(design.stages) if st.op_type == "DuplicateStreams_rtl"]
    for i in forks:  # each fork feeds two different layers
        assert sorted(e["src_port"] for e in edges if e["src"] == i) == [0, 1]
    adds = [i for i, st in enumerate(design.stages) if st.op_type == "AddStreams_rtl"]
    for i in adds:
        assert sorted(e["dst_port"] for e in edges if e["dst"] == i) == [0, 1]
    report = json.loads((resnet_rtl["package"] / "reports" / "rtl_sim.json").read_text())
    assert report["equal_to_program"] is True
    fifo = report["fifo"]
    assert fifo["cycles_per_frame_sized"] <= 1.02 * fifo["cycles_per_frame_deep"]
    assert sum(fifo["depths"]) < sum(fifo["deep_depths"]) / 4


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("seed,bubbles,stall", [(0, 0.0, 0.0), (3, 0.3, 0.5)])
def test_whole_resnet_under_verilator_equals_the_integer_program(resnet_rtl, seed, bubbles, stall):
    from winoforge.hw.rtl.stitch import StitchedDesign
    from winoforge.hw.rtl_sim import simulate

    design = StitchedDesign.load(resnet_rtl["package"] / "rtl")
    run = simulate(design, resnet_rtl["images"], seed=seed, bubbles=bubbles, backpressure=stall,
                   build_root=resnet_rtl["root"] / "verilator", fifo_report=False)
    want = resnet_rtl["tensors"][design.fabric_output]
    assert run.outputs.shape == want.shape
    assert np.array_equal(run.outputs, want)
    if bubbles == 0 and stall == 0:
        est = json.loads((resnet_rtl["package"] / "reports" / "estimates.json").read_text())["max_cycles"]
        assert run.cycles_per_frame == pytest.approx(est, rel=0.1)


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("core,good,bad", [
    ("winoforge_duplicate_streams.sv", "else sent <= sent | (out_valid & out_ready);", "else sent <= sent;"),
    ("winoforge_add_streams.sv", "ext_a(in0_data[p*A_W +: A_W]) + ext_b", "ext_a(in0_data[p*A_W +: A_W]) - ext_b"),
])
def test_a_broken_residual_core_is_caught(resnet_rtl, core, good, bad):
    """A fork that offers a beat twice and an adder that subtracts: outputs differ or the run stalls."""
    from winoforge.hw.rtl.verilator import SimulationError
    from winoforge.hw.rtl_sim import simulate

    folder = resnet_rtl["root"] / f"broken_{core}"
    shutil.copytree(resnet_rtl["package"] / "rtl", folder, dirs_exist_ok=True)
    text = (folder / core).read_text()
    assert good in text
    (folder / core).write_text(text.replace(good, bad))
    design_out = json.loads((folder / "stitched.json").read_text())["fabric_output"]
    try:
        run = simulate(folder, resnet_rtl["images"][:2], build_root=resnet_rtl["root"] / "verilator",
                       fifo_report=False)
    except (SimulationError, RuntimeError):
        return
    assert not np.array_equal(run.outputs, resnet_rtl["tensors"][design_out][:2])


@pytest.mark.rtl
@pytest.mark.slow
def test_residual_layers_refuse_what_their_rtl_cannot_do(resnet_rtl):
    import copy

    from qonnx.custom_op.registry import getCustomOp

    from winoforge.hw.rtl_ops import UnsupportedRTLFolding

    model = copy.deepcopy(resnet_rtl["model"])
    add = next(n for n in model.graph.node if n.op_type == "AddStreams_rtl")
    inst = getCustomOp(add)
    inst.set_nodeattr("out_dtype", "INT5")
    with pytest.raises(UnsupportedRTLFolding, match=f"node {add.name} .*out_dtype INT5 cannot hold every sum"):
        inst.check(model)
    fork = next(n for n in model.graph.node if n.op_type == "DuplicateStreams_rtl")
    getCustomOp(fork).set_nodeattr("PE", 3)
    with pytest.raises(UnsupportedRTLFolding, match=f"node {fork.name} .*PE=3 must divide NumChannels=8"):
        getCustomOp(fork).check(model)
    # a projection's thresholds past the binary search's 8 stages (255 a channel), refused naming the node
    mvau = next(n for n in model.graph.node if n.op_type == "MVAU_lut_rtl" and getCustomOp(n).has_thresholds())
    T = model.get_initializer(mvau.input[2])
    model.set_initializer(mvau.input[2], np.zeros((T.shape[0], 256), dtype=np.float32))
    with pytest.raises(UnsupportedRTLFolding, match=f"node {mvau.name} .*256 steps per channel; allowed: 1..255"):
        getCustomOp(mvau).check(model)


def stride2_student(x):
    """ResNet-8 of width 8 with stride-2 stage starts, SRBS 2/8, its quantizers calibrated on ``x``."""
    import torch

    from winoforge.model.students import StudentConfig, build_student, winograd_layers

    torch.manual_seed(0)
    cfg = StudentConfig(arch="resnet", depth=8, width=8, downsample="stride", weight_quant="po2", act_quant="po2",
                        sub_row=8)
    net = build_student(cfg, 1, 10)
    for layer in winograd_layers(net).values():
        layer.update_mask(2)
    net.train()
    with torch.no_grad():
        net(torch.from_numpy(x))
    return net.eval()


@pytest.mark.rtl
@pytest.mark.slow
def test_stride2_resnet_under_verilator_equals_the_integer_program(tmp_path, fmnist, tool):
    """The stride-2 ResNet as one all-RTL accelerator: FINN's stride-2 sliding windows (default and,
    for the 1x1 projections, parallel style) feeding our MVAU_lut_rtl, stitched, FIFOs sized,
    simulated with bubbles and back-pressure on real images: equal to the integer program."""
    pytest.importorskip("finn")
    tool("g++")
    from winoforge.hw.flow import build_package, export_run
    from winoforge.hw.rtl_sim import run_package

    x, raw, _ = fmnist
    export_run(stride2_student(x), tmp_path / "s.onnx", check_images=None, progress=False)
    build_package(tmp_path / "s.onnx", "s", board="pynq-z2", target_fps=1000, out_root=tmp_path / "bits",
                  work_root=tmp_path / "build", golden=raw[:2], rtl=True, progress=False)
    report = run_package(tmp_path / "bits" / "s", 12, bubbles=0.3, backpressure=0.3,
                         build_root=tmp_path / "verilator")
    assert report["images"] == 12 and report["mismatches"] == 0 and report["equal"], report


def test_stride2_blocks_build_bit_exact_and_run_on_the_simulated_device(tmp_path, fmnist):
    import torch
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from winoforge.hw.export import head_quantum, output_codes
    from winoforge.hw.flow import build_package, export_run
    from winoforge.model.students import winograd_layers
    from winoforge.runtime import Accelerator

    x, raw, _ = fmnist
    net = stride2_student(x)
    assert net.layer2[0].conv1.stride == (2, 2) and net.layer2[0].shortcut.conv.stride == (2, 2)
    assert len(winograd_layers(net)) == 5  # stem, layer1 (2), layer2.0.conv2, layer3.0.conv2
    export_run(net, tmp_path / "s.onnx", check_images=x[:4], progress=False)
    build_package(tmp_path / "s.onnx", "s", board="pynq-z2", target_fps=1000, out_root=tmp_path / "bits",
                  work_root=tmp_path / "build", golden=raw[:2], progress=False)
    package = tmp_path / "bits" / "s"
    steps = json.loads((package / "reports" / "build_steps.json").read_text())
    assert all(s["verified"] for s in steps), [(s["name"], s["note"]) for s in steps if not s["verified"]]
    model = ModelWrapper(str(package / "dataflow_model.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("WinogradSRBS_rtl") == 5 and ops.count("AddStreams_rtl") == 3
    # each stride-2 conv and projection: FINN's sliding window at stride 2 feeding our LUT MVAU with
    # thresholds (the classifier is the fifth MVAU_lut_rtl); nothing of FINN's HLS but the logits' tail
    assert [op for op in ops if op.endswith("_hls")] == ["ElementwiseMul_hls", "ElementwiseAdd_hls"]
    mvaus = [n for n in model.graph.node if n.op_type == "MVAU_lut_rtl"
             and getCustomOp(n).get_nodeattr("noActivation") == 0]
    assert len(mvaus) == 4
    for mvau in mvaus:
        swg = model.find_producer(mvau.input[0])
        assert swg.op_type == "ConvolutionInputGenerator_rtl"
        assert list(getCustomOp(swg).get_nodeattr("Stride")) == [2, 2]
        assert getCustomOp(mvau).get_nodeattr("noActivation") == 0
    assert sorted(getCustomOp(m).get_nodeattr("MW") for m in mvaus) == [8, 16, 9 * 8, 9 * 16]
    golden = np.load(package / "runtime" / "golden.npz")
    with Accelerator.load(package, backend="sim") as acc:
        assert np.array_equal(acc.execute(golden["input"]), golden["output"])
        device = acc.execute(raw[:8].transpose(0, 2, 3, 1).astype(np.uint8))
    head = head_quantum(net, (1, 28, 28))
    with torch.no_grad():
        logits = net(torch.from_numpy(x[:8])).numpy()
    assert np.array_equal(output_codes(head, device), output_codes(head, logits))


def test_downsample_option_is_validated():
    from winoforge.model.students import StudentConfig

    with pytest.raises(ValueError, match="student.downsample='conv' is not allowed; allowed: 'pool', 'stride'"):
        StudentConfig(arch="resnet", downsample="conv")
