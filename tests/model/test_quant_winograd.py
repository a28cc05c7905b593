"""QuantWinogradConv2d: integer behaviour equals the numpy Winograd core exactly."""

import warnings

import numpy as np
import pytest
import torch
from brevitas.nn import QuantIdentity, QuantReLU
from brevitas.quant import Uint8ActPerTensorFixedPoint
from hypothesis import given, settings
from hypothesis import strategies as st

from winoforge.model.quant_winograd import QuantWinogradConv2d, winograd_conv2d_torch
from winoforge.winograd import WinogradSpec, srbs_mask, winograd_conv2d


def _input_quant(bits):
    return QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint, bit_width=bits, return_quant_tensor=True)


@settings(max_examples=25)
@given(st.data())
def test_integer_codes_equal_numpy_core(data):
    m = data.draw(st.sampled_from([2, 4]))
    cin = data.draw(st.sampled_from([4, 8]))
    cout = data.draw(st.integers(1, 5))
    wbits, abits = data.draw(st.integers(2, 8)), data.draw(st.integers(2, 8))
    pad = data.draw(st.integers(0, 2))
    h, w = data.draw(st.integers(max(1, 3 - 2 * pad), 9)), data.draw(st.integers(max(1, 3 - 2 * pad), 9))
    srbs = data.draw(st.sampled_from([None, (4, 1), (4, 3)]))
    weight_quant = data.draw(st.sampled_from(["float", "po2"]))
    torch.manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    layer = QuantWinogradConv2d(cin, cout, m=m, padding=pad, weight_bit_width=wbits, weight_quant=weight_quant,
                                sub_row=srbs[0] if srbs else None, keep=srbs[1] if srbs else None)
    x = _input_quant(abits)(torch.rand(2, cin, h, w) * 4)
    x_int = torch.round(x.value / x.scale).to(torch.int64).numpy()
    U_int = layer.int_weight()
    assert np.abs(U_int).max() <= 2 ** (wbits - 1)
    with torch.no_grad():
        y = layer(x)
    # float32 products of codes this small are exact; the rounding only removes the scale's last-bit error
    codes = torch.round(y.double() / (x.scale.double() * layer.weight_scale().double().view(1, -1, 1, 1)))
    assert np.array_equal(codes.to(torch.int64).numpy(), winograd_conv2d(x_int, U_int, layer.spec, padding=pad))


def test_power_of_two_scales_are_float_exact():
    torch.manual_seed(1)
    layer = QuantWinogradConv2d(8, 4, weight_bit_width=4, weight_quant="po2")
    x_int = torch.randint(0, 16, (2, 8, 6, 6))
    x = x_int.float() / 16  # a power-of-two input scale
    s = layer.weight_scale()
    assert torch.equal(torch.log2(s), torch.round(torch.log2(s)))
    ref = winograd_conv2d(x_int.numpy(), layer.int_weight(), 2)
    with torch.no_grad():
        assert torch.equal(layer(x), torch.from_numpy(ref).float() / 16 * s.view(1, -1, 1, 1))


@pytest.mark.parametrize("m", [2, 4])
def test_float_path_equals_spatial_conv(m):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5, 3, 3, padding=1, bias=False).double()
    layer = QuantWinogradConv2d.from_conv(conv, m=m, weight_bit_width=8).double()
    layer.load_spatial_weight(conv.weight.detach())  # again, now into the float64 parameter
    x = torch.randn(2, 5, 9, 7, dtype=torch.float64)
    # float64 with O(1) values: transform rounding ~1e-15 relative; 1e-10 leaves margin
    torch.testing.assert_close(winograd_conv2d_torch(x, layer.U.double(), layer.spec), conv(x), rtol=0, atol=1e-10)


@pytest.mark.parametrize("m", [2, 4])
def test_gradcheck(m):
    spec = WinogradSpec(m)
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    U = torch.randn(3, 2, spec.t, spec.t, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: winograd_conv2d_torch(a, b, spec, 1), (x, U))


def test_srbs_invariants_hold_through_training_steps():
    torch.manual_seed(0)
    layer = QuantWinogradConv2d(8, 6, sub_row=4, keep=2)
    opt = torch.optim.SGD(layer.parameters(), lr=0.5, momentum=0.9)
    for keep in (3, 2, 1):
        layer.set_keep(keep)
        for _ in range(3):
            opt.zero_grad()
            layer(torch.randn(2, 8, 6, 6)).pow(2).mean().backward()
            opt.step()
            layer.apply_mask_()
            U = layer.U.detach().numpy()
            mask = layer.mask.numpy().astype(bool)
            assert np.array_equal(mask, srbs_mask(np.where(mask, np.abs(U) + 1, 0), 4, keep))
            assert (U[~mask] == 0).all()
            per_subrow = (layer.int_weight() != 0).transpose(2, 3, 0, 1).reshape(16, 6, 2, 4).sum(-1)
            assert (per_subrow <= keep).all()


def test_dense_fallback_says_so():
    with pytest.warns(UserWarning, match="in_channels=3 is not a multiple of sub_row=8"):
        layer = QuantWinogradConv2d(3, 8, sub_row=8, keep=2)
    assert not layer.srbs_enabled and "dense" in layer.srbs_note
    with pytest.raises(ValueError, match="set_keep on a layer that is dense"):
        layer.set_keep(1)


@pytest.mark.parametrize("kwargs, message", [
    ({"weight_bit_width": 1}, "weight_bit_width=1 is out of range; allowed: 2..8"),
    ({"weight_bit_width": 9}, "weight_bit_width=9 is out of range"),
    ({"sub_row": 3, "keep": 1}, None),
    ({"sub_row": 4, "keep": 5}, "keep=5 is out of range; allowed: 1..4"),
    ({"sub_row": 4}, "sub_row and keep must be given together"),
    ({"m": 3}, "m=3 is not supported"),
    ({"weight_quant": "int"}, "weight_quant='int' is not allowed"),
])
def test_bad_parameters(kwargs, message):
    if message is None:  # sub_row=3 does not divide 8: dense with a warning, not an error
        with pytest.warns(UserWarning):
            QuantWinogradConv2d(8, 4, **kwargs)
        return
    with pytest.raises(ValueError, match=message):
        QuantWinogradConv2d(8, 4, **kwargs)


def test_in_a_brevitas_network():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = torch.nn.Sequential(_input_quant(8), QuantWinogradConv2d(1, 8, sub_row=None), torch.nn.BatchNorm2d(8),
                                  QuantReLU(bit_width=4, return_quant_tensor=True), QuantWinogradConv2d(8, 8, sub_row=4, keep=1))
    y = net(torch.rand(2, 1, 10, 10))
    assert y.shape == (2, 8, 10, 10)
    y.sum().backward()
    assert net[1].wq.weight.grad is not None
