"""SplitDataset returns tensors and indices; transforms give the configured sizes (OLTR's at 224)."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from oltr.common.errors import DataError
from oltr.data.dataset import SplitDataset
from oltr.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transform


@pytest.fixture
def samples(tmp_path):
    gray = tmp_path / "gray.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), mode="L").save(gray)
    color = tmp_path / "color.jpg"
    Image.new("RGB", (40, 30), (255, 0, 0)).save(color)
    return [(str(gray), 2), (str(color), 0)]


def test_items_are_tensor_label_index(samples):
    dataset = SplitDataset(samples)
    image, label, index = dataset[0]
    assert isinstance(image, torch.Tensor) and image.shape == (3, 8, 8)  # grayscale converted to RGB
    assert torch.equal(image[0], image[2]) and image.max() <= 1.0
    assert (label, index) == (2, 0)
    assert dataset[1][0].shape == (3, 30, 40)
    assert dataset.labels.dtype == np.int64 and dataset.labels.tolist() == [2, 0]


def test_a_dataloader_collates_batches(samples):
    dataset = SplitDataset(samples, build_transform(False, input_size=16, resize_size=20))
    images, labels, indices = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2)))
    assert images.shape == (2, 3, 16, 16) and labels.tolist() == [2, 0] and indices.tolist() == [0, 1]


def test_corrupt_and_missing_images_name_the_path(samples, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a png at all")
    dataset = SplitDataset([(str(corrupt), 0), (str(tmp_path / "gone.png"), 0)])
    with pytest.raises(DataError, match="corrupt.png cannot be read"):
        dataset[0]
    with pytest.raises(DataError, match="gone.png does not exist"):
        dataset[1]


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("input_size, resize_size", [(224, 256), (32, 36)])
def test_output_sizes(train, input_size, resize_size):
    image = Image.new("RGB", (300, 200), (10, 200, 30))
    out = build_transform(train, input_size=input_size, resize_size=resize_size)(image)
    assert out.shape == (3, input_size, input_size)


def test_defaults_are_oltrs_transforms():
    train = build_transform(True).transforms
    assert [type(t) for t in train] == [
        T.RandomResizedCrop,
        T.RandomHorizontalFlip,
        T.ColorJitter,
        T.ToTensor,
        T.Normalize,
    ]
    assert train[0].size == (224, 224) and train[0].scale == (0.08, 1.0)
    assert train[2].brightness == (0.6, 1.4) and train[2].hue in (None, (0, 0))
    assert tuple(train[4].mean) == IMAGENET_MEAN and tuple(train[4].std) == IMAGENET_STD
    test = build_transform(False).transforms
    assert [type(t) for t in test] == [T.Resize, T.CenterCrop, T.ToTensor, T.Normalize]
    assert test[0].size == 256 and test[1].size == (224, 224)


def test_optional_steps_can_be_switched_off():
    steps = build_transform(True, color_jitter=(0, 0, 0, 0), horizontal_flip=False, crop_scale=(0.5, 1.0)).transforms
    assert [type(t) for t in steps] == [T.RandomResizedCrop, T.ToTensor, T.Normalize]
    assert steps[0].scale == (0.5, 1.0)


def test_normalisation_is_applied():
    image = Image.new("RGB", (8, 8), (255, 255, 255))
    out = build_transform(False, input_size=8, resize_size=8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))(image)
    assert torch.allclose(out, torch.full_like(out, 2.0))  # (1 - 0.5) / 0.25
