# Digits_LT with a timm feature model instead of the thin ResNet-10: timm's test_resnet (a 0.37M-parameter
# ResNet, 96-d features, no weights) on the same data, schedule and loss as config/Digits_LT/stage_1.py.
# The sweep runs it as a dataset: `./run_all.sh Digits_LT_timm --recipes meta_embedding crt lws tau_norm
# ncm finetune` (needs the timm extra: pip install -e '.[timm]'). Any timm model fits: set model_name,
# feature_dim to its width, and input_size to what it takes (e.g. test_vit with
# model_kwargs {img_size: 16, patch_size: 4}; its tokens have no map, so no meta_embedding).
# Written out rather than over Digits_LT/stage_1.py, whose feature-model params are the ResNet's.
config = {
    "seed": 0,
    "training_opt": {
        "dataset": "Digits_LT",
        "data_root": "data/Digits_LT",
        "split_dir": "data/Digits_LT",
        "log_dir": "logs/Digits_LT_timm/stage1",
        "num_classes": 8,
        "batch_size": 32,
        "num_workers": 0,
        "num_epochs": 24,
        "feature_dim": 96,
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
            "horizontal_flip": False,
            "crop_scale": [0.6, 1.0],
        },
    },
    "networks": {
        "feat_model": {
            "type": "timm",
            "params": {"model_name": "test_resnet", "pretrained": False, "use_modulatedatt": False, "use_fc": False},
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
