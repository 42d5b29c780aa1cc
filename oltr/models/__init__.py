"""Feature backbones, modulated attention and classifiers of OLTR (Liu et al., CVPR 2019), built by name.

resnet_feature.py       the ResNet feature models (OLTR's ResNet-10, torchvision's ResNets)
timm_feature.py         any timm model as the feature model (local or hub weights, optional LoRA)
modulated_attention.py  OLTR's modulated attention
classifiers.py          dot-product, cosine-norm, scaled cosine and meta-embedding classifiers
decoupled.py            the decoupled recipes' classifiers: LWS, tau-norm, NCM
builder.py              the FEATURE_MODELS and CLASSIFIERS registries
network.py              OLTRNetwork (feature model + classifier), build_network, ``fix``
"""

from .builder import available_classifiers, available_feature_models, build_classifier, build_feature_model
from .classifiers import CosineNormClassifier, DotProductClassifier, MetaEmbeddingClassifier
from .modulated_attention import ModulatedAttention
from .resnet_feature import RESNET_ARCHS, ResNetFeature, last_feature_map_size

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
