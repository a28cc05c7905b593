"""Knowledge-distillation losses against independent numpy formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from winoforge.model.config import from_dict
from winoforge.model.losses import (
    ActivationBoundaryHints,
    ActivationBoundaryLoss,
    CrossLayerHints,
    DistillationConfig,
    DistillationObjective,
    DynamicTemperatureKD,
    EnsembleTeacher,
    FeatureCapture,
    HintLoss,
    HintPair,
    OnlineDistillation,
    SoftTargetKD,
    TemperatureSchedule,
    annealed_temperature,
    infer_channels,
    match_spatial,
)

# ------------------------------------------------------- numpy references


def np_softmax(z: np.ndarray, t: float = 1.0) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64) / t
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p || q) per row, written out term by term."""
    out = np.zeros(p.shape[0])
    for b in range(p.shape[0]):
        out[b] = sum(p[b, k] * (math.log(p[b, k]) - math.log(q[b, k])) for k in range(p.shape[1]))
    return out


def np_cross_entropy(z: np.ndarray, y: np.ndarray) -> float:
    p = np_softmax(z)
    return float(np.mean([-math.log(p[b, y[b]]) for b in range(len(y))]))


def t64(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64))


ZS = np.array([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, -0.4], [-3.0, 1.0, 2.0, 0.5]])
ZT = np.array([[3.0, -1.0, 0.0, 0.5], [1.0, 1.0, -2.0, 0.0], [0.0, 0.0, 4.0, -1.0]])


# ------------------------------------------------------------ soft target


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0, 7.5])
def test_soft_target_matches_hand_formula(temperature):
    expected = temperature**2 * np_kl_rows(np_softmax(ZT, temperature), np_softmax(ZS, temperature)).mean()
    got = SoftTargetKD(temperature)(t64(ZS), t64(ZT)).item()
    assert got == pytest.approx(expected, rel=1e-12)


def test_soft_target_zero_for_equal_logits_and_positive_otherwise():
    kd = SoftTargetKD(3.0)
    assert kd(t64(ZT), t64(ZT)).item() == pytest.approx(0.0, abs=1e-15)
    assert kd(t64(ZS), t64(ZT)).item() > 0


def test_soft_target_t_squared_scaling_high_temperature_limit():
    # For T -> inf, T^2 KL(p_t^T || p_s^T) -> 1/(2K) sum_k (d_k - mean(d))^2, d = z_s - z_t
    # (Hinton et al. 2015, sec. 2.1): the T^2 factor keeps the term O(1) in T.
    k = ZS.shape[1]
    d = ZS - ZT
    limit = np.mean(((d - d.mean(axis=1, keepdims=True)) ** 2).sum(axis=1) / (2 * k))
    values = [SoftTargetKD(t)(t64(ZS), t64(ZT)).item() for t in (100.0, 1000.0, 10000.0)]
    errors = [abs(v / limit - 1) for v in values]
    assert errors[2] < 1e-4 and errors[2] < errors[1] < errors[0] < 1e-2
    # without the T^2 factor the term would shrink 100x from T=100 to T=10000


def test_soft_target_gradient_reaches_only_the_student():
    zs = t64(ZS).requires_grad_(True)
    zt = t64(ZT).requires_grad_(True)
    SoftTargetKD(2.0)(zs, zt).backward()
    assert zt.grad is None
    assert zs.grad is not None and zs.grad.abs().sum() > 0


