# ImageNet-LT stage 1 as published by OLTR (Liu et al. 2019): ResNet-10 from scratch, 30 epochs,
# batch 128, SGD lr 0.1 (features and classifier), step 10 x0.1, plain shuffling, softmax.
# Data: OLTR's ImageNet_LT_{train,val,test,open}.txt in data/ImageNet_LT/, paths relative to the
# ImageNet 2012 root data/ImageNet/ (see data/README.md).
config = {
    "seed": 0,
    "training_opt": {
        "dataset": "ImageNet_LT",
        "data_root": "data/ImageNet",
        "split_dir": "data/ImageNet_LT",
        "log_dir": "logs/ImageNet_LT/stage1",
        "num_classes": 1000,
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
        "feat_model": {
            "type": "resnet10",
            "params": {"use_modulatedatt": False, "use_fc": False},
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
