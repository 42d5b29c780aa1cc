"""The new backbones' configs hold the published recipes they cite (classifier-balancing's ResNeXt-50 and
ResNet-50, LIFT's CLIP ViT-B/16) and build, without weights, into the networks they describe."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import require_extra

from oltr.config.schema import load_config
from oltr.models.network import build_network
from oltr.recipes import resolve

timm = require_extra("timm")
require_extra("peft")


def loaded(path):
    config = load_config(path)
    return config, resolve(config, path)


@pytest.mark.parametrize(("dataset", "num_classes"), [("ImageNet_LT_ResNeXt50", 1000)])
def test_classifier_balancing_resnext50_recipe(dataset, num_classes):
    stage1, _ = loaded(f"config/{dataset}/stage_1.py")
    training = stage1["training_opt"]
    assert (training["num_epochs"], training["batch_size"], training["scheduler"]) == (90, 512, "cosine")
    assert training["num_classes"] == num_classes and training["sampler"] is None
    for name in ("feat_model", "classifier"):
        optim = stage1["networks"][name]["optim_params"]
        assert (optim["lr"], optim["momentum"], optim["weight_decay"]) == (0.2, 0.9, 5e-4)
    assert stage1["networks"]["feat_model"]["params"]["model_name"] == "resnext50_32x4d"
    crt, recipe = loaded(f"config/{dataset}/stage_2_crt.py")
    assert recipe.name == "crt" and crt["training_opt"]["num_epochs"] == 10
    assert crt["training_opt"]["sampler"] == {"type": "class_aware", "num_samples_cls": 4}
    for stage2 in ("lws", "tau_norm", "ncm", "meta_embedding"):
        assert loaded(f"config/{dataset}/stage_2_{stage2}.py")[1].name == stage2


def test_resnext50_is_timms_32x4d_with_2048_features():
    config, _ = loaded("config/ImageNet_LT_ResNeXt50/stage_1.py")
    network = build_network(config, for_training=False)
    conv = network.feat_model.backbone.layer1[0].conv2
    assert conv.groups == 32 and conv.out_channels == 128  # 32 groups of 4 channels in the first stage
    assert network.feat_model.feature_dim == 2048 == network.classifier.fc.in_features
    last_norm = network.feat_model.backbone.layer1[0].bn3.weight
    assert torch.equal(last_norm, torch.ones_like(last_norm))  # no zero-init of the last norm, as torchvision


@pytest.mark.parametrize(("dataset", "num_classes"), [("ImageNet_LT", 1000), ("Places_LT", 365)])
def test_lift_clip_vit_b16_recipe(dataset, num_classes):
    config, recipe = loaded(f"config/{dataset}/stage_2_finetune_clip_vit_b16.py")
    training, networks = config["training_opt"], config["networks"]
    assert recipe.name == "finetune" and training["finetune"] == {"mode": "lora", "classifier_init": "class_mean"}
    assert (training["num_epochs"], training["batch_size"], training["scheduler"]) == (10, 128, "cosine")
    for name in ("feat_model", "classifier"):
        optim = networks[name]["optim_params"]
        assert (optim["lr"], optim["momentum"], optim["weight_decay"]) == (0.01, 0.9, 5e-4)
    assert networks["classifier"]["type"] == "scaled_cosine" and networks["classifier"]["params"]["scale"] == 25
    assert config["criterions"]["PerformanceLoss"]["loss"] == "logit_adjusted"
    assert networks["feat_model"]["params"]["model_name"] == "vit_base_patch16_clip_224.openai"
    assert networks["feat_model"]["params"]["pretrained"] is True and training["stage1_log_dir"] is None
    # LIFT's adapter width: 2 ** floor(log2(classes / (2 * 12 blocks)))
    rank = networks["feat_model"]["params"]["lora"]["r"]
    assert rank == 2 ** int(math.log2(num_classes / 24)) and training["num_classes"] == num_classes


def test_clip_network_builds_with_lora_on_every_qkv():
    """Without weights (for_training=False): the ViT-B/16 structure, 768-d features, LoRA's closed-form size."""
    config, recipe = loaded("config/Places_LT/stage_2_finetune_clip_vit_b16.py")
    torch.manual_seed(0)
    network, _ = recipe.prepare_network(build_network(config, for_training=False), config)
    feat_model = network.feat_model
    assert feat_model.feature_dim == 768 and len(feat_model.backbone.blocks) == 12
    trainable = sum(p.numel() for p in feat_model.parameters() if p.requires_grad)
    assert trainable == 12 * (8 * 768 + 3 * 768 * 8)
