"""Class-balanced losses (Cui et al. 2019) against plain float64 references."""

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

import losses.class_balanced  # noqa: F401  (registers cb_softmax, cb_sigmoid, cb_focal)
from losses.class_balanced import (
    ClassBalancedFocalLoss,
    ClassBalancedSigmoidLoss,
    ClassBalancedSoftmaxLoss,
    class_balanced_weights,
)
from losses.registry import build_loss

COUNTS = [500, 120, 40, 9, 3]
C = len(COUNTS)


def reference_weights(counts, beta):
    """a_c = (1 - beta) / (1 - beta^n_c), scaled to sum to C, in Python floats."""
    raw = [(1.0 - beta) / (1.0 - beta**n) for n in counts]
    return [w * len(counts) / sum(raw) for w in raw]


def reference_loss(kind, z, y, weights, gamma=0.0):
    """Per-sample loss, float64, written out class by class."""
    per_sample = []
    for i in range(z.shape[0]):
        a = weights[int(y[i])]
        if kind == "softmax":
            log_norm = torch.log(torch.exp(z[i]).sum())
            per_sample.append(a * (log_norm - z[i, y[i]]))
            continue
        total = 0.0
        for j in range(z.shape[1]):
            zt = z[i, j] if j == int(y[i]) else -z[i, j]
            p_t = 1.0 / (1.0 + torch.exp(-zt))
            total = total + (1.0 - p_t) ** gamma * (-torch.log(p_t))
        per_sample.append(a * total)
    return torch.stack(per_sample)


def sample_batch(seed=0, batch=7, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, C, generator=gen, dtype=torch.float64) * scale
    y = torch.randint(0, C, (batch,), generator=gen)
    y[:C] = torch.arange(C)  # every class present
    return z, y


def test_weights_match_formula_and_sum_to_num_classes():
    for beta in (0.0, 0.9, 0.999, 0.9999):
        weights = class_balanced_weights(COUNTS, beta)
        assert weights.dtype == torch.float64
        assert torch.allclose(weights, torch.tensor(reference_weights(COUNTS, beta), dtype=torch.float64), rtol=1e-10)
        assert math.isclose(float(weights.sum()), C, rel_tol=1e-12)


def test_beta_zero_is_uniform_and_beta_near_one_is_inverse_frequency():
    assert torch.equal(class_balanced_weights(COUNTS, 0.0), torch.ones(C, dtype=torch.float64))
    inverse = torch.tensor([1.0 / n for n in COUNTS], dtype=torch.float64)
    inverse = inverse * C / inverse.sum()
    weights = class_balanced_weights(COUNTS, 1.0 - 1e-9)
    assert torch.allclose(weights, inverse, rtol=1e-5)
    # and a moderate beta lies strictly between the two
    moderate = class_balanced_weights(COUNTS, 0.99)
    assert moderate[-1] > 1.0 and moderate[-1] < inverse[-1]


