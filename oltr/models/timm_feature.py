"""Any timm model as the feature model: ``networks.feat_model.type: timm``.

``model_name`` is any name ``timm.list_models()`` knows (a pretrained tag such as
``vit_base_patch16_clip_224.openai`` included). ``pretrained``: false (random init), true (timm's
hub weights, downloaded once into the Hugging Face cache; ``HF_HUB_OFFLINE=1`` reads only the
cache) or the path of a local ``.pth`` / ``.safetensors`` state dict, read by timm's own loader
(so its conversions of original checkpoints, e.g. OpenAI's CLIP, apply) into the model without
its classifier. The features are timm's pre-logits (``forward_features`` then ``forward_head(...,
pre_logits=True)``), ``feature_dim`` wide; OLTR's options (modulated attention on a
convolutional map, ``fc_add``, dropout) apply as in ResNetFeature, and ``lora`` wraps the named
linear layers with peft's LoRA after the weights are loaded (the finetune recipe trains them).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..common.errors import CheckpointError, ConfigError
from .modulated_attention import ModulatedAttention

_INSTALL = "pip install -e '.[timm]'"
_LORA_KEYS = ("r", "alpha", "dropout", "target_modules")


def _timm():
    try:
        import timm
    except ImportError:
        raise ConfigError(f"networks.feat_model.type 'timm' needs the timm package; {_INSTALL}") from None
    return timm


class TimmFeature(nn.Module):
    """A timm model's pooled pre-logits: forward(x) -> (features (B, D), attention_maps | None)."""

    # What OLTR's ``fix: true`` leaves trainable in stage 2 (module-name prefixes), as ResNetFeature.
    TRAINABLE_WHEN_FIXED = ("modulatedatt", "fc_add")

    def __init__(
        self,
        arch: str = "timm",
        *,
        model_name: str | None = None,
        pretrained: bool | str | os.PathLike | None = False,
        model_kwargs: Mapping | None = None,
        use_modulatedatt: bool = False,
        use_fc: bool = False,
        dropout: float | None = None,
        input_size: int | Sequence[int] = 224,
        feature_dim: int = 512,
        lora: Mapping | None = None,
    ):
        super().__init__()
        timm = _timm()
        self.model_name = check_model_name(timm, model_name)
        kwargs = dict(model_kwargs or {})
        self.backbone = _create(timm, self.model_name, pretrained, kwargs)
        self.backbone_dim = int(getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features)
        self.feature_dim = feature_dim if use_fc else self.backbone_dim
        self.modulatedatt = None
        if use_modulatedatt:
            channels, height, width = self._feature_map_shape(input_size)
            self.modulatedatt = ModulatedAttention(channels, height, width)
        self.fc_add = nn.Linear(self.backbone_dim, feature_dim) if use_fc else None
        self.dropout = nn.Dropout(p=dropout) if dropout else None
        self.lora_targets = ()
        if lora:
            self.lora_targets = add_lora(self.backbone, lora)

    def _feature_map_shape(self, input_size):
        height, width = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        was_training = self.backbone.training
        with torch.no_grad():
            shape = tuple(self.backbone.eval().forward_features(torch.zeros(1, 3, height, width)).shape)
        self.backbone.train(was_training)
        if len(shape) != 4:
            raise ConfigError(
                f"feature model param use_modulatedatt needs a convolutional map, but timm model "
                f"{self.model_name!r} gives features of shape {shape}; set use_modulatedatt false"
            )
        return shape[1], shape[2], shape[3]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        x = self.backbone.forward_features(x)
        attention_maps = None
        if self.modulatedatt is not None:
            x, attention_maps = self.modulatedatt(x)
        features = self.backbone.forward_head(x, pre_logits=True)
        if self.fc_add is not None:
            features = F.relu(self.fc_add(features))
        if self.dropout is not None:
            features = self.dropout(features)
        return features, attention_maps

    def adapt_state_dict(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A state dict saved without LoRA, renamed onto this model's LoRA-wrapped layers
        (``...qkv.weight`` -> ``...qkv.base_layer.weight``), so stage-1 weights load into a LoRA run."""
        own = self.state_dict()
        adapted = {}
        for key, value in state.items():
            stem, _, leaf = key.rpartition(".")
            wrapped = f"{stem}.base_layer.{leaf}"
            adapted[wrapped if key not in own and wrapped in own else key] = value
        return adapted


def check_model_name(timm, model_name) -> str:
    """The name if timm knows it; a ConfigError with the closest names otherwise."""
    if not isinstance(model_name, str) or not model_name:
        raise ConfigError(
            "feature model 'timm' needs param model_name, a timm model name (python -c "
            "\"import timm; print(timm.list_models('resnet*'))\" lists them)"
        )
    if timm.is_model(model_name):
        return model_name
    import difflib

    arch = model_name.split(".", 1)[0]
    close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    raise ConfigError(
        f"timm does not know the model {model_name!r}{hint}; pick a name from timm.list_models() "
        f"(timm {timm.__version__})"
    )


def _create(timm, model_name, pretrained, kwargs):
    """The timm model without its classifier, with the weights ``pretrained`` names."""
    if pretrained is None or pretrained is False:
        return _create_checked(timm, model_name, False, kwargs)
    if pretrained is True:
        try:
            return timm.create_model(model_name, pretrained=True, num_classes=0, **kwargs)
        except TypeError as error:
            raise ConfigError(f"timm model {model_name!r} rejects model_kwargs {kwargs}: {error}") from None
        except Exception as error:  # no network, no cached file, no weights for that tag: all one advice
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise CheckpointError(
                f"could not load timm's pretrained weights for {model_name!r} ({first}); fetch them once where "
                f"there is network (python -c \"import timm; timm.create_model('{model_name}', pretrained=True)\") "
                "so the Hugging Face cache holds them, or set pretrained to the path of a local .pth/.safetensors"
            ) from None
    if not isinstance(pretrained, (str, os.PathLike)):
        raise ConfigError(
            f"feature model param pretrained={pretrained!r} must be false, true (timm's hub weights) or a path"
        )
    path = os.fspath(pretrained)
    if not os.path.isfile(path):
        raise CheckpointError(
            f"pretrained weights file {path} does not exist; give the path of a .pth or .safetensors state dict "
            f"of {model_name!r}, true for timm's hub weights, or false"
        )
    model = _create_checked(timm, model_name, False, kwargs)
    load_weights_file(model, path, model_name)
    return model


def load_weights_file(model: nn.Module, path: str, model_name: str) -> None:
    """A user's state-dict file into a classifier-free timm model: read by timm's reader (.pth or
    .safetensors, wrapped or ``module.``-prefixed), converted by the model's own checkpoint filter
    (as for its hub weights), the classifier's keys dropped, every other key required."""
    from timm.models import load_state_dict

    try:
        state = load_state_dict(path, weights_only=True)
        convert = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
        if convert is not None:
            state = convert(state, model)
    except Exception as error:  # torch and safetensors raise several types for a corrupt or foreign file
        raise CheckpointError(f"pretrained weights file {path} could not be read as a state dict ({error})") from None
    head = model.pretrained_cfg.get("classifier") or ()
    heads = (head,) if isinstance(head, str) else tuple(head)
    state = {k: v for k, v in state.items() if not any(k.startswith(f"{h}.") for h in heads)}
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    problems = [
        f"{what} {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''} ({len(keys)} in all)"
        for what, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched))
        if keys
    ]
    if problems:
        raise CheckpointError(
            f"pretrained weights file {path} does not fit timm model {model_name!r} ({'; '.join(problems)}); "
            "save the state dict of that same model (and model_kwargs)"
        )
    model.load_state_dict(state)


