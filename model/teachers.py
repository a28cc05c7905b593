"""FP32 teacher networks for 1x28x28 (Fashion-MNIST) and 3x32x32 (CIFAR-10) inputs.

Two families, both ``conv3x3 - BN - ReLU`` throughout, ending in global
average pooling and one linear layer (so any input of at least 8x8 works):

* :class:`VGGTeacher` -- VGG-style plain stack with max-pooling.
* :class:`ResNetTeacher` -- CIFAR-style ResNet (He et al. 2016): depth
  ``6n + 2`` (8, 14, 20, 32, ...), three stages of ``n`` BasicBlocks with widths
  ``w, 2w, 4w``, strides 1, 2, 2.

Both expose ``in_channels``, ``num_classes`` and two tuples of stable
``named_modules()`` names for distillation (see each class):

* ``hint_layers`` -- post-ReLU outputs, one per resolution (FitNets hints);
* ``preact_layers`` -- the matching pre-ReLU responses (activation-boundary
  loss, which needs the sign of the response before the ReLU).

ReLUs are not in-place, so a forward hook on a module sees its own output
unchanged by later layers.  Inputs are expected in ``[0, 1]`` without mean/std
normalisation (``winoforge.model.data``); BN after the first convolution
absorbs the offset.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from torch import Tensor, nn

__all__ = ["VGG_DEFAULT_WIDTHS", "ConvBNReLU", "VGGTeacher", "BasicBlock", "ResNetTeacher",
           "TEACHERS", "build_teacher"]

#: default VGG configuration: channel counts, "M" = 2x2 max-pooling
VGG_DEFAULT_WIDTHS: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, "M")


def _check_int(field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{field}={value!r} is out of range; allowed: integer >= {minimum}")
    return value


def _check_dropout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"dropout={value!r} is out of range; allowed: 0 <= dropout < 1")
    return float(value)


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def _head(channels: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        pool=nn.AdaptiveAvgPool2d(1),
        flatten=nn.Flatten(),
        dropout=nn.Dropout(dropout),
        fc=nn.Linear(channels, num_classes),
    ))


class ConvBNReLU(nn.Sequential):
    """``conv`` (3x3, stride 1, padding 1, no bias) -> ``bn`` -> ``relu``; ``bn``'s output is pre-ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            bn=nn.BatchNorm2d(out_channels),
            relu=nn.ReLU(),
        ))


