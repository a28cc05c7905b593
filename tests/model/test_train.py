"""The trainer: learning, exact resume after a kill, corrupt checkpoints refused."""

import json

import pytest
import torch
from torch import nn

from winoforge.model.checkpoint import CorruptCheckpointError, latest_checkpoint
from winoforge.model.data import make_loader, synthetic_dataset
from winoforge.model.train import OptimConfig, Trainer, evaluate


def _setup(run_dir, max_epochs=None, epochs=3):
    torch.manual_seed(123)  # model init; training RNG is seeded by the trainer
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.2),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 4))
    data = synthetic_dataset(96, num_classes=4, size=12, seed=1)
    train = make_loader(data, batch_size=16, shuffle=True, seed=7)
    test = make_loader(synthetic_dataset(32, num_classes=4, size=12, seed=2), batch_size=16)

    def loss_fn(net, x, y):
        logits = net(x)
        return nn.functional.cross_entropy(logits, y), {"acc": float((logits.argmax(1) == y).float().mean())}

    optim = OptimConfig(epochs=epochs, lr=0.05, warmup_epochs=1)
    return model, Trainer(model, train, test, optim, loss_fn, run_dir, seed=5, progress=False, max_epochs=max_epochs)


def test_learns_and_logs(tmp_path):
    model, trainer = _setup(tmp_path, epochs=4)
    history = trainer.fit()
    assert len(history) == 4 and history[-1]["train"]["loss"] < history[0]["train"]["loss"]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    assert evaluate(model, trainer.test_loader, "cpu")["samples"] == 32


def test_resume_after_kill_gives_identical_weights(tmp_path):
    full_model, full = _setup(tmp_path / "full")
    full.fit()
    killed_model, killed = _setup(tmp_path / "killed", max_epochs=1)  # "killed" after epoch 1
    killed.fit()
    assert killed.epoch == 1
    resumed_model, resumed = _setup(tmp_path / "killed")  # a fresh process with the same config
    resumed.fit()
    assert resumed.epoch == 3
    for (k, a), b in zip(full_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), k
    assert [r["train"] for r in resumed.history] == [r["train"] for r in full.history]


def _resnet_setup(run_dir, max_epochs=None):
    """A W4A4 ResNet student (Winograd SRBS layers, residual adds whose branches share one scale)."""
    from winoforge.model.students import StudentConfig, build_student

    torch.manual_seed(3)
    model = build_student(StudentConfig(arch="resnet", depth=8, width=4, sub_row=4, keep=1, weight_quant="po2",
                                        act_quant="po2"), 1, 4)
    # 200 steps an epoch: a kill after epoch 1 falls inside Brevitas's 300 steps of statistics
    # collection for most scales, past them for the residual adds' shared one (two calls a step),
    # which is then a parameter under two names
    train = make_loader(synthetic_dataset(400, num_classes=4, size=12, seed=1), batch_size=2, shuffle=True, seed=7)
    return model, _ce_trainer(model, train, run_dir, OptimConfig(epochs=2, lr=0.01, warmup_epochs=1), max_epochs)


def _ce_trainer(model, train, run_dir, optim, max_epochs):
    """A cross-entropy trainer without a test set."""

    def loss_fn(net, x, y):
        return nn.functional.cross_entropy(net(x), y), {}

    return Trainer(model, train, None, optim, loss_fn, run_dir, seed=5, progress=False, max_epochs=max_epochs)


def test_a_resnet_student_checkpoints_and_resumes_exactly(tmp_path):
    """The residual adds' shared scales are stored (safetensors refuses shared memory: the first
    checkpoint of a ResNet distillation failed), and a run killed after epoch 1 resumes to the
    weights of an uninterrupted one, across the end of the statistics collection: a scale still
    collecting comes back with its own initial value (Brevitas's state dict holds the statistic
    there), and the optimizer steps the scale parameters that Brevitas re-creates on loading
    (it kept stepping the old ones, their momentum with them)."""
    full_model, full = _resnet_setup(tmp_path / "full")
    full.fit()
    _, killed = _resnet_setup(tmp_path / "killed", max_epochs=1)
    killed.fit()
    resumed_model, resumed = _resnet_setup(tmp_path / "killed")
    resumed.fit()
    assert resumed.epoch == 2
    for (k, a), b in zip(full_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), k


def _quant_setup(run_dir, max_epochs=None):
    """A Brevitas net whose activation scale is still collecting statistics (its first 300
    steps) when the run is killed after epoch 1 (6 steps)."""
    from brevitas import nn as qnn

    torch.manual_seed(11)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), qnn.QuantReLU(bit_width=4), nn.AdaptiveAvgPool2d(2),
                          nn.Flatten(), nn.Linear(16, 4))
    train = make_loader(synthetic_dataset(96, num_classes=4, size=12, seed=1), batch_size=16, shuffle=True, seed=7)
    return model, _ce_trainer(model, train, run_dir, OptimConfig(epochs=3, lr=0.05, warmup_epochs=1), max_epochs)


def test_resume_inside_brevitas_statistics_collection_is_exact(tmp_path):
    full_model, full = _quant_setup(tmp_path / "full")
    full.fit()
    _, killed = _quant_setup(tmp_path / "killed", max_epochs=1)
    killed.fit()
    counters = [m.counter for m in killed.model.modules() if hasattr(m, "collect_stats_steps")]
    assert counters and all(0 < c < 300 for c in counters)  # killed in the middle of the collection
    resumed_model, resumed = _quant_setup(tmp_path / "killed")
    resumed.fit()
    for (k, a), b in zip(full_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), k
    assert [m.counter for m in resumed_model.modules() if hasattr(m, "collect_stats_steps")] == \
        [m.counter for m in full_model.modules() if hasattr(m, "collect_stats_steps")]


def test_corrupt_checkpoint_is_refused_not_trained_over(tmp_path):
    _, trainer = _setup(tmp_path, max_epochs=1)
    trainer.fit()
    ckpt = latest_checkpoint(tmp_path)
    blob = bytearray((ckpt / "tensors.safetensors").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (ckpt / "tensors.safetensors").write_bytes(bytes(blob))
    _, again = _setup(tmp_path)
    with pytest.raises(CorruptCheckpointError, match="does not match its sha256"):
        again.fit()


def test_bad_optim_config():
    with pytest.raises(ValueError, match="optim.lr=0 is out of range"):
        OptimConfig(lr=0)
    with pytest.raises(ValueError, match="optim.warmup_epochs=5 is out of range"):
        OptimConfig(epochs=5, warmup_epochs=5)


def test_two_process_torchrun_on_cpu(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker), str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert ranks[0][0] == ranks[1][0] == "2"  # both saw a world of two
    assert ranks[0][1] == ranks[1][1] == "32"  # each rank trained on half of the 64 samples
    assert ranks[0][2] == ranks[1][2]  # DDP kept the replicas identical
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]  # only rank 0 logs
    assert records[-1]["test"]["samples"] == 24  # evaluation summed over both shards
    assert latest_checkpoint(tmp_path) is not None
