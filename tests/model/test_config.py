"""Typed configuration loading."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from winoforge.model.config import from_dict, load_config, to_dict


@dataclass
class Optim:
    lr: float = 0.1
    epochs: int = 10

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"optim.lr={self.lr} is out of range; allowed: > 0")


@dataclass
class Cfg:
    name: Literal["vgg", "resnet"] = "vgg"
    bits: dict[str, tuple[int, int]] = field(default_factory=dict)
    root: Path | None = None
    optim: Optim = field(default_factory=Optim)
    hints: list[tuple[str, str]] = field(default_factory=list)


def test_toml_and_overrides(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('name = "resnet"\n[optim]\nlr = 0.05\n[bits]\nconv1 = [4, 8]\n')
    cfg = load_config(Cfg, p, ["optim.epochs=3", "root=/data/x", 'hints=[["s.a", "t.b"]]'])
    assert cfg.name == "resnet" and cfg.optim == Optim(0.05, 3) and cfg.bits == {"conv1": (4, 8)}
    assert cfg.root == Path("/data/x") and cfg.hints == [("s.a", "t.b")]
    assert from_dict(Cfg, to_dict(cfg)) == cfg  # round trip through plain data


@pytest.mark.parametrize("override, message", [
    ("optim.lr=-1", r"optim.lr=-1.0 is out of range; allowed: > 0"),
    ("optim.epochs=2.5", r"optim.epochs must be an integer"),
    ("name=alexnet", r"name='alexnet' is not allowed; allowed: 'vgg', 'resnet'"),
    ("optim.momentum=0.9", r"unknown config key optim.momentum; allowed: epochs, lr"),
    ("bits.conv1=[4]", r"bits.conv1 must have 2 items"),
    ("nonsense", r"must look like section.key=value"),
])
def test_bad_values_name_the_field(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(Cfg, None, [override])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(Cfg, tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(Cfg, bad)