def test_soft_target_gradient_matches_hand_formula():
    # d/dz_s [T^2 KL(p_t || p_s)] / B = T (p_s - p_t) / B
    t = 3.0
    zs = t64(ZS).requires_grad_(True)
    SoftTargetKD(t)(zs, t64(ZT)).backward()
    expected = t * (np_softmax(ZS, t) - np_softmax(ZT, t)) / ZS.shape[0]
    np.testing.assert_allclose(zs.grad.numpy(), expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_soft_target_rejects_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature"):
        SoftTargetKD(bad)
    kd = SoftTargetKD(2.0)
    with pytest.raises(ValueError, match="temperature"):
        kd.temperature = bad


def test_soft_target_rejects_mismatched_logits():
    with pytest.raises(ValueError, match="same shape"):
        SoftTargetKD(1.0)(torch.zeros(2, 3), torch.zeros(2, 4))


# ---------------------------------------------------- dynamic temperature


def np_dynamic_temperature(zt: np.ndarray, t_min: float, t_max: float) -> np.ndarray:
    k = zt.shape[1]
    p_max = np_softmax(zt).max(axis=1)
    c = np.clip((p_max - 1 / k) / (1 - 1 / k), 0, 1)
    return t_min + (t_max - t_min) * c


def test_dynamic_temperature_matches_hand_formula():
    t_min, t_max = 1.5, 6.0
    kd = DynamicTemperatureKD(t_min, t_max)
    temps = np_dynamic_temperature(ZT, t_min, t_max)
    np.testing.assert_allclose(kd.temperatures(t64(ZT)).numpy(), temps, rtol=1e-12)
    per_sample = [
        temps[b] ** 2 * np_kl_rows(np_softmax(ZT[b : b + 1], temps[b]), np_softmax(ZS[b : b + 1], temps[b]))[0]
        for b in range(len(ZT))
    ]
    assert kd(t64(ZS), t64(ZT)).item() == pytest.approx(np.mean(per_sample), rel=1e-12)


def test_dynamic_temperature_endpoints():
    kd = DynamicTemperatureKD(2.0, 5.0)
    uniform = torch.zeros(1, 10, dtype=torch.float64)
    one_hot = torch.tensor([[200.0] + [0.0] * 9], dtype=torch.float64)
    assert kd.temperatures(uniform).item() == pytest.approx(2.0, abs=1e-12)
    assert kd.temperatures(one_hot).item() == pytest.approx(5.0, abs=1e-12)


@given(
    st.lists(st.floats(-20, 20), min_size=3, max_size=8),
    st.floats(0.1, 4.0),
    st.floats(0.0, 10.0),
)
def test_dynamic_temperature_monotonic_and_bounded(rest, t_min, span):
    # raising the top logit raises the teacher's confidence: T must not decrease
    t_max = t_min + span
    kd = DynamicTemperatureKD(t_min, t_max)
    top = max(rest)
    logits = torch.tensor([[top + a] + rest for a in np.linspace(0, 30, 16)], dtype=torch.float64)
    temps = kd.temperatures(logits).numpy()
    assert np.all(temps >= t_min - 1e-12) and np.all(temps <= t_max + 1e-12)
    assert np.all(np.diff(temps) >= -1e-12)


def test_dynamic_temperature_gradient_reaches_only_the_student():
    zs = t64(ZS).requires_grad_(True)
    zt = t64(ZT).requires_grad_(True)
    DynamicTemperatureKD(1.0, 4.0)(zs, zt).backward()
    assert zt.grad is None and zs.grad.abs().sum() > 0


@pytest.mark.parametrize("kw, field", [({"t_min": 0.0}, "t_min"), ({"t_max": -1.0}, "t_max"),
                                       ({"t_min": 3.0, "t_max": 2.0}, "t_max")])
def test_dynamic_temperature_rejects_bad_range(kw, field):
    with pytest.raises(ValueError, match=field):
        DynamicTemperatureKD(**{"t_min": 1.0, "t_max": 4.0, **kw})


# ---------------------------------------------------------- annealing


@pytest.mark.parametrize("shape", ["cosine", "linear"])
def test_annealed_temperature_goes_from_start_to_end(shape):
    values = [annealed_temperature(s, 100, 8.0, 1.0, shape) for s in range(0, 131)]
    assert values[0] == pytest.approx(8.0)
    assert values[100] == pytest.approx(1.0)
    assert values[130] == pytest.approx(1.0)  # clamped after the end
    assert all(b <= a + 1e-12 for a, b in zip(values, values[1:]))
    assert annealed_temperature(50, 100, 8.0, 1.0, shape) == pytest.approx(4.5)  # both hit the midpoint


def test_annealed_temperature_rejects_bad_values():
    with pytest.raises(ValueError, match="total_steps"):
        annealed_temperature(0, 0, 4.0)
    with pytest.raises(ValueError, match="t_start"):
        annealed_temperature(0, 10, 0.0)
    with pytest.raises(ValueError, match="shape"):
        annealed_temperature(0, 10, 4.0, shape="exp")
    with pytest.raises(ValueError, match="total_steps"):
        TemperatureSchedule(t_start=4.0, total_steps=-3)


def test_temperature_schedule_hook_sets_module_temperature():
    kd = SoftTargetKD(1.0)
    hook = TemperatureSchedule(t_start=6.0, total_steps=10, shape="linear").hook(kd)
    hook(0)
    assert kd.temperature == pytest.approx(6.0)
    hook(5)
    assert kd.temperature == pytest.approx(3.5)
    obj = DistillationObjective(DistillationConfig(temperature=2.0))
    TemperatureSchedule(t_start=6.0, total_steps=10).hook(obj)(10)
    assert obj.temperature == pytest.approx(1.0) and obj.kd.temperature == pytest.approx(1.0)
    with pytest.raises(ValueError, match="temperature"):
        TemperatureSchedule(4.0, 10).hook(nn.Linear(2, 2))


# --------------------------------------------------------------- hints


def np_avg_pool(x: np.ndarray, f: int) -> np.ndarray:
    b, c, h, w = x.shape
    return x.reshape(b, c, h // f, f, w // f, f).mean(axis=(3, 5))


def np_conv1x1(x: np.ndarray, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return np.einsum("oc,bchw->bohw", w, x) + bias.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("s_size, t_size", [(8, 4), (4, 8), (6, 6)])
def test_hint_loss_matches_hand_formula_with_mismatched_channels_and_sizes(s_size, t_size):
    rng = np.random.default_rng(0)
    s = rng.normal(size=(2, 3, s_size, s_size))
    t = rng.normal(size=(2, 5, t_size, t_size))
    w = rng.normal(size=(5, 3))
    bias = rng.normal(size=5)
    hint = HintLoss(3, 5).double()
    with torch.no_grad():
        hint.adapter.weight.copy_(t64(w).reshape(5, 3, 1, 1))
        hint.adapter.bias.copy_(t64(bias))
    a = np_conv1x1(s, w, bias)
    small = min(s_size, t_size)
    a_p, t_p = np_avg_pool(a, s_size // small), np_avg_pool(t, t_size // small)
    expected = np.mean((a_p - t_p) ** 2)
    assert hint(t64(s), t64(t)).item() == pytest.approx(expected, rel=1e-12)


def test_hint_gradient_reaches_student_and_adapter_not_teacher():
    hint = HintLoss(4, 6, batch_norm=True)
    s = torch.randn(2, 4, 8, 8, requires_grad=True)
    t = torch.randn(2, 6, 4, 4, requires_grad=True)
    loss = hint(s, t)
    loss.backward()
    assert loss.dim() == 0
    assert t.grad is None
    assert s.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in hint.adapter.parameters())


def test_hint_rejects_wrong_channels():
    with pytest.raises(ValueError, match="student features"):
        HintLoss(4, 6)(torch.zeros(1, 5, 4, 4), torch.zeros(1, 6, 4, 4))
    with pytest.raises(ValueError, match="student_channels"):
        HintLoss(0, 6)


def test_match_spatial_pools_each_axis_to_the_smaller_size():
    s, t = match_spatial(torch.randn(2, 3, 8, 4), torch.randn(2, 5, 4, 8))
    assert s.shape == (2, 3, 4, 4) and t.shape == (2, 5, 4, 4)
    s, t = match_spatial(torch.randn(1, 1, 7, 7), torch.randn(1, 1, 3, 3))  # non-divisible: adaptive windows
    assert s.shape == t.shape == (1, 1, 3, 3)
    x = torch.randn(1, 2, 5, 5)
    assert match_spatial(x, torch.randn(1, 2, 5, 5))[0] is x  # equal sizes: untouched


def test_cross_layer_hints_weighted_sum_and_many_to_many_pairs():
    pairs = [HintPair("s.a", "t.x", 2, 3, weight=1.0), HintPair("s.a", "t.y", 2, 4, weight=0.5),
             HintPair("s.b", "t.x", 5, 3, weight=2.0)]
    hints = CrossLayerHints(pairs)
    assert len(hints.losses) == 3 and hints.student_layers == ("s.a", "s.b") and hints.teacher_layers == ("t.x", "t.y")
    sf = {"s.a": torch.randn(2, 2, 8, 8), "s.b": torch.randn(2, 5, 4, 4)}
    tf = {"t.x": torch.randn(2, 3, 4, 4), "t.y": torch.randn(2, 4, 2, 2)}
    per = hints.pair_losses(sf, tf)
    assert set(per) == {"s.a->t.x", "s.a->t.y", "s.b->t.x"}
    expected = per["s.a->t.x"] + 0.5 * per["s.a->t.y"] + 2.0 * per["s.b->t.x"]
    assert hints(sf, tf).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="t.y"):
        hints(sf, {"t.x": tf["t.x"]})
    with pytest.raises(ValueError, match="repeat"):
        CrossLayerHints(pairs + [pairs[0]])
    with pytest.raises(ValueError, match="weight"):
        HintPair("a", "b", 1, 1, weight=-1.0)


# -------------------------------------------------- activation boundary


def np_ab(s: np.ndarray, t: np.ndarray, m: float) -> float:
    """Sum over elements of the hinge-squared AB loss, written out one element at a time."""
    total = 0.0
    for sv, tv in zip(s.ravel(), t.ravel()):
        if tv > 0:
            total += max(m - sv, 0.0) ** 2
        else:
            total += max(m + sv, 0.0) ** 2
    return total


def test_ab_loss_zero_when_student_is_beyond_the_boundary_by_the_margin():
    t = t64([[[[1.0, -1.0], [2.0, 0.0]]]])  # teacher 0 counts as inactive
    s = t64([[[[1.0, -1.0], [3.5, -1.2]]]])  # active -> >= m, inactive -> <= -m
    assert ActivationBoundaryLoss(1.0)(s, t).item() == 0.0


def test_ab_loss_hand_computed_example():
    t = np.array([[[[1.0, -1.0], [2.0, 0.0]]]])
    s = np.array([[[[0.5, 0.2], [1.0, -0.5]]]])
    # (1 - 0.5)^2 + (1 + 0.2)^2 + 0 + (1 - 0.5)^2 = 0.25 + 1.44 + 0.25
    assert np_ab(s, t, 1.0) == pytest.approx(1.94)
    assert ActivationBoundaryLoss(1.0)(t64(s), t64(t)).item() == pytest.approx(1.94, rel=1e-12)


@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum"])
def test_ab_loss_random_against_reference(reduction):
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=(3, 4, 5, 5)), rng.normal(size=(3, 4, 5, 5))
    total = np_ab(s, t, 0.7)
    expected = {"batchmean": total / 3, "mean": total / s.size, "sum": total}[reduction]
    got = ActivationBoundaryLoss(0.7, reduction=reduction)(t64(s), t64(t)).item()
    assert got == pytest.approx(expected, rel=1e-12)


def test_ab_loss_per_channel_margin():
    rng = np.random.default_rng(2)
    s, t = rng.normal(size=(2, 2, 3, 3)), rng.normal(size=(2, 2, 3, 3))
    expected = (np_ab(s[:, 0], t[:, 0], 0.5) + np_ab(s[:, 1], t[:, 1], 2.0)) / 2
    got = ActivationBoundaryLoss([0.5, 2.0])(t64(s), t64(t)).item()
    assert got == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="margin"):
        ActivationBoundaryLoss([0.5, 2.0, 1.0])(t64(s), t64(t))


