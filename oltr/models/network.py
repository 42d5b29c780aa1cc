"""The network a run trains: a feature model followed by a classifier, built from ``config["networks"]``.

OLTRNetwork           images -> (logits, features)
build_network         feature model + classifier by type, with the config's params
freeze_fixed_networks OLTR's ``fix: true`` (freeze_for_fix: all but what a module names trainable)
"""

import torch.nn as nn

from ..common.errors import ConfigError
from .builder import build_classifier, build_feature_model


class OLTRNetwork(nn.Module):
    """Feature model followed by classifier: images -> (logits, features)."""

    def __init__(self, feat_model, classifier):
        super().__init__()
        self.feat_model = feat_model
        self.classifier = classifier

    def forward(self, images, centroids=None):
        features, _ = self.feat_model(images)
        logits, _ = self.classifier(features, centroids)
        return logits, features


def build_network(config, for_training=True):
    """Feature model + classifier from ``config['networks']``.

    ``for_training=False`` skips downloads of pretrained weights: a checkpoint
    will overwrite them anyway.
    """
    networks, training_opt = config["networks"], config["training_opt"]
    feat_cfg, cls_cfg = networks["feat_model"], networks["classifier"]
    feat_params = dict(feat_cfg["params"])
    feat_params.setdefault("input_size", training_opt["transforms"]["input_size"])
    feat_params.setdefault("feature_dim", training_opt["feature_dim"])
    if not for_training:
        feat_params["pretrained"] = None
    feat_model = _named_build("networks.feat_model", build_feature_model, feat_cfg["type"], feat_params)
    if feat_model.feature_dim != training_opt["feature_dim"]:
        raise ConfigError(
            f"training_opt.feature_dim is {training_opt['feature_dim']} but the feature model "
            f"{feat_cfg['type']!r} produces {feat_model.feature_dim}-d features; set them equal "
            "(or use networks.feat_model.params.use_fc to project)"
        )
    cls_params = dict(cls_cfg["params"])
    cls_params.setdefault("in_dim", feat_model.feature_dim)
    cls_params.setdefault("num_classes", training_opt["num_classes"])
    classifier = _named_build("networks.classifier", build_classifier, cls_cfg["type"], cls_params)
    return OLTRNetwork(feat_model, classifier)


def _named_build(key, builder, type_name, params):
    """``builder(type_name, **params)``, its ConfigError prefixed with the config key it came from."""
    try:
        return builder(type_name, **params)
    except ConfigError as error:
        raise ConfigError(f"{key}: {error}") from None


def freeze_fixed_networks(network, config):
    """OLTR's ``fix: true``, for every network that sets it (as OLTR's run_networks.py does for any network)."""
    for name in ("feat_model", "classifier"):
        if config["networks"][name]["fix"]:
            freeze_for_fix(getattr(network, name))


def freeze_for_fix(module):
    """Freeze ``module`` but for the parts it names in ``TRAINABLE_WHEN_FIXED``.

    The feature model names its modulated attention and fc_add, which OLTR's Places-LT stage 2
    trains on a frozen trunk; a classifier names nothing, so ``fix`` freezes all of it.
    """
    trainable = getattr(module, "TRAINABLE_WHEN_FIXED", ())
    for name, param in module.named_parameters():
        if not any(part in name for part in trainable):
            param.requires_grad_(False)
