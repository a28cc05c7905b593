"""Students (VGG, ResNet with residual blocks, FP32 twins) and the distillation recipe end
to end: KD, hints, pruning, mixed precision, online peers, resume."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from safetensors.torch import load_file

from winoforge.cli import main
from winoforge.model.config import from_dict
from winoforge.model.mixed_precision import mean_bits, student_bits
from winoforge.model.recipes import DistillRunConfig, _init_from_teacher, distill, without_teacher
from winoforge.model.students import (StudentConfig, act_sources, build_student, quant_layer_names, quant_layers,
                                      winograd_layers)
from winoforge.model.teachers import build_teacher
from winoforge.model.winograd_layer import QuantWinogradConv2d
from winoforge.winograd import filter_transform, winograd_conv2d

TINY = [8, "M", 16]  # block1 (Cin = 1: dense fallback), block2 (Cin = 8: SRBS)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """One small VGG teacher, trained for an epoch on synthetic data, shared by the tests below."""
    out = tmp_path_factory.mktemp("teacher")
    assert main(["train-teacher", "--set", f"out_dir={out}", "--set", "data.name=synthetic",
                 "--set", "data.train_subset=256", "--set", "data.test_subset=64", "--set", "optim.epochs=1",
                 "--set", f"arch_options={{widths={json.dumps(TINY)}}}"]) == 0
    return out


def _student_run(tmp_path, teacher_dir, **extra):
    data = {"out_dir": str(tmp_path / "student"), "teachers": [str(teacher_dir)] if teacher_dir else [],
            "init_from_teacher": bool(teacher_dir),
            "student": {"widths": TINY, "sub_row": 8, "w_bits": 4, "a_bits": 4},
            "data": {"name": "synthetic", "train_subset": 128, "test_subset": 64, "batch_size": 32},
            "optim": {"epochs": 1, "lr": 0.05},
            "distill": {"kd": "soft" if teacher_dir else "none", "temperature": 4.0}}
    for key, value in extra.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key in data else value
    return from_dict(DistillRunConfig, data)


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


def test_distill_with_teacher_hints_and_pruning(tmp_path, teacher_dir):
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
    model = build_student(cfg.student, 1, 10)
    model.load_state_dict(load_file(str(tmp_path / "student" / "model.safetensors")))
    for layer in winograd_layers(model).values():
        if layer.srbs_enabled:
            m = layer.mask.numpy().transpose(2, 3, 0, 1).reshape(16, layer.out_channels, -1, 8)
            assert (m.sum(-1) == 2).all()
            assert (layer.U.detach().numpy()[layer.mask.numpy() == 0] == 0).all()


# ----------------------------------------------------------------- wiring facts


@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_each_activation_feeds_exactly_one_quantized_layer(arch):
    model = build_student(StudentConfig(arch=arch, widths=[8, "M", 16, 16], width=8), 1, 10)
    sources = act_sources(model)
    names = quant_layer_names(model)
    assert list(sources) == list(names) and set(quant_layers(model)) == set(names)
    assert [n for n, src in sources.items() if src is None] == [names[0]]  # only the first layer reads the image
    fed = [src for src in sources.values() if src is not None]
    assert sorted(fed) == sorted(n for n in names if n != "classifier.fc")  # a bijection
    if arch == "resnet":  # data flow through the residual blocks, names as the teacher's
        assert sources["layer1.0.conv1"] == "stem" and sources["layer1.0.conv2"] == "layer1.0.conv1"
        assert sources["layer2.0.conv1"] == "layer1.0.conv2" and sources["classifier.fc"] == "layer3.0.conv2"
        modules = dict(model.named_modules())
        assert modules["layer2.0.conv1"] is quant_layers(model)["layer2.0.conv1"]
        teacher = dict(build_teacher("resnet8", 1, 10, width=8).named_modules())
        assert {"layer2.0.conv1", "layer2.0.shortcut.conv", "layer2.0.shortcut.bn", "classifier.fc"} <= set(teacher)
        assert {"layer2.0.conv1", "layer2.0.shortcut.conv", "layer2.0.shortcut.bn", "classifier.fc"} <= set(modules)


def test_mults_and_bops_are_exact():
    """Multiplications per image (F(2,3), 28x28): block1 dense (Cin = 1), block2 SRBS 4/8."""
    cfg = StudentConfig(widths=TINY, sub_row=8, w_bits=4, a_bits=4, in_bits=8,
                        layer_bits={"features.block1": (6, 3), "classifier.fc": (8, 4)})
    bits = student_bits(build_student(cfg, 1, 10), cfg, (1, 28, 28), keep=4)
    assert bits["mults"] == {"features.block1": 8 * 1 * 16 * 14 * 14, "features.block2": 16 * 4 * 16 * 7 * 7,
                             "classifier.fc": 16 * 10}
    m1, m2, m3 = bits["mults"].values()
    # pairs are (weight, input activation): block2 reads block1's 3-bit output, the classifier block2's 4 bits
    assert bits["pairs"] == {"features.block1": [6, 8], "features.block2": [4, 3], "classifier.fc": [8, 4]}
    assert bits["bops"] == m1 * 6 * 8 + m2 * 4 * 3 + m3 * 8 * 4
    assert bits["mean_bits"] == (m1 * 6 + m2 * (4 + 3) + m3 * (8 + 4)) / (m1 + 2 * m2 + 2 * m3)
    uniform = StudentConfig(widths=TINY, sub_row=8, w_bits=4, a_bits=4)
    assert student_bits(build_student(uniform, 1, 10), uniform, (1, 28, 28))["mean_bits"] == 4.0
    assert mean_bits({"a": (4, 8), "b": (2, 6)}, {"a": 1, "b": 1}, fixed_act=["a"]) == 4.0


def test_init_from_teacher_matches_every_resnet_layer_by_name():
    """Stride-2 teacher blocks map to max-pool + stride-1 student blocks of the same name."""
    student = build_student(StudentConfig(arch="resnet", depth=8, width=8), 3, 10)
    done = _init_from_teacher(student, build_teacher("resnet8", 3, 10, width=8))
    weighted = [n for n, m in student.named_modules()
                if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear, QuantWinogradConv2d))]
    assert sorted(done) == sorted(weighted) and "layer2.0.shortcut.conv" in done


# ----------------------------------------------------------------- FP32 twin


def test_fp32_student_is_the_unquantized_twin():
    cfg = StudentConfig(widths=TINY, sub_row=8, precision="fp32")
    model = build_student(cfg, 1, 10)
    assert not any(isinstance(m, (QuantReLU, QuantIdentity, QuantLinear)) for m in model.modules())
    layers = winograd_layers(model)
    assert all(not layer.is_weight_quantized for layer in layers.values())
    assert student_bits(model, cfg, (1, 28, 28))["mean_bits"] == 32.0
    quant = build_student(replace(cfg, precision="quant"), 1, 10)
    float_keys = {k for k in quant.state_dict() if "quant" not in k}
    assert float_keys == set(model.state_dict())  # same architecture, same names
    # initialised from a teacher of the same widths, it computes the teacher's function
    torch.manual_seed(0)
    teacher = build_teacher("vgg", 1, 10, widths=TINY).eval()
    for bn in teacher.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0), bn.bias.data.uniform_(-0.2, 0.2)
    done = _init_from_teacher(model, teacher)
    assert {"features.block1.conv", "features.block2.bn", "classifier.fc"} <= set(done)
    g = teacher.features.block2.conv.weight.detach()
    expected = torch.from_numpy(filter_transform(g.double().numpy(), layers["features.block2.conv"].spec)).float()
    assert torch.equal(layers["features.block2.conv"].U.detach(), expected)  # U = G g G^T exactly
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), teacher(x), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="student.layer_bits is set but student.precision='fp32'"):
        StudentConfig(precision="fp32", layer_bits={"classifier.fc": (8, 8)})


def test_fp32_student_trains_without_teacher(tmp_path):
    cfg = _student_run(tmp_path, None, student={"precision": "fp32"})
    final = distill(cfg, progress=False)
    assert final["mean_bits"] == 32.0 and final["density"] == 1.0 and 0 <= final["acc"] <= 1
    info = json.loads((tmp_path / "student" / "model.json").read_text())
    assert info["student"]["precision"] == "fp32" and info["kd"] is False


def test_device_resident_data_trains_the_same_student(tmp_path, teacher_dir):
    """data.device_resident (the GPU path) feeds the same batches: same weights, same metrics."""
    results = {}
    for resident in (False, True):
        cfg = _student_run(tmp_path / str(resident), teacher_dir, prune={"keep": 2, "dense_epochs": 0, "span_epochs": 1},
                           data={"device_resident": resident, "augment": True})
        distill(cfg, progress=False)
        run = tmp_path / str(resident) / "student"
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        results[resident] = (load_file(str(run / "model.safetensors")), [(m["train"], m["test"]) for m in metrics])
    (w0, m0), (w1, m1) = results[False], results[True]
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    assert m0 == m1


# ----------------------------------------------------------------- mixed precision


def test_mixed_precision_chooses_widths_under_the_budget(tmp_path, teacher_dir):
    mp = {"enabled": True, "mean_bits": 4.0, "candidates": [[3, 3], [4, 4], [6, 6]],
          "bn_batches": 1, "calibration_batches": 1}
    cfg = _student_run(tmp_path, teacher_dir, mixed_precision=mp, prune={"keep": 4, "span_epochs": 1})
    final = distill(cfg, progress=False)
    run = tmp_path / "student"
    saved = json.loads((run / "config.json").read_text())
    info = json.loads((run / "model.json").read_text())
    record = json.loads((run / "mixed_precision.json").read_text())
    chosen = saved["student"]["layer_bits"]
    assert set(chosen) == {"features.block1", "features.block2", "classifier.fc"}
    assert info["student"]["layer_bits"] == chosen == record["layer_bits"]
    assert set(record["layers"]["features.block2"]["sensitivity"]) == {"w3a3", "w4a4", "w6a6"}
    # the budget holds, recomputed from the saved config alone
    student_cfg = from_dict(StudentConfig, saved["student"], prefix="student")
    model = build_student(student_cfg, 1, 10)
    bits = student_bits(model, student_cfg, (1, 28, 28), keep=4)
    assert bits["mean_bits"] <= 4.0 and bits["mean_bits"] == final["mean_bits"] == info["mean_bits"]
    layers = quant_layers(model)
    assert {n: [layers[n].weight_bit_width() if n != "classifier.fc" else int(layers[n].quant_weight().bit_width)]
            for n in chosen} == {n: [w] for n, (w, _) in chosen.items()}
    assert int(model.features.block1.relu.act_quant.bit_width()) == chosen["features.block1"][1]
    model.load_state_dict(load_file(str(run / "model.safetensors")))  # the trained weights fit these widths
    # a resumed (finished) run reads the record instead of measuring again, and refuses another config
    assert distill(cfg, progress=False)["acc"] == final["acc"]
    with pytest.raises(ValueError, match="mixed_precision.json was measured for another config"):
        distill(replace(cfg, mixed_precision=replace(cfg.mixed_precision, mean_bits=5.0)), progress=False)


def test_mixed_precision_of_a_student_narrower_than_its_teacher_measures_on_its_fp32_twin(tmp_path, teacher_dir):
    """The PYNQ-Z2 student is narrower than the teacher: the sensitivity is measured on the student
    initialised from a finished run of its own architecture (mixed_precision.init_run)."""
    narrow = {"widths": [4, "M", 8], "sub_row": 4}
    mp = {"enabled": True, "mean_bits": 4.0, "candidates": [[3, 3], [4, 4], [6, 6]],
          "bn_batches": 1, "calibration_batches": 1}
    with pytest.raises(ValueError, match="mixed_precision.init_run"):
        distill(_student_run(tmp_path / "a", teacher_dir, student=narrow, init_from_teacher=False,
                             mixed_precision=mp), progress=False)
    twin = _student_run(tmp_path / "twin", None, student={**narrow, "precision": "fp32"})
    distill(twin, progress=False)
    cfg = _student_run(tmp_path / "b", teacher_dir, student=narrow, init_from_teacher=False,
                       mixed_precision={**mp, "init_run": str(tmp_path / "twin" / "student")})
    distill(cfg, progress=False)
    record = json.loads((tmp_path / "b" / "student" / "mixed_precision.json").read_text())
    assert set(record["layer_bits"]) == {"features.block1", "features.block2", "classifier.fc"}
    # the twin's U is what the measured student starts from
    student = build_student(from_dict(StudentConfig, {**narrow, "w_bits": 4, "a_bits": 4}, "student"), 1, 10)
    twin_weights = load_file(str(tmp_path / "twin" / "student" / "model.safetensors"))
    _init_from_teacher(student, build_and_load_twin(twin_weights, narrow))
    assert torch.equal(student.features.block2.conv.weight, twin_weights["features.block2.conv.weight"])


def build_and_load_twin(weights, narrow):
    twin = build_student(from_dict(StudentConfig, {**narrow, "precision": "fp32"}, "student"), 1, 10)
    twin.load_state_dict(weights)
    return twin


def test_mixed_precision_budget_below_the_cheapest_assignment_names_the_field(tmp_path, teacher_dir, capsys):
    args = ["distill", "--set", f"out_dir={tmp_path / 's'}", "--set", f'teachers=["{teacher_dir}"]',
            "--set", f"student.widths={json.dumps(TINY)}", "--set", "data.name=synthetic",
            "--set", "data.train_subset=64", "--set", "optim.epochs=1",
            "--set", "mixed_precision.enabled=true", "--set", "mixed_precision.candidates=[[3, 3], [4, 4]]"]
    assert main(args + ["--set", "mixed_precision.mean_bits=2.5"]) == 2
    err = capsys.readouterr().err
    assert "mixed_precision.mean_bits=2.5 is below the cheapest assignment" in err and "allowed: >= 3" in err
    assert not (tmp_path / "s" / "checkpoints").exists()  # refused before any measurement or training
    assert main(args + ["--set", "mixed_precision.bops_fraction=0.05"]) == 2
    assert "mixed_precision.bops_fraction=0.05 is below the cheapest assignment" in capsys.readouterr().err
    assert main(args) == 2
    assert "mixed_precision.enabled needs a budget" in capsys.readouterr().err


def test_mixed_precision_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"mixed_precision.candidates\[1\]=\(4, 9\) is not a bit-width pair"):
        from_dict(DistillRunConfig, {"mixed_precision": {"candidates": [[4, 4], [4, 9]]}})
    with pytest.raises(ValueError, match="mixed_precision.mean_bits=9.0 is out of range; allowed: 2..8"):
        from_dict(DistillRunConfig, {"mixed_precision": {"mean_bits": 9}})
    with pytest.raises(ValueError, match="mixed_precision.enabled needs at least one teacher"):
        from_dict(DistillRunConfig, {"distill": {"kd": "none"}, "mixed_precision": {"enabled": True, "mean_bits": 4}})
    with pytest.raises(ValueError, match="distill.kd='soft' with kd_weight > 0 needs at least one teacher"):
        from_dict(DistillRunConfig, {})
    with pytest.raises(ValueError, match="online.peers=0 is out of range"):
        from_dict(DistillRunConfig, {"online": {"peers": 0}, "distill": {"kd": "none"}})


# ----------------------------------------------------------------- online peers


def test_online_peers_train_jointly_and_resume(tmp_path, teacher_dir):
    cfg = _student_run(tmp_path, teacher_dir, online={"peers": 2, "weight": 1.0, "temperature": 2.0},
                       optim={"epochs": 2, "lr": 0.05}, prune={"keep": 4, "span_epochs": 1})
    run = tmp_path / "student"
    distill(cfg, progress=False, max_epochs=1)  # "killed" after the first epoch
    assert not (run / "model.json").exists() and (run / "checkpoints" / "latest").is_file()
    final = distill(cfg, progress=False)  # started again: resumes at epoch 2
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        assert {"ce", "kd", "online", "acc0", "acc1"} <= set(r["train"])
        assert all(math.isfinite(v) for v in r["train"].values()) and r["train"]["online"] > 0
    assert len(final["peers"]) == 2 and final["density"] == 0.5 and 0 <= final["ensemble_acc"] <= 1
    peers = []
    for k in range(2):
        info = json.loads((run / f"peer{k}" / "model.json").read_text())
        assert info["peer"] == k and info["test"]["acc"] == final["peers"][k] and info["epochs"] == 2
        peers.append(load_file(str(run / f"peer{k}" / "model.safetensors")))
    assert not torch.equal(peers[0]["features.block2.conv.weight"], peers[1]["features.block2.conv.weight"])
    best = load_file(str(run / "model.safetensors"))
    assert all(torch.equal(best[key], peers[final["peer"]][key]) for key in best)
    build_student(cfg.student, 1, 10).load_state_dict(best)  # a plain student


def test_without_teacher_is_the_same_run_minus_the_teacher(tmp_path, teacher_dir):
    cfg = _student_run(tmp_path, teacher_dir, hints=[["features.block2", "features.block2"]],
                       distill={"hint_weight": 1.0}, mixed_precision={"enabled": True, "mean_bits": 4.0})
    with pytest.raises(ValueError, match="needs the chosen layer_bits"):
        without_teacher(cfg)
    plain = without_teacher(cfg, {"features.block1": [4, 4], "features.block2": [4, 4], "classifier.fc": [8, 4]})
    assert plain.teachers == [] and plain.hints == [] and not plain.init_from_teacher
    assert plain.distill.kd == "none" and plain.distill.hint_weight == 0 and not plain.mixed_precision.enabled
    assert plain.student.layer_bits["classifier.fc"] == (8, 4) and plain.optim == cfg.optim


def test_affine_batchnorm_is_batchnorm_written_as_mul_add():
    from winoforge.model.students import AffineBatchNorm2d

    torch.manual_seed(0)
    bn = AffineBatchNorm2d(6)
    with torch.no_grad():
        bn.weight.normal_()
        bn.bias.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, 6, 5, 5)
    ref = torch.nn.BatchNorm2d(6)
    ref.load_state_dict(bn.state_dict())  # the same state dict keys
    bn.eval(), ref.eval()
    a = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).view(1, -1, 1, 1)
    b = (bn.bias - bn.running_mean * a.view(-1)).view(1, -1, 1, 1)
    assert torch.equal(bn(x), x * a + b)  # exactly these two float32 ops, as exported
    # and BatchNorm up to float32 rounding (a few ulps of O(1) values)
    assert torch.allclose(bn(x), ref(x), rtol=0, atol=1e-5)
    bn.train(), ref.train()
    assert torch.equal(bn(x), ref(x))  # training is plain BatchNorm