def test_ab_loss_with_connector_grad_to_student_and_connector_only():
    ab = ActivationBoundaryLoss(1.0, student_channels=3, teacher_channels=6)
    s = torch.randn(2, 3, 8, 8, requires_grad=True)
    t = torch.randn(2, 6, 4, 4, requires_grad=True)
    loss = ab(s, t)
    assert loss.item() > 0
    loss.backward()
    assert t.grad is None and s.grad.abs().sum() > 0
    assert all(p.grad is not None for p in ab.connector.parameters())


@pytest.mark.parametrize("kw, field", [({"margin": 0.0}, "margin"), ({"margin": [1.0, -1.0]}, "margin"),
                                       ({"reduction": "max"}, "reduction"),
                                       ({"student_channels": 3}, "teacher_channels")])
def test_ab_loss_rejects_bad_arguments(kw, field):
    with pytest.raises(ValueError, match=field):
        ActivationBoundaryLoss(**kw)


def test_ab_gradient_pushes_student_towards_the_teacher_side():
    t = t64([[[[1.0, -1.0]]]])
    s = t64([[[[0.0, 0.0]]]]).requires_grad_(True)
    ActivationBoundaryLoss(1.0)(s, t).backward()
    # d/ds relu(m - s)^2 = -2(m - s) = -2 at s=0 (descent raises s); d/ds relu(m + s)^2 = +2
    np.testing.assert_allclose(s.grad.numpy().ravel(), [-2.0, 2.0])