@pytest.mark.parametrize(
    "loss_cls, kind, gamma",
    [
        (ClassBalancedSoftmaxLoss, "softmax", None),
        (ClassBalancedSigmoidLoss, "sigmoid", 0.0),
        (ClassBalancedFocalLoss, "focal", 1.0),
        (ClassBalancedFocalLoss, "focal", 2.0),
        (ClassBalancedFocalLoss, "focal", 0.5),
    ],
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_values_and_gradients_match_reference(loss_cls, kind, gamma, reduction):
    beta = 0.99
    kwargs = {} if gamma is None or kind == "sigmoid" else {"gamma": gamma}
    loss_fn = loss_cls(class_counts=COUNTS, beta=beta, reduction=reduction, **kwargs)
    z64, y = sample_batch()
    weights = reference_weights(COUNTS, beta)
    z_ref = z64.clone().requires_grad_()
    expected = reference_loss(kind, z_ref, y, weights, gamma or 0.0)
    expected = {"mean": expected.mean(), "sum": expected.sum(), "none": expected}[reduction]

    z = z64.float().requires_grad_()
    got = loss_fn(z, y)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert torch.allclose(got.double(), expected.detach(), rtol=1e-5, atol=1e-6)
    upstream = torch.linspace(0.5, 1.5, got.numel(), dtype=torch.float64).reshape(got.shape)
    (got * upstream.float()).sum().backward()
    (expected * upstream).sum().backward()
    assert torch.allclose(z.grad.double(), z_ref.grad, rtol=1e-4, atol=1e-6)


def test_beta_zero_equals_the_plain_losses():
    z64, y = sample_batch(seed=3)
    onehot = F.one_hot(y, C).double()
    batch = z64.shape[0]
    pairs = [
        (ClassBalancedSoftmaxLoss(COUNTS, beta=0.0), lambda z: F.cross_entropy(z, y)),
        (
            ClassBalancedSigmoidLoss(COUNTS, beta=0.0),
            lambda z: F.binary_cross_entropy_with_logits(z, onehot, reduction="sum") / batch,
        ),
        (
            ClassBalancedFocalLoss(COUNTS, beta=0.0, gamma=2.0),
            lambda z: sigmoid_focal_loss(z, onehot, alpha=-1, gamma=2.0, reduction="sum") / batch,
        ),
    ]
    for loss_fn, plain in pairs:
        z = z64.float().requires_grad_()
        z_ref = z64.clone().requires_grad_()
        got, expected = loss_fn(z, y), plain(z_ref)
        got.backward()
        expected.backward()
        assert torch.allclose(got.double(), expected.detach(), rtol=1e-5), type(loss_fn).__name__
        assert torch.allclose(z.grad.double(), z_ref.grad, rtol=1e-4, atol=1e-7), type(loss_fn).__name__


@pytest.mark.parametrize("loss_cls", [ClassBalancedSigmoidLoss, ClassBalancedFocalLoss])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_stable_at_large_logits(loss_cls, dtype):
    # Row 0: target logit +100 (right), a non-target at +100 (wrong), one at -100 (right).
    # Row 1: target logit -100 (wrong). Plain formulas would take log(0) here.
    z = torch.tensor([[100.0, 100.0, -100.0, -100.0, 100.0], [-100.0, -100.0, -100.0, -100.0, -100.0]], dtype=dtype)
    y = torch.tensor([0, 0])
    z.requires_grad_()
    loss_fn = loss_cls(COUNTS, beta=0.0, reduction="none")
    got = loss_fn(z, y)
    got.sum().backward()
    assert torch.isfinite(got).all() and torch.isfinite(z.grad).all()
    # Wrong entries cost |z| each with slope +-1 (gamma = 1: the modulator is ~1 there); right ones ~0.
    assert torch.allclose(got.float(), torch.tensor([200.0, 100.0]), rtol=1e-5)
    expected_grad = torch.tensor([[0.0, 1.0, 0.0, 0.0, 1.0], [-1.0, 0.0, 0.0, 0.0, 0.0]])
    assert torch.allclose(z.grad.float(), expected_grad, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["cb_softmax", "cb_sigmoid", "cb_focal"])
def test_half_precision_logits_computed_in_float32(dtype, name):
    loss_fn = build_loss(name, class_counts=COUNTS)
    z64, y = sample_batch(seed=5)
    z_half = z64.to(dtype).requires_grad_()
    got = loss_fn(z_half, y)
    assert got.dtype == torch.float32
    expected = loss_fn(z_half.detach().float(), y)
    assert torch.equal(got, expected)
    got.backward()
    assert z_half.grad.dtype == dtype and torch.isfinite(z_half.grad).all()


def test_registry_takes_context_and_keeps_weights_as_buffer():
    loss_fn = build_loss("cb_focal", class_counts=COUNTS, num_classes=C, num_epochs=10, feat_dim=64, gamma=0.5)
    assert isinstance(loss_fn, ClassBalancedFocalLoss) and loss_fn.gamma == 0.5
    assert "class_weights" in dict(loss_fn.named_buffers())
    assert torch.allclose(loss_fn.class_weights.double(), class_balanced_weights(COUNTS, 0.9999), rtol=1e-6)


@pytest.mark.parametrize("name", ["cb_softmax", "cb_sigmoid", "cb_focal"])
@pytest.mark.parametrize(
    "params, culprit",
    [
        ({}, "class_counts"),
        ({"class_counts": []}, "class_counts"),
        ({"class_counts": [3, 0, 2]}, "class_counts"),
        ({"class_counts": [3, -1, 2]}, "class_counts"),
        ({"class_counts": [3, float("nan"), 2]}, "class_counts"),
        ({"class_counts": [3, 1, 2], "num_classes": 4}, "class_counts"),
        ({"class_counts": [3, 1, 2], "beta": 1.0}, "beta"),
        ({"class_counts": [3, 1, 2], "beta": -0.1}, "beta"),
        ({"class_counts": [3, 1, 2], "reduction": "avg"}, "reduction"),
    ],
)
def test_invalid_parameters_name_the_culprit(name, params, culprit):
    with pytest.raises(ValueError, match=culprit):
        build_loss(name, **params)


def test_invalid_gamma_and_targets():
    with pytest.raises(ValueError, match="gamma"):
        ClassBalancedFocalLoss(COUNTS, gamma=-1.0)
    loss_fn = ClassBalancedFocalLoss(COUNTS)
    with pytest.raises(ValueError, match="targets"):
        loss_fn(torch.zeros(2, C), torch.tensor([0, C]))
    with pytest.raises(ValueError, match="class_counts"):
        loss_fn(torch.zeros(2, C + 1), torch.tensor([0, 1]))


@pytest.mark.parametrize("name", ["cb_softmax", "cb_sigmoid", "cb_focal"])
def test_autocast_keeps_float32(name):
    loss_fn = (
        build_loss(name, class_counts=COUNTS, gamma=0.5)
        if name == "cb_focal"
        else build_loss(name, class_counts=COUNTS)
    )
    z64, y = sample_batch(seed=6)
    expected = loss_fn(z64.float(), y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss_fn(z64.float(), y)
    assert got.dtype == torch.float32 and torch.allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("name", ["cb_softmax", "cb_sigmoid", "cb_focal"])
def test_int32_targets(name):
    loss_fn = build_loss(name, class_counts=COUNTS)
    z64, y = sample_batch(seed=7)
    assert torch.equal(loss_fn(z64.float(), y.int()), loss_fn(z64.float(), y))
