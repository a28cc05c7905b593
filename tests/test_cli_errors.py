"""Every subcommand refuses bad input with one line on stderr that names the option, a non-zero
exit status and no traceback; the console shows no third-party warnings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from winoforge import cli
from winoforge.cli import main

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "notebooks" / "packages" / "fmnist-tiny"
CONFIG = "configs/fmnist_distill_w4a4_srbs25.toml"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Bad files of every kind, and ONNX models that pass or fail the winoforge-export check."""
    import onnx
    from onnx import TensorProto, helper

    d = tmp_path_factory.mktemp("bad")
    (d / "binary.toml").write_bytes(b"\xff\xfe\x00binary")
    (d / "broken.toml").write_text("[optim\nepochs = 1\n")
    (d / "junk.onnx").write_bytes(bytes(range(256)) * 4)
    (d / "junk.npy").write_bytes(b"not an array")
    np.save(d / "wrong_shape.npy", np.zeros((2, 27, 28, 1), np.uint8))
    (d / "a_file").write_text("x")
    (d / "empty_dir").mkdir()
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 28, 28])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    plain = helper.make_model(graph)
    onnx.save(plain, d / "plain.onnx")
    # the metadata of a winoforge export (a Winograd layer): the input checks pass, so the target is checked
    for key, value in (("winoforge.head", {"scale": 1.0}), ("winoforge.layers", {"features.block1.conv": {"m": 2}})):
        prop = plain.metadata_props.add()
        prop.key, prop.value = key, json.dumps(value)
    onnx.save(plain, d / "winograd_like.onnx")
    return d


