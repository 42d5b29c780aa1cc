"""Decode a split's images once into a memory-mapped uint8 store that every later run reads.

    store = open_or_build(paths, cache_dir, name)   # decodes on the first call, maps the file after
    store[i]                                        # uint8 (3, H, W), equal byte for byte to read_image(paths[i])

One directory per store, ``<cache_dir>/<name>-<key>/`` with ``pixels.u8`` (every image's bytes
in height x width x RGB order, as decoders write them and as the uint8 resize kernels read them
fastest, one image after another) and ``index.npy`` (offset, height, width per image). The key hashes
the image paths with their sizes and modification times, so an edited split file or a replaced
image gives a new store, and an unchanged split a warm start. The directory is written under a
temporary name and renamed into place, and built under a file lock, so ranks, workers and
concurrent runs share one copy and never see half of one. The operating system's page cache
holds the pixels once for all processes that map the file.
"""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..common.errors import DataError
from .decode import read_image

FORMAT_VERSION = 2
PIXELS, INDEX, INFO = "pixels.u8", "index.npy", "info.json"
HEADER_SAMPLE = 256  # images whose headers estimate a split's decoded size
PARALLEL_FROM = 2000  # images from which the store is decoded by worker processes (below, starting them costs more)
IN_MEMORY_BYTES = 256 * 2**20  # a store up to this size is read into each process's memory, not mapped


def default_cache_dir():
    """``$OLTR_CACHE_DIR``, else ``$XDG_CACHE_HOME/oltr-lt/images`` (``~/.cache/oltr-lt/images``)."""
    if os.environ.get("OLTR_CACHE_DIR"):
        return Path(os.environ["OLTR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "oltr-lt" / "images"


def store_key(paths):
    """A digest of the images' paths, sizes and modification times (and of this format)."""
    digest = hashlib.sha256(f"oltr image store v{FORMAT_VERSION}\n".encode())
    for path in paths:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())  # decoding will name it
    return digest.hexdigest()[:20]


def estimated_bytes(paths):
    """Decoded size (3 bytes a pixel) estimated from the headers of up to HEADER_SAMPLE images."""
    from PIL import Image

    if not paths:
        return 0
    step = max(1, len(paths) // HEADER_SAMPLE)
    sample = paths[::step][:HEADER_SAMPLE]
    pixels = []
    for path in sample:
        try:
            with Image.open(path) as image:  # reads the header only
                pixels.append(image.size[0] * image.size[1])
        except Exception:  # an unreadable file fails later with its own message, when it is decoded
            continue
    if not pixels:
        return 0
    return int(3 * np.mean(pixels) * len(paths))


class ImageStore:
    """A built store; pickles as its path (each process reads or maps the file itself).

    ``store[i]`` may be a view of the store's memory: transforms read it and write elsewhere.
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        index = np.load(self.directory / INDEX)
        self.offsets, self.heights, self.widths = index[:, 0], index[:, 1], index[:, 2]
        self._pixels = None

    def __len__(self):
        return len(self.offsets)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_pixels"] = None
        return state

    def _load(self):
        """A small store is read into memory whole (slicing it costs a view); a large one is mapped,
        and each image copied out of the read-only map when asked for."""
        if self._pixels is None:
            path = self.directory / PIXELS
            if path.stat().st_size <= IN_MEMORY_BYTES:
                self._pixels = torch.from_numpy(np.fromfile(path, dtype=np.uint8))
            else:
                self._pixels = np.memmap(path, dtype=np.uint8, mode="r")
        return self._pixels

    def __getitem__(self, index):
        start = int(self.offsets[index])
        h, w = int(self.heights[index]), int(self.widths[index])
        pixels = self._load()[start:start + 3 * h * w]
        if isinstance(pixels, np.ndarray):
            pixels = torch.from_numpy(np.array(pixels))  # a copy: the map is read-only
        return pixels.view(h, w, 3).permute(2, 0, 1)


class _DecodeAll(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return read_image(self.paths[index])


def _write_store(paths, directory, num_workers):
    """Decode every image (``num_workers`` processes) into ``directory``."""
    # A generator of its own: a DataLoader draws its base seed from the one it is given, and the
    # global one is the run's, seeded just before (a first run must train as a warm one does).
    loader = torch.utils.data.DataLoader(_DecodeAll(paths), batch_size=None, generator=torch.Generator(),
                                         num_workers=num_workers if len(paths) >= PARALLEL_FROM else 0)
    index = np.zeros((len(paths), 3), dtype=np.int64)
    offset = 0
    with open(directory / PIXELS, "wb") as out:
        for position, image in enumerate(loader):
            index[position] = (offset, image.shape[1], image.shape[2])
            out.write(image.permute(1, 2, 0).contiguous().numpy().tobytes())
            offset += image.numel()
        out.flush()
        os.fsync(out.fileno())
    np.save(directory / INDEX, index)
    (directory / INFO).write_text(json.dumps({"format": FORMAT_VERSION, "images": len(paths), "bytes": offset,
                                              "first": str(paths[0]) if paths else None}) + "\n")


@contextlib.contextmanager
def _lock(path):
    """An inter-process lock: concurrent ranks and runs decode a split once, the rest wait and read it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: two builders may both decode; the rename keeps either's store whole
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_or_build(paths, cache_dir, name, num_workers=0):
    """The store of ``paths``, decoded into ``cache_dir`` on first use."""
    paths = [str(path) for path in paths]
    cache_dir = Path(cache_dir)
    directory = cache_dir / f"{name}-{store_key(paths)}"
    if (directory / INDEX).is_file():
        return ImageStore(directory)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create the image cache {cache_dir} ({error.strerror or error}); set "
                        "training_opt.cache_dir (or OLTR_CACHE_DIR) to a writable folder, or "
                        "training_opt.cache_images to 'never'") from None
    with _lock(cache_dir / f"{directory.name}.lock"):
        if not (directory / INDEX).is_file():  # another process may have built it while we waited
            staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=cache_dir))
            try:
                _write_store(paths, staging, num_workers)
                os.replace(staging, directory)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return ImageStore(directory)
