# CIFAR-10-LT stage 1. Data: exported on first use into data/CIFAR10_LT/ from torchvision's CIFAR-10
# (downloaded into data/cifar/) by oltr.data.cifar_lt.export_cifar_lt: imbalance factor 100, the
# exponential profile of the class-balanced (Cui et al. 2019) and LDAM (Cao et al. 2019) papers.
# Open set = held-out classes (export_cifar_lt's default): ship and truck are removed from training,
# their 2,000 test images form the open split; the 8 known classes keep 4,900 down to 49 train images
# and their full 1,000-image test sets; val = 100 unused train images per class.
# Shot groups use OLTR's thresholds (many >= 100, few <= 20): 6 many, 2 medium, 0 few classes, so the
# few-shot column reads n/a (the CIFAR-10-LT tail stops at 49 images).
# Model: the CIFAR ResNet-18 (torchvision BasicBlocks [2,2,2,2], 3x3 stem, no max-pool: small_input),
# the usual CIFAR-LT backbone besides LDAM's ResNet-32 (which torchvision's blocks cannot express);
# ResNet-10's one block per stage is too shallow at 32 px. 512-d features, as OLTR's feature_dim.
# Schedule: the CIFAR-LT papers' 200 epochs, SGD lr 0.1 cosine to 0; batch 128 and wd 5e-4 are
# OLTR's stage-1 recipe (config/recipes/stage_1.py), which this overrides where CIFAR differs.
_base_ = "../recipes/stage_1.py"

config = {
    "training_opt": {
        "dataset": "CIFAR10_LT",
        "data_root": "data/CIFAR10_LT",
        "split_dir": "data/CIFAR10_LT",
        "log_dir": "logs/CIFAR10_LT/stage1",
        "num_classes": 8,
        "num_workers": 4,
        "num_epochs": 200,
        # With 8 classes the top softmax probability is at least 1/8, so OLTR's 0.1 would reject
        # nothing; 0.5 (4x chance) makes the open set count, as for Digits_LT.
        "open_threshold": 0.5,
        "display_step": 20,
        "scheduler": "cosine",
        "scheduler_params": {"eta_min": 0.0},
        "transforms": {
            "input_size": 32,
            "resize_size": 32,  # test images pass unchanged (Resize/CenterCrop to their own size)
            "color_jitter": [0.0, 0.0, 0.0, 0.0],
            # CIFAR-10 training-set channel mean and std
            "mean": [0.4914, 0.4822, 0.4465],
            "std": [0.2470, 0.2435, 0.2616],
            "horizontal_flip": True,
            # a random crop of 35-100% of the area resized back to 32 px: the RandomResizedCrop
            # analogue of CIFAR's pad-4-and-crop, a little stronger
            "crop_scale": [0.35, 1.0],
        },
    },
    "networks": {
        "feat_model": {
            "type": "resnet18",
            "params": {"small_input": True, "use_modulatedatt": False, "use_fc": False},
            "optim_params": {"lr": 0.1},
        },
    },
}
