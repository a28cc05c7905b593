"""Mixed-precision Brevitas students with Winograd-domain SRBS convolutions.

Every 3x3 convolution is a :class:`QuantWinogradConv2d`; activations are
Brevitas ``QuantReLU`` with per-layer widths; the input is an unsigned
``in_bits`` quantizer; the classifier a ``QuantLinear``.  Module names follow
the teachers' (``features.block{i}``, ``layer{s}.{b}``...) so hint pairs can
name the same positions.  Per-layer widths: ``StudentConfig.layer_bits`` maps
a quantized layer's name (see :func:`quant_layer_names`) to ``(w_bits,
a_bits)``; the rest use ``w_bits``/``a_bits``.  A layer's ``a_bits`` is the width of
the activation quantizer after it (its *output*); :attr:`act_sources` says
which quantizer feeds each quantized layer, so bit operations can be charged
exactly (``BOPs_l = mults_l * w_l * a_{source(l)}``, see
``winoforge.model.mixed_precision``).

``StudentConfig.precision = "fp32"`` builds the same architecture unquantized:
the Winograd layers keep their Winograd-domain ``U`` (and SRBS mask, dense
unless pruned) without a weight quantizer, activations are plain ReLUs, the
input is not quantized and the classifier is an ``nn.Linear``.  It is the
floating-point reference of the quantized students, trained by the same recipe.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8ActPerTensorFloat, Int8WeightPerTensorFixedPoint,
                            Int8WeightPerTensorFloat, Uint8ActPerTensorFixedPoint, Uint8ActPerTensorFloat)
from torch import nn

from winoforge.winograd import FLOAT32_EXACT, WinogradSpec, bit_growth

from .winograd_layer import QuantWinogradConv2d
from .teachers import VGG_DEFAULT_WIDTHS

__all__ = ["StudentConfig", "VGGStudent", "ResNetStudent", "build_student", "winograd_layers", "quant_layer_names",
           "act_sources", "quant_layers", "PeerGroup", "AffineBatchNorm2d", "FLOAT32_EXACT", "float32_exact_problem",
           "float32_exact_problems"]


_ACT_QUANT = {"float": Uint8ActPerTensorFloat, "po2": Uint8ActPerTensorFixedPoint}
_SIGNED_ACT_QUANT = {"float": Int8ActPerTensorFloat, "po2": Int8ActPerTensorFixedPoint}
_LINEAR_WEIGHT_QUANT = {"float": Int8WeightPerTensorFloat, "po2": Int8WeightPerTensorFixedPoint}


def _check_bits(field_name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 8:
        raise ValueError(f"{field_name}={value!r} is out of range; allowed: 2..8")
    return value


@dataclass
class StudentConfig:
    arch: Literal["vgg", "resnet"] = "vgg"
    widths: list[int | str] = field(default_factory=lambda: list(VGG_DEFAULT_WIDTHS))  # vgg: channels, "M" = pool
    depth: int = 8  # resnet: 6n + 2
    width: int = 16  # resnet: first stage width (then 2x, 4x)
    # resnet: how a stage halves the image: "pool" (2x2 max-pooling, every 3x3 conv in the Winograd
    # layer) or "stride" (the stage's first conv and its 1x1 projection with stride 2, as the
    # teacher; a plain quantized conv -- the Winograd layer is stride 1 -- i.e. FINN's
    # ConvolutionInputGenerator + MVAU in hardware)
    downsample: Literal["pool", "stride"] = "pool"
    m: int = 2  # Winograd F(m x m, 3x3)
    w_bits: int = 4
    a_bits: int = 4
    in_bits: int = 8
    layer_bits: dict[str, tuple[int, int]] = field(default_factory=dict)
    weight_quant: Literal["float", "po2"] = "float"
    # activation (and input) quantizer scales: "po2" (powers of two) makes torch, the exported
    # QONNX graph and FINN's execution agree bit for bit (DESIGN.md, "What bit-exact means")
    act_quant: Literal["float", "po2"] = "float"
    sub_row: int | None = 8  # SRBS sub-row length; None: dense
    keep: int | None = None  # initial non-zeros per sub-row (None: sub_row, i.e. dense until pruned)
    precision: Literal["quant", "fp32"] = "quant"  # fp32: the same architecture unquantized (the reference)

    def __post_init__(self) -> None:
        for f, allowed in (("weight_quant", ("float", "po2")), ("act_quant", ("float", "po2")),
                           ("downsample", ("pool", "stride"))):
            if getattr(self, f) not in allowed:
                raise ValueError(f"student.{f}={getattr(self, f)!r} is not allowed; allowed: "
                                 f"{', '.join(repr(a) for a in allowed)}")
        if self.precision not in ("quant", "fp32"):
            raise ValueError(f"student.precision={self.precision!r} is not allowed; allowed: 'quant', 'fp32'")
        if self.precision == "fp32" and self.layer_bits:
            raise ValueError("student.layer_bits is set but student.precision='fp32' has no bit widths; "
                             "allowed: layer_bits only with precision='quant'")
        for f in ("w_bits", "a_bits", "in_bits"):
            _check_bits(f"student.{f}", getattr(self, f))
        for name, (w, a) in self.layer_bits.items():
            _check_bits(f"student.layer_bits.{name}[0]", w)
            _check_bits(f"student.layer_bits.{name}[1]", a)
        if self.m not in (2, 4):
            raise ValueError(f"student.m={self.m} is not allowed; allowed: 2, 4")
        if self.arch == "resnet" and (self.depth < 8 or (self.depth - 2) % 6):
            raise ValueError(f"student.depth={self.depth} is not allowed; allowed: 6n+2 >= 8")
        if self.sub_row is not None and self.sub_row < 1:
            raise ValueError(f"student.sub_row={self.sub_row} is out of range; allowed: >= 1 or unset")
        if self.keep is not None and (self.sub_row is None or not 1 <= self.keep <= self.sub_row):
            raise ValueError(f"student.keep={self.keep} is out of range; allowed: 1..sub_row (needs sub_row)")

    def bits(self, name: str) -> tuple[int, int]:
        return self.layer_bits.get(name, (self.w_bits, self.a_bits))


def _widest_stage(m: int, in_bits: int, weight_bits: int, cin: int) -> tuple[int, tuple[int, int]]:
    """Largest magnitude over the exact stage ranges (input transform, products, channel sums,
    output) of a Winograd layer with unsigned ``in_bits`` inputs, and its exact output range."""
    g = bit_growth(in_bits, weight_bits, cin, WinogradSpec(m), in_signed=False, weight_signed=True)
    return g.widest, tuple(g.output)


def float32_exact_problem(name: str, m: int, in_bits: int, weight_bits: int, cin: int) -> str | None:
    """Why a Winograd layer (F(m x m, 3x3), unsigned ``in_bits`` input codes, ``weight_bits`` weight
    codes, ``cin`` input channels) cannot be exact through the float32 stages, or ``None``.

    The float stages (torch's forward, the exported QONNX graph, FINN's float32 tensors, the
    thresholds after the layer) compute the layer on power-of-two-scaled integers; they are exact
    while every integer they hold stays below 2^24.  The rule (``BitGrowth.float32_exact``, one
    home in :mod:`winoforge.winograd.bits`): every stage's exact range from
    :func:`winoforge.winograd.bit_growth` -- over all inputs and weights of these widths, with all
    ``cin`` channels (an SRBS layer's kept channels differ between positions) -- stays below 2^24.
    That covers every partial sum of every summation order too (torch's GEMMs, onnxruntime's
    convolutions): a partial sum is the stage's value with the other weights set to 0, a legal
    code.  ``tests/hw/test_exactness_sweep.py`` drives accepted layers to their witnesses.
    The message names the layer, its exact output range and what would fit."""
    worst, out = _widest_stage(m, in_bits, weight_bits, cin)
    if worst < FLOAT32_EXACT:
        return None
    fits = []
    w_fit = [w for w in range(weight_bits - 1, 1, -1) if _widest_stage(m, in_bits, w, cin)[0] < FLOAT32_EXACT]
    if w_fit:
        fits.append(f"weight bits <= {w_fit[0]}")
    a_fit = [a for a in range(in_bits - 1, 1, -1) if _widest_stage(m, a, weight_bits, cin)[0] < FLOAT32_EXACT]
    if a_fit:
        fits.append(f"input activation bits <= {a_fit[0]}")
    if m != 2 and _widest_stage(2, in_bits, weight_bits, cin)[0] < FLOAT32_EXACT:
        fits.append("m=2")
    return (f"layer {name}: F({m}x{m},3x3) with {in_bits}-bit unsigned inputs, {weight_bits}-bit weights and "
            f"{cin} input channels has the exact output range [{out[0]}, {out[1]}] and intermediates up to "
            f"{worst}; float32 (torch, the ONNX export, FINN) holds integers exactly only below 2^24 = "
            f"{FLOAT32_EXACT}, so it cannot be built bit-exact; what fits: "
            + (", or ".join(fits) if fits else "fewer input channels"))


def float32_exact_problems(model: nn.Module) -> list[str]:
    """:func:`float32_exact_problem` for every Winograd layer of a quantized student built by
    :func:`build_student` (which records each layer's input width in ``layer_input_bits``)."""
    problems = []
    for name, bits in getattr(model, "layer_input_bits", {}).items():
        layer = model.quant_layers[name]
        if isinstance(layer, QuantWinogradConv2d):
            problem = float32_exact_problem(name, layer.spec.m, bits, int(layer.weight_bit_width()),
                                            layer.in_channels)
            if problem:
                problems.append(problem)
    return problems


class AffineBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose inference is written as ``x * a + b`` with ``a = gamma / sqrt(var + eps)``
    and ``b = beta - mean * a`` in float32: the export then holds exactly these ``Mul`` and ``Add``
    nodes with the same constants, so torch and any ONNX executor round identically (a fused
    ``BatchNormalization`` kernel rounds differently in the last bit, which flipped ~1 in 10^5
    activation codes of a W4A4 VGG).  Training is plain ``BatchNorm2d``; the state dict is the same."""

    def forward(self, x):
        if self.training or not self.track_running_stats:
            return super().forward(x)
        a = self.weight / torch.sqrt(self.running_var + self.eps)
        b = self.bias - self.running_mean * a
        return x * a.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)


class _Builder:
    """Makes the (quantized) modules of one student in data-flow order, recording which
    activation quantizer feeds each layer, and checks layer_bits names at the end."""

    def __init__(self, cfg: StudentConfig) -> None:
        self.cfg = cfg
        self.quant = cfg.precision == "quant"
        self.names: list[str] = []
        self.layers: dict[str, nn.Module] = {}
        self.sources: dict[str, str | None] = {}
        self.current: str | None = None  # the activation the next layer reads; None: the input image
        self.input_bits: dict[str, int] = {}  # quantized layer -> width of the (unsigned) codes it reads

    def conv(self, name: str, cin: int, cout: int, stride: int = 1) -> nn.Module:
        """A 3x3 convolution: the Winograd layer, or (``stride > 1``) a plain quantized conv."""
        self.names.append(name)
        self.sources[name] = self.current
        self.input_bits[name] = self.cfg.in_bits if self.current is None else self.cfg.bits(self.current)[1]
        w, _ = self.cfg.bits(name)
        if stride != 1:
            layer = (QuantConv2d(cin, cout, 3, stride=stride, padding=1, bias=False, weight_bit_width=w,
                                 weight_quant=_LINEAR_WEIGHT_QUANT[self.cfg.weight_quant]) if self.quant
                     else nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False))
            self.layers[name] = layer
            return layer
        keep = self.cfg.keep if self.cfg.keep is not None else self.cfg.sub_row
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dense fallback is reported by srbs_reason
            layer = QuantWinogradConv2d(cin, cout, m=self.cfg.m, weight_bit_width=w,
                                        weight_quant=self.cfg.weight_quant if self.quant else None,
                                        sub_row=self.cfg.sub_row, keep=keep if self.cfg.sub_row else None)
        self.layers[name] = layer
        return layer

    def relu(self, name: str) -> nn.Module:
        self.current = name
        if not self.quant:
            return nn.ReLU()
        return QuantReLU(act_quant=_ACT_QUANT[self.cfg.act_quant], bit_width=self.cfg.bits(name)[1],
                         return_quant_tensor=True)

    def linear(self, name: str, cin: int, cout: int) -> nn.Linear:
        self.names.append(name)
        self.sources[name] = self.current
        layer = (QuantLinear(cin, cout, bias=True, weight_bit_width=self.cfg.bits(name)[0],
                             weight_quant=_LINEAR_WEIGHT_QUANT[self.cfg.weight_quant]) if self.quant
                 else nn.Linear(cin, cout, bias=True))
        self.layers[name] = layer
        return layer

    def finish(self, model: nn.Module) -> None:
        unknown = sorted(set(self.cfg.layer_bits) - set(self.names))
        if unknown:
            raise ValueError(f"student.layer_bits names unknown layers {unknown}; allowed: {', '.join(self.names)}")
        model.quant_layer_names = tuple(self.names)
        model.act_sources = dict(self.sources)
        model.quant_layers = dict(self.layers)  # a plain dict: the modules are not registered twice
        if self.quant:
            model.layer_input_bits = dict(self.input_bits)


class _Block(nn.Sequential):
    """QuantWinogradConv2d - BatchNorm - QuantReLU."""

    def __init__(self, b: _Builder, name: str, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = b.conv(name, cin, cout)
        self.bn = AffineBatchNorm2d(cout)
        self.relu = b.relu(name)


def _head(b: _Builder, channels: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
                                     fc=b.linear("classifier.fc", channels, num_classes)))


def _input_quant(cfg: StudentConfig) -> nn.Module:
    if cfg.precision == "fp32":
        return nn.Identity()
    return QuantIdentity(act_quant=_ACT_QUANT[cfg.act_quant], bit_width=cfg.in_bits, return_quant_tensor=True)


class VGGStudent(nn.Module):
    """Plain stack: ``features.block{i}`` (Winograd conv - BN - QuantReLU) and ``features.pool{j}``."""

    def __init__(self, cfg: StudentConfig, in_channels: int, num_classes: int) -> None:
        super().__init__()
        b = _Builder(cfg)
        self.input_quant = _input_quant(cfg)
        layers: list[tuple[str, nn.Module]] = []
        cin, i, j = in_channels, 0, 0
        for w in cfg.widths:
            if w == "M":
                j += 1
                layers.append((f"pool{j}", nn.MaxPool2d(2)))
            else:
                i += 1
                layers.append((f"block{i}", _Block(b, f"features.block{i}", cin, int(w))))
                cin = int(w)
        self.features = nn.Sequential(OrderedDict(layers))
        self.classifier = _head(b, cin, num_classes)
        self.in_channels, self.num_classes = in_channels, num_classes
        b.finish(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.input_quant(x))
        return self.classifier(getattr(x, "value", x))


class _ResBlock(nn.Module):
    """BasicBlock with Winograd convs; a 1x1 projection where channels change; the sum
    is re-quantized by the block's QuantReLU (``preact`` marks the pre-ReLU sum).  The first
    block of a downsampling stage starts with 2x2 max-pooling (``pool``), where the
    teacher's block has stride 2, so the blocks keep the teacher's names.

    Quantized students add two *quantized* branches: the residual branch (after ``bn2``) and
    the shortcut (the block's input, or the projection's BN output) pass through signed
    quantizers that share one scale (``branch_quant``, ``shortcut_quant``: one Brevitas
    quantizer, ``a_bits + 1`` bits), so the sum is an integer sum of codes -- exact in hardware
    (an integer stream addition) and, with power-of-two scales, in float32.  The projection's
    1x1 convolution has quantized weights (``w_bits``, per-tensor, as the classifier's)."""

    def __init__(self, b: _Builder, name: str, cin: int, cout: int, pool: bool = False, stride: int = 1) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.conv1 = b.conv(f"{name}.conv1", cin, cout, stride)
        self.bn1, self.relu1 = AffineBatchNorm2d(cout), b.relu(f"{name}.conv1")
        self.conv2, self.bn2 = b.conv(f"{name}.conv2", cout, cout), AffineBatchNorm2d(cout)
        cfg = b.cfg
        if cin == cout and stride == 1:
            self.shortcut = nn.Identity()
        else:
            conv = (QuantConv2d(cin, cout, 1, stride=stride, bias=False, weight_bit_width=cfg.bits(f"{name}.conv1")[0],
                                weight_quant=_LINEAR_WEIGHT_QUANT[cfg.weight_quant]) if b.quant
                    else nn.Conv2d(cin, cout, 1, stride=stride, bias=False))
            self.shortcut = nn.Sequential(OrderedDict(conv=conv, bn=AffineBatchNorm2d(cout)))
        if b.quant:
            bits = min(8, cfg.bits(f"{name}.conv2")[1] + 1)
            self.branch_quant = QuantIdentity(act_quant=_SIGNED_ACT_QUANT[cfg.act_quant], bit_width=bits,
                                              return_quant_tensor=True)
            self.shortcut_quant = QuantIdentity(act_quant=self.branch_quant.act_quant, return_quant_tensor=True)
        else:
            self.branch_quant, self.shortcut_quant = nn.Identity(), nn.Identity()
        self.preact = nn.Identity()
        self.relu = b.relu(f"{name}.conv2")

    def forward(self, x):
        x = self.pool(x)
        xv = getattr(x, "value", x)
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.branch_quant(self.bn2(self.conv2(y)))
        return self.relu(self.preact(y + self.shortcut_quant(self.shortcut(xv))))


class ResNetStudent(nn.Module):
    """CIFAR-style ResNet (depth 6n+2) with Winograd convolutions; downsampling between stages
    by 2x2 max-pooling (``downsample="pool"``) or, as the teacher, by a stride-2 first conv and
    projection (``"stride"``: plain quantized convs -- the Winograd layer is stride 1)."""

    def __init__(self, cfg: StudentConfig, in_channels: int, num_classes: int) -> None:
        super().__init__()
        b = _Builder(cfg)
        n = (cfg.depth - 2) // 6
        self.input_quant = _input_quant(cfg)
        self.stem = _Block(b, "stem", in_channels, cfg.width)
        cin = cfg.width
        for s in range(1, 4):
            cout = cfg.width * 2 ** (s - 1)
            blocks = []
            for k in range(n):
                first = s > 1 and k == 0
                blocks.append(_ResBlock(b, f"layer{s}.{k}", cin, cout, pool=first and cfg.downsample == "pool",
                                        stride=2 if first and cfg.downsample == "stride" else 1))
                cin = cout
            setattr(self, f"layer{s}", nn.Sequential(*blocks))
        self.classifier = _head(b, cin, num_classes)
        self.in_channels, self.num_classes = in_channels, num_classes
        b.finish(self)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(self.input_quant(x)))))
        return self.classifier(getattr(x, "value", x))


