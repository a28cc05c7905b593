"""winoforge.winograd -- the exact mathematical core (numpy only).

Every later stage (torch students, ONNX export, the FINN WinogradSRBS op, the
RTL, the runtime) checks itself against these functions.
"""

from .bits import FLOAT32_EXACT, BitGrowth, accumulator_bits, bit_growth, signed_bits, value_range
from .conv import (
    assemble_tiles,
    direct_conv2d,
    extract_tiles,
    filter_transform,
    input_transform,
    integer_filter_transform,
    output_transform,
    winograd_conv2d,
)
from .counts import NETWORKS, ConvLayer, LayerCounts, NetworkCounts, OpCounts, op_counts, resnet18_imagenet, vgg16_cifar10
from .srbs import PackedSRBS, check_srbs_params, index_bits, is_srbs, pack_srbs, srbs_mask, unpack_srbs
from .transforms import INTERPOLATION_POINTS, SUPPORTED_TILES, WinogradSpec

__all__ = [
    "WinogradSpec",
    "SUPPORTED_TILES",
    "INTERPOLATION_POINTS",
    "filter_transform",
    "integer_filter_transform",
    "extract_tiles",
    "input_transform",
    "output_transform",
    "assemble_tiles",
    "winograd_conv2d",
    "direct_conv2d",
    "BitGrowth",
    "bit_growth",
    "accumulator_bits",
    "signed_bits",
    "value_range",
    "FLOAT32_EXACT",
    "srbs_mask",
    "is_srbs",
    "check_srbs_params",
    "index_bits",
    "PackedSRBS",
    "pack_srbs",
    "unpack_srbs",
    "ConvLayer",
    "OpCounts",
    "LayerCounts",
    "NetworkCounts",
    "op_counts",
    "vgg16_cifar10",
    "resnet18_imagenet",
    "NETWORKS",
]
