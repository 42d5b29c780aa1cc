"""Nearest class mean (Kang et al. 2020, Sec. 4): ``ncm``.

m_j = the mean of the L2-normalised training features of class j (one pass, test-time transforms);
logits = scale x cos(x, m_j) (``oltr.models.decoupled.NCMClassifier``). The scale leaves the argmax
alone and only sharpens the softmax the open-set threshold reads.
"""

import torch

from ..common.errors import DataError
from .base import register_recipe
from .decoupled import FittedRecipe, collect_features


def class_means_of_normalised(features, labels, num_classes):
    """m_j = mean of the L2-normalised features of class j (C x D); a DataError for an empty class."""
    counts = torch.bincount(labels, minlength=num_classes)
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise DataError(
            f"the ncm recipe needs a training image of every class, but class {empty[0]} has none "
            f"(class counts {counts.tolist()}); fix the training split or training_opt.num_classes"
        )
    normalised = torch.nn.functional.normalize(features.double(), dim=1)
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
        classifier.means.copy_(class_means_of_normalised(features, labels, training_opt["num_classes"]))
        logger.info(f"ncm: class means of L2-normalised features from {len(labels)} training images")
        return {}
