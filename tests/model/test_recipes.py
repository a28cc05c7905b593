"""The teacher recipe through the CLI: config, training, saved weights with checksum."""

import json
from pathlib import Path

import pytest
import torch

from winoforge.cli import main
from winoforge.model.recipes import load_teacher

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "fmnist_teacher_vgg.toml")


def test_train_teacher_cli_on_synthetic_data(tmp_path, capsys):
    out = tmp_path / "teacher"
    args = ["train-teacher", "--config", CONFIG, "--set", f"out_dir={out}",
            "--set", "data.name=synthetic", "--set", "data.train_subset=256", "--set", "optim.epochs=2",
            "--set", 'arch_options={widths=[8,"M",16,"M"]}']
    assert main(args) == 0
    assert "test accuracy" in capsys.readouterr().out
    info = json.loads((out / "model.json").read_text())
    assert info["epochs"] == 2 and info["in_channels"] == 1 and 0 <= info["test"]["acc"] <= 1
    teacher = load_teacher(out)
    assert teacher(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    # a corrupted weights file is refused
    blob = bytearray((out / "model.safetensors").read_bytes())
    blob[-1] ^= 1
    (out / "model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="does not match its sha256"):
        load_teacher(out)


def test_bad_config_names_the_field(tmp_path, capsys):
    assert main(["train-teacher", "--config", CONFIG, "--set", "arch=alexnet"]) == 2
    assert "arch='alexnet' is not allowed" in capsys.readouterr().err
    assert main(["train-teacher", "--set", "optim.lr=-1"]) == 2
    assert "optim.lr=-1.0 is out of range" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted(Path(CONFIG).parent.glob("*.toml")), ids=lambda p: p.name)
def test_every_config_file_loads(path):
    from winoforge.model.config import load_config
    from winoforge.model.recipes import DistillRunConfig, TeacherRunConfig

    cfg = load_config(TeacherRunConfig if "teacher" in path.name else DistillRunConfig, path)
    assert cfg.out_dir.parts[0] == "runs"
