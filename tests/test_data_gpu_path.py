"""The GPU's data path, run on the CPU: the workers' half of the transform (crop and resize to the output
size, shipped as uint8 with packed parameters) and the device's half (whole-batch flip, jitter and
normalisation, no read back); gpu_decode's CPU fallback with a stubbed decoder, and its refusal on a CPU."""

import numpy as np
import pytest
import torch
from PIL import Image
from test_data_tensor_pipeline import _smooth_rgb

from oltr.common.errors import DataError
from oltr.data.batch_transforms import BatchTransform
from oltr.data.batches import SeededBatchSampler, TensorLoader
from oltr.data.dataset import UInt8SplitDataset


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """A 500x375 colour JPEG and a small grey one."""
    root = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    paths = {"photo.jpg": root / "photo.jpg", "gray.jpg": root / "gray.jpg"}
    Image.fromarray(_smooth_rgb(rng, 375, 500)).save(paths["photo.jpg"], quality=90)
    Image.fromarray(_smooth_rgb(rng, 37, 53)[..., 1], "L").save(paths["gray.jpg"], quality=90)
    return paths


def test_gpu_decode_falls_back_to_the_cpu_for_a_file_nvjpeg_refuses(image_files, tmp_path, monkeypatch):
    """A stubbed GPU decoder that refuses one file (as nvJPEG refuses CMYK or some progressive JPEGs):
    the batch comes out as the workers' CPU decoding gives it; a file nothing can read is named."""
    import torchvision.io

    real_decode = torchvision.io.decode_jpeg
    refused = (image_files["gray.jpg"]).read_bytes()
    calls = {"refused": 0}

    def decode_jpeg(data, mode, device):
        many = isinstance(data, list)
        for one in data if many else [data]:
            if bytes(one.numpy()) == refused or bytes(one.numpy()[:4]) == b"\xff\xd8no":
                calls["refused"] += 1
                raise RuntimeError("nvjpegDecode failed: NVJPEG_STATUS_JPEG_NOT_SUPPORTED")
        return real_decode(data, mode=mode, device=device)

    monkeypatch.setattr(torchvision.io, "decode_jpeg", decode_jpeg)
    photo, gray = str(image_files["photo.jpg"]), str(image_files["gray.jpg"])
    samples = [(photo, 0), (gray, 1), (photo, 2), (gray, 1)]
    transform = BatchTransform(True, input_size=32)

    def batches(on_device, encoded, chosen=samples):
        sampler = SeededBatchSampler(range(len(chosen)), 4, drop_last=True)
        sampler.set_seed(5)
        dataset = UInt8SplitDataset(chosen, encoded_jpegs=encoded)
        return list(TensorLoader(dataset, transform, "cpu", batch_sampler=sampler, on_device=on_device))

    ((images, labels, _),) = batches(True, True)
    ((ref_images, ref_labels, _),) = batches(False, False)
    assert calls["refused"] >= 3  # the batch call, then the two refused files one by one
    assert torch.equal(labels, ref_labels) and torch.allclose(images, ref_images, atol=1e-6)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8no JPEG after all")
    with pytest.raises(DataError, match="broken.jpg cannot be read as an image"):
        batches(True, True, [(photo, 0), (str(broken), 1), (photo, 2), (gray, 1)])


@pytest.mark.parametrize("split", ["train", "eval"])
def test_gpu_decode_on_a_cpu_device_is_refused_in_one_line(split):
    from oltr.common.errors import ConfigError
    from oltr.data.loaders import build_eval_loader, build_train_loader
    from oltr.engine.distributed import DistContext

    options = {
        "gpu_decode": True,
        "sampler": None,
        "batch_size": 4,
        "eval_batch_size": None,
        "data_pipeline": "tensor",
        "num_workers": 0,
        "persistent_workers": False,
    }
    dataset = UInt8SplitDataset([("a.jpg", 0)] * 4, encoded_jpegs=True, batch_transform=BatchTransform(False))
    with pytest.raises(ConfigError) as error:
        if split == "train":
            build_train_loader(options, dataset, 0, DistContext())
        else:
            build_eval_loader(options, dataset, DistContext())
    assert "\n" not in str(error.value) and "training_opt.gpu_decode" in str(error.value) and "cpu" in str(error.value)


# ----------------------------------------------------------------------------- the GPU's split of the work


def _photos(count, seed=8):
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(_smooth_rgb(rng, 375, 500).copy()).permute(2, 0, 1).contiguous() for _ in range(count)]


def test_the_workers_ship_output_size_uint8_and_the_device_finishes_it():
    """prepare (workers) + finish (device) is the CPU's transform; at 224 px from 500x375 photos the
    workers ship 3.7x fewer bytes than the full images (what went to the device before)."""
    from oltr.data.batches import PreparingCollate, raw_collate

    photos = _photos(4)
    items = [(image, 0, k, 12) for k, image in enumerate(photos)]
    transform = BatchTransform(True, input_size=224)
    batch, packed, labels, indices = PreparingCollate(transform)(items)
    assert batch.dtype == torch.uint8 and batch.shape == (4, 3, 224, 224) and packed.dtype == torch.float32
    reference = transform(photos, torch.Generator().manual_seed(12))  # the CPU path: image by image, in place
    assert torch.allclose(transform.finish(batch, packed), reference, atol=1e-5)
    before = sum(image.nbytes for image in raw_collate(items)[0])
    after = batch.nbytes + packed.nbytes
    assert before / after >= 3.0 and before == 4 * 3 * 500 * 375
    evaluation = BatchTransform(False, input_size=224, resize_size=256)
    batch, packed, _, _ = PreparingCollate(evaluation)(items)
    assert packed is None and batch.dtype == torch.uint8
    assert torch.equal(evaluation.finish(batch), evaluation(photos))


def test_the_device_half_is_whole_batch_and_reads_nothing_back():
    """The same operations whatever the batch size (no kernel per image), and no read of a device
    tensor (the sync counter of test_no_host_sync.py)."""
    from test_no_host_sync import OnDevice
    from torch.overrides import TorchFunctionMode

    class Calls(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.names.append(getattr(func, "__name__", str(func)))
            return func(*args, **(kwargs or {}))

    transform = BatchTransform(True, input_size=32)
    calls = {}
    for count in (3, 12):
        batch, packed = transform.prepare(_photos(count), torch.Generator().manual_seed(count))
        with Calls() as mode:
            transform.finish(batch, packed)
        calls[count] = mode.names
        OnDevice.reads = []
        try:
            transform.finish(batch.as_subclass(OnDevice), packed.as_subclass(OnDevice))
            assert OnDevice.reads == []
        finally:
            OnDevice.reads = None
    assert calls[3] == calls[12] and len(calls[3]) < 150
