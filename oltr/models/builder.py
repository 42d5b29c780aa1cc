"""Build feature models and classifiers by name, with config errors that say what to fix."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from losses.registry import Registry, did_you_mean

from ..common.errors import ConfigError
from .classifiers import CosineClassifier, CosineNormClassifier, DotProductClassifier, MetaEmbeddingClassifier
from .decoupled import LWSClassifier, NCMClassifier, TauNormClassifier
from .resnet_feature import RESNET_ARCHS, ResNetFeature
from .timm_feature import TimmFeature

# Every ResNet arch is built by ResNetFeature(arch, **params).
FEATURE_MODELS = Registry("feature model type", "feature model types", error=ConfigError)
for _arch in RESNET_ARCHS:
    FEATURE_MODELS.register(_arch, ResNetFeature)
del _arch
FEATURE_MODELS.register("timm", TimmFeature)  # any timm model (params.model_name); timm is an extra

CLASSIFIERS = Registry("classifier type", "classifier types", error=ConfigError)
CLASSIFIERS.register("dot_product", DotProductClassifier)
CLASSIFIERS.register("cosine_norm", CosineNormClassifier)
CLASSIFIERS.register("meta_embedding", MetaEmbeddingClassifier)
CLASSIFIERS.register("scaled_cosine", CosineClassifier)  # plain cosine, the finetune recipe's option
CLASSIFIERS.register("lws", LWSClassifier)  # the decoupled recipes' (oltr/models/decoupled.py)
CLASSIFIERS.register("tau_norm", TauNormClassifier)
CLASSIFIERS.register("ncm", NCMClassifier)


def available_feature_models() -> list[str]:
    return FEATURE_MODELS.names()


def available_classifiers() -> list[str]:
    return CLASSIFIERS.names()


def build_feature_model(type: str, **params) -> nn.Module:
    """Feature model by name (resnet10, resnet18, resnet34, resnet50, resnet152: ResNetFeature; timm:
    TimmFeature); see those classes for params."""
    feature_class = FEATURE_MODELS.get(type)
    _check_params(f"feature model {type!r}", feature_class, params, skip=("arch",))
    return feature_class(type, **params)


def build_classifier(type: str, **params) -> nn.Module:
    """Classifier by name (dot_product, cosine_norm, scaled_cosine, meta_embedding, lws, tau_norm, ncm).

    ``params``: its constructor's, e.g. in_dim=512, num_classes=1000.
    """
    classifier_class = CLASSIFIERS.get(type)
    _check_params(f"classifier {type!r}", classifier_class, params)
    missing = [
        name
        for name, parameter in inspect.signature(classifier_class).parameters.items()
        if parameter.default is inspect.Parameter.empty and name not in params
    ]
    if missing:
        raise ConfigError(f"classifier {type!r} needs param(s) {', '.join(missing)}.")
    return classifier_class(**params)


def _check_params(what: str, factory: Callable, params: dict, skip: tuple[str, ...] = ()) -> None:
    accepted = [name for name in inspect.signature(factory).parameters if name not in skip]
    for name in params:
        if name not in accepted:
            raise ConfigError(
                f"unknown param {name!r} for {what}; valid params: {', '.join(accepted)}"
                f"{did_you_mean(name, accepted) or '.'}"
            )
