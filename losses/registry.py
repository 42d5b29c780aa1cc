"""Build things by name: one small ``Registry`` class, and the loss protocol the trainer relies on.

``Registry`` (after fvcore's) maps names to classes or factories; losses, feature
models, classifiers and dataset preparers each have one. ``build_loss``
instantiates a registered loss from hyper-parameters plus the *context* the
pipeline knows (``CONTEXT_KEYS``); a loss takes only the context its constructor
names, so callers can pass the whole context to every loss.

The loss protocol
-----------------
A registered loss is an ``nn.Module`` called as ``loss(logits, targets)`` (the
discriminative-centroids loss: ``loss(features, targets)``) that returns the
reduced loss. Everything else is optional; the trainer looks for these hooks
and nothing else, and every loss that has one says so in its docstring:

``set_progress(t)``
    Training progress ``t`` in [0, 1], called by the trainer before each epoch
    (0-based epoch / (num_epochs - 1)) or each step
    (``training_opt.progress_granularity``). Losses whose behaviour follows a
    schedule (cfl, casl) read it; nothing else should.
``xi``
    A read-only number, the current weight of a schedule (CFL's Eq. 8). The
    trainer logs it to ``metrics.jsonl`` each epoch, where the report reads it.
state buffers
    Whatever a loss must carry across steps (e.g. EFL's accumulated gradients)
    is a registered buffer: it is saved in checkpoints with the model and
    restored on ``--resume``, and summed across ranks by the loss itself.
``ignores_loss_scale``
    True for a loss whose custom backward ignores the incoming gradient
    (OLTR's centroid update rule): fp16 loss scaling would shrink its update
    instead of cancelling out, so the trainer refuses ``amp: fp16`` with it.
``centroids``
    A parameter (num_classes x feat_dim) that the trainer optimizes with the
    FeatureLoss's own optimizer and initialises from class means of the
    stage-1 features (``memory.init_centroids``).
"""

import difflib
import inspect
from typing import Any, Callable, Iterable, Optional, Union

import torch.nn as nn

# What the pipeline may offer every loss; a loss whose constructor does not
# name one of these simply does not receive it.
CONTEXT_KEYS = ("num_classes", "num_epochs", "class_counts", "feat_dim")


def closest_name(name: str, options: Iterable[str], cutoff: float = 0.5) -> Optional[str]:
    """The option closest to ``name`` by spelling, or None when nothing is close."""
    close = difflib.get_close_matches(str(name), list(options), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the option closest to ``name``, or ``""``."""
    close = closest_name(name, options)
    return f"; did you mean {close!r}?" if close else ""


class Registry:
    """Names to classes or factories, for one kind of thing (``"loss"``, ``"classifier type"``...).

    ``error`` is the exception an unknown name raises (ValueError for the
    losses library, the CLI's ConfigError for config-built things).
    """

    def __init__(self, kind: str, plural: Optional[str] = None, error: type = ValueError):
        self.kind, self.plural, self.error = kind, plural or kind + "s", error
        self._entries = {}

    def register(self, name: str, entry: Any = None) -> Any:
        """``registry.register("x", thing)``, or as a decorator ``@registry.register("x")``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a non-empty string name, got {name!r}")

        def add(entry):
            if name in self._entries:
                raise ValueError(
                    f"{self.kind} name {name!r} is already registered (by "
                    f"{getattr(self._entries[name], '__qualname__', self._entries[name])!s}); choose another name"
                )
            self._entries[name] = entry
            return entry

        return add if entry is None else add(entry)

    def get(self, name: str) -> Any:
        """The entry registered under ``name``; ``self.error`` naming the known names and the closest one."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self.error(
                f"unknown {self.kind} {name!r}; known {self.plural}: {', '.join(self._entries)}"
                f"{did_you_mean(name, self._entries)}"
            ) from None

    def names(self) -> list:
        """Every registered name, in registration order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self):
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"


LOSSES = Registry("loss", "losses")


def register_loss(name: str) -> Callable[[type], type]:
    """Class decorator: ``@register_loss("my_loss")`` makes ``build_loss("my_loss")`` work."""

    def decorator(cls):
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise TypeError(f"register_loss({name!r}) expects an nn.Module subclass, got {cls!r}")
        return LOSSES.register(name, cls)

    if not isinstance(name, str) or not name:
        raise ValueError(f"register_loss needs a non-empty string name, got {name!r}")
    return decorator


def available_losses() -> list:
    """Sorted list of every registered loss name."""
    return sorted(LOSSES.names())


def get_loss_class(name: str) -> type:
    """The class registered under ``name``; ValueError naming the closest match otherwise."""
    return LOSSES.get(name)


def _constructor_parameters(cls):
    signature = inspect.signature(cls.__init__)
    params = list(signature.parameters.values())[1:]  # drop self
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    names = {p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD}
    return names, takes_any


def build_loss(name_or_cfg: Union[str, dict], **kwargs: Any) -> nn.Module:
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
            raise ValueError(
                f"loss {name!r} has no parameter {key!r}; it takes: "
                f"{', '.join(sorted(accepted)) or 'none'}{did_you_mean(key, accepted)}"
            )
    return cls(**params)
