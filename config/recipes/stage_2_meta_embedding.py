# OLTR's stage-2 meta-embedding recipe (Liu et al. 2019), shared by every dataset's
# stage_2_meta_embedding.py: `_base_ = ["stage_1.py", "../recipes/stage_2_meta_embedding.py"]`.
# Start from the stage-1 weights (training_opt.stage1_log_dir, set by the dataset), add modulated
# attention and fc_add, train the meta-embedding classifier over class centroids (initialised from
# one pass over the training set) with the class-aware sampler (4 images per class in turn) and
# 0.01 x the discriminative-centroids loss, at OLTR's ImageNet-LT stage-2 learning rates
# (features 0.01, classifier 0.1, centroids 0.01). A dataset overrides what is its own
# (log dirs, epochs, scheduler, Places-LT's smaller rates and `fix`).
# Not a complete config on its own: it has no dataset.
config = {
    "training_opt": {
        "stage": 2,
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
