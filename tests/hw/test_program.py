"""The simulated device's integer program: exported from real FINN builds (ours and the stock-FINN
baseline) and executed by the numpy-only interpreter, equal to FINN's Python execution of the
accelerator graph for the output and every intermediate tensor (``np.array_equal``)."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest

from winoforge.hw.baseline import direct_baseline
from winoforge.hw.flow import build_package, export_run, reference_student
from winoforge.runtime.program import PARAMS_FILE, PROGRAM_FILE, Program, ProgramError

WIDTHS = [8, "M", 16, "M"]
IMAGES = 6  # executed by FINN one at a time, intermediate tensors compared


@pytest.fixture(scope="module")
def builds(tmp_path_factory, fmnist):
    """Dataflow models of three small builds: F(2,3) Winograd-SRBS, its stock-FINN baseline, and an
    F(4,3) student whose last layer (7x7) crops its tiles."""
    x, _, _ = fmnist
    root = tmp_path_factory.mktemp("program")
    net = reference_student(widths=WIDTHS, calibration=x)
    net4 = reference_student(widths=[8, "M", 16, "M", 16], m=4, calibration=x)
    out = {}
    for name, model, baseline in (("wino", net, False), ("base", direct_baseline(net), True),
                                  ("wino-f43", net4, False)):
        export_run(model, root / f"{name}.onnx", check_images=None, progress=False)
        build_package(root / f"{name}.onnx", name, target_fps=2000, out_root=root / "bits", work_root=root / "build",
                      golden=None, baseline=baseline, progress=False)
        out[name] = root / "bits" / name / "dataflow_model.onnx"
    return root, out


def _load(path):
    from qonnx.core.modelwrapper import ModelWrapper

    return ModelWrapper(str(path))


def _finn_context(model, image_nhwc, scratch):
    """FINN's Python execution of the accelerator graph (specialised nodes as their generic ops),
    every tensor."""
    import qonnx.core.onnx_exec as oxe

    from winoforge.hw.build import generic_view

    view = generic_view(model, scratch)
    iname = view.graph.input[0].name
    return oxe.execute_onnx(view, {iname: image_nhwc.astype(np.float32)}, return_full_exec_context=True)


@pytest.mark.parametrize("name", ["wino", "base", "wino-f43"])
def test_program_equals_finn_python_execution(builds, fmnist, name):
    from winoforge.hw.build import execute_python
    from winoforge.hw.program import export_program

    root, models = builds
    _, raw, _ = fmnist
    model = _load(models[name])
    folder = root / "programs" / name
    spec = export_program(model, folder)
    program = Program.load(folder)
    ops = {n["op"] for n in spec["nodes"]}
    if name.startswith("wino"):
        assert "WinogradSRBS" in ops and "MVAU" in ops
    else:
        assert {"ConvolutionInputGenerator", "MVAU", "FMPadding"} <= ops and "WinogradSRBS" not in ops
    assert {"Thresholding", "Pool", "GlobalAccPool", "ElementwiseMul", "ElementwiseAdd"} <= ops

    images = raw.transpose(0, 2, 3, 1).astype(np.uint8)  # the accelerator takes raw NHWC uint8 pixels
    every = program.run(images[:IMAGES], return_all=True)
    assert set(every) == {program.input_name} | {t for n in spec["nodes"] for t in n["outputs"]}
    for i in range(IMAGES):
        ctx = _finn_context(model, images[i:i + 1], root / "scratch" / name)
        for tensor, value in every.items():
            assert np.array_equal(value[i:i + 1], ctx[tensor]), (name, i, tensor)

    # the final output for the whole batch, against build.execute_python (the build's own reference)
    y = program.run(images)
    assert y.dtype == np.float32 and y.shape == (len(images), 10)
    reference = execute_python(model, raw, root / "scratch" / name)["output"]
    assert np.array_equal(y, reference)
    assert np.array_equal(program.run(images, batch_size=5), y)  # chunking changes nothing
    assert np.array_equal(program.run(images.astype(np.float64)), y)  # any numeric dtype of integer values


def test_io_description(builds):
    from qonnx.custom_op.registry import getCustomOp

    from winoforge.hw.program import export_program

    root, models = builds
    model = _load(models["wino"])
    spec = export_program(model, root / "programs" / "io")
    io = Program.load(root / "programs" / "io").io
    assert io == spec["io"]
    first, last = model.graph.node[0], model.graph.node[-1]
    assert io["idt"] == "UINT8" and io["odt"] == "FLOAT32"
    assert io["ishape_normal"] == [1, 28, 28, 1] and io["oshape_normal"] == [1, 10]
    assert io["ishape_folded"] == list(getCustomOp(first).get_folded_input_shape(0))
    assert io["oshape_folded"] == list(getCustomOp(last).get_folded_output_shape(0))
    assert spec["format_version"] == 1
    # integer parameters are stored as integers, the float post-processing as float32
    params = np.load(root / "programs" / "io" / PARAMS_FILE)
    for node in spec["nodes"]:
        for role, key in node["params"].items():
            kind = params[key].dtype.kind
            assert kind == ("f" if node["op"].startswith("Elementwise") else "i"), (node["name"], role)
    U = next(params[n["params"]["U"]] for n in spec["nodes"] if n["op"] == "WinogradSRBS")
    assert U.dtype == np.int8  # INT4 codes


def test_streaming_only_nodes_are_identities(builds, fmnist):
    """FIFOs and data width converters (inserted by later FINN steps) pass the stream through."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType

    from winoforge.hw.program import export_program

    root, models = builds
    _, raw, _ = fmnist
    model = _load(models["wino"])
    first = model.graph.node[0]  # Thresholding_rtl: (1, 28, 28, 1) UINT8
    shape = model.get_tensor_shape(first.output[0])
    consumer = model.find_consumer(first.output[0])
    streamed = first.output[0]
    for i, (op, attrs) in enumerate((
            ("StreamingFIFO_rtl", dict(depth=32, folded_shape=[1, 28, 28, 1, 1], dataType="UINT8")),
            ("StreamingDataWidthConverter_rtl", dict(inShape=shape, outShape=shape, inWidth=8, outWidth=8,
                                                     dataType="UINT8")))):
        out = f"{streamed}_{i}"
        model.graph.value_info.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, shape))
        model.set_tensor_datatype(out, DataType["UINT8"])
        model.graph.node.insert(1 + i, helper.make_node(op, [streamed], [out], name=f"{op}_0", backend="fpgadataflow",
                                                        domain="finn.custom_op.fpgadataflow.rtl", **attrs))
        streamed = out
    consumer.input[0] = streamed
    spec = export_program(model, root / "programs" / "streams")
    assert [n["op"] for n in spec["nodes"]][:4] == ["Thresholding", "StreamingFIFO", "StreamingDataWidthConverter",
                                                    "WinogradSRBS"]
    images = raw[:2].transpose(0, 2, 3, 1)
    every = Program.load(root / "programs" / "streams").run(images, return_all=True)
    for i in range(len(images)):
        ctx = _finn_context(model, images[i:i + 1], root / "scratch" / "streams")
        for tensor, value in every.items():
            assert np.array_equal(value[i:i + 1], ctx[tensor]), (i, tensor)


