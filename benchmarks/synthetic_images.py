"""Synthetic ImageNet-shaped JPEGs with OLTR split files, for benchmarks that read real image files.

    write_jpeg_dataset(root, name="Synthetic_LT", num_train=256, num_val=16, num_test=16, num_open=16,
                       num_classes=1000, size=(500, 375), seed=0) -> {"train": path, "val": ..., ...}

Each image is smooth colour noise (a few dozen random values upsampled bicubically), a
random linear gradient and a little pixel noise, saved at JPEG quality 90: at 500x375 a file
is some tens of kB, so decoding costs what it does for a typical ImageNet photo, unlike a
flat colour. Everything is a function of ``seed``. The split files are
``<root>/<name>_{train,val,test,open}.txt`` (``relative/path label``; open-set label -1), so a
config with ``training_opt.dataset=<name>``, ``data_root=<root>`` and ``split_dir=<root>``
reads them. Training labels go round the classes in a shuffled order, so every class has an
image once ``num_train >= num_classes``.

    python benchmarks/synthetic_images.py /tmp/synth --num-train 512   # writes a set, prints its paths
"""

import argparse
import os

import numpy as np
from PIL import Image

SPLITS = ("train", "val", "test", "open")


def synthetic_image(rng, size, fine_noise=6.0):
    """One RGB PIL image of ``size`` (width, height): upsampled noise + a gradient + fine noise
    (standard deviation ``fine_noise``: 6 gives ~50 kB at 500x375 and quality 90, 28 ~110 kB,
    ImageNet's mean file size)."""
    width, height = size
    coarse = rng.integers(0, 256, size=(int(rng.integers(4, 24)), int(rng.integers(4, 24)), 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (np.cos(angle) * xs / width + np.sin(angle) * ys / height)[..., None]
    gradient = ramp * rng.uniform(-80, 80, size=3).astype(np.float32)
    fine = rng.normal(0, fine_noise, size=(height, width, 3)).astype(np.float32)
    pixels = np.clip(0.7 * smooth + gradient + fine + 20, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _labels(split, count, num_classes, rng):
    if split == "open":
        return [-1] * count
    cycle = rng.permutation(num_classes)
    return [int(cycle[i % num_classes]) for i in range(count)]


def write_jpeg_dataset(
    root,
    name="Synthetic_LT",
    num_train=256,
    num_val=16,
    num_test=16,
    num_open=16,
    num_classes=1000,
    size=(500, 375),
    seed=0,
    quality=90,
    fine_noise=6.0,
    workers=1,
    distinct=None,
):
    """Write the images under ``root/<split>/`` and the four split files; returns {split: split-file path}.

    ``workers`` > 1: the JPEGs are encoded by that many processes. ``distinct``: only that many
    different images per split; the others are hard links to them under their own names (each
    file is still read and decoded on its own; a copy where links are refused).
    """
    counts = {"train": num_train, "val": num_val, "test": num_test, "open": num_open}
    if num_classes < 1 or min(counts.values()) < 0:
        raise ValueError("num_classes must be >= 1 and the image counts >= 0")
    os.makedirs(root, exist_ok=True)
    paths = {}
    for split_index, split in enumerate(SPLITS):
        labels = _labels(split, counts[split], num_classes, np.random.default_rng([seed, split_index]))
        lines, jobs = [], []
        for index, label in enumerate(labels):
            folder = "open" if label < 0 else f"{split}/{label:04d}"
            relative = f"{folder}/{split}_{index:06d}.jpg"
            os.makedirs(os.path.join(root, folder), exist_ok=True)
            jobs.append((os.path.join(root, relative), (seed, split_index, index), size, quality, fine_noise))
            lines.append(f"{relative} {label}\n")
        unique = jobs if distinct is None else jobs[:distinct]
        if workers > 1 and len(unique) > 1:
            import multiprocessing

            with multiprocessing.get_context("fork").Pool(workers) as pool:
                pool.map(_write_one, unique, chunksize=max(1, len(unique) // (4 * workers)))
        else:
            for job in unique:
                _write_one(job)
        for k, job in enumerate(jobs[len(unique) :]):
            _link(unique[k % len(unique)][0], job[0])
        paths[split] = os.path.join(root, f"{name}_{split}.txt")
        with open(paths[split], "w", encoding="utf-8") as handle:
            handle.writelines(lines)
    return paths


def _write_one(job):
    target, seed, size, quality, fine_noise = job
    synthetic_image(np.random.default_rng(list(seed)), size, fine_noise).save(target, "JPEG", quality=quality)


def _link(source, target):
    try:
        os.link(source, target)
    except OSError:
        import shutil

        shutil.copyfile(source, target)


def dataset_overrides(root, name="Synthetic_LT"):
    """The --opts that point a config at a set written by write_jpeg_dataset."""
    return [f"training_opt.dataset={name}", f"training_opt.data_root={root}", f"training_opt.split_dir={root}"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--name", default="Synthetic_LT")
    for split, default in (("train", 256), ("val", 16), ("test", 16), ("open", 16)):
        parser.add_argument(f"--num-{split}", type=int, default=default)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--size", type=int, nargs=2, default=(500, 375), metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    paths = write_jpeg_dataset(
        args.root,
        args.name,
        args.num_train,
        args.num_val,
        args.num_test,
        args.num_open,
        args.num_classes,
        tuple(args.size),
        args.seed,
    )
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
