"""The plain formulas in the loss files are the definition: held against independent float64
references, and every fast path (fused kernels, PyTorch Functions) held against them."""
import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from conftest import load_native_kernels_or_skip
from losses.fast import dispatch
from losses.fast.margin_functions import FusedAdjustedCrossEntropy, ScaledMarginCrossEntropy, adjusted_logits
from losses.focal_family import focal_family_formula
from losses.ldam import ldam_formula
from losses.sigmoid_focal import sigmoid_focal_formula, sigmoid_focal_per_sample
from test_focal_family import GRADCHECK_CASES, make_batch, reference_per_sample

# The fast-path tests run on the fused CPU kernels and on the PyTorch Functions (tests/conftest.py).
both_backends = pytest.mark.usefixtures("loss_backend")


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


@both_backends
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("gamma_pos, gamma_neg, gamma_hc, xi, eps", GRADCHECK_CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_focal_dispatch_computes_the_formula(dtype, gamma_pos, gamma_neg, gamma_hc, xi, eps, reduction):
    logits, targets = make_batch(batch=40, classes=23, seed=9, dtype=dtype)
    params = (gamma_pos, gamma_neg, gamma_hc, xi, eps)
    fast, fast_grad = values_and_grads(lambda z: dispatch.focal_family(z, targets, *params, reduction), logits)
    per_sample = {"none": lambda v: v, "mean": torch.mean, "sum": torch.sum}[reduction]
    plain, plain_grad = values_and_grads(lambda z: per_sample(focal_family_formula(z, targets, *params)), logits)
    tolerance = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-6)
    assert fast.dtype == dtype
    assert torch.allclose(fast, plain, **tolerance)
    assert torch.allclose(fast_grad, plain_grad, **tolerance)


@both_backends
def test_focal_dispatch_without_a_graph_gives_the_same_loss():
    logits, targets = make_batch(seed=10)
    with torch.no_grad():
        fast = dispatch.focal_family(logits, targets, 2.0, 2.0, 2.0, 0.6, 0.1, "none")
    assert torch.allclose(fast, focal_family_formula(logits, targets, 2.0, 2.0, 2.0, 0.6, 0.1), rtol=1e-10)


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 0.7])
def test_sigmoid_formula_matches_torchvision(gamma):
    logits, targets = make_batch(batch=16, classes=9, seed=11)
    one_hot = torch.nn.functional.one_hot(targets, 9).to(logits.dtype)
    expected = sigmoid_focal_loss(logits, one_hot, alpha=-1, gamma=gamma, reduction="none").sum(dim=1)
    assert torch.allclose(sigmoid_focal_formula(logits, targets, gamma), expected, rtol=1e-10, atol=1e-12)


def sigmoid_cases(classes, batch, generator):
    per_class_gamma = torch.rand(classes, generator=generator, dtype=torch.float64) * 3 + 0.5
    yield 0.0, None, None
    yield 2.0, None, None
    yield 1.5, torch.rand(batch, generator=generator, dtype=torch.float64), None
    yield per_class_gamma, torch.rand(batch, generator=generator, dtype=torch.float64), \
        torch.rand(1, classes, generator=generator, dtype=torch.float64)
    yield 2.0, None, torch.rand(batch, classes, generator=generator, dtype=torch.float64)  # full (B, C) weight


@both_backends
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sigmoid_dispatch_computes_the_formula(dtype):
    logits, targets = make_batch(batch=30, classes=13, seed=12, dtype=dtype)
    generator = torch.Generator().manual_seed(12)
    tolerance = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-6)
    for gamma, pos_weight, neg_weight in sigmoid_cases(13, 30, generator):
        cast = [None if t is None else t.to(dtype) for t in (pos_weight, neg_weight)]
        gamma = gamma.to(dtype) if torch.is_tensor(gamma) else gamma
        fast = values_and_grads(lambda z: sigmoid_focal_per_sample(z, targets, gamma, *cast), logits)
        plain = values_and_grads(lambda z: sigmoid_focal_formula(z, targets, gamma, *cast), logits)
        for mine, ref in zip(fast, plain):
            assert mine.dtype == dtype
            assert torch.allclose(mine, ref, **tolerance), (gamma, pos_weight is None, neg_weight is None)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ldam_function_computes_the_formula(dtype, weighted, reduction, loss_backend):
    logits, targets = make_batch(batch=40, classes=23, seed=13, dtype=dtype)
    generator = torch.Generator().manual_seed(13)
    margins = (torch.rand(23, generator=generator, dtype=torch.float64) * 0.5).to(dtype)
    weight = (torch.rand(23, generator=generator, dtype=torch.float64) + 0.1).to(dtype) if weighted else None
    fast = values_and_grads(
        lambda z: dispatch.scaled_margin_cross_entropy(z, targets, margins[targets], 30.0, weight, reduction), logits
    )
    plain = values_and_grads(lambda z: ldam_formula(z, targets, margins, 30.0, weight, reduction), logits)
    tolerance = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-6)
    for mine, ref in zip(fast, plain):
        assert mine.dtype == dtype and torch.allclose(mine, ref, **tolerance)
    with torch.no_grad():  # the no-graph path
        value = dispatch.scaled_margin_cross_entropy(logits, targets, margins[targets], 30.0, weight, reduction)
    assert torch.allclose(value, plain[0], **tolerance)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("fused", [False, True])
def test_gradcheck_ldam_functions(reduction, fused):
    """Both analytic backwards: the PyTorch Function, and the fused kernel's on the adjusted logits."""
    kernels = load_native_kernels_or_skip() if fused else None
    generator = torch.Generator().manual_seed(14)
    logits = torch.randn(6, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 5, (6,), generator=generator)
    margin = torch.rand(6, generator=generator, dtype=torch.float64)
    weight = torch.rand(5, generator=generator, dtype=torch.float64) + 0.1

    def function(z, class_weight):
        if not fused:
            return ScaledMarginCrossEntropy.apply(z, targets, margin, 3.0, class_weight, reduction)
        adjusted = adjusted_logits(z.detach(), targets.unsqueeze(1), margin, 3.0)
        return FusedAdjustedCrossEntropy.apply(z, adjusted, targets, 3.0, class_weight, reduction, kernels)

    for class_weight in (None, weight):
        assert torch.autograd.gradcheck(lambda z: function(z, class_weight), (logits,), eps=1e-6, atol=1e-8)
