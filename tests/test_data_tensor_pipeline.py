"""The tensor data pipeline: decoding, the decoded store, and OLTR's transforms a batch at a time.

Independent truths: PIL (the reference pipeline, OLTR's own), torchvision's RandomResizedCrop and
ColorJitter parameter rules, and the distributions they define.
"""

import io
import pickle
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from torchvision import transforms as T
from torchvision.transforms import functional as F

from oltr.common.errors import DataError
from oltr.data import image_store
from oltr.data.batch_transforms import RATIO, BatchTransform, sample_crop_boxes
from oltr.data.batches import SeededBatchSampler, TensorLoader
from oltr.data.dataset import UInt8SplitDataset
from oltr.data.decode import read_image
from oltr.data.transforms import build_transform

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def _smooth_rgb(rng, height, width):
    """Photo-like content (smooth, so JPEG and resampling behave as on real images)."""
    coarse = rng.integers(0, 256, (max(2, height // 12), max(2, width // 12), 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """Files in the formats and modes a split may hold, and what PIL reads from each."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    rgb = _smooth_rgb(rng, 37, 53)
    files = {
        "gray.png": Image.fromarray(rgb[..., 0], "L"),
        "rgba.png": Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA"),
        "palette.png": Image.fromarray(rgb).convert("P"),
        "photo.jpg": Image.fromarray(_smooth_rgb(rng, 375, 500)),
        "gray.jpg": Image.fromarray(rgb[..., 1], "L"),
        "bitmap.bmp": Image.fromarray(rgb),
    }
    paths = {}
    for name, image in files.items():
        path = root / name
        image.save(path, quality=90) if name.endswith(".jpg") else image.save(path)
        paths[name] = path
    return paths


def _pil_rgb(path):
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)


# ----------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("name", ["gray.png", "rgba.png", "palette.png", "bitmap.bmp", "gray.jpg", "photo.jpg"])
def test_decoding_gives_what_pil_gives(image_files, name):
    ours, pil = read_image(image_files[name]), _pil_rgb(image_files[name])
    assert ours.dtype == torch.uint8 and ours.shape == pil.shape
    if name.endswith(".jpg"):  # two builds of libjpeg-turbo may round the inverse DCT differently
        assert (ours.int() - pil.int()).abs().max() <= 2
    else:
        assert torch.equal(ours, pil)


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_damaged_files_are_a_data_error_naming_them(tmp_path):
    png = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(png, "PNG")
    broken_png = bytearray(png.getvalue())
    broken_png[broken_png.index(b"IDAT") + 6] ^= 0xFF  # torchvision 0.29's PNG decoder would crash on it
    jpeg = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(jpeg, "JPEG")
    cases = {
        "broken.png": bytes(broken_png),
        "truncated.jpg": jpeg.getvalue()[:200],
        "empty.jpg": b"",
        "text.png": b"not an image",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=f"image .*{name} cannot be read"):
            read_image(tmp_path / name)
    with pytest.raises(DataError, match="gone.jpg does not exist"):
        read_image(tmp_path / "gone.jpg")


# ----------------------------------------------------------------------------- the decoded store


@pytest.mark.parametrize("in_memory", [True, False])
def test_the_store_equals_the_decoded_files_byte_for_byte(image_files, tmp_path, monkeypatch, in_memory):
    if not in_memory:  # a store too large to read whole is memory-mapped
        monkeypatch.setattr(image_store, "IN_MEMORY_BYTES", 0)
    paths = [str(path) for path in image_files.values()]
    store = image_store.open_or_build(paths, tmp_path / "cache", "Mixed")
    assert len(store) == len(paths)
    for index, path in enumerate(paths):
        assert torch.equal(store[index], read_image(path))
    assert isinstance(store._pixels, np.memmap) != in_memory
    # a second process gets the pixels from the file, not from a pickled copy
    clone = pickle.loads(pickle.dumps(store))
    assert clone._pixels is None and torch.equal(clone[3], store[3])


def test_a_warm_store_is_reused_and_a_changed_image_makes_a_new_one(image_files, tmp_path, monkeypatch):
    paths = [str(image_files["gray.png"]), str(image_files["photo.jpg"])]
    first = image_store.open_or_build(paths, tmp_path, "Two")
    monkeypatch.setattr(image_store, "_write_store", lambda *a: pytest.fail("a warm store was decoded again"))
    assert image_store.open_or_build(paths, tmp_path, "Two").directory == first.directory
    monkeypatch.undo()
    changed = tmp_path / "changed.png"
    Image.fromarray(np.full((5, 7), 9, np.uint8)).save(changed)
    other = image_store.open_or_build([str(changed), paths[1]], tmp_path, "Two")
    assert other.directory != first.directory and torch.equal(other[0], read_image(changed))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_a_damaged_image_fails_the_build_and_leaves_no_store(image_files, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really")
    with pytest.raises(DataError, match="bad.jpg cannot be read"):
        image_store.open_or_build([str(image_files["gray.png"]), str(bad)], tmp_path / "cache", "Bad")
    assert not [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]


# ----------------------------------------------------------------------------- transforms against PIL


def _pil_reference(image, params, k, input_size=224):
    """OLTR's PIL operations with sample ``k``'s parameters, as torchvision applies them."""
    top, left, height, width = params.boxes[k].tolist()
    out = F.resized_crop(image, top, left, height, width, [input_size, input_size], T.InterpolationMode.BILINEAR)
    if params.flips[k]:
        out = F.hflip(out)
    ops = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue]
    for op in params.orders[k].tolist():
        out = ops[op](out, float(params.factors[k, op]))
    return F.to_tensor(out)


@pytest.mark.parametrize(
    "jitter, worst, mean",
    [
        ((0, 0, 0, 0), 1.01, 0.05),  # crop, resize and flip: uint8 rounding only
        ((0.4, 0, 0, 0), 3, 0.75),
        ((0, 0.4, 0, 0), 3, 0.75),
        ((0, 0, 0.4, 0), 3, 0.75),  # + PIL's per-step rounding
        ((0.4, 0.4, 0.4, 0), 8, 2.0),  # OLTR's jitter
    ],
)
def test_train_transform_matches_pil_with_the_same_parameters(jitter, worst, mean):
    rng = np.random.default_rng(1)
    arrays = [_smooth_rgb(rng, *size) for size in [(375, 500), (300, 220), (240, 240), (500, 333)] * 2]
    transform = BatchTransform(True, color_jitter=jitter)
    tensors = [torch.from_numpy(a.copy()).permute(2, 0, 1).contiguous() for a in arrays]
    params = transform.sample([t.shape[-2:] for t in tensors], torch.Generator().manual_seed(0))
    ours = transform.apply(tensors, params) * STD + MEAN  # back to [0, 1]
    for k, array in enumerate(arrays):
        difference = (ours[k] - _pil_reference(Image.fromarray(array), params, k)).abs() * 255
        assert difference.max() <= worst and difference.mean() <= mean, (k, difference.max(), difference.mean())


def test_eval_transform_matches_oltrs_resize_and_center_crop():
    rng = np.random.default_rng(2)
    arrays = [_smooth_rgb(rng, *size) for size in [(375, 500), (300, 220), (256, 256), (64, 48)]]
    ours = BatchTransform(False)([torch.from_numpy(a.copy()).permute(2, 0, 1) for a in arrays])
    reference = build_transform(False)
    for k, array in enumerate(arrays):
        difference = ((ours[k] - reference(Image.fromarray(array))) * STD).abs() * 255
        assert difference.max() <= 1.01


# ----------------------------------------------------------------------------- the distributions


def test_crop_boxes_follow_random_resized_crop(tmp_path):
    count, height, width = 4000, 375, 500
    ours = sample_crop_boxes([height] * count, [width] * count, (0.08, 1.0), RATIO, torch.Generator().manual_seed(3))
    torch.manual_seed(3)
    image = torch.zeros(3, height, width)
    theirs = torch.tensor([T.RandomResizedCrop.get_params(image, [0.08, 1.0], list(RATIO)) for _ in range(count)])
    for column in range(4):  # top, left, height, width
        assert stats.ks_2samp(ours[:, column].numpy(), theirs[:, column].numpy()).pvalue > 1e-3, column
    area = (ours[:, 2] * ours[:, 3]).double() / (height * width)
    assert stats.ks_2samp(area.numpy(), (theirs[:, 2] * theirs[:, 3]).double().numpy() / (height * width)).pvalue > 1e-3
    assert (ours[:, 0] + ours[:, 2] <= height).all() and (ours[:, 1] + ours[:, 3] <= width).all()
    assert (ours >= 0).all()


@pytest.mark.parametrize("height, width", [(100, 400), (400, 100), (10, 10)])
def test_when_no_try_fits_the_crop_is_torchvisions_central_one(height, width):
    # the whole area at an aspect ratio the range excludes (or a tiny image): every try fails
    ours = sample_crop_boxes([height] * 50, [width] * 50, (1.0, 1.0), RATIO, torch.Generator().manual_seed(4))
    theirs = T.RandomResizedCrop.get_params(torch.zeros(3, height, width), [1.0, 1.0], list(RATIO))
    if (height, width) != (10, 10):
        assert all(tuple(box) == tuple(theirs) for box in ours.tolist())
    else:  # a square fits every try whose aspect rounds to 1
        assert all(box[2] <= 10 and box[3] <= 10 for box in ours.tolist())


def test_flips_jitter_factors_and_orders_have_the_configured_distributions():
    count = 6000
    transform = BatchTransform(True, color_jitter=(0.4, 0.3, 0.2, 0.0))
    params = transform.sample([(64, 64)] * count, torch.Generator().manual_seed(5))
    flips = params.flips.double().mean().item()
    assert abs(flips - 0.5) < 4 * (0.25 / count) ** 0.5
    for op, spread in enumerate([0.4, 0.3, 0.2]):
        factors = params.factors[:, op].numpy()
        assert stats.kstest(factors, "uniform", args=(1 - spread, 2 * spread)).pvalue > 1e-3
    assert (params.factors[:, 3] == 0).all()  # hue 0: not applied
    orders = [tuple(order) for order in params.orders.tolist()]
    assert set(orders) == {(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)}
    frequencies = np.bincount([sorted(set(orders)).index(order) for order in orders])
    assert stats.chisquare(frequencies).pvalue > 1e-3
    none = BatchTransform(True, color_jitter=(0, 0, 0, 0), horizontal_flip=False).sample(
        [(8, 8)] * 10, torch.Generator()
    )
    assert none.orders.shape == (10, 0) and not none.flips.any()


# ----------------------------------------------------------------------------- the loader


def test_the_device_step_and_gpu_decode_give_the_batches_the_workers_give(image_files):
    """On CUDA the transform (and JPEG decoding) runs after the loader; here that path runs on the CPU."""
    photo = str(image_files["photo.jpg"])
    samples = [(photo, 0), (str(image_files["gray.png"]), 1), (photo, 2), (str(image_files["gray.jpg"]), 1)] * 2
    transform = BatchTransform(True, input_size=32)

    def batches(on_device, encoded):
        dataset = UInt8SplitDataset(samples, encoded_jpegs=encoded)
        sampler = SeededBatchSampler(range(len(samples)), 4, drop_last=True)
        sampler.set_seed(11)
        loader = TensorLoader(dataset, transform, "cpu", batch_sampler=sampler, on_device=on_device)
        return list(loader)

    reference = batches(False, False)
    for on_device, encoded in [(True, False), (True, True)]:
        for (images, labels, indices), (ref_images, ref_labels, ref_indices) in zip(
            batches(on_device, encoded), reference
        ):
            assert torch.equal(labels, ref_labels) and torch.equal(indices, ref_indices)
            assert torch.allclose(images, ref_images, atol=1e-6)
    assert not torch.equal(reference[0][0], reference[1][0])  # two batches, two augmentations


def test_image_by_image_and_whole_batch_agree():
    """The CPU's in-place loop and the GPU's whole-batch operations are the same transform."""
    rng = np.random.default_rng(6)
    tensors = [torch.from_numpy(_smooth_rgb(rng, *size).copy()).permute(2, 0, 1) for size in [(120, 90), (64, 200)] * 3]
    transform = BatchTransform(True, input_size=72)
    params = transform.sample([t.shape[-2:] for t in tensors], torch.Generator().manual_seed(7))
    assert params.flips.any() and not params.flips.all()
    one_by_one, batched = (
        transform.apply(tensors, params, batched=False),
        transform.apply(tensors, params, batched=True),
    )
    assert torch.allclose(one_by_one, batched, atol=1e-5)


def test_a_worker_that_fails_is_stopped_with_the_others_at_once(image_files, tmp_path):
    """No worker outlives the error (torch would otherwise wait 5 s for each when the loader is collected)."""
    import multiprocessing

    samples = (
        [(str(image_files["gray.png"]), 0)] * 6
        + [(str(tmp_path / "gone.png"), 0)]
        + [(str(image_files["gray.png"]), 0)] * 9
    )
    loader = TensorLoader(
        UInt8SplitDataset(samples),
        BatchTransform(False, input_size=8, resize_size=8),
        "cpu",
        batch_size=4,
        num_workers=2,
        persistent_workers=True,
    )
    with pytest.raises(DataError, match="gone.png does not exist"):
        for _ in loader:
            pass
    assert not [child for child in multiprocessing.active_children() if child.is_alive()]


@pytest.mark.parametrize(
    "policy, limit_gb, cached",
    [("auto", 8.0, True), ("auto", 1e-6, False), ("always", 1e-6, True), ("never", 8.0, False)],
)
def test_cache_images_policy(tiny_digits_root, tmp_path, policy, limit_gb, cached):
    """auto caches a split whose decoded size (estimated from headers) fits the limit; 1e-6 GB is ~1 kB."""
    from oltr.config.schema import load_config
    from oltr.data import loaders

    config = load_config(
        "config/Digits_LT/stage_1.py",
        [
            "training_opt.dataset=Tiny",
            f"training_opt.data_root={tiny_digits_root}",
            f"training_opt.split_dir={tiny_digits_root}",
            "training_opt.log_dir=unused",
            f"training_opt.cache_images={policy}",
            f"training_opt.cache_images_max_gb={limit_gb}",
            f"training_opt.cache_dir={tmp_path}",
        ],
    )
    training_opt = config["training_opt"]
    samples = loaders.load_samples(training_opt, "train")  # 47 images of 8 x 8 pixels x 3 bytes: 9 kB
    assert image_store.estimated_bytes([path for path, _ in samples]) == len(samples) * 8 * 8 * 3
    dataset = loaders.build_dataset(training_opt, samples, train=True)
    assert (dataset.store is not None) == cached
    image, label, index, _ = dataset[5]
    assert torch.equal(image, read_image(samples[5][0])) and (label, index) == (samples[5][1], 5)
