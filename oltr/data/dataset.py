"""Datasets over ``(image_path, label)`` samples read from a split file.

``SplitDataset`` is OLTR's: PIL images through a per-image transform (``training_opt.data_pipeline:
pil``). ``UInt8SplitDataset`` hands out uint8 tensors, from the decoded store when there is one,
for the batched transforms of ``batch_transforms.py`` (``data_pipeline: tensor``, the default).
"""

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import transforms as T

from ..common.errors import DataError
from .decode import decode_bytes, is_jpeg, read_bytes, read_image


class SplitDataset(Dataset):
    """Images of one split; ``dataset[i]`` is ``(image_tensor, label, i)``.

    Every image is opened with PIL and converted to RGB (grayscale digits and
    RGBA files alike), then passed through ``transform``; without one it is
    only turned into a float tensor in [0, 1]. The index comes back instead of
    OLTR's path so batches collate into tensors; ``paths[i]`` gives the file.
    """

    def __init__(self, samples, transform=None):
        self.paths = [str(path) for path, _ in samples]
        self.labels = np.asarray([label for _, label in samples], dtype=np.int64)
        self.transform = transform if transform is not None else T.ToTensor()

    def __len__(self):
        return len(self.paths)

    def load_image(self, index):
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except FileNotFoundError:
            raise DataError(f"image {path} does not exist (it was listed in the split file).") from None
        except DataError:
            raise
        # PIL fails in many ways: OSError, SyntaxError, DecompressionBombError, struct.error...
        except Exception as error:
            reason = f"{type(error).__name__}: {error}" if not isinstance(error, UnidentifiedImageError) else str(error)
            raise DataError(f"image {path} cannot be read as an image ({reason}); replace or remove it.") from None

    def __getitem__(self, key):
        index, _ = split_key(key)
        image = self.transform(self.load_image(index))
        return image, int(self.labels[index]), index


def split_key(key):
    """A loader asks for ``index`` or, from ``SeededBatchSampler``, ``(index, batch_seed)``."""
    if isinstance(key, tuple):
        return int(key[0]), int(key[1])
    return int(key), 0


class UInt8SplitDataset(Dataset):
    """``dataset[key]`` is ``(image, label, index, batch_seed)`` with ``image`` uint8 (3, H, W), RGB.

    ``store``: an ``ImageStore`` of exactly these samples (decoded once), else every image is
    decoded when asked for. ``encoded_jpegs``: JPEG files come back undecoded (their bytes, 1-d
    uint8) for the GPU decoder; other formats are decoded here. ``batch_transform``: the
    ``BatchTransform`` its loaders apply to a batch of its images.
    """

    def __init__(self, samples, store=None, encoded_jpegs=False, batch_transform=None):
        self.paths = [str(path) for path, _ in samples]
        self.labels = np.asarray([label for _, label in samples], dtype=np.int64)
        if store is not None and len(store) != len(self.paths):
            raise ValueError(f"the image store holds {len(store)} images, the split {len(self.paths)}")
        self.store = store
        self.encoded_jpegs = encoded_jpegs
        self.batch_transform = batch_transform

    def __len__(self):
        return len(self.paths)

    def load_image(self, index):
        if self.store is not None:
            return self.store[index]
        if not self.encoded_jpegs:
            return read_image(self.paths[index])
        data = read_bytes(self.paths[index])
        return data if is_jpeg(data) else decode_bytes(data, self.paths[index])

    def __getitem__(self, key):
        index, batch_seed = split_key(key)
        return self.load_image(index), int(self.labels[index]), index, batch_seed
