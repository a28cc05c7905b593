"""`winoforge demo` on a registry student: export, both FINN builds, the simulated device over test
images, the report; a missing model stops it, named; the untrained reference is labelled."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from winoforge.cli import main

KEYS = {"accuracy", "torch_accuracy", "images", "mismatches", "fps_est", "baseline_fps_est", "lut", "baseline_lut",
        "dsp", "baseline_dsp", "seconds"}


def _need_fashion_mnist():
    from winoforge.runtime.idx import FASHION_MNIST_DIR

    if not FASHION_MNIST_DIR.is_dir():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI installs dataset-fashion-mnist")
        pytest.skip("Debian's dataset-fashion-mnist is not installed")


def test_demo_on_200_images_of_a_registry_student(tiny_models, tmp_path, capsys):
    _need_fashion_mnist()
    from winoforge.hw.demo import accelerator_logits, torch_logits
    from winoforge.hw.flow import golden_images
    from winoforge.model.pretrained import load_pretrained

    report = tmp_path / "results" / "demo_report.json"
    assert main(["demo", "--models-dir", str(tiny_models), "--images", "200", "--work", str(tmp_path / "work"),
                 "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "trained student fmnist-vgg-pynqz2-srbs75: W4A4 Winograd F(2,3) vgg 8,M,16,M" in out
    r = json.loads(report.read_text())
    assert KEYS <= set(r) and r["images"] == 200 and r["mismatches"] == 0 and r["trained"] is True
    assert (tmp_path / "results" / "demo_confusion.png").stat().st_size > 10_000
    assert sum(map(sum, r["confusion"])) == 200
    assert r["fps_est"] > 0 and r["baseline_fps_est"] > 0 and r["lut"] > 0 and r["baseline_lut"] > 0
    assert f"accuracy {r['accuracy']:.2%} (torch {r['torch_accuracy']:.2%})" in out
    # the report's figures, measured again independently: the package on the sim backend, the
    # registry model in torch, the estimates in the packages
    x, raw, labels = golden_images(200)
    package = tmp_path / "work" / "bitstreams" / "fmnist-vgg-pynqz2-srbs75"
    acc_logits = accelerator_logits(package, raw, progress=False)
    assert r["accuracy"] == float((acc_logits.argmax(1) == labels).mean())
    model, _ = load_pretrained("fmnist-vgg-pynqz2-srbs75", root=tiny_models)
    t_logits = torch_logits(model, x, progress=False)
    assert r["torch_accuracy"] == float((t_logits.argmax(1) == labels).mean())
    from winoforge.hw.export import head_quantum, output_codes

    head = head_quantum(model, (1, 28, 28))
    assert np.array_equal(output_codes(head, acc_logits), output_codes(head, t_logits))
    est = json.loads((package / "reports" / "estimates.json").read_text())
    assert r["fps_est"] == est["fps"] and r["lut"] == est["totals"]["LUT"]
    manifest = json.loads((package / "manifest.json").read_text())
    assert manifest["provenance"]["student"]["pretrained"] == "fmnist-vgg-pynqz2-srbs75"


def test_a_flipped_logit_code_counts_as_a_mismatch():
    from winoforge.hw.demo import differing_images

    head = {"quantum": [0.25] * 3, "bias": [0.5, 0.0, -1.0]}
    logits = np.array([[0.5, 0.25, -1.0], [1.0, -0.5, 0.0]], dtype=np.float32)
    assert not differing_images(head, logits, logits.copy()).any()
    other = logits.copy()
    other[1, 2] += 0.25  # one accumulator code off by one
    assert differing_images(head, logits, other).tolist() == [False, True]


def test_the_demo_stops_naming_a_missing_model(tmp_path, capfd):
    empty = tmp_path / "models"
    empty.mkdir()
    assert main(["demo", "--models-dir", str(empty), "--work", str(tmp_path / "work")]) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith("winoforge demo: error: pretrained model 'fmnist-vgg-pynqz2-srbs75' is not in")
    assert "winoforge models add" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "work").exists()  # nothing ran, nothing untrained stood in


def test_the_untrained_reference_is_labelled():
    _need_fashion_mnist()
    from winoforge.hw.demo import demo_student

    student = demo_student(widths=[4, "M"])
    assert student.trained is False and "UNTRAINED" in student.label and "hardware-cost reference" in student.label


def test_a_missing_model_with_or_reference_says_so_and_runs_the_untrained_reference(tmp_path, capfd):
    """`make demo` before the trained student is shipped: the note names the missing model, the run is
    the labelled untrained reference on at most REFERENCE_IMAGES images (here 8), and it is exact."""
    _need_fashion_mnist()
    from winoforge.cli import REFERENCE_IMAGES

    empty = tmp_path / "models"
    empty.mkdir()
    report = tmp_path / "report.json"
    assert main(["demo", "--models-dir", str(empty), "--or-reference", "4,M", "--images", "8", "--work",
                 str(tmp_path / "work"), "--report", str(report), "--target-fps", "50"]) == 0
    out = capfd.readouterr().out
    assert "pretrained model 'fmnist-vgg-pynqz2-srbs75' is not in" in out and "UNTRAINED reference student 4,M" in out
    result = json.loads(report.read_text())
    assert result["trained"] is False and result["images"] == 8 and result["mismatches"] == 0
    assert REFERENCE_IMAGES == 1000
