"""Learnable weight scaling (Kang et al. 2020, Sec. 4): ``lws``.

Stage 1's feature model and linear classifier, both frozen; logits_j = s_j (W_j . x + b_j) with one
learnt scale per class, from 1 (``oltr.models.decoupled.LWSClassifier``). The trainer trains the scales.
"""

from .base import register_recipe
from .decoupled import DecoupledRecipe


@register_recipe
class LearnableWeightScaling(DecoupledRecipe):
    name = "lws"
    order = 2
    label = "LWS"
    classifier = "lws"
    uses_stage1_classifier = True
