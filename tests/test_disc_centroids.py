"""OLTR's discriminative centroids loss against float64 loops and the center-loss rule."""

import pytest
import torch
import torch.nn as nn

import losses.disc_centroids  # noqa: F401  (registers disc_centroids)
from losses.disc_centroids import DiscCentroidsLoss, _AttractCenterLoss, negative_distance_sum
from losses.registry import build_loss

B, C, D = 7, 4, 3


def sample(seed=0, feature_scale=0.3, offset=0.0):
    gen = torch.Generator().manual_seed(seed)
    features = offset + feature_scale * torch.randn(B, D, generator=gen, dtype=torch.float64)
    centroids = offset + feature_scale * torch.randn(C, D, generator=gen, dtype=torch.float64)
    targets = torch.tensor([0, 1, 1, 2, 2, 2, 0])  # class 3 absent from the batch
    return features, centroids, targets


def reference_parts(features, centroids, targets, margin=10.0):
    """attract and repel written as loops over samples and classes, float64."""
    attract, negative = 0.0, 0.0
    for i in range(features.shape[0]):
        for k in range(centroids.shape[0]):
            distance = ((features[i] - centroids[k]) ** 2).sum()
            if k == int(targets[i]):
                attract = attract + distance / 2.0
            else:
                negative = negative + distance
    attract = attract / features.shape[0]
    repel = torch.clamp(margin - negative / (features.shape[0] * centroids.shape[0]), 0.0, 1e6)
    return attract, repel


def center_loss_rule(features, centroids, targets):
    """OLTR's centroid update: sum_{i: y_i = k} (c_k - f_i) / (1 + n_k) / B, class by class."""
    grad = torch.zeros_like(centroids)
    for k in range(centroids.shape[0]):
        members = [i for i in range(features.shape[0]) if int(targets[i]) == k]
        for i in members:
            grad[k] += (centroids[k] - features[i]) / (1 + len(members)) / features.shape[0]
    return grad


def module_with(centroids, **params):
    loss_fn = DiscCentroidsLoss(num_classes=C, feat_dim=D, **params)
    with torch.no_grad():
        loss_fn.centroids.copy_(centroids)
    return loss_fn


@pytest.mark.parametrize("margin", [10.0, 0.0])
def test_forward_matches_loop_reference(margin):
    features, centroids, targets = sample()
    attract, repel = reference_parts(features, centroids, targets, margin)
    assert margin == 0.0 or repel > 0  # the margin case really exercises the repel term
    expected = attract + 0.01 * repel
    got = module_with(centroids, margin=margin)(features.float(), targets)
    assert got.dtype == torch.float32 and got.dim() == 0
    assert torch.allclose(got.double(), expected, rtol=1e-6)


def test_feature_gradient_of_attract_is_the_true_gradient():
    features, centroids, targets = sample(seed=1)
    features.requires_grad_()
    # gradcheck compares with finite differences: right for the features, whose custom grad is exact
    assert torch.autograd.gradcheck(lambda f: _AttractCenterLoss.apply(f, targets, centroids, False), (features,))


@pytest.mark.parametrize("upstream", [1.0, 0.01])
@pytest.mark.parametrize("scale_centroid_grad", [False, True])
def test_centroid_gradient_of_attract_is_the_center_loss_rule(upstream, scale_centroid_grad):
    features, centroids, targets = sample(seed=2)
    centroids = centroids.clone().requires_grad_()
    attract = _AttractCenterLoss.apply(features, targets, centroids, scale_centroid_grad)
    (upstream * attract).backward()
    rule = center_loss_rule(features, centroids.detach(), targets)
    # the original ignores the incoming gradient for the centroids; the option scales by it
    expected = rule * upstream if scale_centroid_grad else rule
    assert torch.allclose(centroids.grad, expected, rtol=1e-12)
    assert torch.all(centroids.grad[3] == 0)  # absent class: no update
    # and it is not the true gradient of attract (which has no 1 / (1 + n_k))
    true_grad = torch.zeros_like(rule)
    for i in range(B):
        true_grad[targets[i]] += (centroids.detach()[targets[i]] - features[i]) / B
    assert not torch.allclose(rule, true_grad)


