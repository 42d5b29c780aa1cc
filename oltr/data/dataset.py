"""A dataset over ``(image_path, label)`` samples read from a split file."""
import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import transforms as T

from oltr.errors import DataError


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
        except Exception as error:  # PIL fails in many ways: OSError, SyntaxError, DecompressionBombError, struct.error...
            reason = f"{type(error).__name__}: {error}" if not isinstance(error, UnidentifiedImageError) else str(error)
            raise DataError(f"image {path} cannot be read as an image ({reason}); replace or remove it.") from None

    def __getitem__(self, index):
        image = self.transform(self.load_image(index))
        return image, int(self.labels[index]), index
