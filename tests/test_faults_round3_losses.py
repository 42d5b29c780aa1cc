"""Issue 20: every registry loss on a masked class (a -inf logit of a non-target class) and on an empty batch.

Truth: with a -inf logit the formula is the limit of a very negative one, so the loss and the gradients of the
other logits equal those at -1e4 (exp(-1e4) is exactly 0 in float64); the masked logit's gradient is 0. An empty
batch follows torch's own convention for every loss alike: the mean of no samples is NaN, their sum 0, and
'none' an empty vector -- never an exception, never 0 on one loss and NaN on another.
"""

import inspect
import math

import pytest
import torch

from losses.registry import available_losses, build_loss, get_loss_class

CLASSES, FEATURES = 5, 8
CONTEXT = dict(num_classes=CLASSES, num_epochs=10, class_counts=[50, 20, 10, 5, 2], feat_dim=FEATURES)


def takes_features(name):
    return list(inspect.signature(get_loss_class(name).forward).parameters)[1] == "features"


def value(output):
    return output[0] if isinstance(output, tuple) else output


def loss_and_grad(name, logits, targets):
    torch.manual_seed(0)  # losses with random state (none today) would draw the same
    loss = build_loss(name, **CONTEXT).double()
    logits = logits.clone().requires_grad_(True)
    out = value(loss(logits, targets))
    out.backward()
    return out.detach(), logits.grad


@pytest.mark.parametrize("name", [n for n in available_losses() if not takes_features(n)])
def test_a_masked_class_gives_the_finite_limit(name):
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(6, CLASSES, dtype=torch.float64, generator=generator)
    targets = torch.tensor([0, 1, 2, 3, 0, 1])
    masked, limit = logits.clone(), logits.clone()
    masked[:, 4], limit[:, 4] = -math.inf, -1e4
    value_masked, grad_masked = loss_and_grad(name, masked, targets)
    value_limit, grad_limit = loss_and_grad(name, limit, targets)
    assert torch.isfinite(value_masked), name
    assert torch.isfinite(grad_masked).all(), name
    assert value_masked.item() == pytest.approx(value_limit.item(), rel=1e-9, abs=1e-12)
    assert torch.allclose(grad_masked[:, :4], grad_limit[:, :4], rtol=1e-9, atol=1e-12)
    assert torch.all(grad_masked[:, 4] == 0)


def _empty_inputs(name):
    width = FEATURES if takes_features(name) else CLASSES
    return torch.zeros(0, width, dtype=torch.float64), torch.zeros(0, dtype=torch.long)


@pytest.mark.parametrize("name", available_losses())
def test_an_empty_batch_follows_one_convention_for_every_loss(name):
    inputs, targets = _empty_inputs(name)
    reference = torch.nn.functional.cross_entropy(torch.zeros(0, CLASSES), targets)
    assert math.isnan(reference.item())  # torch's own: the mean of no samples
    loss = build_loss(name, **CONTEXT).double()
    out = value(loss(inputs, targets))
    assert out.shape == () and math.isnan(out.item()), (name, out)
    if name != "disc_centroids" and "reduction" in inspect.signature(get_loss_class(name).__init__).parameters:
        total = value(build_loss(name, reduction="sum", **CONTEXT).double()(inputs, targets))
        each = value(build_loss(name, reduction="none", **CONTEXT).double()(inputs, targets))
        assert total.item() == 0.0 and each.shape == (0,), name
