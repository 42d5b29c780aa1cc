# CIFAR-100-LT stage 1. Data: exported on first use into data/CIFAR100_LT/ from torchvision's
# CIFAR-100 (downloaded into data/cifar/) by oltr.data.cifar_lt.export_cifar_lt: imbalance factor
# 100, the exponential profile of the class-balanced (Cui et al. 2019) and LDAM (Cao et al. 2019) papers.
# Open set = held-out classes (export_cifar_lt's default): classes 90-99 are removed from training,
# their 1,000 test images form the open split; the 90 known classes keep 490 down to 4 train images
# and their full 100-image test sets; val = 10 unused train images per class.
# Shot groups use OLTR's thresholds (many >= 100, few <= 20): 31 many, 30 medium, 29 few classes.
# Everything else (model, schedule, transforms) is CIFAR-10-LT's: see its stage_1.py for the reasons.
_base_ = "../CIFAR10_LT/stage_1.py"

config = {
    "training_opt": {
        "dataset": "CIFAR100_LT",
        "data_root": "data/CIFAR100_LT",
        "split_dir": "data/CIFAR100_LT",
        "log_dir": "logs/CIFAR100_LT/stage1",
        "num_classes": 90,
        "open_threshold": 0.1,  # OLTR's; 9x chance with 90 classes
        "transforms": {
            # CIFAR-100 training-set channel mean and std
            "mean": [0.5071, 0.4865, 0.4409],
            "std": [0.2673, 0.2564, 0.2762],
        },
    },
}
