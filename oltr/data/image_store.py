"""Decode a split's images once into a memory-mapped uint8 store that every later run reads.

    store = open_or_build(paths, cache_dir, name)   # decodes on the first call, maps the file after
    store[i]                                        # uint8 (3, H, W), equal byte for byte to read_image(paths[i])

One directory per store, ``<cache_dir>/<name>-<key>/`` with ``pixels.u8`` (every image's bytes
in height x width x RGB order, as decoders write them and as the uint8 resize kernels read them
fastest, one image after another) and ``index.npy`` (offset, height, width, CRC-32 of the file per
image). The key hashes the image paths with their sizes, modification times, inodes and change
times, so an edited split file or a replaced image gives a new store, and an unchanged split a warm
start: a replaced image of the same size and mtime still has a new ctime (which no user call can set
back) and usually a new inode. On top, each open checks the CRC-32 of a sample of the files (CONTENT_SAMPLE)
against the store and rebuilds it on a mismatch. Hashing every file instead costs a full read of the
dataset at each start (docs/reliability.md has the numbers); stat() of every file costs well under a second
for ImageNet-LT. A damaged store (a file missing or cut short) or a build that fails to write (a full
disk) is one line naming the store and the fix. The directory is written under a
temporary name and renamed into place, and built under a file lock, so ranks, workers and
concurrent runs share one copy and never see half of one. The operating system's page cache
holds the pixels once for all processes that map the file.
"""

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

from ..common.errors import DataError
from .decode import decode_bytes, read_bytes

FORMAT_VERSION = 3
CONTENT_SAMPLE = 64  # files whose CRC-32 each open compares with the store's
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
    """A digest of the images' paths, sizes, modification and change times and inodes (and of this format)."""
    digest = hashlib.sha256(f"oltr image store v{FORMAT_VERSION}\n".encode())
    for path in paths:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ino}\0{stat.st_ctime_ns}\n".encode())
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
        self.index_mtime = _index_mtime(self.directory)
        self.offsets, self.heights, self.widths, self.checksums = _read_index(self.directory)
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
        pixels = self._load()[start : start + 3 * h * w]
        if isinstance(pixels, np.ndarray):
            pixels = torch.from_numpy(np.array(pixels))  # a copy: the map is read-only
        return pixels.view(h, w, 3).permute(2, 0, 1)


def _index_mtime(directory):
    """Which build of a store this is (a rebuild writes a new index file)."""
    try:
        stat = os.stat(Path(directory) / INDEX)
        return stat.st_ino, stat.st_mtime_ns
    except OSError:
        return None


def _damaged(directory, why):
    return DataError(
        f"the image store {directory} is damaged ({why}); delete that folder (a cache: the next run "
        "decodes the images again)"
    )


def _read_index(directory):
    """(offsets, heights, widths, checksums) of a store, checked against its pixel file's size."""
    try:
        index = np.load(directory / INDEX)
        size = (directory / PIXELS).stat().st_size
    except FileNotFoundError as error:
        raise _damaged(directory, f"{Path(error.filename).name} is missing") from None
    except (OSError, ValueError, EOFError) as error:
        raise _damaged(directory, f"{INDEX} cannot be read: {error}") from None
    if index.ndim != 2 or index.shape[1] != 4 or index.dtype != np.int64:
        raise _damaged(directory, f"{INDEX} holds {index.dtype} {index.shape}, not (images, 4) int64")
    expected = int(index[-1, 0] + 3 * index[-1, 1] * index[-1, 2]) if len(index) else 0
    if size != expected:
        raise _damaged(directory, f"{PIXELS} has {size} bytes, its index {expected}: cut short or overwritten")
    return index[:, 0], index[:, 1], index[:, 2], index[:, 3]


