"""Batches of uint8 images, augmented a batch at a time, in the loader's workers or on the GPU.

    TensorLoader(dataset, transform, ...)   iterates like a DataLoader: (float images, labels, indices)

Every training batch draws its augmentation from its own generator, seeded with
``mix_seed(epoch seed, batch number)`` (``SeededBatchSampler``): the augmentations are a function
of the seed, the epoch and the batch alone, not of the number of workers or of which worker made
the batch, so workers can live across epochs (``persistent_workers``) and a resumed run still
replays exactly the batches an uninterrupted one would have seen.

On the CPU the transform runs in the collate function (in the workers, or on the main thread
with ``num_workers: 0``). On CUDA the workers run its first half (``BatchTransform.prepare``:
parameters, crop and resize to the output size; the eval resize and centre crop) and ship one
pinned uint8 (B, 3, S, S) tensor and the packed parameters; the device runs the second half
(``finish``: flip, jitter, normalise, whole-batch) on a side stream, one batch ahead, so it
overlaps the previous training step. With ``gpu_decode`` the workers ship JPEG bytes and the
device decodes, crops and finishes (a file the GPU decoder refuses is decoded on the CPU).
"""

import torch

from ..common.seeding import mix_seed
from .decode import decode_bytes


class SeededBatchSampler(torch.utils.data.Sampler):
    """Batches of ``(index, batch_seed)`` keys over ``sampler``; ``set_seed`` once per epoch."""

    def __init__(self, sampler, batch_size, drop_last):
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.seed = 0

    def set_seed(self, seed):
        self.seed = seed

    def __len__(self):
        count = len(self.sampler)
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def __iter__(self):
        batch, number = [], 0
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield self._keys(batch, number)
                batch, number = [], number + 1
        if batch and not self.drop_last:
            yield self._keys(batch, number)

    def _keys(self, batch, number):
        seed = mix_seed(self.seed, number)
        return [(index, seed) for index in batch]


def batch_generator(seed):
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def _labels_and_indices(items):
    labels = torch.tensor([item[1] for item in items], dtype=torch.int64)
    indices = torch.tensor([item[2] for item in items], dtype=torch.int64)
    return labels, indices


class TransformingCollate:
    """Collate that applies the batch transform where the batch is made (CPU training and evaluation)."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, items):
        labels, indices = _labels_and_indices(items)
        images = [item[0] for item in items]
        return self.transform(images, batch_generator(items[0][3])), labels, indices


class PreparingCollate:
    """Collate that runs the transform's worker half: ``(uint8 batch, packed params, labels, indices)``."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, items):
        labels, indices = _labels_and_indices(items)
        batch, packed = self.transform.prepare([item[0] for item in items], batch_generator(items[0][3]))
        return batch, packed, labels, indices


def raw_collate(items):
    """Collate that leaves the images as they are (a list of uint8 tensors), for the device step."""
    labels, indices = _labels_and_indices(items)
    return [item[0] for item in items], labels, indices, items[0][3]