def test_ab_hints_container():
    ab = ActivationBoundaryHints([HintPair("s", "t", 2, 4, weight=0.5)], margin=1.0)
    sf, tf = {"s": torch.randn(2, 2, 4, 4)}, {"t": torch.randn(2, 4, 4, 4)}
    assert ab(sf, tf).item() == pytest.approx(0.5 * ab.pair_losses(sf, tf)["s->t"].item())


# ------------------------------------------------------------ ensemble


def test_ensemble_teacher_is_the_mean_of_logits_and_frozen():
    torch.manual_seed(0)
    members = [nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5)) for _ in range(3)]
    ens = EnsembleTeacher(members)
    x = torch.randn(5, 4, requires_grad=True)
    ens.train()  # must stay in eval mode: dropout off
    assert not ens.training and not any(m.training for m in ens.modules())
    z = ens(x)
    with torch.no_grad():
        expected = sum(m[0](x) for m in members) / 3
    torch.testing.assert_close(z, expected, rtol=0, atol=1e-6)
    assert not z.requires_grad
    assert all(not p.requires_grad for p in ens.parameters())


def test_ensemble_teacher_rejects_empty_and_mismatched():
    with pytest.raises(ValueError, match="teachers"):
        EnsembleTeacher([])
    with pytest.raises(ValueError, match="output shape"):
        EnsembleTeacher([nn.Linear(4, 3), nn.Linear(4, 5)])(torch.randn(2, 4))


