"""Open-set scorers: how sure a model is that an image belongs to a known class (higher = known).

Each scorer is one small file, registered by name in ``SCORERS`` and chosen by ``evaluation.open_scores``:

base.py         Scorer, the registry SCORERS, register_scorer, build_scorer, LOGIT_SCORERS
msp.py          msp: max softmax probability (Hendrycks and Gimpel 2017; OLTR's)
max_logit.py    max_logit: the largest logit (Hendrycks et al. 2022)
energy.py       energy: T logsumexp(z / T), the negative free energy (Liu et al. 2020)
gen.py          gen: the negative generalised entropy of the top-M probabilities (Liu et al. 2023)
mahalanobis.py  mahalanobis: the negative Mahalanobis distance to the nearest class mean, shared
                covariance of training features (Lee et al. 2018)
knn.py          knn: the negative distance to the k-th nearest normalised training feature (Sun et al. 2022)

Logit scorers read the (post-hoc adjusted) logits; feature scorers read the feature model's
output and are fitted on one pass over the training split (``Scorer.fit``).
"""

from . import energy, gen, knn, mahalanobis, max_logit, msp  # noqa: F401  (each registers itself)
from .base import LOGIT_SCORERS, SCORERS, Scorer, build_scorer, register_scorer

__all__ = ["LOGIT_SCORERS", "SCORERS", "Scorer", "build_scorer", "register_scorer"]
