# Places-LT stage 2 as published: stage-1 weights + modulated attention, `fix` (only the attention and
# fc_add train in the feature model), meta-embedding classifier, class-aware sampler (4), 30 epochs,
# lr 0.0001 features / 0.01 classifier / 0.01 centroids, step 10 x0.1, + 0.01 x disc_centroids.
_base_ = "stage_1.py"

config = {
    "training_opt": {
        "log_dir": "logs/Places_LT/stage2",
        "stage1_log_dir": "logs/Places_LT/stage1",
        "sampler": {"type": "class_aware", "num_samples_cls": 4},
    },
    "networks": {
        "feat_model": {
            # Stage-1 weights replace the ImageNet ones, so nothing is downloaded here.
            "params": {"use_modulatedatt": True, "use_fc": True, "pretrained": None},
            "optim_params": {"lr": 0.0001},
            "fix": True,
            "stage1_weights": True,
        },
        "classifier": {"type": "meta_embedding", "optim_params": {"lr": 0.01}, "stage1_weights": True},
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
