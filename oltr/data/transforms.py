"""Image transforms of OLTR (Liu et al., CVPR 2019), sizes taken from the config.

With the defaults these are exactly OLTR's ``data_transforms``: train =
RandomResizedCrop(224) + horizontal flip + ColorJitter(0.4, 0.4, 0.4, 0) +
ImageNet normalisation; val/test = Resize(256) + CenterCrop(224).
"""

from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_transform(
    train,
    input_size=224,
    resize_size=256,
    color_jitter=(0.4, 0.4, 0.4, 0),
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    horizontal_flip=True,
    crop_scale=(0.08, 1.0),
):
    """The train (augmenting) or evaluation transform; output is (3, input_size, input_size).

    ``color_jitter`` is (brightness, contrast, saturation, hue); all zeros or
    None skips it. ``crop_scale`` is RandomResizedCrop's area range.
    """
    normalize = [T.ToTensor(), T.Normalize(list(mean), list(std))]
    if not train:
        return T.Compose([T.Resize(resize_size), T.CenterCrop(input_size), *normalize])
    steps = [T.RandomResizedCrop(input_size, scale=tuple(crop_scale))]
    if horizontal_flip:
        steps.append(T.RandomHorizontalFlip())
    if color_jitter is not None and any(value != 0 for value in color_jitter):
        brightness, contrast, saturation, hue = color_jitter
        steps.append(T.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue))
    return T.Compose(steps + normalize)
