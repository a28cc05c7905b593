"""Operation counts against hand formulas and the literature."""

from math import ceil

import pytest

from winoforge.winograd import ConvLayer, WinogradSpec, bit_growth, op_counts, resnet18_imagenet, vgg16_cifar10

pytestmark = pytest.mark.portable


def test_vgg16_cifar10_matches_literature():
    layers = vgg16_cifar10()
    assert [layer.cout for layer in layers[:13]] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    counts = op_counts(layers, 2)
    conv = sum(lc.direct.mults for lc in counts.layers if lc.layer.kernel == 3)
    assert conv == 313_196_544  # the 313.2 M MACs usually quoted for VGG16 on 32x32 inputs
    assert counts.direct.mults == conv + 512 * 10  # plus the classifier


def test_resnet18_matches_literature():
    counts = op_counts(resnet18_imagenet(), 2)
    # He et al. 2016 quote 1.8 G FLOPs (multiply-adds); the exact total is 1.814 G
    assert counts.direct.mults == 1_814_073_344
    assert sum(lc.winograd_applied for lc in counts.layers) == 13  # stride-1 3x3 convs only
    names = {lc.layer.name for lc in counts.layers if not lc.winograd_applied}
    assert {"conv1", "layer2.0.conv1", "layer2.0.downsample", "fc"} <= names


@pytest.mark.parametrize("m", [2, 4])
def test_per_layer_formulas(m):
    spec = WinogradSpec(m)
    layer = ConvLayer("c", 16, 24, 10, 14)
    lc = op_counts([layer], spec, sub_row=8, keep=2, w_bits=4, a_bits=4).layers[0]
    tiles = ceil(10 / m) * ceil(14 / m)
    assert lc.direct.mults == 24 * 16 * 9 * 10 * 14
    assert lc.direct.adds == 24 * 10 * 14 * (16 * 9 - 1)
    assert lc.winograd.mults == 24 * 16 * spec.t**2 * tiles
    assert lc.srbs.mults == lc.winograd.mults // 4
    assert lc.direct.bops == lc.direct.mults * 16
    v_bits = bit_growth(4, 4, 16, spec, in_signed=False).input_transform_bits
    assert lc.winograd.bops == lc.winograd.mults * 4 * v_bits
    assert lc.srbs.adds < lc.winograd.adds < lc.direct.adds


def test_f23_reduction_is_2_25_on_even_maps_and_scales_with_density():
    layers = [ConvLayer("a", 64, 64, 16, 16), ConvLayer("b", 64, 128, 8, 8)]
    for keep, density in ((8, 1.0), (4, 0.5), (2, 0.25), (1, 0.125)):
        counts = op_counts(layers, 2, sub_row=8, keep=keep)
        assert counts.mult_reduction("winograd") == 2.25
        assert counts.mult_reduction("srbs") == 2.25 / density
    assert op_counts(layers, 4).mult_reduction("winograd") == 4.0
    # F(2,3) transforms are adds only; F(4,3) needs constant multiplications
    assert op_counts(layers, 2).winograd.const_mults == 0 < op_counts(layers, 4).winograd.const_mults


def test_ineligible_layers_stay_direct_or_dense():
    first = ConvLayer("first", 3, 64, 32, 32)
    strided = ConvLayer("s2", 64, 64, 32, 32, stride=2)
    counts = op_counts([first, strided], 2, sub_row=8, keep=2)
    lf, ls = counts.layers
    assert lf.winograd_applied and not lf.srbs_applied and lf.srbs == lf.winograd
    assert not ls.winograd_applied and ls.winograd == ls.direct == ls.srbs


def test_mixed_precision_bits_per_layer():
    layers = [ConvLayer("a", 8, 8, 8, 8), ConvLayer("b", 8, 8, 8, 8)]
    counts = op_counts(layers, 2, w_bits=[2, 8], a_bits=[4, 4])
    assert counts.layers[0].direct.bops * 4 == counts.layers[1].direct.bops
    assert counts.direct.bops == sum(lc.direct.bops for lc in counts.layers)


def test_bad_arguments():
    layer = ConvLayer("a", 8, 8, 8, 8)
    with pytest.raises(ValueError, match="w_bits must be an int or one value per layer"):
        op_counts([layer], 2, w_bits=[4, 4])
    with pytest.raises(ValueError, match="sub_row and keep must be given together"):
        op_counts([layer], 2, sub_row=4)
    with pytest.raises(ValueError, match="keep=9 is out of range"):
        op_counts([layer], 2, sub_row=8, keep=9)
    with pytest.raises(ValueError, match=r"a\.cin=0 is out of range"):
        ConvLayer("a", 0, 8, 8, 8)
    with pytest.raises(ValueError, match="layers must not be empty"):
        op_counts([], 2)
    with pytest.raises(ValueError, match="method must be"):
        op_counts([layer], 2).mult_reduction("fft")
