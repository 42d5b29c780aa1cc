# CIFAR-100-LT stage 2, OLTR's recipe at CIFAR scale: stage-1 weights + modulated attention (on the
# 4x4 last map of a 32-px input) + fc_add, meta-embedding classifier, class-aware sampler (4),
# performance loss + 0.01 x disc_centroids, OLTR's ImageNet-LT stage-2 learning rates (0.01 features,
# 0.1 classifier, 0.01 centroids) and length (60 epochs), cosine decay as in stage 1.
_base_ = "stage_1.py"

config = {
    "training_opt": {
        "log_dir": "logs/CIFAR100_LT/stage2",
        "stage1_log_dir": "logs/CIFAR100_LT/stage1",
        "num_epochs": 60,
        "sampler": {"type": "class_aware", "num_samples_cls": 4},
    },
    "networks": {
        "feat_model": {
            "params": {"use_modulatedatt": True, "use_fc": True},
            "optim_params": {"lr": 0.01},
            "stage1_weights": True,
        },
        "classifier": {"type": "meta_embedding", "optim_params": {"lr": 0.1}, "stage1_weights": True},
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
