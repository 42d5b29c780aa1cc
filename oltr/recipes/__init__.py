"""Stage-2 recipes, each a registered object (``base.Recipe``): OLTR's, the decoupled classifiers, fine-tuning.

    base.py            Recipe (what a recipe declares and does), the RECIPES registry, resolve(config)
    stage1_weights.py  stage-1 weights into the networks whose config asks for them
    decoupled.py       what the decoupled recipes share: the stage-1 run, the frozen feature model,
                       the one-pass fit of those that do not train
    meta_embedding.py  OLTR's stage 2
    crt.py, lws.py, tau_norm.py, ncm.py   Kang et al.'s decoupled classifiers, one file each
    finetune.py        fine-tuning a pretrained feature model: full, bias_norm, linear_probe, lora

Importing this package registers them, in the report's order.
"""

from . import crt, finetune, lws, meta_embedding, ncm, tau_norm  # noqa: F401  (registration)
from .base import RECIPES, STAGE_ONE, Recipe, get_recipe, recipe_names, register_recipe, resolve

__all__ = ["RECIPES", "STAGE_ONE", "Recipe", "get_recipe", "recipe_names", "register_recipe", "resolve"]
