"""FINN builds: the Winograd-SRBS flow and the stock-FINN baseline, end to end on a small student,
with the Python execution compared bit-exactly after every step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from winoforge.hw.baseline import direct_baseline
from winoforge.hw.build import BuildStepError, run_build, make_build_config, winograd_steps
from winoforge.hw.flow import (CorruptPackageError, build_package, export_run, reference_student,
                               verify_package)

WIDTHS = [8, "M", 16, "M"]


@pytest.fixture(scope="module")
def data(fmnist):
    return fmnist


@pytest.fixture(scope="module")
def exported(tmp_path_factory, data):
    x, raw, _ = data
    root = tmp_path_factory.mktemp("hwbuild")
    net = reference_student(widths=WIDTHS, calibration=x)
    export_run(net, root / "student.onnx", check_images=x[:4], progress=False)
    export_run(direct_baseline(net), root / "baseline.onnx", check_images=x[:4], progress=False)
    return root, net


def _steps(root, name):
    return json.loads((root / "bitstreams" / name / "reports" / "build_steps.json").read_text())


def test_winograd_build_is_bit_exact_through_every_step(exported, data):
    root, _ = exported
    _, raw, _ = data
    manifest = build_package(root / "student.onnx", "wino", board="pynq-z2", target_fps=5000,
                             out_root=root / "bitstreams", work_root=root / "build", golden=raw[:2], codegen=True,
                             progress=False)
    steps = _steps(root, "wino")
    assert [s["name"] for s in steps][:3] == ["step_winograd_import", "step_qonnx_to_finn", "step_tidy_up"]
    assert all(s["verified"] for s in steps), steps
    est = json.loads((root / "bitstreams" / "wino" / "reports" / "estimates.json").read_text())
    wino = [layer for layer in est["layers"] if layer["op_type"] == "WinogradSRBS_rtl"]
    assert len(wino) == 2
    assert not any(layer["op_type"].startswith(("MVAU", "ConvolutionInputGenerator")) and "conv" in layer["name"]
                   for layer in est["layers"])
    for layer in wino:
        assert layer["cycles"] >= layer["ideal_cycles"] > 0
    assert est["fps"] >= 5000  # folded to the target
    assert manifest["flow"] == "winograd-srbs" and manifest["board"] == "Pynq-Z2"
    assert "model.onnx" in manifest["files"] and manifest["provenance"]["vivado"] is False
    # code generation: FINN's RTL layers get HDL, ours its packed SRBS weights and parameters
    hdl = [f for f in manifest["files"] if f.startswith("hdl/WinogradSRBS_rtl_1/")]
    assert {"hdl/WinogradSRBS_rtl_1/params.json", "hdl/WinogradSRBS_rtl_1/WinogradSRBS_rtl_1_weights_values.memh",
            "hdl/WinogradSRBS_rtl_1/WinogradSRBS_rtl_1_weights_indices.memh",
            "hdl/WinogradSRBS_rtl_1/WinogradSRBS_rtl_1.sv"} <= set(hdl)
    assert any(f.startswith("hdl/Thresholding_rtl_0/") and f.endswith(".v") for f in manifest["files"])
    # every intermediate model is kept
    assert len(list((root / "build" / "wino" / "intermediate_models").glob("[0-9][0-9]_*.onnx"))) == len(steps)


def test_baseline_build_uses_stock_finn_layers(exported, data):
    root, _ = exported
    _, raw, _ = data
    build_package(root / "baseline.onnx", "base", target_fps=5000, out_root=root / "bitstreams",
                  work_root=root / "build", golden=raw[:1], baseline=True, progress=False)
    assert all(s["verified"] for s in _steps(root, "base"))
    est = json.loads((root / "bitstreams" / "base" / "reports" / "estimates.json").read_text())
    ops = {layer["op_type"] for layer in est["layers"]}
    assert any(o.startswith("MVAU") for o in ops) and any(o.startswith("ConvolutionInputGenerator") for o in ops)
    assert not any(o.startswith("WinogradSRBS") for o in ops)


def test_package_is_refused_when_a_file_changes(exported, data):
    root, _ = exported
    _, raw, _ = data
    build_package(root / "student.onnx", "pkg", target_fps=1000, out_root=root / "bitstreams",
                  work_root=root / "build", golden=None, progress=False)
    package = root / "bitstreams" / "pkg"
    verify_package(package)
    report = package / "reports" / "estimates.json"
    report.write_text(report.read_text().replace("1", "2", 1))
    with pytest.raises(CorruptPackageError, match="estimates.json"):
        verify_package(package)


def test_unreachable_target_fails_naming_the_step(exported, data):
    root, _ = exported
    _, raw, _ = data
    # above the clock: refused before any work, in frames per second
    with pytest.raises(ValueError, match="more than PYNQ-Z2 can reach: its 100 MHz clock allows at most"):
        build_package(root / "student.onnx", "toofast", target_fps=1e9, out_root=root / "bitstreams",
                      work_root=root / "build", golden=None, progress=False)
    # below the clock but beyond what the layers can fold to: the folding step stops, said in frames
    # per second, the step's error (named) chained
    with pytest.raises(ValueError, match=r"more than this model reaches: .* frames per second") as said:
        build_package(root / "student.onnx", "toofast", target_fps=1e7, out_root=root / "bitstreams",
                      work_root=root / "build", golden=None, progress=False)
    cause = said.value.__cause__
    assert isinstance(cause, BuildStepError) and cause.step == "step_winograd_folding"
    kept = sorted(p.name for p in cause.models_dir.glob("[0-9][0-9]_*.onnx"))
    assert kept and kept[-1].endswith("step_specialize_layers.onnx")  # the models written so far stay


def test_unsupported_layer_is_named(tmp_path, data):
    x, raw, _ = data
    net = reference_student(widths=WIDTHS, calibration=x)
    net.features.block2.relu = nn.Sequential(net.features.block2.relu, _Sine())  # no FINN layer for Sin
    export_run(net, tmp_path / "odd.onnx", check_images=None, progress=False)
    with pytest.raises(BuildStepError) as info:
        build_package(tmp_path / "odd.onnx", "odd", out_root=tmp_path / "bits", work_root=tmp_path / "build",
                      golden=None, progress=False)
    message = str(info.value)
    assert "op type Sin" in message and "Sin" in message
    assert info.value.step in ("step_check_supported", "step_winograd_streamline")


class _Sine(nn.Module):
    def forward(self, x):
        return torch.sin(getattr(x, "value", x))


def test_a_step_that_changes_the_result_is_caught(exported, data):
    root, _ = exported
    _, raw, _ = data

    def step_corrupt(model, cfg):  # flips the signs of the first output channel's Winograd weights
        node = model.get_nodes_by_op_type("WinogradConv")[1]
        U = model.get_initializer(node.input[1]).copy()
        U[0] = -U[0]
        model.set_initializer(node.input[1], U)
        return model

    steps = winograd_steps()
    steps.insert(1, step_corrupt)
    cfg = make_build_config(root / "build" / "corrupt", "pynq-z2", 1000)
    with pytest.raises(BuildStepError, match="step_corrupt.*differs from the previous level"):
        run_build(root / "student.onnx", cfg, steps, golden=raw[:4], progress=False)


def test_design_too_large_for_the_board_is_refused(exported, data, monkeypatch):
    from winoforge.hw import boards

    root, _ = exported
    tiny = boards.Board("Tiny", "Pynq-Z2", "xc7z020clg400-1", 1000, 2000, 2, 0, 0, 100.0)
    cfg = make_build_config(root / "build" / "tiny", "pynq-z2", 1000)
    monkeypatch.setattr(boards, "get_board", lambda name: tiny)  # only the fit check looks the board up
    with pytest.raises(BuildStepError, match="step_check_resources.*does not fit Tiny: LUT: needs") as info:
        run_build(root / "student.onnx", cfg, winograd_steps(), golden=None, progress=False)
    assert info.value.step == "step_check_resources"


def test_cli_export_and_build(tmp_path, data, capsys):
    from winoforge.cli import main

    onnx = tmp_path / "m.onnx"
    assert main(["export", "--out", str(onnx), "--baseline-out", str(tmp_path / "b.onnx"), "--check-images", "4",
                 "--widths", "8,M,16,M"]) == 0
    assert json.loads(onnx.with_suffix(".check.json").read_text())["exact"] is True
    assert main(["build", "--onnx", str(onnx), "--name", "cli", "--target-fps", "2000", "--verify-images", "1",
                 "--out-root", str(tmp_path / "bits"), "--work-root", str(tmp_path / "build")]) == 0
    verify_package(tmp_path / "bits" / "cli")
    assert main(["build", "--onnx", str(tmp_path / "b.onnx"), "--name", "cli-base", "--baseline",
                 "--verify-images", "0", "--out-root", str(tmp_path / "bits"),
                 "--work-root", str(tmp_path / "build")]) == 0
    assert main(["build", "--onnx", str(onnx), "--name", "toofast", "--target-fps", "1e7", "--verify-images", "0",
                 "--out-root", str(tmp_path / "bits"), "--work-root", str(tmp_path / "build")]) != 0
    assert "frames per second" in capsys.readouterr().err  # the user's terms, not cycles
    capsys.readouterr()
    # the packages run on the simulated device: the golden self-test, then real test images
    assert main(["run", str(tmp_path / "bits" / "cli"), "--backend", "sim", "--images", "16", "--batch-size", "5"]) == 0
    out = capsys.readouterr().out
    assert "backend='sim'" in out and "bit-exact with the build's FINN execution: True" in out
    assert "Fashion-MNIST test images:" in out and "/16 correct" in out
    assert main(["run", str(tmp_path / "bits" / "cli-base"), "--images", "0"]) == 0  # built without golden images
    assert "self-test: not possible" in capsys.readouterr().out
    params = tmp_path / "bits" / "cli" / "runtime" / "params.npz"
    params.write_bytes(params.read_bytes()[:-1])
    assert main(["run", str(tmp_path / "bits" / "cli"), "--images", "0"]) == 1
    assert "runtime/params.npz" in capsys.readouterr().err


def test_a_trained_run_exports_and_builds(tmp_path, data, capsys):
    """winoforge distill (tiny, synthetic) -> winoforge export --run -> winoforge build."""
    from pathlib import Path

    from winoforge.cli import main

    config = Path(__file__).resolve().parents[2] / "configs" / "fmnist_distill_w4a4_srbs25_pynqz2.toml"
    run = tmp_path / "run"
    assert main(["distill", "--config", str(config), "--set", f"out_dir={run}", "--set", "teachers=[]",
                 "--set", "hints=[]", "--set", "hint_weights=[]", "--set", "distill.kd=none",
                 "--set", "distill.hint_weight=0",
                 "--set", "data.name=synthetic", "--set", "data.train_subset=128", "--set", "data.test_subset=64",
                 "--set", "optim.epochs=1", "--set", "optim.warmup_epochs=0", "--set", "prune.dense_epochs=0",
                 "--set", "prune.span_epochs=1", "--set", 'student.widths=[8,"M",16,"M"]']) == 0
    onnx = tmp_path / "m.onnx"
    assert main(["export", "--run", str(run), "--out", str(onnx), "--check-images", "8"]) == 0
    assert "trained student" in capsys.readouterr().out
    assert json.loads(onnx.with_suffix(".check.json").read_text())["exact"] is True
    assert main(["build", "--onnx", str(onnx), "--name", "trained", "--target-fps", "2000", "--verify-images", "2",
                 "--out-root", str(tmp_path / "bits"), "--work-root", str(tmp_path / "build")]) == 0
    steps = json.loads((tmp_path / "bits" / "trained" / "reports" / "build_steps.json").read_text())
    assert all(s["verified"] for s in steps)


def test_f43_student_with_a_cropped_layer_builds_exactly(tmp_path, data):
    x, raw, _ = data
    net = reference_student(widths=[8, "M", 16, "M", 16], m=4, calibration=x)  # last layer 7x7: tiles cropped
    export_run(net, tmp_path / "m4.onnx", check_images=x[:4], progress=False)
    build_package(tmp_path / "m4.onnx", "m4", target_fps=2000, out_root=tmp_path / "bits",
                  work_root=tmp_path / "build", golden=raw[:2], progress=False)
    steps = json.loads((tmp_path / "bits" / "m4" / "reports" / "build_steps.json").read_text())
    assert all(s["verified"] for s in steps)
    est = json.loads((tmp_path / "bits" / "m4" / "reports" / "estimates.json").read_text())
    assert sum(layer["op_type"] == "WinogradSRBS_rtl" for layer in est["layers"]) == 3
