"""Feature backbones, modulated attention and classifiers of OLTR (Liu et al., CVPR 2019)."""
from oltr.models.builder import (
    available_classifiers,
    available_feature_models,
    build_classifier,
    build_feature_model,
)
from oltr.models.classifiers import CosineNormClassifier, DotProductClassifier, MetaEmbeddingClassifier
from oltr.models.modulated_attention import ModulatedAttention
from oltr.models.resnet_feature import RESNET_ARCHS, ResNetFeature, last_feature_map_size

__all__ = [
    "RESNET_ARCHS",
    "CosineNormClassifier",
    "DotProductClassifier",
    "MetaEmbeddingClassifier",
    "ModulatedAttention",
    "ResNetFeature",
    "available_classifiers",
    "available_feature_models",
    "build_classifier",
    "build_feature_model",
    "last_feature_map_size",
]