def test_unsupported_node_is_refused_with_its_name(builds, tmp_path):
    from winoforge.hw.program import UnsupportedProgramNode, export_program

    _, models = builds
    model = _load(models["base"])
    odd = copy.deepcopy(model)
    node = next(n for n in odd.graph.node if n.op_type in ("Pool_hls", "Pool_rtl"))  # open-RTL builds: Pool_rtl
    node.op_type = "UpsampleNearestNeighbour_hls"
    with pytest.raises(UnsupportedProgramNode, match=rf"node {node.name} \(op type UpsampleNearestNeighbour_hls\)"
                                                     r".*supported ops: .*MVAU"):
        export_program(odd, tmp_path / "odd")

    plain = copy.deepcopy(model)
    node = plain.graph.node[1]
    node.op_type, node.domain = "Relu", ""
    with pytest.raises(UnsupportedProgramNode, match=rf"node {node.name} \(op type Relu\)"):
        export_program(plain, tmp_path / "plain")

    avg = copy.deepcopy(model)
    from qonnx.custom_op.registry import getCustomOp

    node = next(n for n in avg.graph.node if n.op_type in ("Pool_hls", "Pool_rtl"))
    getCustomOp(node).set_nodeattr("Function", "AvgPool")
    with pytest.raises(UnsupportedProgramNode, match=rf"node {node.name} .*AvgPool"):
        export_program(avg, tmp_path / "avg")


def test_corrupt_or_incomplete_program_is_refused(builds, tmp_path):
    from winoforge.hw.program import export_program

    _, models = builds
    good = tmp_path / "good"
    spec = export_program(_load(models["wino"]), good)
    params = dict(np.load(good / PARAMS_FILE))
    key = next(n["params"]["U"] for n in spec["nodes"] if n["op"] == "WinogradSRBS")

    def variant(name):
        folder = tmp_path / name
        shutil.copytree(good, folder)
        return folder

    missing = variant("missing")
    np.savez(missing / PARAMS_FILE, **{k: v for k, v in params.items() if k != key})
    with pytest.raises(ProgramError, match=f"{key}.*missing"):
        Program.load(missing)

    changed = variant("changed")  # one Winograd weight flipped: same keys, dtypes and shapes
    U = params[key].copy()
    U.flat[np.flatnonzero(U)[0]] *= -1
    np.savez(changed / PARAMS_FILE, **{**params, key: U})
    with pytest.raises(ProgramError, match=f"{key}.*sha256"):
        Program.load(changed)

    truncated = variant("truncated")
    data = (good / PARAMS_FILE).read_bytes()
    (truncated / PARAMS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ProgramError, match="corrupt"):
        Program.load(truncated)

    unknown = variant("unknown")  # a node refers to a parameter the table does not hold
    bad = json.loads((good / PROGRAM_FILE).read_text())
    bad["nodes"][1]["params"]["U"] = "nope"
    (unknown / PROGRAM_FILE).write_text(json.dumps(bad))
    with pytest.raises(ProgramError, match="'nope'"):
        Program.load(unknown)

    version = variant("version")
    bad = json.loads((good / PROGRAM_FILE).read_text())
    bad["format_version"] = 99
    (version / PROGRAM_FILE).write_text(json.dumps(bad))
    with pytest.raises(ProgramError, match="format_version 99"):
        Program.load(version)

    program = Program.load(good)
    with pytest.raises(ProgramError, match="UINT8"):
        program.run(np.full((1, 28, 28, 1), 256))
    with pytest.raises(ProgramError, match="UINT8 integers"):
        program.run(np.full((1, 28, 28, 1), 0.5))
    with pytest.raises(ProgramError, match=r"\(N, 28, 28, 1\)"):
        program.run(np.zeros((1, 1, 28, 28), dtype=np.uint8))
