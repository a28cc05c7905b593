"""QuantWinogradConv2d (winoforge.model.winograd_layer): integer behaviour equals the numpy
Winograd core exactly; float behaviour equals torch's conv2d; gradients; SRBS; Brevitas glue."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from brevitas.nn import QuantIdentity, QuantReLU
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat, Uint8ActPerTensorFloat
from brevitas.quant.fixed_point import Int8ActPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from brevitas.quant_tensor import IntQuantTensor
from hypothesis import event, given
from hypothesis import strategies as st

from winoforge.model.winograd_layer import QuantWinogradConv2d, winograd_conv2d_torch
from winoforge.winograd import filter_transform, srbs_mask, winograd_conv2d

pytestmark = pytest.mark.filterwarnings("ignore:Named tensors:UserWarning")


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _act_quant(bits: int, signed: bool, po2: bool) -> QuantIdentity:
    quant = {(True, False): Int8ActPerTensorFloat, (False, False): Uint8ActPerTensorFloat,
             (True, True): Int8ActPerTensorFixedPoint, (False, True): Uint8ActPerTensorFixedPoint}[signed, po2]
    # eval(): Brevitas's power-of-two activation quantizers give non-power-of-two scales while
    # they collect statistics in training mode
    return QuantIdentity(act_quant=quant, bit_width=bits, return_quant_tensor=True).eval()


def _codes(qt) -> np.ndarray:
    return torch.round(qt.value.double() / qt.scale.double()).to(torch.int64).numpy()


# ----------------------------------------------------------------------------- integer behaviour


@given(st.data())
def test_integer_codes_equal_numpy_core(data):
    """y / (s_x * s_w[k]), rounded, equals winograd_conv2d(x_int, U_int) exactly; with power-of-two
    scales the float output itself equals winograd_conv2d(...) * s_x * s_w.

    Float arithmetic is exact only while every integer partial sum fits the mantissa, so the
    test computes in float32 when the layer's sound worst-case bound allows it (power-of-two:
    bound < 2^24; float scales: bound * (Cin + 80) < 2^22, which keeps the accumulated rounding
    error of the scaled values below 1/4 of a code) and in float64 otherwise.
    """
    m = data.draw(st.sampled_from([2, 4]), "m")
    srbs = data.draw(st.sampled_from([None, (2, 1), (4, 1), (4, 3)]), "srbs")
    cin = data.draw(st.sampled_from([1, 3, 5]) if srbs is None else st.sampled_from([srbs[0], 2 * srbs[0]]), "cin")
    cout = data.draw(st.integers(1, 4), "cout")
    wbits, abits = data.draw(st.integers(2, 8), "wbits"), data.draw(st.integers(2, 8), "abits")
    signed, po2 = data.draw(st.booleans(), "signed input"), data.draw(st.booleans(), "po2 scales")
    ph, pw = data.draw(st.integers(0, 2), "ph"), data.draw(st.integers(0, 2), "pw")
    h = data.draw(st.integers(max(1, 3 - 2 * ph), 9), "h")
    w = data.draw(st.integers(max(1, 3 - 2 * pw), 9), "w")
    n = data.draw(st.integers(1, 3), "n")
    torch.manual_seed(data.draw(st.integers(0, 2**31 - 1), "seed"))
    layer = QuantWinogradConv2d(cin, cout, m=m, padding=(ph, pw), weight_bit_width=wbits,
                                weight_quant="po2" if po2 else "float",
                                sub_row=srbs[0] if srbs else None, keep=srbs[1] if srbs else None,
                                chunk_elements=data.draw(st.sampled_from([None, 1]), "chunk"))
    x = _quiet(_act_quant(abits, signed, po2), torch.randn(n, cin, h, w) * 3)
    bound = layer.integer_bound(abits, in_signed=signed)
    exact32 = bound < 2**24 if po2 else bound * (cin + 80) < 2**22
    dtype = torch.float32 if exact32 else torch.float64
    event(f"{dtype}, {'po2' if po2 else 'float'} scales")
    layer = layer.to(dtype)
    x_int = _codes(x)
    # float32: Brevitas's own values; float64: rebuilt exactly (code * s_x has <= 32 mantissa bits)
    xv = x.value if dtype == torch.float32 else torch.from_numpy(x_int).double() * x.scale.double()
    U_int = layer.int_weight().numpy()
    assert np.abs(U_int).max() <= 2 ** (wbits - 1) - 1  # narrow range
    if srbs:
        assert (U_int[layer.mask.numpy() == 0] == 0).all()
    ref = winograd_conv2d(x_int, U_int, layer.spec, padding=(ph, pw))
    with torch.no_grad():
        y = layer(xv)
    s_w = layer.weight_scale().double().view(1, -1, 1, 1)
    s_x = x.scale.double()
    codes = torch.round(y.double() / (s_x * s_w)).to(torch.int64).numpy()
    assert np.array_equal(codes, ref)
    if po2:
        assert torch.equal(torch.log2(s_w), torch.round(torch.log2(s_w)))
        expect = (torch.from_numpy(ref).double() * s_x * s_w).to(dtype)
        assert torch.equal(y, expect)


def test_integer_codes_in_float32_at_training_sizes():
    """A realistic layer (Cin 32, 4-bit weights, 4-bit unsigned activations, F(2,3), power-of-two
    scales) is exact in float32: its sound bound stays below 2^24."""
    torch.manual_seed(3)
    layer = QuantWinogradConv2d(32, 16, weight_bit_width=4, weight_quant="po2", sub_row=8, keep=4)
    assert layer.integer_bound(4, in_signed=False) < 2**24
    act = _act_quant(4, False, True)
    x = _quiet(act, torch.rand(4, 32, 12, 10) * 4)
    with torch.no_grad():
        y = layer(x)
    ref = winograd_conv2d(_codes(x), layer.int_weight().numpy(), layer.spec)
    s = x.scale.double() * layer.weight_scale().double().view(1, -1, 1, 1)
    assert y.dtype == torch.float32
    assert torch.equal(y, (torch.from_numpy(ref) * s).float())


@pytest.mark.parametrize("m", [2, 4])
def test_chunking_and_transform_choice_do_not_change_results(m):
    """Integer-valued float32 data (all sums far below 2^24): every chunk size and both input
    transform implementations give the same exact result, forward and backward."""
    torch.manual_seed(0)
    x = torch.randint(-8, 8, (7, 6, 9, 11)).float().requires_grad_(True)
    U = torch.randint(-7, 8, (5, 6, m + 2, m + 2)).float().requires_grad_(True)
    r = torch.randint(-3, 4, (7, 5, 9, 11)).float()
    ref = winograd_conv2d(x.detach().to(torch.int64).numpy(), U.detach().to(torch.int64).numpy(), m, 1)
    grads = set()
    for transform in ("gemm", "elementwise"):
        for chunk in (1, 500, 5000, 1 << 30):
            y = winograd_conv2d_torch(x, U, m, 1, chunk_elements=chunk, transform=transform)
            assert np.array_equal(y.detach().to(torch.int64).numpy(), ref)
            gx, gU = torch.autograd.grad((y * r).sum(), (x, U))
            grads.add((gx.numpy().tobytes(), gU.numpy().tobytes()))
    assert len(grads) == 1


# ----------------------------------------------------------------------------- float behaviour


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("padding", [0, 1, (2, 1)])
def test_float_path_equals_spatial_conv(m, padding):
    """Quantization off, U = G g G^T, float64: equals conv2d(x, g).  The transforms' entries
    are small dyadic/rational numbers and the values O(1), so the float64 rounding is
    ~1e-15 relative; 1e-11 absolute leaves a wide margin and still catches any real error."""
    torch.manual_seed(0)
    g = torch.randn(4, 5, 3, 3, dtype=torch.float64)
    layer = QuantWinogradConv2d(5, 4, m=m, padding=padding, weight_quant=None, spatial_weight=g,
                                dtype=torch.float64)
    x = torch.randn(3, 5, 9, 7, dtype=torch.float64)
    pad = padding if isinstance(padding, tuple) else (padding, padding)
    torch.testing.assert_close(layer(x), F.conv2d(x, g, padding=pad), rtol=0, atol=1e-11)


def test_high_precision_quantization_is_close_to_conv():
    """8-bit per-channel weights: each U code is off by at most half a step, so the output
    error is bounded by 0.5 * s_w[k] * sum |A^T (x) A^T| * sum_c |V|; checked against that bound."""
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(8, 6, 3, padding=1, bias=False)
    layer = QuantWinogradConv2d.from_conv(conv, weight_bit_width=8)
    x = torch.randn(2, 8, 10, 10)
    with torch.no_grad():
        err = (layer(x) - conv(x)).abs()
        spec = layer.spec
        ka = np.abs(np.kron(spec.AT, spec.AT)).sum(1).max()
        kb = np.abs(np.kron(spec.BT, spec.BT)).sum(1).max()
        bound = 0.5 * layer.weight_scale().view(1, -1, 1, 1) * ka * kb * 8 * x.abs().max() * 1.001
    assert (err <= bound).all()
    assert err.max() < 0.05 * conv(x).abs().max()


def test_channels_last_in_channels_last_out():
    torch.manual_seed(0)
    layer = QuantWinogradConv2d(6, 5, padding=1)
    x = torch.randn(3, 6, 7, 9)
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    x.requires_grad_(True)
    y, yc = layer(x), layer(xc)
    assert y.is_contiguous() and yc.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y, yc)
    y.sum().backward()
    yc.sum().backward()
    assert torch.equal(x.grad, xc.grad)
    assert xc.grad.is_contiguous(memory_format=torch.channels_last)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("padding, chunk, transform", [
    (1, None, "auto"), (0, 200, "gemm"), ((2, 0), 1, "elementwise"), ((0, 1), 1, "gemm")])
def test_gradcheck(m, padding, chunk, transform):
    torch.manual_seed(m)
    t = m + 2
    x = torch.randn(3, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    U = torch.randn(3, 2, t, t, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: winograd_conv2d_torch(a, b, m, padding, chunk, transform), (x, U))


def test_gradcheck_channels_last():
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    U = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: winograd_conv2d_torch(a, b, 2, 1), (x, U))


@pytest.mark.parametrize("m", [2, 4])
def test_input_gradient_equals_spatial_conv_gradient(m):
    torch.manual_seed(2)
    g = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    U = torch.from_numpy(filter_transform(g.numpy(), m))
    x1 = torch.randn(2, 3, 11, 8, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    r = torch.randn(2, 4, 11, 8, dtype=torch.float64)
    (winograd_conv2d_torch(x1, U, m, 1) * r).sum().backward()
    (F.conv2d(x2, g, padding=1) * r).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=1e-11)


def test_layer_weight_gradient_is_masked_and_matches_function():
    torch.manual_seed(0)
    layer = QuantWinogradConv2d(8, 3, weight_quant=None, sub_row=4, keep=2, dtype=torch.float64)
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    layer(x).square().sum().backward()
    U = (layer.weight.detach() * layer.mask).requires_grad_(True)
    winograd_conv2d_torch(x, U, 2, 1).square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, U.grad * layer.mask, rtol=1e-12, atol=0)
    assert (layer.weight.grad[layer.mask == 0] == 0).all()


# ----------------------------------------------------------------------------- SRBS


def _per_subrow(a: np.ndarray, sub_row: int) -> np.ndarray:
    cout, cin, t, _ = a.shape
    return a.transpose(2, 3, 0, 1).reshape(t * t, cout, cin // sub_row, sub_row).sum(-1)


def test_srbs_invariants_hold_through_optimizer_steps():
    torch.manual_seed(0)
    layer = QuantWinogradConv2d(8, 6, sub_row=4, keep=4, weight_bit_width=3)
    opt = torch.optim.SGD(layer.parameters(), lr=0.2, momentum=0.9, weight_decay=1e-3)
    for keep in (3, 2, 1):
        before = (layer.weight.detach() * layer.mask).double().numpy()
        assert layer.update_mask(keep) == keep
        mask = layer.mask.numpy().astype(bool)
        # the documented rule: srbs_mask of the effective weights U * mask
        assert np.array_equal(mask, srbs_mask(before, 4, keep))
        for _ in range(3):
            opt.zero_grad()
            layer(torch.randn(2, 8, 6, 6)).pow(2).mean().backward()
            assert (layer.weight.grad[layer.mask == 0] == 0).all()
            opt.step()
            layer.apply_mask_()
            U = layer.weight.detach().numpy()
            assert np.array_equal(layer.mask.numpy().astype(bool), mask)  # steps never move the mask
            assert (_per_subrow(mask, 4) == keep).all()  # exactly keep kept entries per sub-row
            assert (U[~mask] == 0).all()  # and U is exactly zero outside them
            codes = layer.int_weight().numpy()
            assert (codes[~mask] == 0).all() and (_per_subrow(codes != 0, 4) <= keep).all()
    assert layer.density == 0.25
    assert layer.set_density(0.5) == 2 and (_per_subrow(layer.mask.numpy(), 4) == 2).all()


def test_scale_comes_from_the_masked_weight():
    torch.manual_seed(0)
    layer = QuantWinogradConv2d(4, 2, sub_row=4, keep=1, weight_bit_width=4)
    with torch.no_grad():
        layer.weight.add_(100.0 * (1 - layer.mask))  # large values where the mask is 0
    amax = (layer.weight * layer.mask).abs().amax(dim=(1, 2, 3))
    torch.testing.assert_close(layer.weight_scale(), amax / 7)  # narrow 4-bit: codes up to 7


def test_update_mask_regrow_uses_raw_weights():
    torch.manual_seed(0)
    layer = QuantWinogradConv2d(4, 2, sub_row=4, keep=1)
    with torch.no_grad():
        layer.weight.copy_(torch.randn_like(layer.weight))
    layer.update_mask(2, regrow=True)
    assert (_per_subrow(layer.mask.numpy(), 4) == 2).all()


def test_dense_fallback_warns_and_says_why():
    with pytest.warns(UserWarning, match="in_channels=6 is not a multiple of sub_row=4"):
        layer = QuantWinogradConv2d(6, 8, sub_row=4, keep=2)
    assert layer.srbs_enabled is False
    assert "not a multiple" in layer.srbs_reason
    assert bool((layer.mask == 1).all())
    U = layer.weight.detach().clone()
    assert layer.update_mask(1) is None and layer.set_density(0.25) is None
    layer.apply_mask_()
    assert torch.equal(layer.weight, U)
    assert layer(torch.randn(1, 6, 5, 5)).shape == (1, 8, 5, 5)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs, field, allowed", [
    ({"weight_bit_width": 1}, "weight_bit_width", "2..8"),
    ({"weight_bit_width": 9}, "weight_bit_width", "2..8"),
    ({"weight_bit_width": 4.0}, "weight_bit_width", "2..8"),
    ({"weight_bit_width": True}, "weight_bit_width", "2..8"),
    ({"sub_row": 0, "keep": 1}, "sub_row", "1..inf"),
    ({"sub_row": 4, "keep": 5}, "keep", "1..4"),
    ({"sub_row": 4, "keep": 0}, "keep", "1..4"),
    ({"sub_row": 2.0, "keep": 1}, "sub_row", "integer"),
    ({"sub_row": 4}, "sub_row and keep", "together"),
    ({"m": 3}, "m", "2, 4"),
    ({"kernel_size": 5}, "kernel_size", "3"),
    ({"stride": 2}, "stride", "1"),
    ({"padding": -1}, "padding", "integer >= 0"),
    ({"weight_quant": "int"}, "weight_quant", "'float', 'po2'"),
])
def test_bad_parameters_are_rejected_naming_the_field(kwargs, field, allowed):
    with pytest.raises(ValueError) as err:
        QuantWinogradConv2d(8, 4, **kwargs)
    assert field in str(err.value) and allowed in str(err.value)


def test_bad_keep_in_update_mask_and_unknown_kwargs():
    layer = QuantWinogradConv2d(8, 4, sub_row=4, keep=2)
    with pytest.raises(ValueError, match="keep=5 is out of range; allowed: 1..4"):
        layer.update_mask(5)
    with pytest.raises(ValueError, match="density"):
        layer.set_density(0)
    with pytest.raises(TypeError, match="act_bit_width"):
        QuantWinogradConv2d(8, 4, act_bit_width=4)


def test_quantization_disabled_has_no_integer_view():
    layer = QuantWinogradConv2d(4, 4, weight_quant=None)
    with pytest.raises(RuntimeError, match="weight quantization disabled"):
        layer.int_weight()


# ----------------------------------------------------------------------------- Brevitas glue


def test_injected_quantizers():
    torch.manual_seed(0)
    per_tensor = QuantWinogradConv2d(4, 3, weight_quant=Int8WeightPerTensorFloat, weight_bit_width=5)
    s = per_tensor.weight_scale()
    assert s.shape == (3,) and torch.all(s == s[0])
    wide = QuantWinogradConv2d(4, 3, weight_bit_width=2, weight_narrow_range=False)  # kwargs pass through
    codes = wide.int_weight()
    assert codes.min() >= -2 and codes.max() <= 1 and wide.weight_bit_width() == 2


def test_in_a_brevitas_network():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        QuantIdentity(bit_width=8, return_quant_tensor=True),
        QuantWinogradConv2d(3, 8, padding=1),
        torch.nn.BatchNorm2d(8),
        QuantReLU(bit_width=4, return_quant_tensor=True),
        QuantWinogradConv2d(8, 8, m=4, sub_row=4, keep=2),
    )
    y = _quiet(net, torch.randn(2, 3, 10, 10))
    assert y.shape == (2, 8, 10, 10)
    y.sum().backward()
    assert net[1].weight.grad is not None and net[4].weight.grad is not None


def test_return_quant_tensor():
    torch.manual_seed(0)
    act = QuantReLU(bit_width=4, return_quant_tensor=True)
    layer = QuantWinogradConv2d(4, 5, weight_quant="po2", weight_bit_width=3, return_quant_tensor=True)
    x = _quiet(act, torch.randn(2, 4, 6, 6))
    y = layer(x)
    assert isinstance(y, IntQuantTensor) and bool(y.signed)
    torch.testing.assert_close(y.scale.reshape(-1), (x.scale * layer.weight_scale()).reshape(-1))
    assert y.is_valid
    ref = winograd_conv2d(_codes(x), layer.int_weight().numpy(), layer.spec)
    assert np.array_equal(_codes(y), ref)
    assert np.abs(ref).max() < 2 ** (int(y.bit_width) - 1)
    with pytest.raises(RuntimeError, match="QuantTensor input"):
        layer(torch.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match="bias"):
        QuantWinogradConv2d(4, 5, bias=True, return_quant_tensor=True)


@pytest.mark.parametrize("m", [2, 4])
def test_from_conv_reproduces_the_spatial_conv_before_quantization(m):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5, 3, 3, padding=0, bias=True).double()
    layer = QuantWinogradConv2d.from_conv(conv, m=m, weight_bit_width=4)
    assert layer.padding == (0, 0) and layer.bias is not None and layer.weight.dtype == torch.float64
    x = torch.randn(2, 5, 9, 8, dtype=torch.float64)
    # the float parameter U (before quantization) reproduces the conv
    y = winograd_conv2d_torch(x, layer.U, m, layer.padding) + layer.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(y, conv(x), rtol=0, atol=1e-11)
    # and so does the layer with quantization switched off
    off = QuantWinogradConv2d.from_conv(conv, m=m, weight_quant=None)
    torch.testing.assert_close(off(x), conv(x), rtol=0, atol=1e-11)
    # a bare weight works too
    bare = QuantWinogradConv2d.from_conv(conv.weight.detach(), m=m, weight_quant=None, padding=0,
                                         dtype=torch.float64)
    torch.testing.assert_close(bare(x), F.conv2d(x, conv.weight, padding=0), rtol=0, atol=1e-11)
    with pytest.raises(ValueError, match="3x3, stride-1"):
        QuantWinogradConv2d.from_conv(torch.nn.Conv2d(5, 3, 3, stride=2))


def test_default_init_and_state_dict_round_trip():
    torch.manual_seed(0)
    a = QuantWinogradConv2d(16, 8, sub_row=4, keep=2)
    # kaiming-style: U = G g G^T of a fan-in-scaled g, so the spatial std is sqrt(2 / (9 Cin))
    g_std = math.sqrt(2 / (9 * 16))
    assert 0.3 * g_std < a.weight[a.mask == 1].std() < 3 * g_std
    b = QuantWinogradConv2d(16, 8, sub_row=4, keep=4)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 16, 6, 6)
    assert torch.equal(a.mask, b.mask) and torch.equal(a(x), b(x))
