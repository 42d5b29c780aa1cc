"""Issue 20, the image store: a replaced image is never served from an old store, and a damaged store
or a full disk is one line (a DataError naming the store and the fix)."""

import errno
import os

import numpy as np
import pytest
import torch
from PIL import Image

from oltr.common.errors import DataError
from oltr.data import image_store
from oltr.data.decode import read_image


def bmp(path, value):
    """A BMP: same size on disk for any pixel value, so only the content changes."""
    Image.fromarray(np.full((6, 9, 3), value, np.uint8)).save(path)
    return str(path)


def test_a_replaced_image_of_the_same_size_and_mtime_gets_a_new_store(tmp_path):
    paths = [bmp(tmp_path / "a.bmp", 10), bmp(tmp_path / "b.bmp", 20)]
    first = image_store.open_or_build(paths, tmp_path / "cache", "S")
    stat = os.stat(paths[0])
    bmp(paths[0], 200)  # the same size; the old mtime put back, as a copy with preserved times does
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(paths[0]).st_size == stat.st_size and os.stat(paths[0]).st_mtime_ns == stat.st_mtime_ns
    second = image_store.open_or_build(paths, tmp_path / "cache", "S")
    assert second.directory != first.directory
    assert torch.equal(second[0], read_image(paths[0])) and int(second[0][0, 0, 0]) == 200


def test_the_content_check_catches_a_change_the_key_misses(tmp_path, monkeypatch, capsys):
    paths = [bmp(tmp_path / f"{i}.bmp", i) for i in range(5)]
    monkeypatch.setattr(image_store, "store_key", lambda paths: "same")  # a file system whose stat lies
    first = image_store.open_or_build(paths, tmp_path / "cache", "S")
    bmp(paths[3], 99)
    second = image_store.open_or_build(paths, tmp_path / "cache", "S")
    assert f"{paths[3]} changed since the image store" in capsys.readouterr().out
    assert second.directory == first.directory and int(second[3][0, 0, 0]) == 99
    assert [torch.equal(second[i], read_image(p)) for i, p in enumerate(paths)] == [True] * 5


@pytest.mark.parametrize("damage", ["truncated", "pixels missing", "index garbage"])
def test_a_damaged_store_is_one_line_naming_it(tmp_path, damage):
    paths = [bmp(tmp_path / f"{i}.bmp", i) for i in range(3)]
    store = image_store.open_or_build(paths, tmp_path / "cache", "S")
    pixels, index = store.directory / image_store.PIXELS, store.directory / image_store.INDEX
    if damage == "truncated":
        pixels.write_bytes(pixels.read_bytes()[:-7])
    elif damage == "pixels missing":
        pixels.unlink()
    else:
        index.write_bytes(b"not numpy")
    with pytest.raises(DataError) as caught:
        image_store.open_or_build(paths, tmp_path / "cache", "S")
    assert f"image store {store.directory} is damaged" in str(caught.value) and "delete that folder" in str(
        caught.value
    )
    assert "\n" not in str(caught.value)


def test_a_store_whose_index_is_missing_is_decoded_again(tmp_path):
    paths = [bmp(tmp_path / f"{i}.bmp", i) for i in range(3)]
    store = image_store.open_or_build(paths, tmp_path / "cache", "S")
    (store.directory / image_store.INDEX).unlink()
    again = image_store.open_or_build(paths, tmp_path / "cache", "S")
    assert [torch.equal(again[i], read_image(p)) for i, p in enumerate(paths)] == [True] * 3


def test_a_full_disk_while_building_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    paths = [bmp(tmp_path / f"{i}.bmp", i) for i in range(3)]

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(image_store.np, "save", full_disk)
    with pytest.raises(DataError, match=r"cannot write the image store in .*No space left on device \(ENOSPC\)"):
        image_store.open_or_build(paths, tmp_path / "cache", "S")
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.is_dir()] == []