class TensorLoader:
    """A DataLoader over a ``UInt8SplitDataset`` whose batches come out transformed.

    ``on_device`` (default: ``device`` is CUDA): the transform (and gpu_decode's JPEG decoding)
    runs on ``device`` in the main process; otherwise in the collate function. ``sampler``,
    ``batch_sampler`` and ``generator`` are the DataLoader's (the trainer reseeds them every epoch).
    """

    def __init__(
        self,
        dataset,
        transform,
        device,
        sampler=None,
        batch_sampler=None,
        batch_size=1,
        num_workers=0,
        persistent_workers=False,
        generator=None,
        worker_init_fn=None,
        on_device=None,
    ):
        self.dataset = dataset
        self.transform = transform
        self.device = torch.device(device)
        self.on_device = self.device.type == "cuda" if on_device is None else on_device
        base = dataset.dataset if isinstance(dataset, torch.utils.data.Subset) else dataset
        self.encoded = getattr(base, "encoded_jpegs", False)  # gpu_decode: the workers ship JPEG bytes
        if not self.on_device:
            collate = TransformingCollate(transform)
        else:
            collate = raw_collate if self.encoded else PreparingCollate(transform)
        options = dict(batch_size=batch_size, shuffle=False) if batch_sampler is None else {}
        self.loader = torch.utils.data.DataLoader(
            dataset,
            sampler=sampler,
            batch_sampler=batch_sampler,
            num_workers=num_workers,
            collate_fn=collate,
            pin_memory=self.device.type == "cuda",
            persistent_workers=persistent_workers and num_workers > 0,
            generator=generator,
            worker_init_fn=worker_init_fn,
            **options,
        )
        self.batch_sampler = batch_sampler
        self.augment_events = None  # a list: (start, end) CUDA events of each batch's device work (benchmarks)
        self.sampler = batch_sampler.sampler if batch_sampler is not None else self.loader.sampler
        self.generator = generator

    def __len__(self):
        return len(self.loader)

    def close(self):
        """Stop persistent workers now, rather than whenever the loader is garbage-collected (after a
        failed run in a long-lived process, that can be in the middle of the next one)."""
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self.loader._iterator = None

    def __iter__(self):
        iterator = iter(self.loader)
        try:
            if not self.on_device:
                yield from iterator
                return
            if self.encoded:
                for images, labels, indices, seed in iterator:
                    images = self._decode_on_device(images, indices)
                    yield self.transform(images, batch_generator(seed)), labels, indices
                return
            yield from self._finished_ahead(iterator)
        except Exception:
            _stop_workers(iterator)
            raise

    def _finished_ahead(self, iterator):
        """Each batch finished on the device one batch ahead of the step that uses it, on a side stream."""
        stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        pending = None
        for batch, packed, labels, indices in iterator:
            finished = (*self._finish(batch, packed, stream), labels, indices)
            if pending is not None:
                yield self._hand_over(*pending)
            pending = finished
        if pending is not None:
            yield self._hand_over(*pending)

    def _finish(self, batch, packed, stream):
        """The batch's device work, launched now; returns it with an event that marks its end."""
        if stream is None:
            return self.transform.finish(batch.to(self.device, non_blocking=True), packed), None
        with torch.cuda.stream(stream):
            timed = self.augment_events is not None
            start = stream.record_event(torch.cuda.Event(enable_timing=True)) if timed else None
            images = self.transform.finish(batch.to(self.device, non_blocking=True), packed)
            done = stream.record_event(torch.cuda.Event(enable_timing=timed))
            if start is not None:
                self.augment_events.append((start, done))
            return images, done

    def _hand_over(self, images, done, labels, indices):
        """The step's stream waits for this batch's work only (the next batch's may follow it on the
        side stream), and the caching allocator learns that the batch, allocated on the side stream,
        is used on the step's."""
        if done is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(done)
            images.record_stream(current)
        return images, labels, indices

    def _decode_on_device(self, images, indices):
        from torchvision.io import ImageReadMode, decode_jpeg

        images = [image.to(self.device, non_blocking=True) if image.dim() == 3 else image for image in images]
        encoded = [position for position, image in enumerate(images) if image.dim() == 1]  # gpu_decode's JPEG bytes
        if not encoded:
            return images
        try:
            decoded = decode_jpeg([images[p] for p in encoded], mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError:
            decoded = [self._decode_one(images[p], int(indices[p])) for p in encoded]  # to name the file that fails
        for p, image in zip(encoded, decoded):
            images[p] = image
        return images

    def _decode_one(self, data, index):
        from torchvision.io import ImageReadMode, decode_jpeg

        try:
            return decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError:
            # nvJPEG refuses some JPEGs that libjpeg-turbo or PIL read (CMYK, some progressive or
            # unusual subsampling flavours): that file is decoded on the CPU, and only a file
            # nothing can read is an error (decode_bytes names it).
            # the items carry the split dataset's own index, through a Subset too
            base = self.dataset.dataset if isinstance(self.dataset, torch.utils.data.Subset) else self.dataset
            return decode_bytes(data.cpu(), base.paths[index]).to(self.device, non_blocking=True)


def _stop_workers(iterator):
    """After an error (a worker that could not read an image), end the workers at once: torch's own
    shutdown then waits 5 s for each of them to drain its queue, which is seconds before a failed run's
    process can exit, or in the middle of the next run when the loader is collected late.

    The workers leave torch's SIGCHLD watch first, as torch's own shutdown does before it terminates
    one: a watched worker's death raises "DataLoader worker ... killed" in this process, at any line.
    """
    if getattr(iterator, "_worker_pids_set", False):
        torch.utils.data._utils.signal_handling._remove_worker_pids(id(iterator))
        iterator._worker_pids_set = False
    for worker in getattr(iterator, "_workers", ()):
        if worker.is_alive():
            worker.terminate()
    if hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
