"""Maximum logit: Hendrycks, Basart, Mazeika, Zou, Kwon, Mostajabi, Steinhardt, Song, "Scaling
Out-of-Distribution Detection for Real-World Settings", ICML 2022. Not squashed by a softmax, so it
keeps how large the winning logit is, not only how far it is above the others."""

from .base import Scorer, logits_array, register_scorer


@register_scorer
class MaxLogit(Scorer):
    name = "max_logit"
    paper = "Hendrycks et al., ICML 2022"

    def score(self, logits, features=None):
        return logits_array(logits).max(axis=1)
