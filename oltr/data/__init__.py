"""Data for OLTR: split files, datasets, transforms, samplers, loaders, and split tools.

    split_file.py        the split-file format: read, scan, write
    decode.py            JPEGs by torchvision.io, the rest by PIL, damaged files as one-line errors
    image_store.py       each split decoded once into a memory-mapped uint8 store
    dataset.py           SplitDataset (PIL) and UInt8SplitDataset (the tensor pipeline)
    transforms.py        OLTR's per-image PIL transforms
    batch_transforms.py  the same transforms a batch at a time, on uint8 tensors
    batches.py           seeded batch samplers and the tensor loader
    samplers.py          instance, class-aware and class-prior samplers; the epoch shuffle
    loaders.py           training_opt -> samples, datasets, samplers, loaders; datasets that build themselves
    digits_lt.py         the embedded Digits_LT; cifar_lt.py: CIFAR-LT exported from torchvision's archive
    inaturalist.py       iNaturalist 2018 from classifier-balancing's lists: test (= val), an open split
    profiles.py          long-tail class-count profiles; make_lt.py: an LT split from an ImageFolder tree
    check.py             python -m oltr.data check (__main__.py: the data command line)

The OLTR split-file convention (Liu et al., CVPR 2019) is the one data format:
``<split_dir>/<Dataset>_{train,val,test,open}.txt`` with ``relative/path label``
lines under a data root, open-set images labelled -1.

Names are imported on first use, so ``python -m oltr.data check`` does not pay
for importing torch.
"""

import importlib

_EXPORTS = {
    "check_split": "oltr.data.check",
    "export_cifar_lt": "oltr.data.cifar_lt",
    "SplitDataset": "oltr.data.dataset",
    "ensure_digits_lt": "oltr.data.digits_lt",
    "make_lt": "oltr.data.make_lt",
    "scan_image_folder": "oltr.data.make_lt",
    "long_tail_counts": "oltr.data.profiles",
    "ClassAwareSampler": "oltr.data.samplers",
    "ClassPriorSampler": "oltr.data.samplers",
    "SPLITS": "oltr.data.split_file",
    "find_image_root": "oltr.data.split_file",
    "read_split": "oltr.data.split_file",
    "scan_split": "oltr.data.split_file",
    "split_path": "oltr.data.split_file",
    "write_split": "oltr.data.split_file",
    "IMAGENET_MEAN": "oltr.data.transforms",
    "IMAGENET_STD": "oltr.data.transforms",
    "build_transform": "oltr.data.transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'oltr.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__():
    return __all__
