"""ResNet feature models of OLTR (Liu et al., CVPR 2019), built from torchvision's blocks.

ResNet-10 (BasicBlock, [1, 1, 1, 1], from scratch) is OLTR's ImageNet-LT backbone;
ResNet-152 (Bottleneck, [3, 8, 36, 3], ImageNet-pretrained) is its Places-LT one.
The original used Caffe ImageNet weights for ResNet-152; torchvision's
IMAGENET1K_V1 weights are the modern equivalent (the same original MSRA
training recipe), so ``pretrained="imagenet"`` loads those.

Output: the global-average-pooled last conv map, optionally through modulated
attention first and ``fc_add`` (Linear + ReLU) and dropout after, as in OLTR.
Module names (conv1, bn1, layer1..layer4) match torchvision's so its weights load
one to one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tv_models
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

from ..common.errors import CheckpointError, ConfigError
from .modulated_attention import ModulatedAttention


@dataclass(frozen=True)
class ResNetArch:
    block: type[nn.Module]
    layers: tuple[int, int, int, int]
    imagenet_weights: type | None  # torchvision WeightsEnum class, None when torchvision has none


RESNET_ARCHS: dict[str, ResNetArch] = {
    "resnet10": ResNetArch(BasicBlock, (1, 1, 1, 1), None),
    "resnet18": ResNetArch(BasicBlock, (2, 2, 2, 2), tv_models.ResNet18_Weights),
    "resnet34": ResNetArch(BasicBlock, (3, 4, 6, 3), tv_models.ResNet34_Weights),
    "resnet50": ResNetArch(Bottleneck, (3, 4, 6, 3), tv_models.ResNet50_Weights),
    "resnet152": ResNetArch(Bottleneck, (3, 8, 36, 3), tv_models.ResNet152_Weights),
}

# "imagenet" means the original-recipe weights, the closest to OLTR's Caffe ResNet-152.
IMAGENET_DEFAULT_WEIGHTS = "IMAGENET1K_V1"

# Keys of a pretrained file that belong to heads, not the backbone; they are never loaded.
_HEAD_PREFIXES = ("fc.", "fc_add.", "modulatedatt.")


def _conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def last_feature_map_size(input_size: int, small_input: bool) -> int:
    """Side of the last conv map for a square input: 7 for 224 with the standard stem.

    Standard stem: 7x7/2 conv (pad 3) then 3x3/2 max-pool (pad 1); small stem: 3x3/1 conv,
    no pool. layer2..layer4 each halve with a 3x3/2 conv (pad 1), which gives the same
    size as their 1x1/2 shortcut.
    """
    size = input_size
    if not small_input:
        size = _conv_output_size(size, kernel=7, stride=2, padding=3)
        size = _conv_output_size(size, kernel=3, stride=2, padding=1)
    for _ in range(3):
        size = _conv_output_size(size, kernel=3, stride=2, padding=1)
    return size


def _as_hw(input_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(input_size, int) and not isinstance(input_size, bool):
        return input_size, input_size
    if isinstance(input_size, Sequence) and len(input_size) == 2 and all(isinstance(s, int) for s in input_size):
        return int(input_size[0]), int(input_size[1])
    raise ConfigError(f"feature model param input_size={input_size!r} must be an int or an [height, width] pair.")


class ResNetFeature(nn.Module):
    """A ResNet trunk that returns pooled features: forward(x) -> (features (B, D), attention_maps | None).

    ``attention_maps`` is ``[x, spatial_attention, mask]`` from :class:`ModulatedAttention`
    when ``use_modulatedatt``, else None. ``feature_dim`` is D: ``feature_dim`` when
    ``use_fc`` else the backbone width (``backbone_dim`` = 8 * base_channels * expansion).
    """

    # What OLTR's ``fix: true`` leaves trainable in stage 2 (module-name prefixes).
    TRAINABLE_WHEN_FIXED = ("modulatedatt", "fc_add")

    def __init__(
        self,
        arch: str,
        *,
        use_modulatedatt: bool = False,
        use_fc: bool = False,
        dropout: float | None = None,
        small_input: bool = False,
        input_size: int | Sequence[int] = 224,
        base_channels: int = 64,
        feature_dim: int = 512,
        pretrained: str | os.PathLike | None = None,
    ):
        super().__init__()
        if arch not in RESNET_ARCHS:
            raise ConfigError(f"unknown ResNet arch {arch!r}; valid: {', '.join(RESNET_ARCHS)}.")
        _check_options(use_modulatedatt, use_fc, dropout, small_input, base_channels, feature_dim)
        spec = RESNET_ARCHS[arch]
        self.arch = arch
        self.backbone_dim = 8 * base_channels * spec.block.expansion
        self.feature_dim = feature_dim if use_fc else self.backbone_dim

        self._build_trunk(spec, base_channels, small_input)

        height, width = _as_hw(input_size)
        if min(height, width) < 1:
            raise ConfigError(f"feature model param input_size={input_size!r} must be positive.")
        map_hw = (last_feature_map_size(height, small_input), last_feature_map_size(width, small_input))
        self.feature_map_size = map_hw
        self.modulatedatt = ModulatedAttention(self.backbone_dim, *map_hw) if use_modulatedatt else None
        self.fc_add = nn.Linear(self.backbone_dim, feature_dim) if use_fc else None
        self.dropout = nn.Dropout(p=dropout) if dropout else None

        if pretrained is not None:
            self.load_backbone_weights(pretrained, small_input=small_input, base_channels=base_channels)

    def _build_trunk(self, spec: ResNetArch, base_channels: int, small_input: bool) -> None:
        if small_input:
            # Tiny images (8-32 px): keep resolution, as CIFAR ResNets do.
            self.conv1 = nn.Conv2d(3, base_channels, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, base_channels, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(base_channels)
        self.relu = nn.ReLU(inplace=True)
        in_channels = base_channels
        for index, num_blocks in enumerate(spec.layers):
            planes = base_channels * 2**index
            stage = _make_stage(spec.block, in_channels, planes, num_blocks, stride=1 if index == 0 else 2)
            self.add_module(f"layer{index + 1}", stage)
            in_channels = planes * spec.block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        # Same init as torchvision's ResNet and OLTR's: normal(0, sqrt(2 / (k*k*out))) convs, unit BN.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def backbone_state_keys(self) -> list[str]:
        """State-dict keys of the trunk (conv1 .. layer4), the part pretrained weights fill."""
        return [key for key in self.state_dict() if not key.startswith(_HEAD_PREFIXES)]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        attention_maps = None
        if self.modulatedatt is not None:
            x, attention_maps = self.modulatedatt(x)
        features = torch.flatten(self.avgpool(x), 1)
        if self.fc_add is not None:
            features = F.relu(self.fc_add(features))
        if self.dropout is not None:
            features = self.dropout(features)
        return features, attention_maps

    # ------------------------------------------------------------------ pretrained weights
    def load_backbone_weights(
        self, pretrained: str | os.PathLike, *, small_input: bool = False, base_channels: int = 64
    ) -> None:
        """Fill the trunk from torchvision's ImageNet weights ("imagenet" or a weights name such
        as "IMAGENET1K_V2") or from a local state-dict file. Heads (fc, fc_add, attention) keep their init."""
        spec = RESNET_ARCHS[self.arch]
        source = str(pretrained)
        if spec.imagenet_weights is not None and (source == "imagenet" or source in spec.imagenet_weights.__members__):
            if small_input or base_channels != 64:
                raise ConfigError(
                    f"pretrained={source!r} needs the standard {self.arch} (small_input=False, base_channels=64); "
                    f"got small_input={small_input}, base_channels={base_channels}."
                )
            state_dict = _download_imagenet_state_dict(self.arch, spec, source)
        elif source == "imagenet":
            raise ConfigError(
                f"pretrained='imagenet' is not available for {self.arch} (torchvision has no such weights); "
                f"use pretrained=None or a path to a local state-dict file."
            )
        else:
            state_dict = _read_state_dict_file(source)
        self._load_backbone_state(state_dict, source)

    def _load_backbone_state(self, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
        own_state = self.state_dict()
        wanted = self.backbone_state_keys()
        state_dict = {_strip_prefix(key): value for key, value in state_dict.items()}
        # Files saved before BatchNorm tracked batches (torchvision's V1 weights) lack this counter.
        missing = [k for k in wanted if k not in state_dict and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in state_dict if k not in own_state and not k.startswith(_HEAD_PREFIXES)]
        mismatched = [
            f"{k} {tuple(state_dict[k].shape)} vs {tuple(own_state[k].shape)}"
            for k in wanted
            if k in state_dict and tuple(state_dict[k].shape) != tuple(own_state[k].shape)
        ]
        if missing or unexpected or mismatched:
            problems = []
            if missing:
                problems.append(f"missing keys {_preview(missing)}")
            if unexpected:
                problems.append(f"unexpected keys {_preview(unexpected)}")
            if mismatched:
                problems.append(f"shape mismatches {_preview(mismatched)}")
            raise CheckpointError(
                f"pretrained weights {source} do not fit the {self.arch} backbone "
                f"(base_channels/small_input must match the saved model): {'; '.join(problems)}."
            )
        backbone_state = {k: state_dict[k] for k in wanted if k in state_dict}
        self.load_state_dict(backbone_state, strict=False)


def _check_options(use_modulatedatt, use_fc, dropout, small_input, base_channels, feature_dim) -> None:
    for name, value in (("use_modulatedatt", use_modulatedatt), ("use_fc", use_fc), ("small_input", small_input)):
        if not isinstance(value, bool):
            raise ConfigError(f"feature model param {name}={value!r} must be true or false.")
    if dropout is not None and not (isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0):
        raise ConfigError(f"feature model param dropout={dropout!r} must be null or a probability in [0, 1).")
    for name, value in (("base_channels", base_channels), ("feature_dim", feature_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"feature model param {name}={value!r} must be a positive integer.")


def _make_stage(block: type[nn.Module], in_channels: int, planes: int, num_blocks: int, stride: int) -> nn.Sequential:
    """One ResNet stage of torchvision blocks, laid out as torchvision's ``ResNet._make_layer``."""
    out_channels = planes * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))
    blocks = [block(in_channels, planes, stride, downsample)]
    blocks += [block(out_channels, planes) for _ in range(1, num_blocks)]
    return nn.Sequential(*blocks)


