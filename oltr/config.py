"""Load, merge, validate and save run configs.

A config is a Python file defining ``config = {...}`` (OLTR's style) or a YAML
file with the same keys. Either may name a base config with ``_base_`` (a
path relative to the file): the file's dict is deep-merged over the base, so
a loss variant is a few lines over its stage's config. Python configs are
code and are executed: only load configs you trust. YAML goes through
``yaml.safe_load``.

Every key is checked against ``SCHEMA``: an unknown key, a wrong type or an
out-of-range value is a ``ConfigError`` naming the dotted key, the allowed
values and (for unknown keys) the closest valid key.
"""
import copy
import hashlib
import json
import math
import re
import runpy
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import ConfigError

REQUIRED = object()


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
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        names = " or ".join(_TYPE_NAMES[t] for t in self.types)
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum}")
        text = names + (" " + " and ".join(bounds) if bounds else "")
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


_OPTIM = Section({
    "lr": _num(minimum=0.0),
    "momentum": _num(0.9, minimum=0.0, maximum=1.0),
    "weight_decay": _num(5e-4, minimum=0.0),
    "nesterov": _bool(False),
})

_NETWORK = {
    "type": _str(),
    "params": FreeDict({}),
    "optim_params": _OPTIM,
    "fix": _bool(False),
    "stage1_weights": _bool(False),
}

SCHEMA = Section({
    "seed": _int(0, minimum=0),
    "training_opt": Section({
        "dataset": _str(),
        "data_root": _str(),
        "split_dir": _str(None, nullable=True),
        "log_dir": _str(),
        "stage1_log_dir": _str(None, nullable=True),
        "num_classes": _int(minimum=2),
        "batch_size": _int(128, minimum=1),
        "eval_batch_size": _int(None, minimum=1, nullable=True),
        "num_workers": _int(4, minimum=0),
        "num_epochs": _int(30, minimum=1),
        "feature_dim": _int(512, minimum=1),
        "open_threshold": _num(0.1, minimum=0.0, maximum=1.0),
        "display_step": _int(10, minimum=1),
        "sampler": Section({
            "type": _str("class_aware", choices=("class_aware",)),
            "num_samples_cls": _int(4, minimum=1),
        }, nullable=True, default_none=True),
        "scheduler": _str("step", choices=("step", "cosine")),
        "scheduler_params": Section({
            "step_size": _int(10, minimum=1),
            "gamma": _num(0.1, minimum=0.0),
            "eta_min": _num(0.0, minimum=0.0),
        }),
        "progress_granularity": _str("epoch", choices=("epoch", "step")),
        "amp": _str("off", choices=("off", "bf16", "fp16")),
        "channels_last": _bool(False),
        "compile": _bool(False),
        "sync_bn": _bool(False),
        "save_logits": _bool(False),
        "shot_thresholds": Section({
            "many": _int(100, minimum=1),
            "few": _int(20, minimum=0),
            "inclusive": _bool(True),
        }),
        "transforms": Section({
            "input_size": _int(224, minimum=1),
            "resize_size": _int(256, minimum=1),
            "color_jitter": _list([0.4, 0.4, 0.4, 0.0]),
            "mean": _list([0.485, 0.456, 0.406]),
            "std": _list([0.229, 0.224, 0.225]),
            "horizontal_flip": _bool(True),
            "crop_scale": _list([0.08, 1.0]),
        }),
    }),
    "networks": Section({
        "feat_model": Section(_NETWORK),
        "classifier": Section(_NETWORK),
    }),
    "criterions": Section({
        "PerformanceLoss": Section({
            "loss": _str("softmax"),
            "loss_params": FreeDict({}),
            "weight": _num(1.0, minimum=0.0),
        }),
        "FeatureLoss": Section({
            "loss": _str("disc_centroids"),
            "loss_params": FreeDict({}),
            "optim_params": _OPTIM,
            "weight": _num(0.01, minimum=0.0),
        }, nullable=True, default_none=True),
    }),
    "memory": Section({
        "centroids": _bool(False),
        "init_centroids": _bool(False),
    }),
})


# ----------------------------------------------------------------------------- loading

