# OLTR's stage-1 recipe (Liu et al. 2019, its ImageNet-LT and Places-LT configs), shared by those
# datasets' and CIFAR-LT's stage_1.py: 30 epochs, batch 128, SGD (momentum 0.9, weight decay 5e-4),
# step decay 10 x0.1, plain shuffling, a dot-product classifier at lr 0.1 over 512-d features,
# softmax cross-entropy, open threshold 0.1, 224-px crops of 256-px resizes, OLTR's shot thresholds
# (many >= 100, few <= 20 training images). A dataset adds its data, classes and feature model.
# Not a complete config on its own: it has no dataset.
config = {
    "seed": 0,
    "training_opt": {
        "batch_size": 128,
        "num_workers": 8,
        "num_epochs": 30,
        "feature_dim": 512,
        "open_threshold": 0.1,
        "display_step": 10,
        "sampler": None,
        "scheduler": "step",
        "scheduler_params": {"step_size": 10, "gamma": 0.1},
        "shot_thresholds": {"many": 100, "few": 20, "inclusive": True},
        "transforms": {"input_size": 224, "resize_size": 256},
    },
    "networks": {
        "feat_model": {"optim_params": {"momentum": 0.9, "weight_decay": 5e-4}},
        "classifier": {
            "type": "dot_product",
            "params": {},
            "optim_params": {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4},
        },
    },
    "criterions": {"PerformanceLoss": {"loss": "softmax", "loss_params": {}, "weight": 1.0}},
    "memory": {"centroids": False, "init_centroids": False},
}
