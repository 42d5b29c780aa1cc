"""Load, merge, validate and save run configs.

A config is a Python file defining ``config = {...}`` (OLTR's style) or a YAML
file with the same keys. Either may name base configs with ``_base_`` (a path,
or a list of paths merged left to right, relative to the file): the file's dict
is deep-merged over them, so a loss variant is a few lines over its stage's
config. Reading and merging files lives in ``oltr.config_loading``. Python
configs are code and are executed: only load configs you trust.

Every key is checked against ``SCHEMA``: an unknown key, a wrong type or an
out-of-range value is a ``ConfigError`` naming the dotted key, the allowed
values and (for unknown keys) the closest valid key.
"""

import copy
import hashlib
import json
import math
from dataclasses import dataclass

import yaml

from ..common.errors import ConfigError
from .loading import DuplicateKeyError, _yaml_load, deep_merge, load_raw  # noqa: F401  (deep_merge: public API)
from .overrides import apply_overrides, parse_override  # noqa: F401  (public here too)
from .value_rules import check_transforms

REQUIRED = object()

# training_opt.sampler.type (oltr/data/samplers.py); a null sampler is "instance"
SAMPLERS = ("instance", "class_aware", "class_balanced", "square_root", "progressive")
# training_opt.finetune.mode: every parameter, biases and norms, none (a linear probe), LoRA's
FINETUNE_MODES = ("full", "bias_norm", "linear_probe", "lora")


@dataclass(frozen=True)
class Field:
    """One leaf of the schema: accepted types, default, and optional bounds or choices."""

    types: tuple
    default: object = REQUIRED
    choices: tuple = None
    minimum: float = None
    maximum: float = None
    nullable: bool = False

    def describe(self):
        if self.choices is not None and self.types == (str,):
            return "one of " + ", ".join(repr(c) for c in self.choices)
        names = " or ".join(_TYPE_NAMES[t] for t in self.types if t is not str or self.choices is None)
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum}")
        text = names + (" " + " and ".join(bounds) if bounds else "")
        text += "".join(f" or {c!r}" for c in self.choices or () if self.types != (str,))  # e.g. an int or 'auto'
        return text + (" or null" if self.nullable else "")


@dataclass(frozen=True)
class FreeDict:
    """A dict whose keys are checked elsewhere (model and loss constructors)."""

    default: dict = None


@dataclass(frozen=True)
class Section:
    """A nested dict with its own schema; ``nullable`` sections may be None (off)."""

    fields: dict
    nullable: bool = False
    default_none: bool = False


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true/false", list: "a list"}


def _int(default=REQUIRED, minimum=None, maximum=None, nullable=False):
    return Field((int,), default, minimum=minimum, maximum=maximum, nullable=nullable)


def _num(default=REQUIRED, minimum=None, maximum=None):
    return Field((float,), default, minimum=minimum, maximum=maximum)


def _str(default=REQUIRED, choices=None, nullable=False):
    return Field((str,), default, choices=choices, nullable=nullable)


def _bool(default):
    return Field((bool,), default)


def _list(default):
    return Field((list,), default)


_OPTIM = Section(
    {
        "lr": _num(minimum=0.0),
        "momentum": _num(0.9, minimum=0.0, maximum=1.0),
        "weight_decay": _num(5e-4, minimum=0.0),
        "nesterov": _bool(False),
    }
)

_NETWORK = {
    "type": _str(),
    "params": FreeDict({}),
    "optim_params": _OPTIM,
    "fix": _bool(False),
    "stage1_weights": _bool(False),
}