# ----------------------------------------------------------- online KD


def test_online_distillation_symmetric_two_peers():
    od = OnlineDistillation(2.0)
    a, b = t64(ZS), t64(ZT)
    l_ab = od.peer_losses([a, b])
    l_ba = od.peer_losses([b, a])
    torch.testing.assert_close(l_ab, l_ba.flip(0), rtol=1e-12, atol=0)
    # two peers: each term is exactly soft-target KD from the other peer (DML)
    assert l_ab[0].item() == pytest.approx(SoftTargetKD(2.0)(a, b).item(), rel=1e-12)
    assert od([a, a]).item() == pytest.approx(0.0, abs=1e-15)


def test_online_distillation_three_peers_hand_formula():
    rng = np.random.default_rng(3)
    zs = [rng.normal(size=(4, 5)) * 2 for _ in range(3)]
    t = 1.5
    probs = [np_softmax(z, t) for z in zs]
    expected = []
    for k in range(3):
        target = sum(probs[j] for j in range(3) if j != k) / 2
        expected.append(t * t * np_kl_rows(target, probs[k]).mean())
    got = OnlineDistillation(t).peer_losses([t64(z) for z in zs]).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_online_distillation_each_peer_learns_only_from_its_own_term():
    zs = [torch.randn(3, 4, requires_grad=True) for _ in range(3)]
    OnlineDistillation(1.0).peer_losses(zs)[0].backward()
    assert zs[0].grad.abs().sum() > 0
    for z in zs[1:]:  # the other peers enter only as detached targets
        assert z.grad is None or not z.grad.any()