class VGGTeacher(nn.Module):
    """VGG-style teacher: ``features`` (conv blocks and max-pools), then ``classifier``.

    ``widths`` lists the conv blocks' output channels, ``"M"`` a 2x2 max-pool.
    Module names (stable; ``i`` counts conv blocks from 1, ``j`` pools from 1):

    * ``features.block{i}`` -- conv3x3-BN-ReLU block (children ``conv``, ``bn``, ``relu``);
    * ``features.block{i}.bn`` -- its pre-ReLU response;
    * ``features.pool{j}`` -- max-pooling;
    * ``classifier.pool`` (global average), ``classifier.flatten``,
      ``classifier.dropout``, ``classifier.fc``.

    ``hint_layers`` are the last block before each pool (and the last block if
    the list does not end with a pool): with the default widths
    ``features.block2`` (64 ch, full size), ``features.block4`` (128 ch, 1/2),
    ``features.block6`` (256 ch, 1/4); ``preact_layers`` the same with ``.bn``.
    Default: 6 conv layers, about 1.15 M parameters; 28x28 maps go 28 -> 14
    -> 7 -> 3, 32x32 maps 32 -> 16 -> 8 -> 4.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 widths: Sequence[int | str] = VGG_DEFAULT_WIDTHS, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_channels = _check_int("in_channels", in_channels, 1)
        self.num_classes = _check_int("num_classes", num_classes, 2)
        dropout = _check_dropout(dropout)
        widths = tuple(widths)
        if not any(w != "M" for w in widths):
            raise ValueError(f"widths={list(widths)!r} has no conv block; allowed: integers >= 1 and 'M'")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        hints: list[str] = []
        channels, blocks, pools = in_channels, 0, 0
        for k, w in enumerate(widths):
            if w == "M":
                pools += 1
                if blocks and (not hints or hints[-1] != f"features.block{blocks}"):
                    hints.append(f"features.block{blocks}")
                layers[f"pool{pools}"] = nn.MaxPool2d(2)
            else:
                _check_int(f"widths[{k}]", w, 1)
                blocks += 1
                layers[f"block{blocks}"] = ConvBNReLU(channels, w)
                channels = w
        if hints[-1:] != [f"features.block{blocks}"]:
            hints.append(f"features.block{blocks}")
        self.widths = widths
        self.features = nn.Sequential(layers)
        self.classifier = _head(channels, num_classes, dropout)
        self.hint_layers: tuple[str, ...] = tuple(hints)
        self.preact_layers: tuple[str, ...] = tuple(f"{h}.bn" for h in hints)
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """ResNet BasicBlock: ``relu(preact)``, ``preact = bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)``.

    ``shortcut`` is the identity, or 1x1 conv (stride) + BN where the shape
    changes (He et al.'s option B).  ``preact`` is an ``nn.Identity`` placed on
    the sum so the pre-ReLU response has a module name for hooks.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(OrderedDict(
                conv=nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                bn=nn.BatchNorm2d(out_channels),
            ))
        else:
            self.shortcut = nn.Identity()
        self.preact = nn.Identity()
        self.relu2 = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(self.preact(out + self.shortcut(x)))


class ResNetTeacher(nn.Module):
    """CIFAR-style ResNet teacher of depth ``6n + 2`` (ResNet-8/14/20/32...).

    Module names (stable; ``s`` = 1, 2, 3, ``b`` = 0 .. n-1):

    * ``stem`` (children ``conv``, ``bn``, ``relu``) -- 3x3 conv to ``width`` channels;
    * ``layer{s}`` -- stage ``s``: ``n`` :class:`BasicBlock`\\ s, ``width * 2**(s-1)``
      channels, stride 1 (s = 1) or 2 (s = 2, 3);
    * ``layer{s}.{b}`` -- one block; ``layer{s}.{b}.preact`` its pre-ReLU sum;
    * ``classifier.pool``, ``classifier.flatten``, ``classifier.dropout``, ``classifier.fc``.

    ``hint_layers = ("layer1", "layer2", "layer3")`` (each stage's output,
    post-ReLU; 28x28 input: 28, 14, 7; 32x32: 32, 16, 8), ``preact_layers`` =
    the last block's ``preact`` of each stage.  Default depth 20, width 32:
    about 1.1 M parameters.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, *, depth: int = 20, width: int = 32,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.in_channels = _check_int("in_channels", in_channels, 1)
        self.num_classes = _check_int("num_classes", num_classes, 2)
        _check_int("width", width, 1)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth={depth!r} is out of range; allowed: 6n + 2 with n >= 1 (8, 14, 20, 26, 32, ...)")
        dropout = _check_dropout(dropout)
        self.depth, self.width = depth, width
        n = (depth - 2) // 6
        self.stem = nn.Sequential(OrderedDict(
            conv=nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            bn=nn.BatchNorm2d(width),
            relu=nn.ReLU(),
        ))
        channels = width
        for s in (1, 2, 3):
            out = width * 2 ** (s - 1)
            blocks = [BasicBlock(channels if b == 0 else out, out, stride=(1 if s == 1 or b > 0 else 2)) for b in range(n)]
            setattr(self, f"layer{s}", nn.Sequential(*blocks))
            channels = out
        self.classifier = _head(channels, num_classes, dropout)
        self.hint_layers: tuple[str, ...] = ("layer1", "layer2", "layer3")
        self.preact_layers: tuple[str, ...] = tuple(f"layer{s}.{n - 1}.preact" for s in (1, 2, 3))
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.classifier(x)


def _resnet(depth: int) -> Callable[..., ResNetTeacher]:
    def build(in_channels: int, num_classes: int, **kw) -> ResNetTeacher:
        if "depth" in kw and kw["depth"] != depth:
            raise ValueError(f"depth={kw['depth']!r} contradicts the name resnet{depth}; use name 'resnet' with depth=")
        kw["depth"] = depth
        return ResNetTeacher(in_channels, num_classes, **kw)
    return build


#: teacher names accepted by :func:`build_teacher`
TEACHERS: dict[str, Callable[..., nn.Module]] = {
    "vgg": VGGTeacher,
    "resnet": ResNetTeacher,
    "resnet8": _resnet(8),
    "resnet14": _resnet(14),
    "resnet20": _resnet(20),
}


def build_teacher(name: str, in_channels: int, num_classes: int, **kw) -> nn.Module:
    """Build the teacher ``name`` (one of :data:`TEACHERS`); ``kw`` go to its constructor.

    ``build_teacher("vgg", 1, 10)``, ``build_teacher("resnet20", 3, 10, width=16)``,
    ``build_teacher("resnet", 1, 10, depth=32)``.
    """
    if name not in TEACHERS:
        raise ValueError(f"teacher name={name!r} is not allowed; allowed: {', '.join(map(repr, TEACHERS))}")
    try:
        return TEACHERS[name](in_channels, num_classes, **kw)
    except TypeError as exc:  # unknown keyword: say which teacher rejected it
        raise ValueError(f"teacher {name!r}: {exc}") from exc
