"""``--opts KEY=VALUE``: a dotted key and a YAML value, set in a copy of the config (validated afterwards)."""

import copy

import yaml

from ..common.errors import ConfigError
from .loading import DuplicateKeyError, _yaml_load


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
    except DuplicateKeyError as e:
        raise ConfigError(f"--opts {text!r}: {e.problem.split(' (first at')[0]} in the value") from None
    except (yaml.YAMLError, ValueError):
        value = value_text
    return keys, value


def apply_overrides(config, overrides):
    """Set each ``KEY=VALUE`` in a copy of ``config``; keys are validated afterwards."""
    config = copy.deepcopy(config)
    seen = {}  # dotted key -> the --opts item that set it
    for text in overrides:
        keys, value = parse_override(text)
        _check_set_once(keys, text, seen)
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


def _check_set_once(keys, text, seen):
    """A key set twice (or a section and a key inside it): the last value counts, as in a shell script, and a
    note says so in one line, so that an --opts appended to a command's own is never silently dropped."""
    dotted = ".".join(keys)
    for other, first in seen.items():
        if other == dotted or other.startswith(dotted + ".") or dotted.startswith(other + "."):
            how = "sets" if other == dotted else "overlaps"
            print(f"note: --opts {text!r} {how} {other}, set before by {first!r}; the last one counts", flush=True)
    seen[dotted] = text