def test_full_loss_gradients():
    features, centroids, targets = sample(seed=3)
    loss_fn = module_with(centroids, margin=10.0)
    f = features.float().requires_grad_()
    (0.5 * loss_fn(f, targets)).backward()  # 0.5: an upstream weight, seen by the features only
    # repel gets its true gradient (autograd through the float64 loop reference)
    f_ref, c_ref = features.clone().requires_grad_(), centroids.clone().requires_grad_()
    _, repel = reference_parts(f_ref, c_ref, targets)
    assert repel > 0
    repel_grad_f, repel_grad_c = torch.autograd.grad(0.01 * repel, (f_ref, c_ref))
    expected_f = 0.5 * ((features - centroids[targets]) / B + repel_grad_f)
    expected_c = center_loss_rule(features, centroids, targets) + 0.5 * repel_grad_c
    assert torch.allclose(f.grad.double(), expected_f, rtol=1e-5, atol=1e-8)
    assert torch.allclose(loss_fn.centroids.grad.double(), expected_c, rtol=1e-5, atol=1e-8)


def test_negative_distance_sum_is_accurate_in_float32_far_from_the_origin():
    # ||f||^2 + ||c||^2 - 2 f.c would lose about 3 digits here in float32.
    features, centroids, targets = sample(seed=4, feature_scale=1.0, offset=1000.0)
    expected = 0.0
    for i in range(B):
        for k in range(C):
            if k != int(targets[i]):
                expected += float(((features[i] - centroids[k]) ** 2).sum())
    got = negative_distance_sum(features.float(), centroids.float(), targets)
    assert abs(float(got) - expected) / expected < 1e-4


def test_centroids_are_a_parameter():
    loss_fn = build_loss("disc_centroids", num_classes=C, feat_dim=D, class_counts=[1] * C, num_epochs=2)
    assert isinstance(loss_fn.centroids, nn.Parameter) and loss_fn.centroids.shape == (C, D)
    assert [p is loss_fn.centroids for p in loss_fn.parameters()] == [True]
    assert "centroids" in loss_fn.state_dict()


def test_half_precision_features():
    features, centroids, targets = sample(seed=5)
    loss_fn = module_with(centroids)
    f = features.to(torch.float16).requires_grad_()
    got = loss_fn(f, targets)
    assert got.dtype == torch.float32
    assert torch.allclose(got, loss_fn(f.detach().float(), targets))
    got.backward()
    assert f.grad.dtype == torch.float16 and loss_fn.centroids.grad.dtype == torch.float32


@pytest.mark.parametrize(
    "params, culprit",
    [
        ({"feat_dim": D}, "num_classes"),
        ({"num_classes": C}, "feat_dim"),
        ({"num_classes": 0, "feat_dim": D}, "num_classes"),
        ({"num_classes": C, "feat_dim": 2.5}, "feat_dim"),
        ({"num_classes": C, "feat_dim": D, "margin": -1.0}, "margin"),
        ({"num_classes": C, "feat_dim": D, "reduction": "sum"}, "reduction"),
        ({"num_classes": C, "feat_dim": D, "scale_centroid_grad": 1}, "scale_centroid_grad"),
    ],
)
def test_invalid_parameters_name_the_culprit(params, culprit):
    with pytest.raises(ValueError, match=culprit):
        build_loss("disc_centroids", **params)


def test_invalid_inputs():
    loss_fn = DiscCentroidsLoss(num_classes=C, feat_dim=D)
    with pytest.raises(ValueError, match="feat_dim"):
        loss_fn(torch.zeros(2, D + 1), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="targets"):
        loss_fn(torch.zeros(2, D), torch.tensor([0, C]))


def test_int32_targets():
    features, centroids, targets = sample(seed=6)
    loss_fn = module_with(centroids)
    assert torch.equal(loss_fn(features.float(), targets.int()), loss_fn(features.float(), targets))
