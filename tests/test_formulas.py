"""The plain formulas in the loss files are the definition, and what the losses compute: held against
independent float64 references, and the registered losses held against them."""

import pytest
import torch
from test_focal_family import GRADCHECK_CASES, make_batch, reference_per_sample
from torchvision.ops import sigmoid_focal_loss

from losses.focal_family import focal_family_formula, focal_family_loss
from losses.ldam import ldam_formula
from losses.sigmoid_focal import sigmoid_focal_formula, sigmoid_focal_per_sample


def values_and_grads(function, logits, upstream=None):
    z = logits.clone().requires_grad_(True)
    value = function(z)
    weights = torch.linspace(0.5, 1.5, value.numel(), dtype=value.dtype).reshape(value.shape)
    (grad,) = torch.autograd.grad((value * weights).sum(), z)
    return value.detach(), grad


@pytest.mark.parametrize("gamma_pos, gamma_neg, gamma_hc, xi, eps", GRADCHECK_CASES)
def test_focal_formula_matches_the_one_hot_reference(gamma_pos, gamma_neg, gamma_hc, xi, eps):
    logits, targets = make_batch(seed=7)
    params = (gamma_pos, gamma_neg, gamma_hc, xi, eps)
    mine, mine_grad = values_and_grads(lambda z: focal_family_formula(z, targets, *params), logits)
    ref, ref_grad = values_and_grads(lambda z: reference_per_sample(z, targets, *params), logits)
    assert torch.allclose(mine, ref, rtol=1e-12, atol=1e-14)
    assert torch.allclose(mine_grad, ref_grad, rtol=1e-10, atol=1e-13)


def test_focal_formula_with_every_weight_trivial_is_cross_entropy():
    logits, targets = make_batch(seed=8)
    expected = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    assert torch.allclose(focal_family_formula(logits, targets), expected, rtol=1e-13)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("gamma_pos, gamma_neg, gamma_hc, xi, eps", GRADCHECK_CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_focal_family_loss_is_the_formula_reduced(dtype, gamma_pos, gamma_neg, gamma_hc, xi, eps, reduction):
    logits, targets = make_batch(batch=40, classes=23, seed=9, dtype=dtype)
    params = (gamma_pos, gamma_neg, gamma_hc, xi, eps)
    loss, loss_grad = values_and_grads(lambda z: focal_family_loss(z, targets, *params, reduction=reduction), logits)
    per_sample = {"none": lambda v: v, "mean": torch.mean, "sum": torch.sum}[reduction]
    plain, plain_grad = values_and_grads(lambda z: per_sample(focal_family_formula(z, targets, *params)), logits)
    tolerance = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-6)
    assert loss.dtype == dtype
    assert torch.allclose(loss, plain, **tolerance)
    assert torch.allclose(loss_grad, plain_grad, **tolerance)


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 0.7])
def test_sigmoid_formula_matches_torchvision(gamma):
    logits, targets = make_batch(batch=16, classes=9, seed=11)
    one_hot = torch.nn.functional.one_hot(targets, 9).to(logits.dtype)
    expected = sigmoid_focal_loss(logits, one_hot, alpha=-1, gamma=gamma, reduction="none").sum(dim=1)
    assert torch.allclose(sigmoid_focal_formula(logits, targets, gamma), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "shape, as_number", [((), True), ((), False), ((1,), False), ((9,), False), ((1, 9), False), ((16, 9), False)]
)
def test_sigmoid_neg_weight_of_any_broadcastable_shape(shape, as_number):
    # the docstring allows any neg_weight broadcastable to (B, C), a 0-dim tensor or a number included
    logits, targets = make_batch(batch=16, classes=9, seed=12)
    weight = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) + 0.25
    given = float(weight) if as_number else weight
    one_hot = torch.nn.functional.one_hot(targets, 9).to(logits.dtype)
    per_entry = sigmoid_focal_loss(logits, one_hot, alpha=-1, gamma=2.0, reduction="none")
    expected = (torch.where(one_hot.bool(), 1.0, weight.expand(16, 9)) * per_entry).sum(dim=1)
    for function in (sigmoid_focal_formula, sigmoid_focal_per_sample):
        assert torch.allclose(function(logits, targets, 2.0, None, given), expected, rtol=1e-10, atol=1e-12)


def sigmoid_cases(classes, batch, generator):
    per_class_gamma = torch.rand(classes, generator=generator, dtype=torch.float64) * 3 + 0.5
    yield 0.0, None, None
    yield 2.0, None, None
    yield 1.5, torch.rand(batch, generator=generator, dtype=torch.float64), None
    yield (
        per_class_gamma,
        torch.rand(batch, generator=generator, dtype=torch.float64),
        torch.rand(1, classes, generator=generator, dtype=torch.float64),
    )
    yield 2.0, None, torch.rand(batch, classes, generator=generator, dtype=torch.float64)  # full (B, C) weight


def test_efl_gradient_collection_sees_this_loss_gradient_at_and_off_the_targets():
    """The hook's sums against the gradient autograd gives the formula, summed by a loop."""
    logits, targets = make_batch(batch=12, classes=5, seed=12)
    generator = torch.Generator().manual_seed(12)
    gamma = torch.rand(5, generator=generator, dtype=torch.float64) * 2 + 0.5
    seen = []
    z = logits.clone().requires_grad_(True)
    other = (z**2).sum()  # another loss on the same logits: not collected
    (
        sigmoid_focal_per_sample(z, targets, gamma, collect_gradient_sums=lambda *sums: seen.append(sums)).sum() + other
    ).backward()
    reference = logits.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(sigmoid_focal_formula(reference, targets, gamma).sum(), reference)
    ((seen_targets, at_target, off_target),) = seen
    assert torch.equal(seen_targets, targets)
    for i, y in enumerate(targets.tolist()):
        assert torch.allclose(at_target[i], grad[i, y].abs(), rtol=1e-12)
    for j in range(5):
        expected = sum(grad[i, j].abs() for i, y in enumerate(targets.tolist()) if y != j)
        assert torch.allclose(off_target[j], torch.as_tensor(expected, dtype=torch.float64), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_ldam_loss_is_its_formula_with_its_margins(weighted, reduction):
    from losses import build_loss

    logits, targets = make_batch(batch=40, classes=23, seed=13)
    counts = list(range(1, 24))
    loss = build_loss("ldam", class_counts=counts, reduction=reduction, drw_start=0.0 if weighted else None)
    margins = torch.tensor(counts, dtype=torch.float64).pow(-0.25)
    margins = margins * (0.5 / margins.max())
    weight = loss.drw_weights if weighted else None
    mine = values_and_grads(lambda z: loss(z, targets), logits)
    plain = values_and_grads(lambda z: ldam_formula(z, targets, margins, 30.0, weight, reduction), logits)
    for a, b in zip(mine, plain):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-14)