def test_online_distillation_needs_two_peers():
    with pytest.raises(ValueError, match="2 peers"):
        OnlineDistillation()([torch.zeros(2, 3)])


# ------------------------------------------------------------ objective


def test_objective_composes_weighted_terms():
    y = np.array([0, 1, 2])
    cfg = DistillationConfig(ce_weight=0.3, kd="soft", kd_weight=0.7, temperature=4.0)
    total, terms = DistillationObjective(cfg)(t64(ZS), torch.tensor(y), t64(ZT))
    ce = np_cross_entropy(ZS, y)
    kd = 16.0 * np_kl_rows(np_softmax(ZT, 4.0), np_softmax(ZS, 4.0)).mean()
    assert set(terms) == {"ce", "kd"}
    assert float(terms["ce"]) == pytest.approx(ce, rel=1e-12) and float(terms["kd"]) == pytest.approx(kd, rel=1e-12)
    assert total.item() == pytest.approx(0.3 * ce + 0.7 * kd, rel=1e-12)
    # detached 0-d tensors (no GPU sync per step); they carry no graph
    assert all(isinstance(v, torch.Tensor) and v.ndim == 0 and not v.requires_grad for v in terms.values())


def test_objective_terms_that_are_off_are_not_computed():
    y = torch.tensor([0, 1, 2])
    total, terms = DistillationObjective(DistillationConfig(kd="none"))(t64(ZS), y)
    assert set(terms) == {"ce"} and total.item() == pytest.approx(np_cross_entropy(ZS, np.array([0, 1, 2])))
    total, terms = DistillationObjective(DistillationConfig(ce_weight=0.0, kd="dynamic"))(t64(ZS), y, t64(ZT))
    assert set(terms) == {"kd"}
    assert total.item() == pytest.approx(DynamicTemperatureKD(1.0, 8.0)(t64(ZS), t64(ZT)).item())
    with pytest.raises(ValueError, match="teacher_logits"):
        DistillationObjective(DistillationConfig())(t64(ZS), y)


class _Tiny(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 4))

    def forward(self, x):
        return self.head(self.body(x))


def test_objective_with_hints_and_ab_end_to_end():
    torch.manual_seed(0)
    student, teacher = _Tiny(3), _Tiny(8).eval()
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    s_names, t_names = ["body.2", "body.1"], ["body.3", "body.1"]  # post-ReLU (pooled) / pre-ReLU
    s_ch = infer_channels(student, s_names, x)
    t_ch = infer_channels(teacher, t_names, x)
    assert s_ch == {"body.2": 3, "body.1": 3} and t_ch == {"body.3": 8, "body.1": 8}
    hints = CrossLayerHints([HintPair("body.2", "body.3", 3, 8)])  # 8x8 student vs 4x4 teacher
    ab = ActivationBoundaryHints([HintPair("body.1", "body.1", 3, 8)])
    cfg = DistillationConfig(ce_weight=1.0, kd_weight=0.5, hint_weight=2.0, ab_weight=0.25)
    obj = DistillationObjective(cfg, hints=hints, ab=ab)
    with FeatureCapture(student, s_names) as s_cap, FeatureCapture(teacher, t_names, detach=True) as t_cap:
        with torch.no_grad():
            zt = teacher(x)
        zs = student(x)
        total, terms = obj(zs, y, zt, s_cap.features, t_cap.features)
    assert set(terms) == {"ce", "kd", "hint", "ab"}
    expected = float(terms["ce"] + 0.5 * terms["kd"] + 2.0 * terms["hint"] + 0.25 * terms["ab"])
    assert total.item() == pytest.approx(expected, rel=1e-5)
    total.backward()
    assert all(p.grad is not None for p in student.parameters())
    assert all(p.grad is not None for p in obj.parameters())  # adapters and connectors train
    assert all(p.grad is None for p in teacher.parameters())
    with pytest.raises(ValueError, match="student_features"):
        obj(zs, y, zt)


