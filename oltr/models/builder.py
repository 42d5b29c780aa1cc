"""Build feature models and classifiers by name, with config errors that say what to fix."""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable

from torch import nn

from oltr.errors import ConfigError
from oltr.models.classifiers import CosineNormClassifier, DotProductClassifier, MetaEmbeddingClassifier
from oltr.models.resnet_feature import RESNET_ARCHS, ResNetFeature

CLASSIFIER_TYPES: dict[str, type[nn.Module]] = {
    "dot_product": DotProductClassifier,
    "cosine_norm": CosineNormClassifier,
    "meta_embedding": MetaEmbeddingClassifier,
}


def available_feature_models() -> list[str]:
    return list(RESNET_ARCHS)


def available_classifiers() -> list[str]:
    return list(CLASSIFIER_TYPES)


def build_feature_model(type: str, **params) -> ResNetFeature:
    """Feature model by name (resnet10, resnet18, resnet34, resnet50, resnet152); see ResNetFeature for params."""
    _check_type("feature model", type, RESNET_ARCHS)
    _check_params(f"feature model {type!r}", ResNetFeature, params, skip=("arch",))
    return ResNetFeature(type, **params)


def build_classifier(type: str, **params) -> nn.Module:
    """Classifier by name (dot_product, cosine_norm, meta_embedding), e.g. in_dim=512, num_classes=1000."""
    _check_type("classifier", type, CLASSIFIER_TYPES)
    classifier_class = CLASSIFIER_TYPES[type]
    _check_params(f"classifier {type!r}", classifier_class, params)
    missing = [
        name
        for name, parameter in inspect.signature(classifier_class).parameters.items()
        if parameter.default is inspect.Parameter.empty and name not in params
    ]
    if missing:
        raise ConfigError(f"classifier {type!r} needs param(s) {', '.join(missing)}.")
    return classifier_class(**params)


def _closest_hint(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else "."


def _check_type(kind: str, name: str, valid: Iterable[str]) -> None:
    if name not in valid:
        raise ConfigError(
            f"unknown {kind} type {name!r}; valid types: {', '.join(valid)}{_closest_hint(name, valid)}"
        )


def _check_params(what: str, factory: Callable, params: dict, skip: tuple[str, ...] = ()) -> None:
    accepted = [name for name in inspect.signature(factory).parameters if name not in skip]
    for name in params:
        if name not in accepted:
            raise ConfigError(
                f"unknown param {name!r} for {what}; valid params: {', '.join(accepted)}{_closest_hint(name, accepted)}"
            )
