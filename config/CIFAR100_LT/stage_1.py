# CIFAR-100-LT stage 1. Data: exported on first use into data/CIFAR100_LT/ from torchvision's
# CIFAR-100 (downloaded into data/cifar/) by oltr.data.cifar_lt.export_cifar_lt: imbalance factor
# 100, the exponential profile of the class-balanced (Cui et al. 2019) and LDAM (Cao et al. 2019) papers.
# Open set = held-out classes (export_cifar_lt's default): classes 90-99 are removed from training,
# their 1,000 test images form the open split; the 90 known classes keep 490 down to 4 train images
# and their full 100-image test sets; val = 10 unused train images per class.
# Shot groups use OLTR's thresholds (many >= 100, few <= 20): 31 many, 30 medium, 29 few classes.
# Model: the CIFAR ResNet-18 (torchvision BasicBlocks [2,2,2,2], 3x3 stem, no max-pool: small_input),
# the usual CIFAR-LT backbone besides LDAM's ResNet-32 (which torchvision's blocks cannot express);
# ResNet-10's one block per stage is too shallow at 32 px. 512-d features, as OLTR's feature_dim.
# Schedule: the CIFAR-LT papers' 200 epochs, batch 128, SGD lr 0.1 cosine to 0, wd 5e-4 (OLTR's).
config = {
    "seed": 0,
    "training_opt": {
        "dataset": "CIFAR100_LT",
        "data_root": "data/CIFAR100_LT",
        "split_dir": "data/CIFAR100_LT",
        "log_dir": "logs/CIFAR100_LT/stage1",
        "num_classes": 90,
        "batch_size": 128,
        "num_workers": 4,
        "num_epochs": 200,
        "feature_dim": 512,
        "open_threshold": 0.1,  # OLTR's; 9x chance with 90 classes
        "display_step": 20,
        "sampler": None,
        "scheduler": "cosine",
        "scheduler_params": {"eta_min": 0.0},
        "shot_thresholds": {"many": 100, "few": 20, "inclusive": True},
        "transforms": {
            "input_size": 32,
            "resize_size": 32,  # test images pass unchanged (Resize/CenterCrop to their own size)
            "color_jitter": [0.0, 0.0, 0.0, 0.0],
            # CIFAR-100 training-set channel mean and std
            "mean": [0.5071, 0.4865, 0.4409],
            "std": [0.2673, 0.2564, 0.2762],
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
            "optim_params": {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4},
        },
        "classifier": {
            "type": "dot_product",
            "params": {},
            "optim_params": {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4},
        },
    },
    "criterions": {"PerformanceLoss": {"loss": "softmax", "loss_params": {}, "weight": 1.0}},
    "memory": {"centroids": False, "init_centroids": False},
}
