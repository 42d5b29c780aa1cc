# Stage 1 on the embedded default Digits_LT (built from scikit-learn's digits on first use):
# a thin ResNet-10 with the small-input stem on 16-px upscaled digits, plain shuffled sampling,
# softmax cross-entropy. Shot thresholds are scaled to its size (140 down to 5 images per class):
# many-shot >= 50 training images, few-shot <= 10 (OLTR's inclusive convention).
config = {
    "seed": 0,
    "training_opt": {
        "dataset": "Digits_LT",
        "data_root": "data/Digits_LT",
        "split_dir": "data/Digits_LT",
        "log_dir": "logs/Digits_LT/stage1",
        "num_classes": 8,
        "batch_size": 32,
        "num_workers": 0,
        "num_epochs": 24,
        "feature_dim": 128,
        # OLTR's 0.1 is 100x chance on 1000 classes; with 8 classes the top softmax probability is
        # never below 1/8, so 0.1 would reject nothing. 0.5 (4x chance) makes the open set matter.
        "open_threshold": 0.5,
        "display_step": 10,
        "sampler": None,
        "scheduler": "step",
        "scheduler_params": {"step_size": 10, "gamma": 0.1},
        "shot_thresholds": {"many": 50, "few": 10, "inclusive": True},
        "transforms": {
            "input_size": 16,
            "resize_size": 16,
            "color_jitter": [0.0, 0.0, 0.0, 0.0],
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
            "horizontal_flip": False,  # a mirrored digit is another symbol
            "crop_scale": [0.6, 1.0],
        },
    },
    "networks": {
        "feat_model": {
            "type": "resnet10",
            "params": {"small_input": True, "base_channels": 16, "use_modulatedatt": False, "use_fc": False},
            "optim_params": {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4},
        },
        "classifier": {
            "type": "dot_product",
            "params": {},
            "optim_params": {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4},
        },
    },
    "criterions": {
        "PerformanceLoss": {"loss": "softmax", "loss_params": {}, "weight": 1.0},
    },
    "memory": {"centroids": False, "init_centroids": False},
}