SCHEMA = Section(
    {
        "seed": _int(0, minimum=0, maximum=2**63 - 1),  # torch and numpy take seeds up to this
        "training_opt": Section(
            {
                "dataset": _str(),
                "data_root": _str(),
                "split_dir": _str(None, nullable=True),
                "log_dir": _str(),
                "stage": _int(1, minimum=1, maximum=2),
                "stage1_log_dir": _str(None, nullable=True),
                # null: meta_embedding in stage 2, none in stage 1; the name and its rules are the recipe's
                # (oltr.recipes.resolve, which the CLI and the sweep call after validation)
                "recipe": _str(None, nullable=True),
                # the finetune recipe's (oltr/recipes/finetune.py): which feature-model parameters train
                "finetune": Section(
                    {
                        "mode": _str("full", choices=FINETUNE_MODES),
                        "classifier_init": _str("random", choices=("random", "class_mean")),
                    }
                ),
                "tau_grid": Section(
                    {"min": _num(0.0, minimum=0.0), "max": _num(2.0, minimum=0.0), "step": _num(0.1, minimum=1e-6)}
                ),
                "num_classes": _int(minimum=2),
                "batch_size": _int(128, minimum=1),
                "eval_batch_size": _int(None, minimum=1, nullable=True),
                "num_workers": Field((int, str), 4, choices=("auto",), minimum=0),  # auto: loaders.resolve_num_workers
                "num_epochs": _int(30, minimum=1),
                "feature_dim": _int(512, minimum=1),
                "open_threshold": _num(0.1, minimum=0.0, maximum=1.0),
                "display_step": _int(10, minimum=1),
                "sampler": Section(
                    {
                        "type": _str("instance", choices=SAMPLERS),
                        "num_samples_cls": _int(4, minimum=1),
                    },
                    nullable=True,
                    default_none=True,
                ),
                "scheduler": _str("step", choices=("step", "cosine")),
                "scheduler_params": Section(
                    {
                        "step_size": _int(10, minimum=1),
                        "gamma": _num(0.1, minimum=0.0),
                        "eta_min": _num(0.0, minimum=0.0),
                    }
                ),
                "progress_granularity": _str("epoch", choices=("epoch", "step")),
                # auto: bf16 on CUDA and on CPUs with native bf16 (oltr/engine/precision.py), fp32 elsewhere
                "amp": _str("auto", choices=("auto", "off", "bf16", "fp16")),
                "channels_last": _bool(True),
                # tensor: uint8 tensors, decoded once into a cache when they fit, batched transforms
                # (oltr/data/batch_transforms.py); pil: OLTR's per-image PIL transforms, the reference
                "data_pipeline": _str("tensor", choices=("tensor", "pil")),
                "cache_images": _str("auto", choices=("auto", "always", "never")),
                "cache_images_max_gb": _num(8.0, minimum=0.0),  # auto caches a split whose decoded images fit
                "cache_dir": _str(None, nullable=True),  # null: $OLTR_CACHE_DIR or ~/.cache/oltr-lt/images
                "gpu_decode": _bool(False),  # decode JPEGs on the GPU (torchvision.io.decode_jpeg), uncached splits
                "persistent_workers": _bool(True),  # with data_pipeline tensor (PIL workers restart every epoch)
                "compile": _bool(False),
                "sync_bn": _bool(False),
                "save_logits": _bool(False),
                "tensorboard": _bool(False),
                "shot_thresholds": Section(
                    {
                        "many": _int(100, minimum=1),
                        "few": _int(20, minimum=0),
                        "inclusive": _bool(True),
                    }
                ),
                "transforms": Section(
                    {
                        "input_size": _int(224, minimum=1),
                        "resize_size": _int(256, minimum=1),
                        "color_jitter": _list([0.4, 0.4, 0.4, 0.0]),
                        "mean": _list([0.485, 0.456, 0.406]),
                        "std": _list([0.229, 0.224, 0.225]),
                        "horizontal_flip": _bool(True),
                        "crop_scale": _list([0.08, 1.0]),
                    }
                ),
            }
        ),
        "networks": Section(
            {
                "feat_model": Section(_NETWORK),
                "classifier": Section(_NETWORK),
            }
        ),
        "criterions": Section(
            {
                "PerformanceLoss": Section(
                    {
                        "loss": _str("softmax"),
                        "loss_params": FreeDict({}),
                        "weight": _num(1.0, minimum=0.0),
                    }
                ),
                "FeatureLoss": Section(
                    {
                        "loss": _str("disc_centroids"),
                        "loss_params": FreeDict({}),
                        "optim_params": _OPTIM,
                        "weight": _num(0.01, minimum=0.0),
                    },
                    nullable=True,
                    default_none=True,
                ),
            }
        ),
        "memory": Section(
            {
                "centroids": _bool(False),
                "init_centroids": _bool(False),
            }
        ),
        "evaluation": Section(
            {
                # post-hoc logit adjustment (Menon et al. 2021): logits - tau * log(prior) before every test metric
                "logit_adjustment_tau": _num(0.0, minimum=0.0),
                "ci_resamples": _int(1000, minimum=0),  # bootstrap resamples of the results' ci95; 0: none
                "ci_seed": _int(0, minimum=0, maximum=2**63 - 1),
                # open-set scorers of --test_open, by name (oltr/evaluation/scorers; docs/open-set.md)
                "open_scores": _list(["msp", "max_logit", "energy", "gen"]),
                "open_score_params": FreeDict({}),  # {scorer: {param: value}}, e.g. {"knn": {"k": 50}}
                # the validation threshold accepts this share of the validation split's known images
                "val_accept_rate": _num(0.95, minimum=0.0, maximum=1.0),
            }
        ),
    }
)


