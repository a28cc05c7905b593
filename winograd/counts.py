"""Operation counts: direct convolution, dense Winograd and SRBS Winograd.

Counts are per image.  Definitions:

* ``mults``: general multiplications (activation x weight).  Direct:
  ``Cout*Cin*k*k*Ho*Wo``; Winograd: ``Cout*Cin*t*t*tiles``; SRBS: the Winograd
  count times ``keep/sub_row``.  This is the figure papers compare
  (Lavin & Gray 2016; BISWSRBS, Yang et al. 2021).
* ``adds``: accumulation adds plus the additions of the input and output
  transforms (each 2-D transform done as two 1-D passes, one add per extra
  non-zero in a matrix row).
* ``const_mults``: multiplications by transform constants other than 0, +-1
  (shift-and-add in hardware; none for F(2,3)).
* ``bops``: bit operations of the multiplications, ``mults * w_bits * a_bits``;
  for Winograd the activation operand is the transformed input, which is
  wider (``bit_growth(...).input_transform_bits``).

A layer that Winograd F(m, r) cannot compute (kernel != r or stride != 1)
keeps its direct counts in the Winograd and SRBS columns; a layer whose Cin is
not a multiple of ``sub_row`` stays dense in the SRBS column.  Both are flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil
from typing import Sequence

import numpy as np

from ._checks import check_int
from .bits import bit_growth
from .conv import as_spec
from .srbs import check_srbs_params
from .transforms import WinogradSpec

__all__ = [
    "ConvLayer",
    "OpCounts",
    "LayerCounts",
    "NetworkCounts",
    "op_counts",
    "vgg16_cifar10",
    "resnet18_imagenet",
    "NETWORKS",
]


@dataclass(frozen=True)
class ConvLayer:
    """A convolution (or a fully connected layer as a 1x1 convolution on 1x1 input)."""

    name: str
    cin: int
    cout: int
    height: int
    width: int
    kernel: int = 3
    stride: int = 1
    padding: int | None = None  # default: kernel // 2 ("same" for odd kernels)

    def __post_init__(self) -> None:
        for f in ("cin", "cout", "height", "width", "kernel", "stride"):
            check_int(f"{self.name}.{f}", getattr(self, f), minimum=1)
        if self.padding is None:
            object.__setattr__(self, "padding", self.kernel // 2)
        check_int(f"{self.name}.padding", self.padding, minimum=0)
        if self.out_height < 1 or self.out_width < 1:
            raise ValueError(f"{self.name}: input {self.height}x{self.width} is smaller than kernel {self.kernel}")

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.padding - self.kernel) // self.stride + 1

    def winograd_eligible(self, spec: WinogradSpec) -> bool:
        return self.kernel == spec.r and self.stride == 1


@dataclass(frozen=True)
class OpCounts:
    mults: int = 0
    adds: int = 0
    const_mults: int = 0
    bops: int = 0

    def __add__(self, other: "OpCounts") -> "OpCounts":
        return OpCounts(*(a + b for a, b in zip(self._tuple(), other._tuple())))

    def _tuple(self) -> tuple[int, int, int, int]:
        return self.mults, self.adds, self.const_mults, self.bops


@dataclass(frozen=True)
class LayerCounts:
    layer: ConvLayer
    w_bits: int
    a_bits: int
    direct: OpCounts
    winograd: OpCounts
    srbs: OpCounts
    winograd_applied: bool
    srbs_applied: bool


@dataclass(frozen=True)
class NetworkCounts:
    spec: WinogradSpec
    sub_row: int | None
    keep: int | None
    layers: tuple[LayerCounts, ...]
    direct: OpCounts = field(init=False)
    winograd: OpCounts = field(init=False)
    srbs: OpCounts = field(init=False)

    def __post_init__(self) -> None:
        for method in ("direct", "winograd", "srbs"):
            total = OpCounts()
            for lc in self.layers:
                total = total + getattr(lc, method)
            object.__setattr__(self, method, total)

    def mult_reduction(self, method: str) -> float:
        """Direct-convolution multiplications over those of ``method`` ('winograd' or 'srbs')."""
        if method not in ("winograd", "srbs"):
            raise ValueError(f"method must be 'winograd' or 'srbs', got {method!r}")
        return self.direct.mults / getattr(self, method).mults


def _transform_costs(mat: np.ndarray) -> tuple[int, int]:
    """(adds, const_mults) of one 1-D pass ``mat @ v``."""
    nnz = np.count_nonzero(mat, axis=1)
    adds = int(np.maximum(nnz - 1, 0).sum())
    const = int(np.count_nonzero((mat != 0) & (np.abs(mat) != 1)))
    return adds, const


def _per_layer(values, name: str, n: int) -> list[int]:
    if isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        return [check_int(name, values, minimum=1, maximum=32)] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{name} must be an int or one value per layer ({n}), got {len(values)} values")
    return [check_int(f"{name}[{i}]", v, minimum=1, maximum=32) for i, v in enumerate(values)]


def op_counts(
    layers: Sequence[ConvLayer],
    spec: WinogradSpec | int = 2,
    *,
    sub_row: int | None = None,
    keep: int | None = None,
    w_bits: int | Sequence[int] = 8,
    a_bits: int | Sequence[int] = 8,
    a_signed: bool = False,
) -> NetworkCounts:
    """Per-layer and whole-network counts for direct, Winograd and SRBS Winograd.

    ``w_bits``/``a_bits`` are one width for all layers or one per layer (mixed
    precision); ``a_signed`` says whether the activation codes are signed (a
    ReLU network's are not).
    """
    spec = as_spec(spec)
    layers = list(layers)
    if not layers:
        raise ValueError("layers must not be empty")
    if (sub_row is None) != (keep is None):
        raise ValueError("sub_row and keep must be given together (or neither, for dense only)")
    wb = _per_layer(w_bits, "w_bits", len(layers))
    ab = _per_layer(a_bits, "a_bits", len(layers))
    t, m = spec.t, spec.m
    in_adds, in_const = _transform_costs(spec.BT)
    out_adds, out_const = _transform_costs(spec.AT)
    result = []
    for layer, w, a in zip(layers, wb, ab):
        ho, wo = layer.out_height, layer.out_width
        direct_mults = layer.cout * layer.cin * layer.kernel**2 * ho * wo
        direct = OpCounts(
            mults=direct_mults,
            adds=layer.cout * ho * wo * (layer.cin * layer.kernel**2 - 1),
            bops=direct_mults * w * a,
        )
        if not layer.winograd_eligible(spec):
            result.append(LayerCounts(layer, w, a, direct, direct, direct, False, False))
            continue
        tiles = ceil(ho / m) * ceil(wo / m)
        v_bits = bit_growth(a, w, layer.cin, spec, in_signed=a_signed).input_transform_bits
        # per tile: 2-D input transform per input channel, output transform per output channel
        transform_adds = tiles * (layer.cin * 2 * t * in_adds + layer.cout * (t + m) * out_adds)
        transform_const = tiles * (layer.cin * 2 * t * in_const + layer.cout * (t + m) * out_const)

        def winograd_counts(terms: int) -> OpCounts:
            mults = layer.cout * terms * t * t * tiles
            return OpCounts(
                mults=mults,
                adds=layer.cout * t * t * tiles * (terms - 1) + transform_adds,
                const_mults=transform_const,
                bops=mults * w * v_bits,
            )

        dense = winograd_counts(layer.cin)
        srbs_ok = sub_row is not None and layer.cin % sub_row == 0
        if srbs_ok:
            check_srbs_params(layer.cin, sub_row, keep)
            sparse = winograd_counts(layer.cin * keep // sub_row)
        else:
            sparse = dense
        result.append(LayerCounts(layer, w, a, direct, dense, sparse, True, srbs_ok))
    return NetworkCounts(spec, sub_row, keep, tuple(result))


def vgg16_cifar10(num_classes: int = 10) -> list[ConvLayer]:
    """VGG16 for 32x32 CIFAR-10 (Simonyan & Zisserman, configuration D), 13 convs
    + one linear classifier, 2x2 max-pool after blocks 1-5 (313.2 M conv MACs)."""
    cfg = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
    layers, cin, size = [], 3, 32
    for block, (cout, n) in enumerate(cfg, start=1):
        for i in range(1, n + 1):
            layers.append(ConvLayer(f"conv{block}_{i}", cin, cout, size, size))
            cin = cout
        size //= 2
    layers.append(ConvLayer("fc", cin, num_classes, 1, 1, kernel=1))
    return layers


def resnet18_imagenet(num_classes: int = 1000) -> list[ConvLayer]:
    """ResNet-18 for 224x224 ImageNet (He et al. 2016), 1.81 G MACs.

    Stride-2 3x3 convolutions and the 7x7 stem are not Winograd-eligible and
    keep their direct counts; 1x1 downsampling shortcuts are included."""
    layers = [ConvLayer("conv1", 3, 64, 224, 224, kernel=7, stride=2, padding=3)]
    size, cin = 56, 64  # after the 3x3/2 max-pool
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if (stage > 1 and block == 0) else 1
            prefix = f"layer{stage}.{block}"
            layers.append(ConvLayer(f"{prefix}.conv1", cin, cout, size, size, stride=stride))
            out = (size + 2 - 3) // stride + 1
            layers.append(ConvLayer(f"{prefix}.conv2", cout, cout, out, out))
            if stride != 1 or cin != cout:
                layers.append(ConvLayer(f"{prefix}.downsample", cin, cout, size, size, kernel=1, stride=stride))
            cin, size = cout, out
    layers.append(ConvLayer("fc", cin, num_classes, 1, 1, kernel=1))
    return layers


#: Layer tables by name, for the CLI and the benchmark.
NETWORKS = {"vgg16-cifar10": vgg16_cifar10, "resnet18-imagenet": resnet18_imagenet}
