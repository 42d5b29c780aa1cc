"""The loss registry: build by name or dict, context handling, errors, user registration."""

import uuid

import pytest
import torch
import torch.nn as nn

import losses  # noqa: F401  (registers every loss)
from losses.cyclical_focal import CyclicalFocalLoss
from losses.focal_family import AsymmetricLoss, FocalLoss
from losses.registry import CONTEXT_KEYS, available_losses, build_loss, get_loss_class, register_loss

CONTEXT = {"num_classes": 10, "num_epochs": 30, "class_counts": [5] * 10, "feat_dim": 64}


def unique_name(prefix):
    # The registry is process-wide: throwaway names must never collide between tests.
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_focal_family_is_registered():
    for name in ("softmax", "focal", "asl", "cfl", "casl"):
        assert name in available_losses()
    assert available_losses() == sorted(available_losses())
    assert get_loss_class("focal") is FocalLoss


def test_build_by_name_with_params():
    loss = build_loss("focal", gamma=3.0)
    assert isinstance(loss, FocalLoss) and loss.gamma == 3.0


def test_build_by_dict_and_kwargs_override():
    loss = build_loss({"name": "asl", "gamma_neg": 2.0, "gamma_pos": 1.0}, gamma_pos=0.5)
    assert isinstance(loss, AsymmetricLoss)
    assert (loss.gamma_pos, loss.gamma_neg) == (0.5, 2.0)


def test_dict_without_name_is_an_error():
    with pytest.raises(ValueError, match="name"):
        build_loss({"gamma": 2.0})


def test_context_keys_are_dropped_or_passed():
    assert set(CONTEXT) == set(CONTEXT_KEYS)
    assert isinstance(build_loss("focal", **CONTEXT), FocalLoss)  # takes none of them
    cfl = build_loss("cfl", schedule="reference", **CONTEXT)  # takes num_epochs
    assert isinstance(cfl, CyclicalFocalLoss) and cfl.num_epochs == 30 and cfl.epochs == 30


def test_unknown_parameter_is_named_with_suggestion():
    with pytest.raises(ValueError) as info:
        build_loss("focal", gama=2.0)
    message = str(info.value)
    assert "'gama'" in message and "'gamma'" in message and "focal" in message


def test_unknown_loss_lists_names_and_closest_match():
    with pytest.raises(ValueError) as info:
        build_loss("focall")
    message = str(info.value)
    assert "'focall'" in message
    assert "did you mean 'focal'" in message
    for name in ("softmax", "asl", "cfl", "casl"):
        assert name in message


def test_double_registration_raises():
    name = unique_name("twice")

    @register_loss(name)
    class First(nn.Module):
        def forward(self, logits, targets):
            return logits.sum()

    with pytest.raises(ValueError, match=name):

        @register_loss(name)
        class Second(nn.Module):
            def forward(self, logits, targets):
                return logits.sum()

    assert get_loss_class(name) is First
    with pytest.raises(ValueError, match="focal"):
        register_loss("focal")(FocalLoss)


def test_user_registered_loss_builds_with_context():
    name = unique_name("user_margin")

    @register_loss(name)
    class MarginLoss(nn.Module):
        def __init__(self, margin=1.0, num_classes=None):
            super().__init__()
            self.margin = margin
            self.num_classes = num_classes

        def forward(self, logits, targets):
            shifted = logits.clone()
            shifted[torch.arange(len(targets)), targets] -= self.margin
            return nn.functional.cross_entropy(shifted, targets)

    loss = build_loss({"name": name, "margin": 0.5}, **CONTEXT)
    assert loss.margin == 0.5 and loss.num_classes == 10
    assert name in available_losses()
    value = loss(torch.zeros(2, 10), torch.tensor([1, 2]))
    # Margin 0.5 on the target of uniform logits: -log(e^-0.5 / (e^-0.5 + 9)).
    assert value.item() == pytest.approx(
        -torch.log(torch.tensor(0.5).neg().exp() / (torch.tensor(0.5).neg().exp() + 9)).item()
    )


def test_register_rejects_non_modules_and_bad_names():
    with pytest.raises(TypeError):
        register_loss(unique_name("not_module"))(object)
    with pytest.raises(ValueError):
        register_loss("")