# (argv with {d} for the files folder, what the one line must contain)
CASES = [
    (["counts", "--keep", "0"], "--keep"),
    (["counts", "--network", "alexnet"], "--network"),
    (["counts", "--m", "3"], "--m"),
    (["counts", "--sub-row", "eight"], "--sub-row"),
    (["counts", "--sub-row", "8", "--keep", "9"], "keep=9"),
    (["counts", "--w-bits", "-1"], "--w-bits"),
    (["counts", "--a-bits", "4.5"], "--a-bits"),
    (["bits", "--in-bits", "0", "--weight-bits", "4", "--cin", "1"], "--in-bits"),
    (["bits", "--in-bits", "8", "--weight-bits", "4"], "--cin"),
    (["bits", "--in-bits", "8", "--weight-bits", "4", "--cin", "4", "--m", "5"], "--m"),
    (["bogus-command"], "bogus-command"),
    (["train-teacher", "--config", "{d}/missing.toml"], "--config"),
    (["train-teacher", "--config", "{d}/empty_dir"], "--config"),
    (["train-teacher", "--config", "{d}/binary.toml"], "--config"),
    (["train-teacher", "--config", "{d}/broken.toml"], "--config"),
    (["train-teacher", "--config", "configs/fmnist_teacher_vgg.toml", "--set", "optim.epochs=-1"], "optim.epochs"),
    (["train-teacher", "--config", "configs/fmnist_teacher_vgg.toml", "--set", "arch=alexnet"], "arch"),
    (["train-teacher", "--set", "no_equals_sign"], "no_equals_sign"),
    (["distill", "--config", "{d}/missing.toml"], "--config"),
    (["distill", "--config", CONFIG, "--set", "teachers=[]"], "teacher"),
    (["distill", "--config", CONFIG, "--set", "prune.keep=9"], "prune.keep"),
    (["distill", "--config", CONFIG, "--set", "teachers=['{d}/empty_dir']"], "teachers[0]"),
    (["distill", "--config", "configs/fmnist_distill_w4a4_mixed.toml", "--no-teacher"], "layer_bits"),
    (["export", "--keep", "9", "--sub-row", "8", "--check-images", "0"], "--keep"),
    (["export", "--widths", "16,X"], "--widths"),
    (["export", "--widths", "M"], "--widths"),
    (["export", "--run", "{d}/missing_run"], "--run"),
    (["export", "--run", "{d}/empty_dir"], "model.json"),
    (["export", "--check-images", "-1"], "--check-images"),
    (["export", "--data-dir", "{d}/missing_data"], "--data-dir"),
    (["export", "--out", "{d}/empty_dir"], "--out"),
    (["export", "--out", "{d}/a_file/model.onnx"], "--out"),
    (["export", "--m", "3"], "--m"),
    (["export", "--w-bits", "0"], "--w-bits"),
    (["export", "--a-bits", "x"], "--a-bits"),
    (["export", "--baseline-out", "{d}/a_file/b.onnx"], "--baseline-out"),
    (["build", "--onnx", "{d}/missing.onnx"], "--onnx"),
    (["build", "--onnx", "{d}/junk.onnx"], "not an ONNX model"),
    (["build", "--onnx", "{d}/plain.onnx"], "winoforge.head"),
    (["build", "--onnx", "{d}/winograd_like.onnx", "--target-fps", "1e9"], "100,000,000 frames per second"),
    (["build", "--onnx", "{d}/winograd_like.onnx", "--target-fps", "0"], "--target-fps"),
    (["build", "--onnx", "{d}/winograd_like.onnx", "--target-fps", "nan"], "--target-fps"),
    (["build", "--onnx", "{d}/winograd_like.onnx", "--mvau-wwidth-max", "0"], "--mvau-wwidth-max"),
    (["build", "--onnx", "{d}/winograd_like.onnx", "--board", "de10-nano"], "board"),
    (["build", "--onnx", "{d}/winograd_like.onnx", "--baseline"], "Winograd layers"),
    (["build", "--onnx", "{d}/winograd_like.onnx", "--name", "../escape"], "--name"),
    (["build", "--onnx", "{d}/winograd_like.onnx", "--verify-images", "-2"], "--verify-images"),
    (["build", "--onnx", "{d}/winograd_like.onnx", "--out-root", "{d}/a_file"], "--out-root"),
    (["build", "--onnx", "{d}/winograd_like.onnx", "--work-root", "{d}/a_file/sub"], "--work-root"),
    (["build", "--onnx", "{d}/winograd_like.onnx", "--data-dir", "{d}/missing_data"], "--data-dir"),
    (["build", "--onnx", "{d}/winograd_like.onnx", "--vendor-layers", "--rtl"], "--vendor-layers"),
    (["run", "{d}/missing_package"], "package"),
    (["run", "{d}/empty_dir"], "manifest"),
    (["run", str(PACKAGE), "--backend", "fpga"], "--backend"),
    (["run", str(PACKAGE), "--images", "-1"], "--images"),
    (["run", str(PACKAGE), "--batch-size", "0"], "--batch-size"),
    (["run", str(PACKAGE), "--data-dir", "{d}/missing_data"], "--data-dir"),
    (["run", str(PACKAGE), "--input", "{d}/missing.npy"], "--input"),
    (["run", str(PACKAGE), "--images", "0", "--input", "{d}/junk.npy"], "--input"),
    (["run", str(PACKAGE), "--images", "0", "--input", "{d}/wrong_shape.npy"], "expected an (N, 28, 28, 1)"),
    (["run", str(PACKAGE), "--input", "{d}/junk.npy", "--output", "{d}/a_file/y.npy"], "--output"),
    (["demo", "--target-fps", "0"], "--target-fps"),
    (["demo", "--seed", "-1"], "--seed"),
    (["demo", "--work", "{d}/a_file"], "--work"),
    (["demo", "--data-dir", "{d}/missing_data"], "--data-dir"),
    (["demo", "--pretrained", "Bad Name"], "--pretrained"),
    (["demo", "--pretrained", "resnet50"], "allowed: fmnist-vgg-teacher"),
    (["demo", "--models-dir", "{d}/empty_dir"], "is not in"),
    (["demo", "--models-dir", "{d}/missing_models"], "--models-dir"),
    (["demo", "--widths", "8,Y"], "--widths"),
    (["demo", "--or-reference", "8,Z"], "--or-reference"),
    (["demo", "--images", "0"], "--images"),
    (["demo", "--board", "de10-nano", "--widths", "4,M", "--images", "1"], "board"),
    (["demo", "--report", "{d}/empty_dir"], "--report"),
    (["export", "--pretrained", "resnet50", "--check-images", "0"], "allowed: fmnist-vgg-teacher"),
    (["export", "--pretrained", "fmnist-vgg-teacher", "--run", "{d}/empty_dir"], "--run"),
    (["export", "--models-dir", "{d}/missing_models"], "--models-dir"),
    (["models", "remove"], "action"),
    (["models", "add", "{d}/missing_run"], "run_dir"),
    (["models", "add", "{d}/empty_dir", "--name", "x", "--command", "c", "--trained-on", "t"], "model.json"),
    (["models", "add", "{d}/empty_dir", "--name", "Bad Name"], "--name"),
    (["models", "add", "{d}/empty_dir", "--name", "x", "--command", " ", "--trained-on", "t"], "command"),
    (["models", "add", "{d}/empty_dir", "--name", "x", "--command", "c", "--trained-on", ""], "--trained-on"),
    (["models", "add", "{d}/empty_dir", "--commit", "xyz"], "--commit"),
    (["models", "add", "{d}/empty_dir", "--name", "x", "--command", "c", "--trained-on", "t", "--notes", "n",
      "--models-dir", "{d}/a_file"], "--models-dir"),
    (["models", "list", "--notes", "n"], "--notes"),
]


