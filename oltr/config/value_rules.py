"""Rules on values the schema's types cannot say: the transforms' lists (lengths, ranges, ordering).

    check_transforms(config, where)   training_opt.transforms: mean and std of 3 channels (std > 0),
                                      crop_scale [min, max] with 0 < min <= max <= 1, color_jitter of 4
                                      numbers >= 0

Each broken rule is one ConfigError naming the key, its value and what it must be, before anything runs
(a std of 0 would otherwise surface as a NaN loss, blamed on the learning rate).
"""

import math

from ..common.errors import ConfigError


def _numbers(value):
    return isinstance(value, list) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value
    )


def check_transforms(config, where):
    transforms = config["training_opt"]["transforms"]
    key = "training_opt.transforms"
    for name in ("mean", "std"):
        value = transforms[name]
        if not _numbers(value) or len(value) != 3:
            raise ConfigError(
                f"{where}: {key}.{name} is {value!r}; it must be 3 finite numbers, one per RGB channel "
                "(images are read as RGB, grayscale ones too)"
            )
    if any(x <= 0 for x in transforms["std"]):
        raise ConfigError(
            f"{where}: {key}.std is {transforms['std']!r}; every channel's std must be > 0 (the images are "
            "divided by it), e.g. the training pixels' std, or 1 to leave them unscaled"
        )
    scale = transforms["crop_scale"]
    if not _numbers(scale) or len(scale) != 2:
        raise ConfigError(f"{where}: {key}.crop_scale is {scale!r}; it must be [min, max], two numbers")
    if not 0 < scale[0] <= scale[1] <= 1:
        raise ConfigError(
            f"{where}: {key}.crop_scale is {scale!r}; it must be [min, max] with 0 < min <= max <= 1 (the "
            "share of the image a random crop keeps), e.g. [0.08, 1.0]"
        )
    jitter = transforms["color_jitter"]
    if not _numbers(jitter) or len(jitter) != 4 or any(x < 0 for x in jitter):
        raise ConfigError(
            f"{where}: {key}.color_jitter is {jitter!r}; it must be 4 numbers >= 0 (brightness, contrast, "
            "saturation, hue), e.g. [0.4, 0.4, 0.4, 0.0]"
        )