def test_objective_needs_the_modules_its_weights_ask_for():
    with pytest.raises(ValueError, match="hint_weight"):
        DistillationObjective(DistillationConfig(hint_weight=1.0))
    with pytest.raises(ValueError, match="ab_weight"):
        DistillationObjective(DistillationConfig(ab_weight=1.0))
    with pytest.raises(ValueError, match="kd='soft'"):
        DistillationObjective(DistillationConfig(kd="dynamic")).temperature = 2.0


@pytest.mark.parametrize("field, value", [
    ("temperature", 0.0), ("temperature", -2.0), ("temperature", float("nan")),
    ("ce_weight", -0.1), ("kd_weight", -1.0), ("hint_weight", float("inf")), ("ab_weight", -1e-9),
    ("t_min", 0.0), ("t_max", -1.0), ("ab_margin", 0.0), ("label_smoothing", 1.0), ("kd", "hard"),
])
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"distill\.{field}=") as err:
        DistillationConfig(**{field: value})
    assert "allowed" in str(err.value)


def test_config_rejects_inverted_temperature_range_and_all_zero_weights():
    with pytest.raises(ValueError, match=r"distill\.t_max=.*t_min"):
        DistillationConfig(t_min=4.0, t_max=2.0)
    with pytest.raises(ValueError, match="every weight is 0"):
        DistillationConfig(ce_weight=0.0, kd="none")


def test_config_loads_through_the_typed_config_loader():
    cfg = from_dict(DistillationConfig, {"kd": "dynamic", "t_min": 1, "t_max": 6, "kd_weight": 0.9})
    assert cfg.kd == "dynamic" and cfg.t_max == 6.0
    with pytest.raises(ValueError, match="distill.temperature"):
        from_dict(DistillationConfig, {"temperature": 0})
    with pytest.raises(ValueError, match="kd"):
        from_dict(DistillationConfig, {"kd": "hard"})


# ------------------------------------------------------- feature capture


def test_feature_capture_output_and_input_and_removal():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(inplace=True))
    x = torch.randn(2, 1, 4, 4)
    with FeatureCapture(model, ["0"]) as out_cap, FeatureCapture(model, ["1"], what="input") as in_cap:
        y = model(x)
    pre = in_cap.features["1"]
    assert (pre < 0).any()  # the pre-ReLU response survived the in-place ReLU
    torch.testing.assert_close(torch.relu(pre), y)
    assert out_cap.features["0"].shape == (2, 2, 4, 4)
    assert not model[0]._forward_hooks and not model[1]._forward_pre_hooks


def test_feature_capture_unknown_name_lists_valid_names():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    with pytest.raises(ValueError, match=r"unknown layer name 'features\.x'.*'0'.*'1'"):
        FeatureCapture(model, ["features.x"])
    with pytest.raises(ValueError, match="what"):
        FeatureCapture(model, ["0"], what="grad")


def test_feature_capture_detach():
    model = nn.Sequential(nn.Linear(2, 2))
    with FeatureCapture(model, ["0"], detach=True) as cap:
        model(torch.randn(1, 2))
    assert not cap.features["0"].requires_grad


def test_objective_from_pairs_uses_the_config_margin():
    cfg = DistillationConfig(kd="none", hint_weight=1.0, ab_weight=1.0, ab_margin=0.25)
    obj = DistillationObjective.from_pairs(cfg, hint_pairs=[HintPair("a", "b", 2, 3)],
                                           ab_pairs=[HintPair("a", "c", 2, 4)], hint_batch_norm=True)
    assert obj.ab.losses[0].margin.item() == 0.25
    assert isinstance(obj.hints.losses[0].adapter[1], nn.BatchNorm2d)
    # weights of 0 switch a term off even when its pairs are given: its adapters are not kept
    off = DistillationObjective.from_pairs(DistillationConfig(), hint_pairs=[HintPair("a", "b", 2, 3)])
    assert off.hints is None and not list(off.parameters())
