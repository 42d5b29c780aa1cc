"""fp16 loss scaling is refused for a loss whose custom backward ignores the loss scale."""

import pytest

from losses import build_loss
from oltr.common.errors import ConfigError
from oltr.engine.optim import Criterion
from oltr.runs.run import check_amp_compatible


def centroid_loss(**kwargs):
    return {
        "FeatureLoss": Criterion(build_loss("disc_centroids", num_classes=3, feat_dim=4, **kwargs), 0.01),
        "PerformanceLoss": Criterion(build_loss("cfl"), 1.0),
    }


def test_fp16_with_oltr_centroid_rule_is_refused():
    with pytest.raises(
        ConfigError, match=r"training_opt.amp=fp16 cannot train criterions.FeatureLoss .*use amp bf16 or off"
    ):
        check_amp_compatible(centroid_loss(), "fp16")


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_other_precisions_are_fine(amp):
    check_amp_compatible(centroid_loss(), amp)


def test_fp16_is_fine_when_the_centroid_update_follows_the_scale():
    check_amp_compatible(centroid_loss(scale_centroid_grad=True), "fp16")
