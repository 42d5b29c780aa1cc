# Stage 2 on Digits_LT: the stage-1 weights plus modulated attention and fc_add, the
# meta-embedding classifier over class centroids, the class-aware sampler (4 per class),
# and 0.01 x the discriminative-centroids loss, with OLTR's stage-2 learning rates.
_base_ = "stage_1.py"

config = {
    "training_opt": {
        "log_dir": "logs/Digits_LT/stage2",
        "stage1_log_dir": "logs/Digits_LT/stage1",
        "num_epochs": 24,
        "sampler": {"type": "class_aware", "num_samples_cls": 4},
    },
    "networks": {
        "feat_model": {
            "params": {"use_modulatedatt": True, "use_fc": True},
            "optim_params": {"lr": 0.01},
            "stage1_weights": True,
        },
        "classifier": {
            "type": "meta_embedding",
            "optim_params": {"lr": 0.1},
            "stage1_weights": True,
        },
    },
    "criterions": {
        "FeatureLoss": {
            "loss": "disc_centroids",
            "loss_params": {},
            "optim_params": {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
            "weight": 0.01,
        },
    },
    "memory": {"centroids": True, "init_centroids": True},
}
