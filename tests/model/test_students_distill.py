"""Students (VGG, ResNet with residual blocks) and the distillation recipe end to end."""

import json

import numpy as np
import pytest
import torch

from winoforge.cli import main
from winoforge.model.config import from_dict
from winoforge.model.recipes import DistillRunConfig, distill
from winoforge.model.students import StudentConfig, build_student, quant_layer_names, winograd_layers
from winoforge.winograd import winograd_conv2d


@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_student_shapes_bits_and_srbs(arch):
    cfg = StudentConfig(arch=arch, widths=[16, "M", 32], width=8, w_bits=3, a_bits=5,
                        layer_bits={"classifier.fc": (8, 8)}, sub_row=8, keep=2)
    model = build_student(cfg, 1, 10)
    y = model(torch.rand(3, 1, 28, 28))
    assert y.shape == (3, 10)
    y.sum().backward()
    layers = winograd_layers(model)
    first, *rest = layers.values()
    assert not first.srbs_enabled and "in_channels=1" in first.srbs_reason
    for layer in rest:
        assert layer.srbs_enabled and layer.keep == 2
        codes = layer.int_weight()
        assert -4 <= codes.min() and codes.max() <= 3  # 3-bit signed codes
    assert "classifier.fc" in quant_layer_names(model)
    if arch == "resnet":
        assert any(hasattr(m, "shortcut") for m in model.modules())  # residual blocks present


def test_residual_block_integer_path():
    """A residual student's Winograd layer still computes the numpy core's integers."""
    model = build_student(StudentConfig(arch="resnet", width=8, sub_row=4, keep=1), 1, 10).eval()
    layer = model.layer1[0].conv1
    x = model.stem(model.input_quant(torch.rand(2, 1, 12, 12)))
    x_int = torch.round(x.value / x.scale).to(torch.int64).numpy()
    with torch.no_grad():
        y = layer(x)
    codes = torch.round(y.double() / (x.scale.double() * layer.weight_scale().double().view(1, -1, 1, 1)))
    assert np.array_equal(codes.to(torch.int64).numpy(), winograd_conv2d(x_int, layer.int_weight(), layer.spec))


def test_bad_student_config():
    with pytest.raises(ValueError, match="student.w_bits=9 is out of range; allowed: 2..8"):
        StudentConfig(w_bits=9)
    with pytest.raises(ValueError, match=r"names unknown layers \['features.block9'\]"):
        build_student(StudentConfig(widths=[8], layer_bits={"features.block9": (4, 4)}), 1, 10)
    with pytest.raises(ValueError, match="student.depth=9 is not allowed"):
        StudentConfig(arch="resnet", depth=9)
    with pytest.raises(ValueError, match=r"prune.keep=9 is out of range; allowed: 1..8"):
        from_dict(DistillRunConfig, {"prune": {"keep": 9}})


def test_distill_with_teacher_hints_and_pruning(tmp_path):
    teacher_dir = tmp_path / "teacher"
    assert main(["train-teacher", "--set", f"out_dir={teacher_dir}", "--set", "data.name=synthetic",
                 "--set", "data.train_subset=256", "--set", "optim.epochs=1",
                 "--set", 'arch_options={widths=[8,"M",16]}']) == 0
    cfg = from_dict(DistillRunConfig, {
        "out_dir": str(tmp_path / "student"), "teachers": [str(teacher_dir)],
        "hints": [["features.block2", "features.block2"]], "init_from_teacher": True,
        "student": {"widths": [8, "M", 16], "sub_row": 8, "w_bits": 4, "a_bits": 4},
        "data": {"name": "synthetic", "train_subset": 256, "batch_size": 32},
        "optim": {"epochs": 3, "lr": 0.05},
        "distill": {"kd": "soft", "temperature": 4.0, "hint_weight": 1.0},
        "prune": {"keep": 2, "dense_epochs": 1, "span_epochs": 1},
    })
    final = distill(cfg, progress=False)
    assert final["density"] == 0.25
    info = json.loads((tmp_path / "student" / "model.json").read_text())
    assert info["kd"] is True and info["epochs"] == 3
    records = [json.loads(line) for line in (tmp_path / "student" / "metrics.jsonl").read_text().splitlines()]
    assert {"kd", "hint", "ce"} <= set(records[0]["train"])
    # after the schedule every SRBS layer holds at most keep non-zeros per sub-row, exactly zero elsewhere
    from safetensors.torch import load_file

    model = build_student(cfg.student, 1, 10)
    model.load_state_dict(load_file(str(tmp_path / "student" / "model.safetensors")))
    for layer in winograd_layers(model).values():
        if layer.srbs_enabled:
            m = layer.mask.numpy().transpose(2, 3, 0, 1).reshape(16, layer.out_channels, -1, 8)
            assert (m.sum(-1) == 2).all()
            assert (layer.U.detach().numpy()[layer.mask.numpy() == 0] == 0).all()