# ----------------------------------------------------------------------------- validation


def _closest(key, options):
    from losses.registry import closest_name  # here, not at the top: only an error pays for importing torch

    close = closest_name(key, options)
    return f" (did you mean {close!r}?)" if close else ""


def _check_field(field, value, dotted, where):
    if value is None:
        if field.nullable or field.default is None:
            return None
        raise ConfigError(f"{where}: {dotted} must be {field.describe()}, got null")
    if value is False and field.choices is not None and "off" in field.choices:
        value = "off"  # YAML 1.1 reads a bare `off` (amp: off, --opts training_opt.amp=off) as false
    ok_types = field.types
    if isinstance(value, bool) and bool not in ok_types:
        ok = False
    elif float in ok_types and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    elif list in ok_types and isinstance(value, tuple):
        value, ok = list(value), True
    else:
        ok = isinstance(value, ok_types)
    if not ok or (
        field.choices is not None and value not in field.choices and (isinstance(value, str) or field.types == (str,))
    ):
        close = _closest(value, field.choices) if ok and isinstance(value, str) and field.choices else ""
        raise ConfigError(f"{where}: {dotted} must be {field.describe()}, got {value!r}{close}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {dotted} must be a finite number, got {value!r}")
    if isinstance(value, str):
        return value
    too_small = field.minimum is not None and value < field.minimum
    too_large = field.maximum is not None and value > field.maximum
    if too_small or too_large:
        raise ConfigError(f"{where}: {dotted} must be {field.describe()}, got {value!r}")
    return value


def _validate(schema, raw, dotted, where):
    if isinstance(schema, Field):
        return _check_field(schema, raw, dotted, where)
    if isinstance(schema, FreeDict):
        if raw is None:
            return copy.deepcopy(schema.default)
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: {dotted} must be a mapping of parameters, got {raw!r}")
        return copy.deepcopy(raw)
    # Section
    if raw is None:
        if schema.nullable:
            return None
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {dotted or 'the config'} must be a mapping, got {raw!r}")
    for key in raw:
        if key not in schema.fields:
            name = f"{dotted}.{key}" if dotted else str(key)
            raise ConfigError(
                f"{where}: unknown config key {name!r}{_closest(key, schema.fields)}; "
                f"valid keys here: {', '.join(schema.fields)}"
            )
    resolved = {}
    for key, sub in schema.fields.items():
        name = f"{dotted}.{key}" if dotted else key
        if key in raw:
            resolved[key] = _validate(sub, raw[key], name, where)
        elif isinstance(sub, Field):
            if sub.default is REQUIRED:
                raise ConfigError(f"{where}: required config key {name!r} is missing")
            resolved[key] = copy.deepcopy(sub.default)
        elif isinstance(sub, Section) and sub.default_none:
            resolved[key] = None
        else:
            resolved[key] = _validate(sub, None, name, where)
    return resolved


