"""Issue 13: every student the trainer accepts can be exact through the float32 stages, or it is
refused up front, named; the threshold search covers the layer's exact range."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from winoforge.hw.ops import DOMAIN as OPS_DOMAIN
from winoforge.hw.transforms import _winograd_search_range
from winoforge.model.mixed_precision import exact_candidates
from winoforge.model.students import (FLOAT32_EXACT, StudentConfig, build_student, float32_exact_problem,
                                      float32_exact_problems)
from winoforge.winograd import WinogradSpec, bit_growth, winograd_conv2d
from winoforge.winograd.bits import output_extreme, value_range

# The found case (configs/fmnist_distill_w4a4_mixed.toml, m = 4): block1 W8 on the 8-bit image,
# block2 W4A6, block3 W6A3, block4 W3A3 (layer_bits keep (weight, output activation) widths).
FOUND = {"features.block1": (8, 6), "features.block2": (4, 3), "features.block3": (6, 3), "features.block4": (3, 3)}
WIDTHS = [16, 16, "M", 32, 32, "M"]


def _stages_fit(m, in_bits, w_bits, cin) -> bool:
    g = bit_growth(in_bits, w_bits, cin, WinogradSpec(m), in_signed=False, weight_signed=True)
    return max(max(abs(lo), abs(hi)) for lo, hi in (g.input_transform, g.product, g.accumulator, g.output)) \
        < FLOAT32_EXACT


def test_the_found_case_is_refused_before_training_naming_layers_range_and_fix():
    with pytest.raises(ValueError) as info:
        build_student(StudentConfig(m=4, widths=WIDTHS, layer_bits=FOUND), 1, 10)
    text = str(info.value)
    assert "layer features.block1: F(4x4,3x3) with 8-bit unsigned inputs, 8-bit weights and 1 input channels" in text
    assert "[-135905565, 135900975]" in text  # the exact 29-bit output range (winoforge bits --m 4 ...)
    assert "what fits: weight bits <= 5, or input activation bits <= 5, or m=2" in text
    assert "layer features.block2: F(4x4,3x3) with 6-bit unsigned inputs, 4-bit weights and 16" in text
    assert "features.block3" not in text and "features.block4" not in text  # 3-bit input codes: they fit


def test_uniform_w4a4_f43_and_the_found_widths_at_m2_are_accepted():
    assert float32_exact_problems(build_student(StudentConfig(m=4, widths=WIDTHS), 1, 10)) == []
    assert float32_exact_problems(build_student(StudentConfig(m=2, widths=WIDTHS, layer_bits=FOUND), 1, 10)) == []


@settings(max_examples=25, deadline=None)
@given(m=st.sampled_from([2, 4]), in_bits=st.integers(2, 8), w_bits=st.integers(2, 8),
       cin=st.sampled_from([1, 3, 16, 32, 64]))
def test_the_rule_is_the_exact_stage_ranges(m, in_bits, w_bits, cin):
    problem = float32_exact_problem("L", m, in_bits, w_bits, cin)
    assert (problem is None) == _stages_fit(m, in_bits, w_bits, cin)
    if problem:
        assert problem.startswith("layer L: ") and "what fits" in problem


def test_export_refuses_a_student_the_builder_would_have_refused(tmp_path):
    from winoforge.hw.export import export_student

    model = build_student(StudentConfig(m=4, widths=WIDTHS, layer_bits=FOUND), 1, 10, check_exact=False)
    with pytest.raises(ValueError, match=r"export refused: layer features.block1: .*cannot be built bit-exact"):
        export_student(model, tmp_path / "m.onnx", (1, 28, 28))
    assert not (tmp_path / "m.onnx").exists()


def test_mixed_precision_offers_only_widths_the_flow_builds_exactly():
    probe = build_student(StudentConfig(m=4, widths=WIDTHS), 1, 10, check_exact=False)
    pairs = [(w, a) for w in (2, 3, 4, 6, 8) for a in (2, 3, 4, 6, 8)]
    classifier = probe.quant_layer_names[-1]
    options = {"features.block1": [(w, 8) for w in (2, 3, 4, 6, 8)], "features.block2": pairs,
               "features.block4": pairs, classifier: pairs}
    out = exact_candidates(probe, options)
    assert out["features.block1"] == [(2, 8), (3, 8), (4, 8)]  # W5 fits too, but is not a candidate
    assert (4, 4) in out["features.block2"] and (4, 6) not in out["features.block2"]
    assert (4, 4) in out["features.block4"] and (8, 8) not in out["features.block4"]
    assert out[classifier] == pairs  # no Winograd layer: nothing to filter
    for name in ("features.block2", "features.block4"):
        cin = probe.quant_layers[name].in_channels
        assert out[name] == [(w, a) for w, a in pairs if _stages_fit(4, a, w, cin)]
    with pytest.raises(ValueError, match=r"mixed_precision.candidates: none can be built exactly for layer "
                                         r"features.block1: .*allowed: add narrower"):
        exact_candidates(probe, {"features.block1": [(8, 8), (6, 8)]})


def _winograd_after_quant(bits: int, U: np.ndarray, m: int) -> ModelWrapper:
    cout, cin, t, _ = U.shape
    nodes = [
        helper.make_node("Quant", ["x", "s", "z", "b"], ["xq"], domain="qonnx.custom_op.general", name="q",
                         signed=0, narrow=0, rounding_mode="ROUND"),
        helper.make_node("WinogradConv", ["xq", "U"], ["y"], domain=OPS_DOMAIN, name="wc", m=m, pads=[1, 1]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, 8, 8])])
    model = ModelWrapper(qonnx_make_model(graph))
    for name, value in (("s", 1 / 256), ("z", 0.0), ("b", float(bits))):
        model.set_initializer(name, np.asarray(value, dtype=np.float32))
    model.set_initializer("U", U.astype(np.float32))
    return model


def test_the_threshold_search_covers_the_exact_range_past_2_23():
    # F(4,3), W5 codes on the 8-bit image: accepted (every stage below 2^24), yet |Y| reaches
    # 1.67e7, twice the old fixed search bound 2^23
    assert float32_exact_problem("L", 4, 8, 5, 1) is None
    U = np.full((2, 1, 6, 6), -16)
    U[1] = 15
    model = _winograd_after_quant(8, U, 4)
    lo, hi = _winograd_search_range(model, model.graph.node[1])
    g = bit_growth(8, 5, 1, WinogradSpec(4), in_signed=False, weight_signed=True)
    assert hi == -lo == max(abs(g.output[0]), abs(g.output[1])) > 1 << 23


# ------------------------------------------------------------------ float stages at the witnesses


def _witness(m: int, in_bits: int, w_bits: int, maximize: bool | None = None):
    """``(value, d, u)``: the tile and narrow-range weights that reach the largest output magnitude
    of one channel of F(m,3) (``maximize`` None: whichever extreme is larger), from the exact
    branch and bound of :func:`winoforge.winograd.bits.output_extreme`."""
    spec, q = WinogradSpec(m), (1 << (w_bits - 1)) - 1
    x_range = value_range(in_bits, False)
    found = [(output_extreme(spec, x_range, (-q, q), i, j, mx), mx) for i in range(m) for j in range(m)
             for mx in ((True, False) if maximize is None else (maximize,))]
    (value, d, u), _ = max(found, key=lambda f: abs(f[0][0]))
    return value, d, u


def _witness_images(m: int, d_list, size: int, channels: int) -> np.ndarray:
    """One image per tile ``d`` (uint8 codes): ``d`` in every channel at every tile of the padded
    grid that lies inside the image, two tiles apart (tiles overlap by two pixels)."""
    t = m + 2
    out = np.zeros((len(d_list), channels, size, size), np.int64)
    for n, d in enumerate(d_list):
        for r in range(m - 1, size - t + 1, 2 * m):
            for c in range(m - 1, size - t + 1, 2 * m):
                out[n, :, r:r + t, c:c + t] = d
    return out


@pytest.mark.parametrize("in_bits,w_bits,cin", [(8, 5, 1), (4, 4, 32), (5, 4, 16), (8, 3, 4), (8, 4, 2)])
def test_float_stages_are_exact_at_the_witnesses_of_accepted_f43_layers(in_bits, w_bits, cin):
    """Partial sums: an accepted F(4,3) layer driven to its exact output extremes computes them
    exactly in float32 in torch's GEMM kernels and in the export's convolutions (any summation
    order: a partial sum is the output with some weights at 0, so it lies in the checked range)."""
    from winoforge.model.winograd_layer import winograd_conv2d_onnx, winograd_conv2d_torch

    assert float32_exact_problem("L", 4, in_bits, w_bits, cin) is None
    top, d_hi, u_hi = _witness(4, in_bits, w_bits, True)
    bottom, d_lo, u_lo = _witness(4, in_bits, w_bits, False)
    x = _witness_images(4, [d_hi, d_lo], 16, cin)
    U = np.stack([np.broadcast_to(u, (cin, 6, 6)) for u in (u_hi, u_lo, -u_hi, u_lo)])
    ref = winograd_conv2d(x, U, WinogradSpec(4), (1, 1))
    assert ref.max() == cin * top and ref.min() == cin * bottom  # the witnesses reach the extremes
    for fn in (winograd_conv2d_torch, winograd_conv2d_onnx):
        y = fn(torch.from_numpy(x).float(), torch.from_numpy(U).float(), WinogradSpec(4), 1).numpy()
        assert y.dtype == np.float32 and np.array_equal(y, ref.astype(np.float32)) and np.array_equal(y, ref)


def test_a_layer_just_past_the_rule_breaks_float32_at_its_witness():
    """The rule is not vacuous: F(4,3) W6 on the 8-bit image (refused) loses exactness in torch."""
    from winoforge.model.winograd_layer import winograd_conv2d_torch

    assert float32_exact_problem("L", 4, 8, 6, 1) is not None
    _, d, u = _witness(4, 8, 6)
    x = _witness_images(4, [d], 16, 1)
    ref = winograd_conv2d(x, u[None, None], WinogradSpec(4), (1, 1))
    y = winograd_conv2d_torch(torch.from_numpy(x).float(), torch.from_numpy(u[None, None]).float(), WinogradSpec(4), 1)
    assert np.abs(ref).max() >= FLOAT32_EXACT and not np.array_equal(y.numpy(), ref)


# ------------------------------------------------------------------ the sweep: student -> export -> FINN -> runtime


@dataclass(frozen=True)
class Case:
    """A tiny student: VGG (``widths``: channels, "M" = 2x2 max-pool) or ResNet (``arch="resnet"``:
    ``depth`` 6n+2, first-stage ``width``, basic blocks with identity and 1x1 projection shortcuts);
    ``bits`` = (weight, activation) widths per Winograd layer in data-flow order (:meth:`conv_names`),
    SRBS ``sub_row``/``keep``, ``size`` x ``size`` images of ``channels`` channels, and how the
    weights and inputs are chosen (``drive``): "witness" (every Winograd layer's weights at its exact
    output witness, the images carrying the first layer's witness tiles, BatchNorm gains that push
    the deeper activations -- and a ResNet block's two branches and their sum -- to their extremes),
    "random" (initial weights, random images) or "trained" (a few Adam steps on synthetic data)."""

    m: int
    widths: tuple
    bits: tuple
    sub_row: int | None = None
    keep: int | None = None
    size: int = 14
    channels: int = 1
    drive: str = "witness"
    seed: int = 0
    arch: str = "vgg"
    depth: int = 8
    width: int = 4

    def conv_names(self) -> list[str]:
        if self.arch == "vgg":
            return [f"features.block{i + 1}" for i in range(len(self.bits))]
        n = (self.depth - 2) // 6
        return ["stem"] + [f"layer{s}.{k}.conv{j}" for s in (1, 2, 3) for k in range(n) for j in (1, 2)]

    def config(self) -> StudentConfig:
        net = {"widths": list(self.widths)} if self.arch == "vgg" else {"arch": "resnet", "depth": self.depth,
                                                                         "width": self.width}
        return StudentConfig(m=self.m, layer_bits=dict(zip(self.conv_names(), self.bits)), sub_row=self.sub_row,
                             keep=self.keep, weight_quant="po2", act_quant="po2", **net)

    def layer_inputs(self):
        """``(name, input bits, cin, weight bits)`` of every Winograd layer, independently of the student."""
        names, bits = self.conv_names(), dict(zip(self.conv_names(), self.bits))
        if self.arch == "vgg":
            cins = [self.channels] + [w for w in self.widths if w != "M"]
            ins = [8] + [a for _, a in self.bits]
            return [(name, ins[i], cins[i], bits[name][0]) for i, name in enumerate(names)]
        # a block's conv1 reads the previous block's output (its conv2's activation width, after
        # the residual sum; the stem's for the first block), its conv2 reads conv1's activation
        out, source, cin = [("stem", 8, self.channels, bits["stem"][0])], "stem", self.width
        for name in names[1:]:
            stage = int(name[5])
            out.append((name, bits[source][1], cin, bits[name][0]))
            source, cin = name, self.width * 2 ** (stage - 1)
        return out


def _drive_to_witnesses(model, case: Case) -> list[np.ndarray]:
    """Weights at each layer's witness (output channels alternate the max and min witness); the
    first layer's witness tiles ``d`` for the images; large BatchNorm gains."""
    from winoforge.model.students import winograd_layers

    tiles = []
    for (name, in_bits, _, w_bits), layer in zip(case.layer_inputs(), winograd_layers(model).values()):
        hi, lo = _witness(case.m, in_bits, w_bits, True), _witness(case.m, in_bits, w_bits, False)
        codes = np.stack([(hi, lo)[k % 2][2] for k in range(layer.out_channels)])[:, None]
        codes = np.broadcast_to(codes, layer.weight.shape)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(codes * 2.0 ** (1 - w_bits)))
        if not tiles:
            tiles = [hi[1], lo[1]]
    return tiles


