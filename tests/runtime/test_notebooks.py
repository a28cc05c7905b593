"""The notebooks execute from top to bottom on the committed package and the runtime's
results in them are the real ones (numpy only: runs under numpy 1.x and 2.x)."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pytest

from winoforge.runtime import Accelerator
from winoforge.runtime.idx import FASHION_MNIST_DIR, fashion_mnist_arrays

pytestmark = pytest.mark.portable

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
# the notebook's own choice: the registry student's package (`make demo-package`) once built, else the tiny one
PACKAGE = next(p for p in (NOTEBOOKS / "packages" / "fmnist-vgg-pynqz2-srbs75", NOTEBOOKS / "packages" / "fmnist-tiny")
               if (p / "manifest.json").is_file())
# section 6: the registry's ResNet-8 student (`make demo-package DEMO_MODEL=fmnist-resnet8-pynqz2-srbs75`)
RES_PACKAGE = NOTEBOOKS / "packages" / "fmnist-resnet8-pynqz2-srbs75"


def _need_fashion_mnist() -> None:
    if not FASHION_MNIST_DIR.is_dir():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI installs dataset-fashion-mnist")
        pytest.skip("Debian's dataset-fashion-mnist is not installed")


def _text(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


def test_the_committed_package_is_intact_and_bit_exact():
    with Accelerator.load(PACKAGE, backend="sim", batch_size=7) as acc:
        test = acc.self_test()
        assert test["equal"] and test["images"] >= 16, test
        assert acc.package.manifest["provenance"]["student"]["density"] == 0.25


def test_the_committed_resnet_package_is_intact_and_bit_exact():
    """The residual student's package: every file's sha256, its golden images equal, and the
    residual structure in its integer program (three forks, three integer adds, two projections)."""
    with Accelerator.load(RES_PACKAGE, backend="sim", batch_size=5) as acc:
        test = acc.self_test()
        assert test["equal"] and test["images"] >= 16, test
        student = acc.package.manifest["provenance"]["student"]
        assert student["pretrained"] == "fmnist-resnet8-pynqz2-srbs75" and student["density"] == 0.25
        types = [node["op_type"] for node in acc.program.nodes]
    assert types.count("DuplicateStreams_rtl") == 3 and types.count("AddStreams_rtl") == 3
    assert types.count("WinogradSRBS_rtl") == 7 and types.count("MVAU_lut_rtl") == 3


def test_inference_notebook_runs_and_reports_what_the_runtime_measures():
    nbformat = pytest.importorskip("nbformat")  # the [notebooks] extra: installed in both environments by make setup
    from nbclient import NotebookClient

    _need_fashion_mnist()
    nb = nbformat.read(NOTEBOOKS / "fmnist_inference.ipynb", as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace("IMAGES = 2000", "IMAGES = 300")
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    text = _text(nb)
    assert "'equal': True" in text and "backend='sim'" in text
    assert f"package packages/{PACKAGE.name}: student" in text  # the notebook says which package it opened
    reported = float(re.search(r"300 test images: accuracy ([0-9.]+)%", text).group(1)) / 100
    # the same images through the runtime here: the notebook printed the measured accuracy
    images, labels = fashion_mnist_arrays(split="test")
    with Accelerator.load(PACKAGE, backend="sim", batch_size=100) as acc:
        measured = float((acc.predict(images[:300, :, :, None]) == labels[:300]).mean())
    assert reported == pytest.approx(measured, abs=5e-5)  # printed with two decimals of a percent
    assert measured > 0.6  # a trained student, far above chance (0.1): the package is not a random network
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for cell in nb.cells for o in cell.get("outputs", []))
    # section 5: new weights through the weight DMAs of packages/fmnist-tiny-rw, then the package's back
    assert "WinogradSRBS_rtl_1: SRBS 2 of 8, 1024 words of 64 bits through idma2" in text
    assert "self-test after writing the package's weights back: {'images': 16, 'equal': True" in text
    acc5 = {k: float(v) for k, v in re.findall(r"^(package weights written back|pruned at run time|"
                                                r"package weights) ?\(?.*?: ([0-9.]+)% on 300 test images", text, re.M)}
    assert len(acc5) == 3 and acc5["package weights"] == acc5["package weights written back"]
    assert acc5["pruned at run time"] != acc5["package weights"]  # the pruned set did reach the device
    # section 6: the residual student, measured again here on the same 300 images
    assert "3 DuplicateStreams (forks), 3 AddStreams (residual sums)" in text
    res_reported = float(re.search(r"fmnist-resnet8-pynqz2-srbs75: 300 test images: accuracy ([0-9.]+)%", text).group(1))
    with Accelerator.load(RES_PACKAGE, backend="sim", batch_size=100) as res:
        res_measured = float((res.predict(images[:300, :, :, None]) == labels[:300]).mean())
    assert res_reported / 100 == pytest.approx(res_measured, abs=5e-5) and res_measured > 0.6
    # section 4: the pynq backend through pynq's own code on a simulated device (board environment)
    if importlib.util.find_spec("pynq") is not None:
        assert "backend='pynq'" in text and "overlay: pynq.overlay.Overlay" in text
        assert "predictions of 500 images equal to the sim backend's: True" in text
    else:
        assert "pynq is not installed in this environment" in text


def test_cli_run_on_the_committed_package(tmp_path, capsys):
    from winoforge.cli import main

    with np.load(PACKAGE / "runtime" / "golden.npz") as golden:
        x, expected = golden["input"], golden["output"]
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(PACKAGE), "--backend", "sim", "--images", "0", "--input", str(tmp_path / "x.npy")]) == 0
    out = capsys.readouterr().out
    assert "bit-exact with the build's FINN execution: True" in out and "x.out.npy" in out
    assert np.array_equal(np.load(tmp_path / "x.out.npy"), expected)
    np.save(tmp_path / "bad.npy", x.astype(np.float32) / 255)  # normalised floats: refused, named
    assert main(["run", str(PACKAGE), "--images", "0", "--input", str(tmp_path / "bad.npy")]) == 1
    assert "not normalised floats" in capsys.readouterr().err
