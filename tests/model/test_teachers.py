"""FP32 teachers: shapes, named hint layers, factory, and a tiny overfit check."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from winoforge.model.losses import FeatureCapture
from winoforge.model.teachers import TEACHERS, ResNetTeacher, VGGTeacher, build_teacher

INPUTS = [(1, 28), (3, 32)]


@pytest.mark.parametrize("name", sorted(TEACHERS))
@pytest.mark.parametrize("channels, size", INPUTS)
def test_output_shape_and_attributes(name, channels, size):
    torch.manual_seed(0)
    model = build_teacher(name, channels, 10)
    assert model.in_channels == channels and model.num_classes == 10
    model.eval()
    with torch.no_grad():
        z = model(torch.rand(2, channels, size, size))
    assert z.shape == (2, 10) and z.dtype == torch.float32 and torch.isfinite(z).all()


@pytest.mark.parametrize("name", sorted(TEACHERS))
@pytest.mark.parametrize("channels, size", INPUTS)
def test_hint_and_preact_layers_exist_and_halve_resolution(name, channels, size):
    torch.manual_seed(0)
    model = build_teacher(name, channels, 7).eval()
    names = dict(model.named_modules())
    assert len(model.hint_layers) == len(model.preact_layers) == 3
    for layer in model.hint_layers + model.preact_layers:
        assert layer in names
    with FeatureCapture(model, model.hint_layers + model.preact_layers) as cap, torch.no_grad():
        model(torch.rand(2, channels, size, size))
    sizes = [cap.features[n].shape[-1] for n in model.hint_layers]
    assert sizes[0] >= sizes[1] * 2 >= sizes[2] * 4 - 1  # one hint per resolution (28 -> 14 -> 7 or 3)
    for hint, pre in zip(model.hint_layers, model.preact_layers):
        post, before = cap.features[hint], cap.features[pre]
        assert (post >= 0).all()  # post-ReLU
        assert (before < 0).any()  # pre-ReLU responses keep their sign
        if isinstance(model, ResNetTeacher):  # the stage output is exactly relu(preact of its last block)
            torch.testing.assert_close(post, F.relu(before))


def test_documented_module_names():
    vgg = dict(VGGTeacher(1, 10).named_modules())
    for name in ["features.block1", "features.block2.conv", "features.block2.bn", "features.block2.relu",
                 "features.pool1", "features.block6", "features.pool3", "classifier.fc", "classifier.dropout"]:
        assert name in vgg
    assert VGGTeacher(1, 10).hint_layers == ("features.block2", "features.block4", "features.block6")
    res = ResNetTeacher(3, 10, depth=14)
    names = dict(res.named_modules())
    for name in ["stem.conv", "layer1.0.conv1", "layer1.1.preact", "layer2.0.shortcut.conv", "layer3.1.relu2",
                 "classifier.fc"]:
        assert name in names
    assert res.preact_layers == ("layer1.1.preact", "layer2.1.preact", "layer3.1.preact")


@pytest.mark.parametrize("depth, blocks", [(8, 1), (14, 2), (20, 3), (32, 5)])
def test_resnet_depth(depth, blocks):
    model = ResNetTeacher(1, 10, depth=depth, width=4)
    assert [len(getattr(model, f"layer{s}")) for s in (1, 2, 3)] == [blocks] * 3
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == depth  # 3x3 convs + the linear layer


def test_default_sizes_are_teacher_sized():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 0.8e6 < count(VGGTeacher(1, 10)) < 2e6
    assert 0.8e6 < count(ResNetTeacher(1, 10)) < 2e6
    assert count(ResNetTeacher(1, 10, width=16)) < 0.3e6  # classic ResNet-20


def test_custom_vgg_widths_and_trailing_block_hint():
    model = VGGTeacher(3, 5, widths=[8, "M", 16, "M", 32])
    assert model.hint_layers == ("features.block1", "features.block2", "features.block3")
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 5)


def test_build_teacher_rejects_unknown_names_and_bad_arguments():
    with pytest.raises(ValueError, match=r"name='vgg16'.*'vgg'.*'resnet20'"):
        build_teacher("vgg16", 1, 10)
    with pytest.raises(ValueError, match="depth"):
        build_teacher("resnet", 1, 10, depth=10)
    with pytest.raises(ValueError, match="depth"):
        build_teacher("resnet20", 1, 10, depth=14)
    with pytest.raises(ValueError, match="'vgg'.*colour"):
        build_teacher("vgg", 1, 10, colour="red")
    with pytest.raises(ValueError, match="widths"):
        build_teacher("vgg", 1, 10, widths=["M"])
    with pytest.raises(ValueError, match=r"widths\[1\]"):
        build_teacher("vgg", 1, 10, widths=[8, 0])
    with pytest.raises(ValueError, match="dropout"):
        build_teacher("resnet8", 1, 10, dropout=1.0)
    with pytest.raises(ValueError, match="num_classes"):
        build_teacher("vgg", 1, 1)
    with pytest.raises(ValueError, match="in_channels"):
        build_teacher("resnet", 0, 10)


def test_build_teacher_passes_keywords():
    model = build_teacher("resnet8", 3, 100, width=8, dropout=0.2)
    assert isinstance(model, ResNetTeacher) and model.width == 8 and model.depth == 8
    assert model.classifier.dropout.p == 0.2 and model.classifier.fc.out_features == 100


@pytest.mark.parametrize("name, kw, channels, size", [
    ("vgg", {"widths": (16, "M", 32, "M", 64, "M")}, 1, 28),
    ("resnet8", {"width": 16}, 3, 32),
])
def test_teacher_overfits_random_labels(name, kw, channels, size):
    # capacity/plumbing sanity: 64 random-labelled images memorised in a few dozen Adam steps
    torch.manual_seed(0)
    model = build_teacher(name, channels, 10, **kw)
    x, y = torch.rand(64, channels, size, size), torch.randint(0, 10, (64,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(60):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # train mode: BN running statistics lag after so few steps
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert loss.item() < 0.1 and acc == 1.0
