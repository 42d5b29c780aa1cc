"""Reading config files: one file's raw dict, its ``_base_`` chain, and overlays merged over it.

A config file is Python (``config = {...}``; it is executed, so only load configs
you trust) or YAML (``yaml.safe_load`` rules, plus ``1e-3`` read as a number).
``_base_`` names one base file or a list of them, relative to the file: the
bases are merged left to right, then the file's own dict over them, so a loss
variant is ``_base_ = ["stage_1.py", "../losses/cfl.py"]`` plus its log_dir.
Nothing here validates keys; ``oltr.config.schema.validate`` does, on the merged dict.
"""

import ast
import copy
import re
import runpy
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError

from ..common.errors import ConfigError
from ..common.paths import file_problem


class _YamlLoader(yaml.SafeLoader):
    """safe_load, but ``1e-3`` is a number as in YAML 1.2 (YAML 1.1 wants ``1.0e-3``), so
    ``--opts networks.feat_model.optim_params.lr=1e-3`` does what it says."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class DuplicateKeyError(ConstructorError):
    """A YAML mapping names a key twice; PyYAML would silently keep the last value."""


def _construct_mapping_once(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: PyYAML's own error says so
            break
        if first is not None:
            raise DuplicateKeyError(
                None,
                None,
                f"duplicate key {key!r} (first at line {first.line + 1}); "
                "YAML keeps only the last value, so say it once",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping_plain(node, deep=deep)


_YamlLoader.construct_mapping_plain = yaml.SafeLoader.construct_mapping
_YamlLoader.add_constructor("tag:yaml.org,2002:map", lambda loader, node: _construct_dict(loader, node))


def _construct_dict(loader, node):
    data = {}
    yield data
    data.update(_construct_mapping_once(loader, node))


def _yaml_load(stream):
    return yaml.load(stream, Loader=_YamlLoader)  # a SafeLoader subclass: no arbitrary objects


def _read_file(path):
    """The raw dict of one config file (without its base merged in)."""
    problem = file_problem(path)
    if problem:
        hint = "; name a .py or .yaml config file in it" if Path(path).is_dir() else ""
        raise ConfigError(f"config file {path} {problem}{hint}")
    if path.suffix in (".yaml", ".yml"):
        try:
            with open(path, encoding="utf-8") as f:
                raw = _yaml_load(f) or {}
        except UnicodeDecodeError as e:
            raise ConfigError(
                f"{_line_of_byte(path, e.start)}: not UTF-8 text ({e.reason} at byte {e.start}); "
                "save the config as UTF-8"
            ) from None
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
            _check_dict_literals(path)
            namespace = runpy.run_path(str(path))
        except SyntaxError as e:
            raise ConfigError(f"{path}:{e.lineno}: Python syntax error in config ({e.msg})") from None
        except ConfigError:
            raise
        except SystemExit as e:  # the config called exit(): it cannot be read as a config
            raise ConfigError(
                f"{path}:{_line_in_file(e, path)}: the config called exit({e.code!r}) instead of defining config"
            ) from None
        except Exception as e:  # the config is code: a NameError, ImportError... is the file's fault
            raise ConfigError(
                f"{path}:{_line_in_file(e, path)}: running the config raised {type(e).__name__} ({e})"
            ) from None
        if "config" not in namespace or not isinstance(namespace["config"], dict):
            raise ConfigError(f"{path}: a Python config must define a dict named 'config'")
        raw = copy.deepcopy(namespace["config"])
        if "_base_" in namespace and "_base_" not in raw:
            raw["_base_"] = namespace["_base_"]
        return raw
    raise ConfigError(f"config file {path} must end in .py, .yaml or .yml")


def _line_of_byte(path, offset):
    """``path:line`` of byte ``offset`` of the file."""
    try:
        line = path.read_bytes()[:offset].count(b"\n") + 1
        return f"{path}:{line}"
    except OSError:
        return str(path)


def _check_dict_literals(path):
    """A dict literal that names a key twice keeps the last value silently; refuse it, naming the line.

    Only constant keys are compared (strings, numbers); the file is parsed, not run.
    """
    source = path.read_bytes()
    tree = ast.parse(source, filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        seen = {}
        for key in node.keys:
            if not isinstance(key, ast.Constant):
                continue
            marker = (type(key.value).__name__ if not isinstance(key.value, (int, float)) else "number", key.value)
            if marker in seen:
                raise ConfigError(
                    f"{path}:{key.lineno}: duplicate key {key.value!r} in a dict (first at line "
                    f"{seen[marker]}); Python keeps only the last value, so say it once"
                )
            seen[marker] = key.lineno


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


def _base_names(path, base):
    """``_base_`` as a list of path strings: none, one string, or a list (or tuple) of them."""
    if base is None:
        return []
    if isinstance(base, str):
        return [base]
    if isinstance(base, (list, tuple)) and all(isinstance(name, str) for name in base):
        return list(base)
    raise ConfigError(f"{path}: _base_ must be a path string or a list of path strings, got {base!r}")


def _load_with_bases(path, chain=()):
    """``path``'s dict over its bases (each with its own bases), merged left to right."""
    problem = file_problem(path)
    if problem and "loop" in problem:  # resolve() would raise on it; _read_file names every other case
        raise ConfigError(f"config file {path} {problem}")
    path = Path(path).resolve()
    if path in chain:
        raise ConfigError(f"config {path} includes itself through _base_")
    raw = _read_file(path)
    merged = {}
    for name in _base_names(path, raw.pop("_base_", None)):
        base_path = path.parent / name
        if not base_path.is_file():
            raise ConfigError(
                f"{path}: _base_ {name!r} does not exist ({base_path.resolve()}); name a file relative to {path.parent}"
            )
        merged = deep_merge(merged, _load_with_bases(base_path, chain + (path,)))
    return deep_merge(merged, raw)


def load_raw(path, overlays=()):
    """``path`` with its ``_base_`` chain, then each overlay file (with its own bases) merged over it."""
    raw = _load_with_bases(path)
    for overlay in overlays:
        problem = file_problem(overlay)
        if problem:
            raise ConfigError(
                f"--overlay {overlay} {problem}; name a config file to merge over {path}, e.g. config/losses/cfl.py"
            )
        raw = deep_merge(raw, _load_with_bases(overlay))
    return raw
