"""A run's losses, optimizers and schedulers from the config.

build_criterions   {"PerformanceLoss", "FeatureLoss"}: registry losses with the pipeline's context
build_optimizers   one SGD per network (its own lr), one for the centroids
build_schedulers   step or cosine decay for each
"""

from dataclasses import dataclass

import torch
import torch.nn as nn

import losses as loss_registry

from ..common.errors import ConfigError


@dataclass(frozen=True)
class Criterion:
    """One configured loss: the module and the weight its value is multiplied by in the total loss."""

    module: nn.Module
    weight: float


def build_criterions(config, class_counts):
    """{'PerformanceLoss': Criterion, 'FeatureLoss': Criterion (stage 2)}, built with the pipeline context."""
    training_opt = config["training_opt"]
    context = {
        "num_classes": training_opt["num_classes"],
        "num_epochs": training_opt["num_epochs"],
        "class_counts": list(class_counts),
        "feat_dim": training_opt["feature_dim"],
    }
    criterions = {}
    for key, cfg in config["criterions"].items():
        if cfg is None:
            continue
        try:
            module = loss_registry.build_loss(cfg["loss"], **cfg["loss_params"], **context)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"criterions.{key}: {e}") from None
        criterions[key] = Criterion(module, cfg["weight"])
    return criterions


def build_optimizers(network, criterions, config):
    """One SGD per network (own lr), plus one for trainable loss parameters (the centroids)."""
    optimizers = {}
    for name in ("feat_model", "classifier"):
        params = [p for p in getattr(network, name).parameters() if p.requires_grad]
        if params:
            optimizers[name] = _sgd(params, config["networks"][name]["optim_params"])
    feature = config["criterions"].get("FeatureLoss")
    if feature is not None and "FeatureLoss" in criterions:
        params = [p for p in criterions["FeatureLoss"].module.parameters() if p.requires_grad]
        if params:
            optimizers["FeatureLoss"] = _sgd(params, feature["optim_params"])
    return optimizers


def _sgd(params, optim_params):
    options = dict(
        lr=optim_params["lr"],
        momentum=optim_params["momentum"],
        weight_decay=optim_params["weight_decay"],
        nesterov=optim_params["nesterov"],
    )
    try:
        # One fused kernel instead of a loop over parameters: about 5% of a Digits_LT step.
        return torch.optim.SGD(params, fused=True, **options)
    except (RuntimeError, TypeError):  # older torch, or a device without a fused SGD
        return torch.optim.SGD(params, **options)


def build_schedulers(optimizers, training_opt):
    """Step or cosine decay for every optimizer, the centroids' included (as OLTR's criterion scheduler)."""
    schedulers = {}
    params = training_opt["scheduler_params"]
    for name, optimizer in optimizers.items():
        if training_opt["scheduler"] == "step":
            schedulers[name] = torch.optim.lr_scheduler.StepLR(
                optimizer, step_size=params["step_size"], gamma=params["gamma"]
            )
        else:
            schedulers[name] = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=training_opt["num_epochs"], eta_min=params["eta_min"]
            )
    return schedulers
