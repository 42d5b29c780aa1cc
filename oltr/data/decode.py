"""Decode an image file into a uint8 tensor (3, H, W), RGB, as OLTR's ``Image.open(path).convert('RGB')`` sees it.

JPEGs go through ``torchvision.io.decode_image`` (libjpeg-turbo: about twice as fast as PIL on a
500x375 JPEG, and no PIL image to convert afterwards); a JPEG it refuses is handed to PIL, which
decides (and names the damage). Every other format is decoded by PIL: torchvision 0.29's PNG
decoder crashes the process (a segmentation fault) on a damaged data stream instead of raising,
and a PNG is decoded once into the image store anyway. A missing or unreadable file is a
``DataError`` naming it.
"""

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.io import ImageReadMode, decode_image

from ..common.errors import DataError


def read_bytes(path):
    """The file's bytes as a 1-d uint8 tensor (what ``decode_image`` and the GPU decoder take)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist (it was listed in the split file).") from None
    except OSError as error:
        raise DataError(f"image {path} cannot be read ({error.strerror or error}); check its permissions.") from None
    if not data:
        return torch.empty(0, dtype=torch.uint8)  # frombuffer refuses an empty buffer; decode_bytes names it
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def decode_bytes(data, path):
    """uint8 (3, H, W) from a file's bytes; ``path`` names the file in errors and for the PIL fallback."""
    if len(data) == 0:
        raise DataError(f"image {path} cannot be read as an image (the file is empty); replace or remove it.")
    if is_jpeg(data):
        try:
            return decode_image(data, mode=ImageReadMode.RGB)
        except RuntimeError:
            pass  # damaged, or a JPEG flavour libjpeg-turbo refuses: PIL decides which
    return _decode_with_pil(path)


def is_jpeg(data):
    """The JPEG start-of-image marker."""
    return len(data) > 2 and int(data[0]) == 0xFF and int(data[1]) == 0xD8


def read_image(path):
    return decode_bytes(read_bytes(path), path)


def _decode_with_pil(path):
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist (it was listed in the split file).") from None
    except Exception as error:  # PIL fails in many ways: OSError, SyntaxError, DecompressionBombError, struct.error...
        reason = f"{type(error).__name__}: {error}" if not isinstance(error, UnidentifiedImageError) else str(error)
        raise DataError(f"image {path} cannot be read as an image ({reason}); replace or remove it.") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
