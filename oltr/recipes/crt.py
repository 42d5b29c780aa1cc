"""Classifier re-training (Kang et al. 2020, Sec. 4): ``crt``.

Stage 1's feature model, frozen; the classifier (any trainable one, ``dot_product`` by default)
re-initialised and trained alone with class-balanced sampling and any registry loss
(``config/recipes/stage_2_crt.py``). The trainer trains it as any run.
"""

from .base import register_recipe
from .decoupled import DecoupledRecipe


@register_recipe
class ClassifierRetraining(DecoupledRecipe):
    name = "crt"
    order = 1
    label = "cRT"
