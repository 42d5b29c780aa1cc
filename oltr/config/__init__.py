"""Configs: reading ``.py`` / ``.yaml`` files with their ``_base_`` chain and overlays, and the checked schema.

    loading.py   one file's raw dict, its _base_ chain, overlays merged over it (deep_merge)
    overrides.py --opts KEY=VALUE: parsed as YAML, set in a copy of the config
    schema.py    every key with its type, default and bounds; validate, load_config, config_hash,
                 dump_yaml, recipe_of
    value_rules.py  rules on values the types cannot say: the transforms' lists (mean, std, crop_scale)

The recipe's own rules are checked by ``oltr.recipes.resolve``, after validation.
"""

from .loading import deep_merge, load_raw
from .overrides import apply_overrides
from .schema import config_hash, dump_yaml, load_config, recipe_of, validate

__all__ = [
    "apply_overrides",
    "config_hash",
    "deep_merge",
    "dump_yaml",
    "load_config",
    "load_raw",
    "recipe_of",
    "validate",
]