def subcommands(parser=None) -> dict:
    parser = parser or cli.build_parser()
    return parser._subparsers._group_actions[0].choices  # noqa: SLF001 -- argparse has no API for it


def run_main(argv, capfd):
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse ends the process itself
        status = stop.code
    out, err = capfd.readouterr()
    return status, out, err


@pytest.mark.parametrize("argv, names", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_clear_line(argv, names, files, capfd, monkeypatch):
    monkeypatch.chdir(ROOT)  # README-relative config paths
    status, out, err = run_main([a.replace("{d}", str(files)) for a in argv], capfd)
    lines = [line for line in err.splitlines() if line.strip()]
    assert status not in (0, None), (argv, out, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err and "Traceback" not in out
    assert lines[0].startswith(f"winoforge {argv[0]}: " if argv[0] in subcommands() else "winoforge: "), lines[0]
    assert names in lines[0], lines[0]


def test_every_option_of_every_subcommand_is_exercised():
    """A new option must get a bad-input case above (or be a flag, which cannot be bad)."""
    parser = cli.build_parser()
    covered = {(a[0], opt) for a, _ in CASES for opt in a[1:] if opt.startswith("--")}
    covered |= {(a[0], "package") for a, _ in CASES if a[0] == "run"}
    covered |= {("models", "action"), ("models", "run_dir")}  # the cases "models remove", "models add <missing>"
    missing = []
    for name, sub in subcommands(parser).items():
        for action in sub._actions:  # noqa: SLF001
            if action.nargs == 0 or action.dest == "help":
                continue  # flags (store_true) and --help take no value
            opt = action.option_strings[0] if action.option_strings else action.dest
            if (name, opt) not in covered:
                missing.append(f"{name} {opt}")
    assert not missing, f"options without a bad-input case: {missing}"


def test_run_reports_the_layout_it_took(tmp_path, capfd):
    from winoforge.runtime.idx import fashion_mnist_arrays

    images = fashion_mnist_arrays(None, "test")[0][:8]
    np.save(tmp_path / "nhwc.npy", images[:, :, :, None])
    np.save(tmp_path / "nchw.npy", images[:, None])
    outputs = {}
    for name in ("nhwc", "nchw"):
        status, out, err = run_main(["run", str(PACKAGE), "--images", "0", "--input", str(tmp_path / f"{name}.npy")],
                                    capfd)
        assert status == 0, err
        assert f"8 inputs ({name.upper()})" in out
        outputs[name] = np.load(tmp_path / f"{name}.out.npy")
    assert np.array_equal(outputs["nhwc"], outputs["nchw"])


def test_console_holds_no_third_party_warnings(tmp_path):
    """The real console of a command that imports torch and Brevitas: one line, ours."""
    proc = subprocess.run([sys.executable, "-m", "winoforge.cli", "distill", "--config", CONFIG, "--set", "hints=7"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [proc.stderr.strip()], proc.stderr
    assert proc.stderr.startswith("winoforge distill: error: ") and "hints" in proc.stderr


@pytest.mark.slow
def test_export_console_is_the_projects_own(tmp_path):
    """Export runs torch, Brevitas's quantizers and the qonnx executor: none of their known warnings
    reach the console, and any other goes to the log file."""
    proc = subprocess.run([sys.executable, "-m", "winoforge.cli", "export", "--widths", "4,M", "--check-images", "4",
                           "--out", str(tmp_path / "m.onnx")], capture_output=True, text=True, cwd=tmp_path,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    console = proc.stdout + proc.stderr
    for foreign in ("Warning", "CUDA_HOME", "fast_hadamard", "Named tensors", "site-packages"):
        assert foreign not in console, console