def _create_checked(timm, model_name, pretrained, kwargs):
    try:
        return timm.create_model(model_name, pretrained=pretrained, num_classes=0, **kwargs)
    except TypeError as error:
        raise ConfigError(f"timm model {model_name!r} rejects model_kwargs {kwargs}: {error}") from None


def add_lora(backbone: nn.Module, lora: Mapping) -> tuple[str, ...]:
    """Wrap ``lora['target_modules']`` (module-name suffixes, e.g. ["qkv"]) with peft's LoRA, in place."""
    unknown = [key for key in lora if key not in _LORA_KEYS]
    if unknown or not isinstance(lora.get("target_modules"), (list, tuple)) or not lora["target_modules"]:
        raise ConfigError(
            f"feature model param lora={dict(lora)!r} must set target_modules (a list of module names, e.g. "
            f"['qkv'] for a ViT) and may set r, alpha, dropout; valid keys: {', '.join(_LORA_KEYS)}"
        )
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise ConfigError(f"feature model param lora needs the peft package; {_INSTALL}") from None
    targets = tuple(lora["target_modules"])
    names = [name for name, _ in backbone.named_modules()]
    missing = [t for t in targets if not any(name == t or name.endswith(f".{t}") for name in names)]
    if missing:
        raise ConfigError(
            f"feature model param lora.target_modules: no module named {missing[0]!r} in the timm model; "
            "name the linear layers to adapt (e.g. 'qkv' in a ViT's attention)"
        )
    config = LoraConfig(
        r=int(lora.get("r", 8)),
        lora_alpha=float(lora.get("alpha", 2 * int(lora.get("r", 8)))),
        lora_dropout=float(lora.get("dropout", 0.0)),
        target_modules=list(targets),
    )
    inject_adapter_in_model(config, backbone)
    # peft freezes all but the adapters; what trains is the recipe's choice (oltr/recipes/finetune.py)
    backbone.requires_grad_(True)
    return targets
