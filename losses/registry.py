"""Build losses by name.

A loss class registers itself under a name; ``build_loss`` instantiates it from
hyper-parameters plus the *context* the pipeline knows (number of classes,
training counts, epochs, feature size). A loss takes only the context its
constructor names, so callers can pass the whole context to every loss.
"""
import difflib
import inspect

import torch.nn as nn

# What the pipeline may offer every loss; a loss whose constructor does not
# name one of these simply does not receive it.
CONTEXT_KEYS = ("num_classes", "num_epochs", "class_counts", "feat_dim")

_REGISTRY = {}


def register_loss(name):
    """Class decorator: ``@register_loss("my_loss")`` makes ``build_loss("my_loss")`` work."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_loss needs a non-empty string name, got {name!r}")

    def decorator(cls):
        if name in _REGISTRY:
            raise ValueError(
                f"loss name {name!r} is already registered (by {_REGISTRY[name].__qualname__}); "
                "choose another name"
            )
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise TypeError(f"register_loss({name!r}) expects an nn.Module subclass, got {cls!r}")
        _REGISTRY[name] = cls
        return cls

    return decorator


def available_losses():
    """Sorted list of every registered loss name."""
    return sorted(_REGISTRY)


def get_loss_class(name):
    """The class registered under ``name``; ValueError naming the closest match otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown loss {name!r}; known losses: {', '.join(available_losses())}.{hint}"
        ) from None


def _constructor_parameters(cls):
    signature = inspect.signature(cls.__init__)
    params = list(signature.parameters.values())[1:]  # drop self
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    names = {p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD}
    return names, takes_any


def build_loss(name_or_cfg, **kwargs):
    """Instantiate a registered loss.

    ``name_or_cfg`` is a registry name, or a dict ``{"name": ..., **params}``.
    ``kwargs`` mixes the loss's hyper-parameters with pipeline context
    (``CONTEXT_KEYS``); context the loss does not take is dropped, while an
    unknown hyper-parameter is an error naming it.
    """
    if isinstance(name_or_cfg, dict):
        cfg = dict(name_or_cfg)
        if "name" not in cfg:
            raise ValueError(f"a loss config dict needs a 'name' key, got keys {sorted(cfg)}")
        name = cfg.pop("name")
        kwargs = {**cfg, **kwargs}
    else:
        name = name_or_cfg
    cls = get_loss_class(name)
    accepted, takes_any = _constructor_parameters(cls)
    params = {}
    for key, value in kwargs.items():
        if key in accepted or takes_any:
            params[key] = value
        elif key in CONTEXT_KEYS:
            continue
        else:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"loss {name!r} has no parameter {key!r}; it takes: "
                f"{', '.join(sorted(accepted)) or 'none'}.{hint}"
            )
    return cls(**params)
