"""Checkpoints: exact round trip of model + optimizer + RNG state, corruption refused."""

import json
import random

import numpy as np
import pytest
import torch

from winoforge.model.checkpoint import CorruptCheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint


def _trained():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, 2)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
        sched.step()
    return model, opt, sched


def test_round_trip_is_exact(tmp_path):
    model, opt, sched = _trained()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "torch_rng": torch.get_rng_state(), "python_rng": random.getstate(),
             "numpy_rng": np.random.default_rng(3).bit_generator.state, "epoch": 3, "config": {"lr": 0.01}}
    path = save_checkpoint(tmp_path, 3, state)
    assert latest_checkpoint(tmp_path) == path
    back = load_checkpoint(path)
    for k, v in model.state_dict().items():
        assert torch.equal(back["model"][k], v)
    opt2 = torch.optim.Adam(model.parameters(), lr=0.5)
    opt2.load_state_dict(back["optimizer"])
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    for pid, s in opt.state_dict()["state"].items():
        assert all(torch.equal(s[k], opt2.state_dict()["state"][pid][k]) for k in s)
    assert torch.equal(back["torch_rng"], state["torch_rng"])
    assert back["python_rng"] == state["python_rng"] and back["numpy_rng"] == state["numpy_rng"]
    random.setstate(back["python_rng"])
    assert back["epoch"] == 3 and back["config"] == {"lr": 0.01}
    assert back["scheduler"]["last_epoch"] == sched.state_dict()["last_epoch"]


def test_shared_tensors_round_trip(tmp_path):
    """A parameter shared by two modules (as a ResNet student's residual add shares one scale between
    its branches) appears twice in the state dict; safetensors refuses shared memory, so each name is
    stored on its own, and both come back with the value."""
    shared = torch.nn.Parameter(torch.tensor([0.25]))
    a, b = torch.nn.Module(), torch.nn.Module()
    a.scale = b.scale = shared
    model = torch.nn.ModuleDict({"a": a, "b": b})
    state = model.state_dict(keep_vars=False)
    assert state["a.scale"].data_ptr() == state["b.scale"].data_ptr()
    back = load_checkpoint(save_checkpoint(tmp_path, 1, {"model": state}))
    assert all(torch.equal(back["model"][k], shared.detach()) for k in ("a.scale", "b.scale"))
    shared.data.fill_(0.0)
    model.load_state_dict(back["model"])
    assert float(shared) == 0.25


def test_keeps_last_and_latest(tmp_path):
    for step in range(5):
        save_checkpoint(tmp_path, step, {"x": torch.tensor([step])}, keep_last=2)
    dirs = sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*"))
    assert dirs == ["step-00000003", "step-00000004"]
    assert load_checkpoint(latest_checkpoint(tmp_path))["x"].item() == 4


@pytest.mark.parametrize("target", ["tensors.safetensors", "state.json"])
def test_corrupt_file_is_refused(tmp_path, target):
    path = save_checkpoint(tmp_path, 1, {"w": torch.arange(10.0), "epoch": 1})
    data = bytearray((path / target).read_bytes())
    data[-2] ^= 0x01
    (path / target).write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match=f"{target} does not match its sha256"):
        load_checkpoint(path)


def test_missing_files_and_bad_manifest(tmp_path):
    path = save_checkpoint(tmp_path, 1, {"w": torch.zeros(2)})
    (path / "state.json").unlink()
    with pytest.raises(CorruptCheckpointError, match="state.json is missing"):
        load_checkpoint(path)
    (path / "manifest.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(CorruptCheckpointError, match="format_version 99"):
        load_checkpoint(path)
    with pytest.raises(CorruptCheckpointError, match="unreadable manifest"):
        load_checkpoint(tmp_path / "nowhere")


def test_unstorable_objects_are_rejected(tmp_path):
    with pytest.raises(TypeError, match="cannot store object at x"):
        save_checkpoint(tmp_path, 1, {"x": object()})