class _YamlLoader(yaml.SafeLoader):
    """safe_load, but ``1e-3`` is a number as in YAML 1.2 (YAML 1.1 wants ``1.0e-3``), so
    ``--opts networks.feat_model.optim_params.lr=1e-3`` does what it says."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _yaml_load(stream):
    return yaml.load(stream, Loader=_YamlLoader)  # a SafeLoader subclass: no arbitrary objects


def _read_file(path):
    """The raw dict of one config file (without its base merged in)."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if path.suffix in (".yaml", ".yml"):
        try:
            with open(path, encoding="utf-8") as f:
                raw = _yaml_load(f) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise ConfigError(f"{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: a YAML config must be a mapping of keys, got {type(raw).__name__}")
        raw = dict(raw)
        if "config" in raw and len(raw.keys() - {"config", "_base_"}) == 0:
            raw = {**raw.pop("config"), **({"_base_": raw["_base_"]} if "_base_" in raw else {})}
        return raw
    if path.suffix == ".py":
        try:
            namespace = runpy.run_path(str(path))
        except SyntaxError as e:
            raise ConfigError(f"{path}:{e.lineno}: Python syntax error in config ({e.msg})") from None
        except ConfigError:
            raise
        except Exception as e:  # the config is code: a NameError, ImportError... is the file's fault
            raise ConfigError(f"{path}:{_line_in_file(e, path)}: running the config raised "
                              f"{type(e).__name__} ({e})") from None
        if "config" not in namespace or not isinstance(namespace["config"], dict):
            raise ConfigError(f"{path}: a Python config must define a dict named 'config'")
        raw = copy.deepcopy(namespace["config"])
        if "_base_" in namespace and "_base_" not in raw:
            raw["_base_"] = namespace["_base_"]
        return raw
    raise ConfigError(f"config file {path} must end in .py, .yaml or .yml")


def _line_in_file(error, path):
    """The line of ``path`` where ``error`` was raised (the innermost frame in that file), or '?'."""
    line, frame = "?", error.__traceback__
    while frame is not None:
        if Path(frame.tb_frame.f_code.co_filename) == path:
            line = frame.tb_lineno
        frame = frame.tb_next
    return line


def deep_merge(base, override):
    """``override`` over ``base``; nested dicts merge, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _load_with_bases(path, chain=()):
    path = Path(path).resolve()
    if path in chain:
        raise ConfigError(f"config {path} includes itself through _base_")
    raw = _read_file(path)
    base_name = raw.pop("_base_", None)
    if base_name is None:
        return raw
    if not isinstance(base_name, str):
        raise ConfigError(f"{path}: _base_ must be a path string, got {base_name!r}")
    base = _load_with_bases(path.parent / base_name, chain + (path,))
    return deep_merge(base, raw)


# ----------------------------------------------------------------------------- overrides

def parse_override(text):
    """``"a.b.c=VALUE"`` -> (["a", "b", "c"], value), VALUE parsed as YAML (3 -> int, null -> None)."""
    if "=" not in text:
        raise ConfigError(f"--opts {text!r}: expected KEY=VALUE with a dotted key, e.g. training_opt.num_epochs=3")
    key, _, value_text = text.partition("=")
    keys = key.strip().split(".")
    if not all(keys):
        raise ConfigError(f"--opts {text!r}: empty part in the dotted key {key!r}")
    try:
        value = _yaml_load(value_text) if value_text.strip() else ""
    except (yaml.YAMLError, ValueError):
        value = value_text
    return keys, value


def apply_overrides(config, overrides):
    """Set each ``KEY=VALUE`` in a copy of ``config``; keys are validated afterwards."""
    config = copy.deepcopy(config)
    for text in overrides:
        keys, value = parse_override(text)
        node = config
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif not isinstance(child, dict):
                dotted = ".".join(keys[: depth + 1])
                raise ConfigError(f"--opts {text!r}: {dotted} is a value, not a section")
            node = child
        node[keys[-1]] = value
    return config


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
    if not ok or (field.choices is not None and value not in field.choices):
        raise ConfigError(f"{where}: {dotted} must be {field.describe()}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {dotted} must be a finite number, got {value!r}")
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
    return config


def load_config(path, overrides=()):
    """Read ``path`` (and its ``_base_`` chain), apply ``KEY=VALUE`` overrides, validate."""
    raw = _load_with_bases(path)
    raw = apply_overrides(raw, overrides)
    where = str(path) + (" (with --opts)" if overrides else "")
    return validate(raw, where)


# ----------------------------------------------------------------------------- saving

def config_hash(config):
    """A short, stable fingerprint of a resolved config."""
    canonical = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def dump_yaml(config):
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
