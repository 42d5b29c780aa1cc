# Places-LT stage 1 as published by OLTR: ResNet-152 initialised from ImageNet weights, + fc_add to
# 512, 30 epochs, batch 128, lr 0.001 features / 0.1 classifier, step 10 x0.1, plain shuffling.
# The original used Caffe-converted ImageNet weights; we use torchvision's IMAGENET1K_V1 weights,
# the modern equivalent (fetched once by torchvision; numbers may differ slightly from the paper's).
# Data: OLTR's Places_LT_{train,val,test,open}.txt in data/Places_LT/, paths relative to the
# Places-365 root data/Places365/ (see data/README.md).
config = {
    "seed": 0,
    "training_opt": {
        "dataset": "Places_LT",
        "data_root": "data/Places365",
        "split_dir": "data/Places_LT",
        "log_dir": "logs/Places_LT/stage1",
        "num_classes": 365,
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
            "type": "resnet152",
            "params": {"use_modulatedatt": False, "use_fc": True, "pretrained": "imagenet"},
            "optim_params": {"lr": 0.001, "momentum": 0.9, "weight_decay": 5e-4},
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