def validate(raw, where="config"):
    """A fully resolved copy of ``raw``: defaults filled in, every key and value checked."""
    config = _validate(SCHEMA, raw, "", where)
    training = config["training_opt"]
    if training["split_dir"] is None:
        training["split_dir"] = training["data_root"]
    thresholds = training["shot_thresholds"]
    if thresholds["few"] >= thresholds["many"]:
        raise ConfigError(
            f"{where}: training_opt.shot_thresholds.few ({thresholds['few']}) must be below "
            f"training_opt.shot_thresholds.many ({thresholds['many']})"
        )
    _check_stage(config, where)
    _check_tau_grid(config, where)
    _check_open_scores(config, where)
    check_transforms(config, where)
    return config


def recipe_of(config):
    """The run's recipe: training_opt.recipe, else meta_embedding for stage 2 and None for stage 1."""
    training = config["training_opt"]
    return training["recipe"] or ("meta_embedding" if training["stage"] == 2 else None)


def _check_open_scores(config, where):
    """evaluation.open_scores: distinct names (the registry, above this package, checks each name)."""
    evaluation = config["evaluation"]
    names = evaluation["open_scores"]
    if not names or not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        raise ConfigError(
            f"{where}: evaluation.open_scores must be a non-empty list of distinct scorer names "
            f"(e.g. ['msp', 'energy', 'knn']), got {names!r}"
        )
    params = evaluation["open_score_params"]
    stray = [name for name in params if name not in names or not isinstance(params[name], dict)]
    if stray:
        raise ConfigError(
            f"{where}: evaluation.open_score_params.{stray[0]} must be a mapping of parameters of a scorer "
            f"listed in evaluation.open_scores ({', '.join(names)})"
        )
    if evaluation["val_accept_rate"] <= 0:
        raise ConfigError(f"{where}: evaluation.val_accept_rate must be in (0, 1], got {evaluation['val_accept_rate']}")


def _check_tau_grid(config, where):
    grid = config["training_opt"]["tau_grid"]
    if grid["max"] < grid["min"]:
        raise ConfigError(f"{where}: training_opt.tau_grid.max ({grid['max']}) must be >= tau_grid.min ({grid['min']})")


def _check_stage(config, where):
    """Rules between keys that need only the config: stage-2 settings need each other and stage 2.

    ``training_opt.stage`` says which OLTR stage a run is (results record it); stage-1
    weights and the centroid memory belong to stage 2, so a stage-1 config may not ask
    for them. Stage 2 itself only requires what it asks for.
    """
    training, networks, memory = config["training_opt"], config["networks"], config["memory"]
    if memory["centroids"] and config["criterions"]["FeatureLoss"] is None:
        raise ConfigError(
            f"{where}: memory.centroids is true but criterions.FeatureLoss is not set; the "
            "centroids live in the disc_centroids feature loss"
        )
    wanted = [name for name in ("feat_model", "classifier") if networks[name]["stage1_weights"]]
    if wanted and training["stage1_log_dir"] is None:
        raise ConfigError(
            f"{where}: networks.{wanted[0]}.stage1_weights is true but training_opt.stage1_log_dir "
            "is not set; point it at the stage-1 run's log_dir"
        )
    stage2_only = [f"networks.{name}.stage1_weights" for name in wanted]
    stage2_only += [f"memory.{key}" for key in ("centroids", "init_centroids") if memory[key]]
    if stage2_only and training["stage"] != 2:
        raise ConfigError(
            f"{where}: {stage2_only[0]} is a stage-2 setting but training_opt.stage is "
            f"{training['stage']}; set training_opt.stage to 2 (the stage-2 recipe "
            "config/recipes/stage_2_meta_embedding.py does) or turn it off"
        )


def load_config(path, overrides=(), overlays=()):
    """Read ``path`` (and its ``_base_`` chain), merge each overlay file over it, apply
    ``KEY=VALUE`` overrides, validate."""
    raw = apply_overrides(load_raw(path, overlays), overrides)
    where = str(path) + "".join(f" + {overlay}" for overlay in overlays) + (" (with --opts)" if overrides else "")
    return validate(raw, where)


# ----------------------------------------------------------------------------- saving


def config_hash(config):
    """A short, stable fingerprint of a resolved config."""
    canonical = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def dump_yaml(config):
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
