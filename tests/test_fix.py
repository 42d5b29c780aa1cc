"""``fix: true`` freezes any network, through one code path (OLTR's run_networks.py does it for every network).

The feature model keeps the parts OLTR trains on a frozen trunk (modulated attention, fc_add);
a fixed classifier keeps none: its parameters stay bit-identical over training while the rest trains.
"""

from pathlib import Path

import pytest
import torch

from oltr.config.schema import load_config
from oltr.engine.distributed import DistContext
from oltr.models import build_classifier, build_feature_model
from oltr.models import network as networks
from oltr.runs import trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
STAGE1 = "config/Digits_LT/stage_1.py"


def _trainable(module):
    return {name for name, param in module.named_parameters() if param.requires_grad}


def test_a_fixed_feature_model_trains_only_attention_and_fc_add():
    feat_model = build_feature_model(
        "resnet10", use_modulatedatt=True, use_fc=True, small_input=True, base_channels=4, input_size=8, feature_dim=6
    )
    networks.freeze_for_fix(feat_model)
    assert {name.split(".")[0] for name in _trainable(feat_model)} == {"modulatedatt", "fc_add"}


@pytest.mark.parametrize("classifier_type", ["dot_product", "cosine_norm", "meta_embedding"])
def test_a_fixed_classifier_has_nothing_left_to_train(classifier_type):
    classifier = build_classifier(classifier_type, in_dim=6, num_classes=3)
    networks.freeze_for_fix(classifier)
    assert _trainable(classifier) == set()


def test_a_fixed_classifier_stays_bit_identical_while_the_feature_model_trains(tiny_digits_root, tmp_path):
    config = load_config(
        REPO / STAGE1,
        [
            "training_opt.dataset=Tiny",
            f"training_opt.data_root={tiny_digits_root}",
            f"training_opt.split_dir={tiny_digits_root}",
            f"training_opt.log_dir={tmp_path}",
            "training_opt.batch_size=16",
            "networks.classifier.fix=true",
        ],
    )
    run = trainer.build_run(config, DistContext(), echo=False)
    assert set(run.optimizers) == {"feat_model"}
    classifier_before = {k: v.clone() for k, v in run.network.classifier.state_dict().items()}
    feat_before = {k: v.clone() for k, v in run.network.feat_model.named_parameters()}
    run.train_model.train()
    images, labels, _ = next(iter(run.train_loader))
    for step in range(2):
        trainer.train_step(run, images, labels, step)
    for key, value in run.network.classifier.state_dict().items():
        assert torch.equal(value, classifier_before[key]), key
    moved = [
        name for name, param in run.network.feat_model.named_parameters() if not torch.equal(param, feat_before[name])
    ]
    assert set(moved) == set(feat_before)  # every feature-model parameter took its SGD steps
