"""Nearest class mean (Kang et al. 2020, Sec. 4): ``ncm``.

One pass over the training split (test-time transforms), then ``NCMClassifier`` in its config mode:

* ``cosine`` (ours, the default): m_j = the mean of class j's L2-normalised features;
  logits = scale x cos(x, m_j). The scale leaves the argmax alone and only sharpens the softmax the
  open-set threshold reads.
* ``centered_l2`` (classifier-balancing's default, ``cl2n`` + ``l2``): mu = the mean training feature,
  m_j = the mean of class j's normalise(f - mu); logits = -||normalise(x - mu) - m_j||^2.
"""

import torch

from ..common.errors import DataError
from .base import register_recipe
from .decoupled import FittedRecipe, collect_features


def class_means_of_normalised(features, labels, num_classes, center=None):
    """m_j = mean of the L2-normalised features of class j (C x D); a DataError for an empty class.

    ``center`` (D,), if given, is subtracted from every feature before it is normalised.
    """
    counts = torch.bincount(labels, minlength=num_classes)
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise DataError(
            f"the ncm recipe needs a training image of every class, but class {empty[0]} has none "
            f"(class counts {counts.tolist()}); fix the training split or training_opt.num_classes"
        )
    features = features.double() if center is None else features.double() - center.double()
    normalised = torch.nn.functional.normalize(features, dim=1)
    sums = torch.zeros(num_classes, features.shape[1], dtype=torch.float64).index_add_(0, labels, normalised)
    return (sums / counts.unsqueeze(1).double()).float()


@register_recipe
class NearestClassMean(FittedRecipe):
    name = "ncm"
    order = 4
    label = "NCM"
    classifier = "ncm"

    def fit_classifier(self, classifier, feat_model, training_opt, train_samples, ctx, logger, val):
        features, labels = collect_features(feat_model, training_opt, train_samples, ctx, "class means")
        center = None
        if classifier.mode == "centered_l2":
            center = features.double().mean(dim=0)
            classifier.feature_mean.copy_(center.float())
        classifier.means.copy_(class_means_of_normalised(features, labels, training_opt["num_classes"], center))
        what = "centred, L2-normalised" if center is not None else "L2-normalised"
        logger.info(f"ncm ({classifier.mode}): class means of {what} features from {len(labels)} training images")
        return {}