class _DecodeAll(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        data = read_bytes(self.paths[index])
        return decode_bytes(data, self.paths[index]), zlib.crc32(data.numpy())


def _write_store(paths, directory, num_workers):
    """Decode every image (``num_workers`` processes) into ``directory``."""
    # A generator of its own: a DataLoader draws its base seed from the one it is given, and the
    # global one is the run's, seeded just before (a first run must train as a warm one does).
    loader = torch.utils.data.DataLoader(
        _DecodeAll(paths),
        batch_size=None,
        generator=torch.Generator(),
        num_workers=num_workers if len(paths) >= PARALLEL_FROM else 0,
    )
    index = np.zeros((len(paths), 4), dtype=np.int64)
    offset = 0
    with open(directory / PIXELS, "wb") as out:
        for position, (image, checksum) in enumerate(loader):
            index[position] = (offset, image.shape[1], image.shape[2], checksum)
            out.write(image.permute(1, 2, 0).contiguous().numpy().tobytes())
            offset += image.numel()
        out.flush()
        os.fsync(out.fileno())
    np.save(directory / INDEX, index)
    (directory / INFO).write_text(
        json.dumps(
            {"format": FORMAT_VERSION, "images": len(paths), "bytes": offset, "first": str(paths[0]) if paths else None}
        )
        + "\n"
    )


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


def changed_files(store, paths, sample=CONTENT_SAMPLE):
    """The first of a sample of ``paths`` whose content is not what ``store`` was built from, else None.

    The sample is drawn anew at each open (its own generator: the run's random state is untouched), so
    repeated runs check different files."""
    if not paths:
        return None
    chosen = np.random.default_rng().choice(len(paths), size=min(sample, len(paths)), replace=False)
    for index in sorted(int(i) for i in chosen):
        try:
            with open(paths[index], "rb") as handle:
                same = zlib.crc32(handle.read()) == int(store.checksums[index])
        except OSError:
            same = False
        if not same:
            return paths[index]
    return None


def _discard(directory):
    """Rename a stale store out of the way (processes mapping it keep their map), then delete it."""
    trash = directory.with_name(f".{directory.name}.stale-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.replace(directory, trash)
    shutil.rmtree(trash, ignore_errors=True)


def open_or_build(paths, cache_dir, name, num_workers=0):
    """The store of ``paths``, decoded into ``cache_dir`` on first use (and again if a file's content changed)."""
    paths = [str(path) for path in paths]
    cache_dir = Path(cache_dir)
    directory = cache_dir / f"{name}-{store_key(paths)}"
    if (directory / INDEX).is_file():
        store = ImageStore(directory)
        changed = changed_files(store, paths)
        if changed is None:
            return store
        print(
            f"note: {changed} changed since the image store {directory} was built; decoding the split again", flush=True
        )
        with _lock(cache_dir / f"{directory.name}.lock"):
            # another rank or run that saw the change too may have rebuilt it while we waited
            if _index_mtime(directory) == store.index_mtime:
                _discard(directory)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"cannot create the image cache {cache_dir} ({error.strerror or error}); set "
            "training_opt.cache_dir (or OLTR_CACHE_DIR) to a writable folder, or "
            "training_opt.cache_images to 'never'"
        ) from None
    with _lock(cache_dir / f"{directory.name}.lock"):
        if not (directory / INDEX).is_file():  # another process may have built it while we waited
            if directory.exists():  # a store whose index is gone: a damaged cache, decoded again
                _discard(directory)
            staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=cache_dir))
            try:
                _write_store(paths, staging, num_workers)
                os.replace(staging, directory)
            except OSError as error:  # a full disk, a quota, a cache folder gone read-only
                reason = f"{error.strerror or error} ({errno.errorcode.get(error.errno or 0, 'OSError')})"
                raise DataError(
                    f"cannot write the image store in {cache_dir}: {reason}; nothing was kept. Free space "
                    "there, set training_opt.cache_dir (or OLTR_CACHE_DIR) to another folder, or "
                    "training_opt.cache_images to 'never'"
                ) from None
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return ImageStore(directory)