def _train_briefly(model, case: Case, steps: int = 12):
    """A few Adam steps of cross-entropy on synthetic images (label: the brightest quadrant)."""
    from winoforge.model.students import winograd_layers

    gen = torch.Generator().manual_seed(case.seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        x = torch.rand(16, case.channels, case.size, case.size, generator=gen)
        h = case.size // 2
        quads = torch.stack([x[..., :h, :h].mean((1, 2, 3)), x[..., :h, h:].mean((1, 2, 3)),
                             x[..., h:, :h].mean((1, 2, 3)), x[..., h:, h:].mean((1, 2, 3))], 1)
        loss = torch.nn.functional.cross_entropy(model(x), quads.argmax(1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        for layer in winograd_layers(model).values():
            layer.apply_mask_()


def _student(case: Case):
    """The student of ``case`` with its weights driven, and the raw uint8 images (N, C, H, W) it is
    calibrated, checked and built on."""
    from winoforge.model.students import winograd_layers

    torch.manual_seed(case.seed)
    rng = np.random.default_rng(case.seed)
    model = build_student(case.config(), case.channels, 10)
    raw = [rng.integers(0, 256, (2, case.channels, case.size, case.size)), np.full((1, case.channels, case.size,
                                                                                      case.size), 255)]
    if case.drive == "witness":
        # the witness tiles at full and lower intensities: outputs spread over the top of the range
        tiles = [d * v // 255 for d in _drive_to_witnesses(model, case) for v in (255, 220, 185, 150)]
        raw.insert(0, _witness_images(case.m, tiles, case.size, case.channels))
    for layer in winograd_layers(model).values():
        layer.update_mask(case.keep)
    raw = np.concatenate(raw).astype(np.float32)
    if case.drive == "trained":
        _train_briefly(model, case)
    model.train()
    with torch.no_grad():  # BatchNorm statistics from the images themselves
        model(torch.from_numpy(raw / 255))
    if case.drive == "witness":
        _spread_or_saturate(model, case, raw)
    return model.eval(), raw


def _winograd_stages(model, case: Case) -> list:
    """``(conv, bn, quantizer)`` after every Winograd layer in data-flow order: a VGG block's
    QuantReLU; in a ResNet block conv1's QuantReLU and, for conv2, the block's signed branch
    quantizer (shared with the shortcut: the two codes the residual sum adds)."""
    if case.arch == "vgg":
        blocks = [getattr(model.features, f"block{i + 1}") for i in range(len(case.bits))]
        return [(b.conv, b.bn, b.relu) for b in blocks]
    stages = [(model.stem.conv, model.stem.bn, model.stem.relu)]
    for block in _res_blocks(model):
        stages += [(block.conv1, block.bn1, block.relu1), (block.conv2, block.bn2, block.branch_quant)]
    return stages


def _res_blocks(model) -> list:
    return [block for s in (1, 2, 3) for block in getattr(model, f"layer{s}")]


def _spread_or_saturate(model, case: Case, raw: np.ndarray) -> None:
    """BatchNorm after each witness layer: in output channels 0, 1 (mod 4) the activation's
    codes span the layer's exact output range (thresholds up to the witness extremes, where the
    threshold search must reach; channel 1 of a signed quantizer to its negative end), in
    channels 2, 3 a gain of 8 drives the next layer's inputs to 0 or the activation's maximum.
    ResNet blocks: a projection shortcut's BatchNorm gets the gain of 8 in channel 2 (mod 4), and
    in channel 3 (mod 4) both branches are pushed to the shared quantizer's top code (even blocks)
    or its bottom code (odd blocks), so residual sums reach their exact extremes."""
    scales = {}
    stages = _winograd_stages(model, case)
    hooks = [conv.register_forward_hook(lambda mod, inp, out, i=i: scales.__setitem__(i, float(inp[0].scale)))
             for i, (conv, _, _) in enumerate(stages)]
    model.eval()
    with torch.no_grad():
        model(torch.from_numpy(raw[:1] / 255))
    for h in hooks:
        h.remove()
    for i, ((_, in_bits, cin, w_bits), (conv, bn, quant)) in enumerate(zip(case.layer_inputs(), stages)):
        reach = [cin * _witness(case.m, in_bits, w_bits, mx)[0] for mx in (True, False)]
        with torch.no_grad():
            ends = [float(quant(torch.full((1, 1, 1, 1), v)).value.max()) for v in (1e9, -1e9)]
            s_w = conv.weight_scale().double().numpy()
            for k in range(bn.num_features):
                if k % 4 < 2:
                    target = ends[1] if k % 4 == 1 and ends[1] < 0 else ends[0]
                    bn.running_mean[k], bn.running_var[k], bn.bias[k] = 0.0, 1.0 - bn.eps, 0.0
                    bn.weight[k] = target / (scales[i] * s_w[k] * reach[k % 2])
                else:
                    bn.weight[k] = 8.0
    for j, block in enumerate(_res_blocks(model) if case.arch == "resnet" else []):
        bns = [block.bn2] + ([block.shortcut.bn] if isinstance(block.shortcut, torch.nn.Sequential) else [])
        with torch.no_grad():
            for bn in bns:
                for k in range(bn.num_features):
                    if k % 4 == 2:
                        bn.weight[k] = 8.0
                    elif k % 4 == 3:
                        bn.weight[k], bn.bias[k] = 1e-3, 1e3 * (-1) ** j


def _residual_sums_at_extremes(model, raw: np.ndarray) -> None:
    """The witness drive did what it says: in every ResNet block of at least 4 channels (channel 3
    is the driven one) the shared branch quantizer's top (even blocks) or bottom (odd blocks) code
    is reached, and a projection block's residual sum reaches twice it (both branches at the end
    of their common range)."""
    seen = {}
    blocks = _res_blocks(model)
    hooks = [hook for j, b in enumerate(blocks) for hook in (
        b.branch_quant.register_forward_hook(lambda mod, inp, out, j=j: seen.__setitem__(("branch", j), out.value)),
        b.preact.register_forward_hook(lambda mod, inp, out, j=j: seen.__setitem__(("sum", j), out.value)))]
    with torch.no_grad():
        model(torch.from_numpy(raw / 255))
        for j, b in enumerate(blocks):
            if b.bn2.num_features < 4:
                continue
            end = float(b.branch_quant(torch.full((1, 1, 1, 1), 1e9 * (-1) ** j)).value.max())
            reached = (lambda v: float(v.max())) if j % 2 == 0 else (lambda v: float(v.min()))
            assert reached(seen["branch", j]) == end, (j, end)
            if isinstance(b.shortcut, torch.nn.Sequential):
                assert reached(seen["sum", j]) == 2 * end, (j, end)
    for hook in hooks:
        hook.remove()


def run_case(case: Case, root) -> dict:
    """Either ``build_student`` refuses ``case`` -- exactly when a layer's stages do not fit float32,
    naming each such layer -- or the student exports, builds and runs bit-exactly: torch == QONNX
    (every activation's codes and the logits' codes), every build step's Python execution == the
    level before it, the runtime's simulated device == the build's output == torch."""
    from pathlib import Path

    from winoforge.hw.export import HEAD_KEY, output_codes, read_metadata
    from winoforge.hw.flow import build_package, export_run
    from winoforge.runtime import Accelerator

    unfit = [name for name, in_bits, cin, w in case.layer_inputs() if not _stages_fit(case.m, in_bits, w, cin)]
    if unfit:
        with pytest.raises(ValueError, match="student configuration refused") as info:
            build_student(case.config(), case.channels, 10)
        assert re.findall(r"layer (\S+): F\(", str(info.value)) == unfit
        return {"refused": unfit}
    model, raw = _student(case)
    assert model.layer_input_bits == {name: bits for name, bits, _, _ in case.layer_inputs()}
    if case.arch == "resnet" and case.drive == "witness":
        _residual_sums_at_extremes(model, raw)
    root = Path(root)
    export_run(model, root / "m.onnx", image_shape=(case.channels, case.size, case.size),
               check_images=raw / 255, progress=False)  # raises unless torch == QONNX, code for code
    build_package(root / "m.onnx", "p", target_fps=1000, out_root=root / "bits", work_root=root / "build",
                  golden=raw, progress=False)
    steps = json.loads((root / "bits" / "p" / "reports" / "build_steps.json").read_text())
    assert steps and all(s["verified"] for s in steps), steps
    acc = Accelerator.load(root / "bits" / "p", backend="sim")
    assert acc.self_test()["equal"]
    head = read_metadata(ModelWrapper(str(root / "m.onnx")), HEAD_KEY)
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(raw / 255)).numpy()
    device = acc.execute(raw.transpose(0, 2, 3, 1).astype(np.uint8))
    assert np.array_equal(output_codes(head, device), output_codes(head, torch_logits))
    return {"refused": [], "model": model, "raw": raw, "steps": steps}


def _first_layer_outputs(model, raw) -> np.ndarray:
    """The exact integer output of the first Winograd layer on ``raw`` (int64 reference)."""
    from winoforge.model.students import winograd_layers

    layer = next(iter(winograd_layers(model).values()))
    with torch.no_grad():
        codes = model.input_quant(torch.from_numpy(raw / 255)).int().numpy().astype(np.int64)
    return winograd_conv2d(codes, layer.int_weight().numpy(), layer.spec, (1, 1))


def test_the_found_regime_builds_bit_exact_past_2_23(tmp_path, monkeypatch):
    """The found case's regime as a regression test through the FINN build: F(4,3) W5 on the 8-bit
    image (accepted) with weights and image tiles at the layer's exact output witnesses, so its
    accumulator passes 2^23 -- where step_winograd_import used to differ -- on a 14x14 image
    (cropped tiles), its activation read by the classifier (so a wrong code reaches the output).
    With the old fixed search bound 2^23 patched back in, the same build fails at
    step_winograd_import, naming the activation after the layer."""
    import winoforge.hw.transforms as transforms
    from winoforge.hw.build import BuildStepError, make_build_config, run_build, winograd_steps

    case = Case(m=4, widths=(4,), bits=((5, 4),), size=14, drive="witness")
    out = run_case(case, tmp_path)
    y = _first_layer_outputs(out["model"], out["raw"])
    reach = max(abs(v) for v in bit_growth(8, 5, 1, WinogradSpec(4), in_signed=False).output)
    assert (1 << 23) < np.abs(y).max() <= reach < FLOAT32_EXACT

    monkeypatch.setattr(transforms, "_winograd_search_range", lambda model, node: (-(1 << 23), 1 << 23))
    cfg = make_build_config(tmp_path / "old", "pynq-z2", 1000)
    with pytest.raises(BuildStepError, match="step_winograd_import.*differs from the previous level") as info:
        run_build(tmp_path / "m.onnx", cfg, winograd_steps()[:1], golden=out["raw"], progress=False)
    assert "first difference at node features_block1_relu_act_quant" in str(info.value)  # the activation after it


def test_first_difference_names_the_node_where_two_levels_differ(tmp_path):
    """A build whose verification finds a mismatch names the first node where the levels differ:
    here one threshold of the second layer's activation, corrupted after step_tidy_up."""
    from winoforge.hw.build import BuildStepError, first_difference, make_build_config, run_build, winograd_steps
    from winoforge.hw.flow import export_run

    model, raw = _student(Case(m=2, widths=(4, 4), bits=((4, 4), (4, 4)), size=8, drive="random"))
    export_run(model, tmp_path / "m.onnx", image_shape=(1, 8, 8), progress=False)

    def step_corrupt(model, cfg):  # every threshold of channel 0 of the last MultiThreshold far down
        node = model.get_nodes_by_op_type("MultiThreshold")[-1]
        T = model.get_initializer(node.input[1]).copy()
        T[0] = -1e6
        model.set_initializer(node.input[1], T)
        step_corrupt.node = node.name
        return model

    steps = winograd_steps()[:3] + [step_corrupt]
    with pytest.raises(BuildStepError, match="step_corrupt.*differs from the previous level") as info:
        run_build(tmp_path / "m.onnx", make_build_config(tmp_path / "b", "pynq-z2", 1000), steps, golden=raw,
                  progress=False)
    assert f"first difference at node {step_corrupt.node} (MultiThreshold)" in str(info.value)
    models = sorted(info.value.models_dir.glob("[0-9][0-9]_*.onnx"))
    assert [p.name[3:] for p in models] == ["step_winograd_import.onnx", "step_qonnx_to_finn.onnx",
                                            "step_tidy_up.onnx", "step_corrupt.onnx"]
    same = first_difference(ModelWrapper(str(models[2])), ModelWrapper(str(models[2])), raw, tmp_path / "s")
    assert same == ""
    where = first_difference(ModelWrapper(str(models[2])), ModelWrapper(str(models[3])), raw, tmp_path / "s")
    assert where.startswith(f"; first difference at node {step_corrupt.node} (MultiThreshold)")


FAST_CASES = [
    # m=2, mixed widths (8-bit weights on the image), SRBS 2 of 4 on 6 channels (not a multiple of
    # 4: the dense fallback) and on 4 channels, 7x7 input
    (Case(m=2, widths=(6, 4, "M", 4), bits=((8, 6), (3, 8), (4, 3)), sub_row=4, keep=2, size=7, drive="witness"),
     False),
    # refused before training, both layers named: F(4,3) W8 on the image, A8 into a W6 layer
    (Case(m=4, widths=(4, 8), bits=((8, 8), (6, 4)), size=14), True),
    # ResNet-8 of width 3 (3, 6, 12 channels: SRBS 1 of 4 only on 12), F(4,3), a width per layer,
    # 10x10 images (5x5, 2x2 after pooling: cropped tiles), identity and projection shortcuts, the
    # residual sums' shared branch quantizers driven to their extremes
    (Case(m=4, widths=(), bits=((5, 4), (4, 3), (3, 4), (4, 2), (2, 5), (3, 3), (4, 4)), sub_row=4, keep=1,
          size=10, arch="resnet", width=3), False),
]


@pytest.mark.parametrize("case,refused", FAST_CASES, ids=["m2-mixed-srbs-7x7", "m4-refused", "resnet8-m4-mixed"])
def test_sweep_examples(case, refused, tmp_path):
    out = run_case(case, tmp_path)
    assert bool(out["refused"]) == refused


@st.composite
def cases(draw) -> Case:
    """Tiny VGG students: F(2,3)/F(4,3), 1-3 conv blocks of 2-8 channels with optional pooling,
    per-layer weight and activation widths 2..8, dense or SRBS (sub_row 2/4, any keep; channel
    counts that are and are not multiples of sub_row), 7/10/14-pixel images of 1 or 3 channels
    (tiles cropped), weights and inputs at the witnesses, random or briefly trained."""
    size = draw(st.sampled_from([7, 10, 14]))
    widths, bits, side = [], [], size
    for _ in range(draw(st.integers(1, 3))):
        widths.append(draw(st.sampled_from([2, 3, 4, 5, 6, 8])))
        bits.append((draw(st.integers(2, 8)), draw(st.integers(2, 8))))
        if side >= 6 and draw(st.booleans()):
            widths.append("M")
            side //= 2
    sub_row = draw(st.sampled_from([None, 2, 4]))
    keep = None if sub_row is None else draw(st.integers(1, sub_row))
    return Case(m=draw(st.sampled_from([2, 4])), widths=tuple(widths), bits=tuple(bits), sub_row=sub_row, keep=keep,
                size=size, channels=draw(st.sampled_from([1, 1, 3])),
                drive=draw(st.sampled_from(["witness", "witness", "random", "trained"])),
                seed=draw(st.integers(0, 2**16)))


@pytest.mark.slow
@settings(max_examples=30, deadline=None, database=None)
@given(case=cases())
def test_sweep(case):
    """The wide sweep: every drawn student either builds bit-exact at every level or is refused
    before training, naming exactly the layers whose stages do not fit float32."""
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        run_case(case, root)


@st.composite
def resnet_cases(draw) -> Case:
    """Tiny ResNet-8 students (stem + three basic blocks: identity and 1x1 projection shortcuts,
    2x2 max-pooling between stages): F(2,3)/F(4,3), first-stage width 2..6 (stage widths w, 2w,
    4w), a weight and activation width 2..8 per Winograd layer, dense or SRBS (sub_row 2/4, any
    keep), 7/10/14-pixel images of 1 or 3 channels (tiles cropped down to 1x1 in the last stage),
    weights, inputs and the residual branches at their extremes, random or briefly trained."""
    bits = tuple((draw(st.integers(2, 8)), draw(st.integers(2, 8))) for _ in range(7))
    sub_row = draw(st.sampled_from([None, 2, 4]))
    keep = None if sub_row is None else draw(st.integers(1, sub_row))
    return Case(m=draw(st.sampled_from([2, 4])), widths=(), bits=bits, sub_row=sub_row, keep=keep,
                size=draw(st.sampled_from([7, 10, 14])), channels=draw(st.sampled_from([1, 1, 3])),
                drive=draw(st.sampled_from(["witness", "witness", "random", "trained"])),
                seed=draw(st.integers(0, 2**16)), arch="resnet", width=draw(st.integers(2, 6)))


@pytest.mark.slow
@settings(max_examples=12, deadline=None, database=None)
@given(case=resnet_cases())
def test_sweep_resnet(case):
    """The ResNet sweep: every drawn ResNet-8 student builds bit-exact at every level (residual
    sums included) or is refused before training, naming exactly the layers that do not fit."""
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        run_case(case, root)