def _download_imagenet_state_dict(arch: str, spec: ResNetArch, source: str) -> Mapping[str, torch.Tensor]:
    weights = spec.imagenet_weights[IMAGENET_DEFAULT_WEIGHTS if source == "imagenet" else source]
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as error:  # no network, or a corrupt download
        raise CheckpointError(
            f"could not fetch torchvision's {weights} weights for {arch} ({error}); "
            f"download them where there is network and pass pretrained=<path to the .pth file>."
        ) from error


def _read_state_dict_file(path: str) -> Mapping[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise CheckpointError(
            f"pretrained weights file {path} does not exist; give a state-dict file, 'imagenet' or null."
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or non-tensor pickles
        raise CheckpointError(f"pretrained weights file {path} could not be read as a state dict ({error}).") from error
    # Accept a checkpoint that wraps its weights, as training scripts often save them.
    for wrapper_key in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(wrapper_key), Mapping):
            loaded = loaded[wrapper_key]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(f"pretrained weights file {path} does not hold a state dict of tensors.")
    return loaded


def _strip_prefix(key: str) -> str:
    # DataParallel / DistributedDataParallel checkpoints prefix every key with "module.".
    return key[len("module.") :] if key.startswith("module.") else key


def _preview(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}] ({len(items)} in all)"
