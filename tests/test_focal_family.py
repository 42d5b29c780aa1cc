"""Focal family (softmax, focal, asl, cfl, casl) against a float64 reference of the formula in
losses/focal_family.py."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

import losses.focal_family as focal_family
from losses.registry import build_loss

NAMES = ("softmax", "focal", "asl", "cfl", "casl")
CYCLICAL = ("cfl", "casl")
# Progress t -> xi for f = 4 worked out by hand from Eq. 8.
XI_AT_PROGRESS_F4 = {0.0: 1.0, 0.1: 0.6, 0.25: 0.0, 0.5: 1.0 / 3.0, 0.9: 2.6 / 3.0, 1.0: 1.0}


def reference_per_sample(logits, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps):
    """The formula typed out plainly: one-hot targets, explicit pow, autograd for gradients."""
    num_classes = logits.shape[1]
    log_p = torch.log_softmax(logits, dim=1)
    p = log_p.exp()
    one_hot = F.one_hot(targets, num_classes).to(logits.dtype)
    target_dist = (1 - eps) * one_hot + eps / num_classes
    low = one_hot * (1 - p).pow(gamma_pos) + (1 - one_hot) * p.pow(gamma_neg)
    high = one_hot * (1 + p).pow(gamma_hc) + (1 - one_hot) * 1.0
    weight = (1 - xi) * low + xi * high
    return -(target_dist * weight * log_p).sum(dim=1)


def reference_reduced(per_sample, reduction):
    return {"mean": per_sample.mean, "sum": per_sample.sum, "none": lambda: per_sample}[reduction]()


def member_gammas(name, params):
    """(gamma_pos, gamma_neg, gamma_hc) that the formula table assigns to a member."""
    if name == "softmax":
        return 0.0, 0.0, 0.0
    if name == "focal":
        g = params.get("gamma", 2.0)
        return g, g, 0.0
    if name == "asl":
        return params.get("gamma_pos", 0.0), params.get("gamma_neg", 4.0), 0.0
    if name == "cfl":
        g = params.get("gamma", 2.0)
        return g, g, params.get("gamma_hc", 2.0)
    return params.get("gamma_pos", 0.0), params.get("gamma_neg", 4.0), params.get("gamma_hc", 2.0)


NON_INTEGER_PARAMS = {
    "softmax": {},
    "focal": {"gamma": 0.7},
    "asl": {"gamma_pos": 1.2, "gamma_neg": 2.6},
    "cfl": {"gamma": 1.5, "gamma_hc": 2.5},
    "casl": {"gamma_pos": 0.5, "gamma_neg": 3.3, "gamma_hc": 1.7},
}


def make_batch(batch=24, classes=11, scale=3.0, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    logits = (torch.randn(batch, classes, generator=generator, dtype=torch.float64) * scale).to(dtype)
    targets = torch.randint(0, classes, (batch,), generator=generator)
    # A few confident rows (p_y close to 1) and badly wrong rows (p_y tiny).
    logits[0, targets[0]] += 25.0
    logits[1, targets[1]] -= 25.0
    return logits, targets


def compare(loss_module, name, params, xi, eps, reduction, logits, targets):
    gp, gn, ghc = member_gammas(name, params)
    mine_input = logits.clone().requires_grad_(True)
    ref_input = logits.clone().requires_grad_(True)
    mine = loss_module(mine_input, targets)
    ref = reference_reduced(reference_per_sample(ref_input, targets, gp, gn, ghc, xi, eps), reduction)
    assert mine.dtype == torch.float64
    assert mine.shape == ref.shape
    assert torch.allclose(mine, ref, rtol=1e-10, atol=1e-12), (mine, ref)
    # A non-uniform upstream gradient exercises the per-row scaling of the backward.
    upstream = torch.linspace(0.5, 1.5, ref.numel(), dtype=torch.float64).reshape(ref.shape)
    (mine_grad,) = torch.autograd.grad((mine * upstream).sum(), mine_input)
    (ref_grad,) = torch.autograd.grad((ref * upstream).sum(), ref_input)
    assert torch.allclose(mine_grad, ref_grad, rtol=1e-9, atol=1e-12), (mine_grad - ref_grad).abs().max()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("name", ["softmax", "focal", "asl"])
def test_static_members_match_reference(name, eps, reduction):
    logits, targets = make_batch()
    module = build_loss(name, label_smoothing=eps, reduction=reduction)
    compare(module, name, {}, 0.0, eps, reduction, logits, targets)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("t", sorted(XI_AT_PROGRESS_F4))
@pytest.mark.parametrize("name", CYCLICAL)
def test_cyclical_members_match_reference(name, t, eps, reduction):
    logits, targets = make_batch(seed=1)
    module = build_loss(name, label_smoothing=eps, reduction=reduction)
    module.set_progress(t)
    xi = XI_AT_PROGRESS_F4[t]
    assert module.xi == pytest.approx(xi, abs=1e-12)
    compare(module, name, {}, xi, eps, reduction, logits, targets)


@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("name", NAMES)
def test_non_integer_gammas_match_reference(name, eps):
    params = NON_INTEGER_PARAMS[name]
    logits, targets = make_batch(seed=2)
    module = build_loss(name, label_smoothing=eps, reduction="none", **params)
    xi = 0.0
    if name in CYCLICAL:
        module.set_progress(0.1)
        xi = 0.6
    compare(module, name, params, xi, eps, "none", logits, targets)


@pytest.mark.parametrize("xi", [-0.3, 0.0, 0.4, 1.0, 2.4])
def test_functional_form_matches_reference_for_any_xi(xi):
    # xi outside [0, 1] happens in the published schedule (reference mode).
    logits, targets = make_batch(seed=3)
    z = logits.clone().requires_grad_(True)
    mine = focal_family.focal_family_loss(z, targets, 0.5, 3.0, 2.0, xi, 0.1, "sum")
    zr = logits.clone().requires_grad_(True)
    ref = reference_per_sample(zr, targets, 0.5, 3.0, 2.0, xi, 0.1).sum()
    assert torch.allclose(mine, ref, rtol=1e-10)
    assert torch.allclose(torch.autograd.grad(mine, z)[0], torch.autograd.grad(ref, zr)[0], rtol=1e-9, atol=1e-12)


GRADCHECK_CASES = [
    # (gamma_pos, gamma_neg, gamma_hc, xi, eps): every member and every backward branch.
    pytest.param(0.0, 0.0, 0.0, 0.0, 0.1, id="softmax-smoothing"),
    pytest.param(2.0, 2.0, 0.0, 0.0, 0.0, id="focal"),
    pytest.param(2.0, 2.0, 0.0, 0.0, 0.1, id="focal-smoothing"),
    pytest.param(0.0, 4.0, 0.0, 0.0, 0.1, id="asl-smoothing"),
    pytest.param(1.3, 2.7, 0.0, 0.0, 0.1, id="asl-fractional"),
    pytest.param(1.0, 1.0, 0.0, 0.0, 0.1, id="focal-gamma1"),
    pytest.param(0.0, 3.0, 1.0, 0.2, 0.1, id="casl-odd-gammas"),
    pytest.param(2.0, 2.0, 2.0, 0.6, 0.0, id="cfl"),
    pytest.param(2.0, 2.0, 2.0, 0.6, 0.1, id="cfl-smoothing"),
    pytest.param(2.0, 2.0, 2.0, 1.0, 0.1, id="cfl-xi1"),
    pytest.param(0.0, 4.0, 2.0, 0.3, 0.1, id="casl-smoothing"),
    pytest.param(0.5, 3.3, 1.7, 0.3, 0.1, id="casl-fractional"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_gradcheck_each_registered_member(name, eps):
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(6, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 5, (6,), generator=generator)
    module = build_loss(name, label_smoothing=eps, reduction="none")
    if name in CYCLICAL:
        module.set_progress(0.1)
    assert torch.autograd.gradcheck(lambda z: module(z, targets), (logits,), eps=1e-6, atol=1e-8)


# ---- properties of the formula ------------------------------------------------------------


def test_focal_with_gamma_zero_is_cross_entropy():
    logits, targets = make_batch(seed=6)
    for reduction in ("mean", "sum", "none"):
        mine = build_loss("focal", gamma=0.0, reduction=reduction)(logits, targets)
        assert torch.allclose(mine, F.cross_entropy(logits, targets, reduction=reduction), rtol=1e-12)


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.5])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_label_smoothing_matches_torch(eps, reduction):
    logits, targets = make_batch(seed=7)
    z = logits.clone().requires_grad_(True)
    zt = logits.clone().requires_grad_(True)
    mine = build_loss("softmax", label_smoothing=eps, reduction=reduction)(z, targets)
    torch_loss = F.cross_entropy(zt, targets, label_smoothing=eps, reduction=reduction)
    assert torch.allclose(mine, torch_loss, rtol=1e-10, atol=1e-12)
    assert torch.allclose(
        torch.autograd.grad(mine.sum(), z)[0], torch.autograd.grad(torch_loss.sum(), zt)[0], rtol=1e-9, atol=1e-12
    )


def test_gamma_neg_has_no_effect_without_smoothing():
    logits, targets = make_batch(seed=8)
    base = build_loss("asl", gamma_pos=1.0, gamma_neg=0.0)(logits, targets)
    for gamma_neg in (1.0, 4.0, 7.5):
        assert torch.allclose(build_loss("asl", gamma_pos=1.0, gamma_neg=gamma_neg)(logits, targets), base, rtol=1e-12)
    with_smoothing = build_loss("asl", gamma_pos=1.0, gamma_neg=4.0, label_smoothing=0.1)(logits, targets)
    assert not torch.allclose(
        with_smoothing, build_loss("asl", gamma_pos=1.0, gamma_neg=0.0, label_smoothing=0.1)(logits, targets)
    )


def test_asl_with_gamma_pos_zero_is_cross_entropy_without_smoothing():
    logits, targets = make_batch(seed=9)
    assert torch.allclose(build_loss("asl")(logits, targets), F.cross_entropy(logits, targets), rtol=1e-12)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cfl_at_xi_zero_is_focal(eps):
    logits, targets = make_batch(seed=10)
    cfl = build_loss("cfl", gamma=3.0, cyclical_factor=4, label_smoothing=eps)
    cfl.set_progress(0.25)
    assert cfl.xi == 0.0
    focal = build_loss("focal", gamma=3.0, label_smoothing=eps)
    assert torch.allclose(cfl(logits, targets), focal(logits, targets), rtol=1e-12)


def test_cfl_at_xi_one_is_pure_high_confidence_term():
    logits, targets = make_batch(seed=11)
    cfl = build_loss("cfl", gamma_hc=2.0, reduction="none")
    assert cfl.xi == 1.0  # before any set_progress
    p_y = torch.softmax(logits, 1).gather(1, targets[:, None]).squeeze(1)
    expected = -((1 + p_y) ** 2) * torch.log(p_y)
    assert torch.allclose(cfl(logits, targets), expected, rtol=1e-10)


def test_hand_computed_focal_value():
    # Two classes, logits (0, log 3): p = (1/4, 3/4); target 1, gamma 2:
    # FL = -(1/4)^2 log(3/4).
    logits = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)
    loss = build_loss("focal", gamma=2.0)(logits, torch.tensor([1]))
    assert loss.item() == pytest.approx(-(0.25**2) * math.log(0.75), rel=1e-12)


def test_extreme_logits_stay_finite():
    logits = torch.tensor([[100.0, -100.0, 0.0], [-100.0, 100.0, 0.0]], requires_grad=True)
    targets = torch.tensor([0, 0])
    for name in NAMES:
        for eps in (0.0, 0.1):
            module = build_loss(name, label_smoothing=eps, **NON_INTEGER_PARAMS[name])
            if name in CYCLICAL:
                module.set_progress(0.1)
            loss = module(logits, targets)
            (grad,) = torch.autograd.grad(loss, logits)
            assert torch.isfinite(loss) and torch.isfinite(grad).all(), (name, eps)


# ---- cyclical schedule inside the losses --------------------------------------------------


@pytest.mark.parametrize("name", CYCLICAL)
def test_progress_interface(name):
    module = build_loss(name, cyclical_factor=2)
    assert module.xi == 1.0
    module.set_progress(0.5)
    assert module.xi == 0.0
    module.set_progress(0.75)
    assert module.xi == pytest.approx(0.5)
    for bad in (-0.01, 1.01, float("nan")):
        with pytest.raises(ValueError, match="progress"):
            module.set_progress(bad)


@pytest.mark.parametrize("name", ["softmax", "focal", "asl"])
def test_static_members_have_no_progress(name):
    assert not hasattr(build_loss(name), "set_progress")


def test_reference_schedule_replays_published_xi_and_warns():
    num_epochs, E, f = 60, 30, 4.0
    with pytest.warns(UserWarning, match="epochs=30"):
        module = build_loss("cfl", schedule="reference", epochs=E, cyclical_factor=f, num_epochs=num_epochs)
    for epoch_index in (0, 5, 7, 29, 59):
        module.set_progress(epoch_index / (num_epochs - 1))
        e = epoch_index + 1  # the published code counts epochs from 1
        expected = 1 - f * e / (E - 1) if f * e < E else (f * e / (E - 1) - 1) / (f - 1)
        assert module.xi == pytest.approx(expected, abs=1e-12)
    assert module.xi > 2.0  # the last of 60 epochs with E = 30


def test_reference_schedule_defaults_epochs_to_num_epochs_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = build_loss("casl", schedule="reference", cyclical_factor=2, num_epochs=30)
    assert module.epochs == 30
    module.set_progress(0.0)
    assert module.xi == pytest.approx(1 - 2 / 29)


def test_reference_xi_above_one_still_matches_formula():
    with pytest.warns(UserWarning):
        module = build_loss(
            "cfl", schedule="reference", epochs=30, num_epochs=60, label_smoothing=0.1, reduction="none"
        )
    module.set_progress(1.0)
    logits, targets = make_batch(seed=12)
    compare(module, "cfl", {}, module.xi, 0.1, "none", logits, targets)


def test_reference_schedule_needs_num_epochs():
    with pytest.raises(ValueError, match="num_epochs"):
        build_loss("cfl", schedule="reference", epochs=30)


def test_paper_schedule_rejects_loss_local_epochs():
    with pytest.raises(ValueError, match="epochs"):
        build_loss("cfl", epochs=30)


# ---- dtypes -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_logits(name, dtype):
    logits, targets = make_batch(seed=13, dtype=torch.float32)
    module = build_loss(name, label_smoothing=0.1)
    if name in CYCLICAL:
        module.set_progress(0.1)
    half = logits.to(dtype).requires_grad_(True)
    loss = module(half, targets)
    assert loss.dtype == torch.float32
    (grad,) = torch.autograd.grad(loss, half)
    assert grad.dtype == dtype
    # Same math as float32 on the rounded logits, and close to the unrounded float32 loss.
    assert torch.allclose(loss, module(half.detach().float(), targets), rtol=1e-6)
    assert torch.allclose(loss, module(logits, targets), rtol=2e-2)


# ---- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, params, culprit",
    [
        ("focal", {"gamma": -1.0}, "gamma"),
        ("asl", {"gamma_pos": -0.5}, "gamma_pos"),
        ("asl", {"gamma_neg": float("nan")}, "gamma_neg"),
        ("cfl", {"gamma_hc": -2}, "gamma_hc"),
        ("cfl", {"cyclical_factor": 0.5}, "cyclical_factor"),
        ("casl", {"cyclical_factor": 0}, "cyclical_factor"),
        ("casl", {"gamma_neg": -4}, "gamma_neg"),
        ("softmax", {"label_smoothing": 1.0}, "label_smoothing"),
        ("focal", {"label_smoothing": -0.1}, "label_smoothing"),
        ("cfl", {"schedule": "linear"}, "schedule"),
        ("asl", {"reduction": "avg"}, "reduction"),
        ("cfl", {"schedule": "reference", "num_epochs": 10, "epochs": 1}, "epochs"),
    ],
)
def test_invalid_parameters_name_the_culprit(name, params, culprit):
    with pytest.raises(ValueError, match=culprit):
        build_loss(name, **params)


@pytest.mark.parametrize("name", NAMES)
def test_bad_targets_are_rejected(name):
    logits = torch.randn(4, 3)
    module = build_loss(name)
    with pytest.raises(ValueError, match="targets"):
        module(logits, torch.tensor([0, 1, 3, 2]))
    with pytest.raises(ValueError, match="targets"):
        module(logits, torch.tensor([0, -1, 2, 2]))
    with pytest.raises(ValueError, match="targets"):
        module(logits, torch.tensor([0.0, 1.0, 2.0, 2.0]))