def build_student(cfg: StudentConfig, in_channels: int, num_classes: int, check_exact: bool = True) -> nn.Module:
    """The student of ``cfg``.  ``ValueError`` (before any training) when a Winograd layer's widths
    cannot be exact through the float32 stages (:func:`float32_exact_problem`), naming each such
    layer; ``check_exact=False`` only for measurement probes that are never exported (the
    mixed-precision search's W8A8 reference)."""
    model = (VGGStudent if cfg.arch == "vgg" else ResNetStudent)(cfg, in_channels, num_classes)
    problems = float32_exact_problems(model) if check_exact else []
    if problems:
        raise ValueError("student configuration refused: " + "; ".join(problems))
    return model


def winograd_layers(model: nn.Module) -> dict[str, QuantWinogradConv2d]:
    return {name: mod for name, mod in model.named_modules() if isinstance(mod, QuantWinogradConv2d)}


def quant_layer_names(model: nn.Module) -> tuple[str, ...]:
    """Names accepted by ``StudentConfig.layer_bits`` for this model."""
    return model.quant_layer_names


def quant_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layer (Winograd conv or classifier linear) behind each ``quant_layer_names`` name."""
    return dict(model.quant_layers)


def act_sources(model: nn.Module) -> dict[str, str | None]:
    """For each quantized layer, the layer whose activation quantizer feeds it (``None``: the
    input quantizer).  Each activation feeds exactly one quantized layer."""
    return dict(model.act_sources)


class PeerGroup(nn.Module):
    """``K`` peer students trained together (online distillation, see ``losses.OnlineDistillation``).

    ``forward(x)`` returns the mean of the peers' logits (the group's prediction, used
    for evaluation); ``forward(x, all_peers=True)`` the list of each peer's logits."""

    def __init__(self, peers) -> None:
        super().__init__()
        self.peers = nn.ModuleList(peers)
        if len(self.peers) < 2:
            raise ValueError(f"a peer group needs at least 2 students, got {len(self.peers)}")

    def forward(self, x: torch.Tensor, all_peers: bool = False):
        logits = [getattr(z, "value", z) for z in (peer(x) for peer in self.peers)]
        return logits if all_peers else torch.stack(logits).mean(dim=0)
