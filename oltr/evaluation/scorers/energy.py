"""Energy score: Liu, Wang, Owens, Li, "Energy-based Out-of-distribution Detection", NeurIPS 2020, Eq. 1-2.

score = -E(x; T) = T logsumexp_j(z_j / T). The paper uses T = 1; a large T tends to T log C + mean(z).
"""

import numpy as np

from .base import Scorer, logits_array, register_scorer


@register_scorer
class Energy(Scorer):
    name = "energy"
    paper = "Liu et al., NeurIPS 2020"

    def __init__(self, temperature=1.0):
        if not temperature > 0:
            raise TypeError(f"temperature must be positive, got {temperature!r}")
        self.temperature = float(temperature)

    def score(self, logits, features=None):
        z = logits_array(logits) / self.temperature
        top = z.max(axis=1)
        return self.temperature * (top + np.log(np.exp(z - top[:, None]).sum(axis=1)))

    def describe(self):
        return f"energy (T={self.temperature:g})"
