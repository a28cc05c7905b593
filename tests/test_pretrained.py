"""The model registry (winoforge.model.pretrained): cards, sha256 checks, names, `pretrained:` teachers."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

from winoforge.cli import main
from winoforge.model import pretrained
from winoforge.model.pretrained import Pretrained, allowed_names, list_models, load_pretrained, resolve


def test_cards_record_what_the_issue_asks(tiny_models):
    for name, kind in (("fmnist-vgg-teacher", "teacher"), ("fmnist-vgg-pynqz2-srbs75", "student")):
        card = json.loads((tiny_models / f"{name}.json").read_text())
        assert card["kind"] == kind and card["weights"] == f"{name}.safetensors"
        for key in ("config", "data", "epochs", "test_accuracy", "sha256", "command", "git_commit", "trained_on",
                    "training_seconds", "model"):
            assert card[key] is not None, key
        assert card["epochs"] == 1 and 0 <= card["test_accuracy"] <= 1
        assert card["target_met"] is False  # a 1-epoch toy is far below the shipped model's target, and says so
        assert pretrained.sha256_file(tiny_models / card["weights"]) == card["sha256"]
    student = json.loads((tiny_models / "fmnist-vgg-pynqz2-srbs75.json").read_text())
    assert student["config"]["teachers"] == ["pretrained:fmnist-vgg-teacher"] and student["model"]["kd"] is True


def test_load_pretrained_gives_the_trained_weights(tiny_models):
    from safetensors.torch import load_file

    model, card = load_pretrained("fmnist-vgg-pynqz2-srbs75", root=tiny_models)
    saved = load_file(str(tiny_models / "fmnist-vgg-pynqz2-srbs75.safetensors"))
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    teacher, card = load_pretrained("fmnist-vgg-teacher", root=tiny_models)
    assert card["kind"] == "teacher" and teacher(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_a_changed_weights_file_is_refused_naming_it(tiny_models, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models, ignore=shutil.ignore_patterns(".runs"))
    run = resolve("fmnist-vgg-teacher", models)  # intact: resolves
    weights = models / "fmnist-vgg-teacher.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 1
    weights.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"fmnist-vgg-teacher\.safetensors does not match its sha256"):
        load_pretrained("fmnist-vgg-teacher", root=models)
    # a folder resolved before the change is refused by the loader too (same digest in its model.json)
    from winoforge.model.recipes import load_teacher

    with pytest.raises(ValueError, match="does not match its sha256"):
        load_teacher(run)
    row = {r["name"]: r for r in list_models(models)}["fmnist-vgg-teacher"]
    assert row["sha256_ok"] is False and "fmnist-vgg-teacher.safetensors" in row["error"]


def test_names_resolve_and_unknown_ones_are_refused_naming_the_allowed(tiny_models, tmp_path):
    assert Pretrained.from_name("fmnist-vgg-teacher") is Pretrained.FMNIST_VGG_TEACHER
    assert Pretrained.FMNIST_VGG_PYNQZ2_SRBS75.info.config == "configs/fmnist_distill_w4a4_srbs25_pynqz2.toml"
    run = resolve("fmnist-vgg-pynqz2-srbs75", tiny_models)
    assert (run / "model.json").is_file() and (run / "model.safetensors").is_file()
    for bad in ("resnet50", "fmnist-vgg-teacher2"):
        with pytest.raises(ValueError, match="allowed: fmnist-vgg-teacher, fmnist-vgg-pynqz2-srbs75, fmnist-resnet8-pynqz2-srbs75"):
            resolve(bad, tiny_models)
        with pytest.raises(ValueError, match="allowed: fmnist-vgg-teacher, fmnist-vgg-pynqz2-srbs75, fmnist-resnet8-pynqz2-srbs75"):
            Pretrained.from_name(bad)
    # a shipped name whose files are absent: refused, naming the model and how to get it
    with pytest.raises(FileNotFoundError, match="'fmnist-vgg-teacher' is not in .*winoforge models add"):
        resolve("fmnist-vgg-teacher", tmp_path / "empty")
    assert allowed_names(tmp_path / "empty") == ["fmnist-vgg-teacher", "fmnist-vgg-pynqz2-srbs75",
                                                 "fmnist-resnet8-pynqz2-srbs75"]


def test_pretrained_teachers_in_a_distill_config(tiny_models, monkeypatch):
    from winoforge.model.config import load_config
    from winoforge.model.recipes import DistillRunConfig, load_teacher, teacher_run_dir

    monkeypatch.setenv(pretrained.ENV_VAR, str(tiny_models))
    config = "configs/fmnist_distill_w4a4_srbs25_pynqz2.toml"
    cfg = load_config(DistillRunConfig, config, ['teachers=["pretrained:fmnist-vgg-teacher"]'])
    assert str(cfg.teachers[0]) == "pretrained:fmnist-vgg-teacher"
    assert load_teacher(cfg.teachers[0])(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    assert teacher_run_dir(cfg.teachers[0]) == tiny_models / ".runs" / "fmnist-vgg-teacher"
    with pytest.raises(ValueError, match=r"teachers\[0\]='pretrained:nope' names no pretrained model; allowed: "
                                         "pretrained:fmnist-vgg-teacher"):
        load_config(DistillRunConfig, config, ['teachers=["pretrained:nope"]'])


def test_models_cli(tiny_models, tmp_path, capsys):
    assert main(["models", "list", "--models-dir", str(tiny_models)]) == 0
    out = capsys.readouterr().out
    assert "fmnist-vgg-teacher" in out and "sha256 ok" in out
    # the longest shipped name (absent from the tiny folder) keeps a gap before its column
    assert re.search(r"fmnist-resnet8-pynqz2-srbs75 +student +not present", out), out
    run = resolve("fmnist-vgg-teacher", tiny_models)
    target = tmp_path / "mine"
    assert main(["models", "add", str(run), "--name", "my-teacher", "--command", "winoforge train-teacher ...",
                 "--trained-on", "a laptop", "--commit", "abc1234", "--models-dir", str(target)]) == 0
    card = json.loads((target / "my-teacher.json").read_text())
    assert card["git_commit"] == "abc1234" and card["git_commit_source"] == "given when imported"
    assert "my-teacher" in allowed_names(target)
    assert main(["models", "add", str(run), "--name", "my-teacher", "--models-dir", str(target)]) == 2
    assert "--command, --trained-on" in capsys.readouterr().err


def _accuracy_on_first_512(model) -> float:
    """Torch accuracy of ``model`` on the first 512 real Fashion-MNIST test images."""
    from winoforge.runtime.idx import fashion_mnist_arrays

    x, y = fashion_mnist_arrays(None, "test")
    images = torch.from_numpy(x[:512].astype("float32") / 255.0).reshape(-1, 1, 28, 28)
    with torch.no_grad():
        pred = model.eval()(images).argmax(1).numpy()
    return float((pred == y[:512]).mean())


def test_the_shipped_teacher_is_the_trained_one():
    """models/fmnist-vgg-teacher: its sha256 checks, its card meets the issue's target, and the
    weights classify real test images as a trained teacher does (not a stand-in): >= 90% of the
    first 512 (the card's 94.09% is over all 10,000; 512 images keep this test to seconds)."""
    card = json.loads(pretrained.card_path("fmnist-vgg-teacher").read_text())
    assert card["target_met"] is True and card["test_accuracy"] >= 0.94 and card["epochs"] == 15
    model, loaded = load_pretrained("fmnist-vgg-teacher")
    assert loaded["sha256"] == card["sha256"]
    assert _accuracy_on_first_512(model) >= 0.90


def test_the_shipped_student_is_the_trained_one():
    """models/fmnist-vgg-pynqz2-srbs75: sha256, the card's target (>= 92.5%, the issue's), its shapes
    (W4A4 F(2,3) VGG 32,32,M,64,64,M,128,128,M at SRBS density 1/4) and >= 90% on the first 512 real
    test images through torch (the card's 93.00% is over all 10,000)."""
    card = json.loads(pretrained.card_path("fmnist-vgg-pynqz2-srbs75").read_text())
    assert card["kind"] == "student" and card["target_met"] is True and card["test_accuracy"] >= 0.925
    assert card["config"]["teachers"] == ["pretrained:fmnist-vgg-teacher"]
    st = card["model"]["student"]
    assert (st["widths"], st["m"], st["w_bits"], st["a_bits"], st["sub_row"]) == (
        [32, 32, "M", 64, 64, "M", 128, 128, "M"], 2, 4, 4, 8)
    assert card["model"]["density"] == 0.25
    model, loaded = load_pretrained("fmnist-vgg-pynqz2-srbs75")
    assert loaded["sha256"] == card["sha256"]
    assert _accuracy_on_first_512(model) >= 0.90


def test_the_shipped_resnet_student_is_the_trained_one():
    """models/fmnist-resnet8-pynqz2-srbs75: sha256, the card's target (>= 91%), its shapes (W4A4
    F(2,3) ResNet-8, widths 16/32/64, SRBS density 1/4 as 2 of 8) and >= 88% on the first 512 real
    test images through torch (an untrained network gives about 10%)."""
    card = json.loads(pretrained.card_path("fmnist-resnet8-pynqz2-srbs75").read_text())
    assert card["kind"] == "student" and card["target_met"] is True and card["test_accuracy"] >= 0.91
    assert card["config"]["teachers"] == ["pretrained:fmnist-vgg-teacher"]
    st = card["model"]["student"]
    assert (st["arch"], st["depth"], st["width"], st["m"], st["w_bits"], st["a_bits"], st["sub_row"]) == (
        "resnet", 8, 16, 2, 4, 4, 8)
    assert card["model"]["density"] == 0.25 and "resnet depth 8 width 16" in card["description"]
    model, loaded = load_pretrained("fmnist-resnet8-pynqz2-srbs75")
    assert loaded["sha256"] == card["sha256"]
    assert _accuracy_on_first_512(model) >= 0.88

def test_describe_names_a_resnet_by_depth_and_width():
    """A ResNet run's config keeps the (unused) default VGG widths: the card's description must not
    print them as the ResNet's shape."""
    from winoforge.model.pretrained import describe

    st = {"arch": "resnet", "depth": 8, "width": 16, "widths": [64, 64, "M"], "m": 2, "w_bits": 4, "a_bits": 4,
          "sub_row": 8, "weight_quant": "po2"}
    info = {"kind": "student", "student": st, "density": 0.25, "kd": True, "epochs": 20, "dataset": "fashion-mnist"}
    text = describe(info)
    assert "W4A4 Winograd F(2,3) resnet depth 8 width 16, SRBS density 0.25 (sub_row 8)" in text and "64,64" not in text
    vgg = describe({**info, "student": {**st, "arch": "vgg"}})
    assert "vgg 64,64,M, SRBS density 0.25" in vgg
