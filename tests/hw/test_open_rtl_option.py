"""The layer choice of a build: our open RTL layers (default) or FINN's HLS/DSP variants
(``winoforge build --vendor-layers`` / ``build_package(open_rtl=False)``), both bit-exact through
every step's Python execution."""

from __future__ import annotations

import json

import pytest
from qonnx.core.modelwrapper import ModelWrapper

from winoforge.hw.flow import export_run, reference_student

OURS = {"Pool_rtl", "GlobalAccPool_rtl", "MVAU_lut_rtl"}


@pytest.fixture(scope="module")
def student(tmp_path_factory, fmnist):
    x, _, _ = fmnist
    root = tmp_path_factory.mktemp("open_rtl_option")
    export_run(reference_student(widths=[8, "M", 16, "M"], calibration=x), root / "student.onnx",
               check_images=x[:2], progress=False)
    return root


def _ops(package) -> set[str]:
    return {n.op_type for n in ModelWrapper(str(package / "dataflow_model.onnx")).graph.node}


@pytest.mark.parametrize("vendor", [False, True], ids=["open-rtl", "vendor-layers"])
def test_build_layer_choice(student, vendor, capsys):
    from winoforge.cli import main

    argv = ["build", "--onnx", str(student / "student.onnx"), "--name", f"v{int(vendor)}", "--target-fps", "2000",
            "--verify-images", "1", "--out-root", str(student / "bits"), "--work-root", str(student / "build")]
    assert main(argv + (["--vendor-layers"] if vendor else [])) == 0
    package = student / "bits" / f"v{int(vendor)}"
    manifest = json.loads((package / "manifest.json").read_text())
    steps = json.loads((package / "reports" / "build_steps.json").read_text())
    assert all(s["verified"] for s in steps), steps  # every step bit-exact with the level before
    names = [s["name"] for s in steps]
    ops = _ops(package)
    if vendor:
        assert manifest["layers"] == "vendor" and "step_open_rtl_layers" not in names
        assert not ops & OURS and {"Pool_hls", "GlobalAccPool_hls"} <= ops
        assert ops & {"MVAU_hls", "MVAU_rtl"}
    else:
        assert manifest["layers"] == "open-rtl" and "step_open_rtl_layers" in names
        assert OURS <= ops and not ops & {"Pool_hls", "GlobalAccPool_hls", "MVAU_hls", "MVAU_rtl"}
    capsys.readouterr()
