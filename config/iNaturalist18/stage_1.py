# iNaturalist 2018 stage 1 with classifier-balancing's recipe (Kang et al., ICLR 2020;
# facebookresearch/classifier-balancing config/iNaturalist18/feat_unifrom.yaml): ResNet-50 from scratch,
# 90 epochs, batch 512, SGD lr 0.2 (features and classifier), momentum 0.9, weight decay 1e-4, cosine decay
# to 0, plain shuffling, softmax, 2048-d features. 8,142 classes.
# Data: the 2018 competition's train_val2018/ under data/iNaturalist18/, with classifier-balancing's
# iNaturalist18_train.txt and iNaturalist18_val.txt beside it; `python -m oltr.data inat18` writes the test
# split (= val, the split every published number is on) and an optional open split from another dataset
# (docs/datasets.md). Shot groups: OLTR's many >= 100, few <= 20 training images.
_base_ = "../recipes/stage_1.py"

config = {
    "training_opt": {
        "dataset": "iNaturalist18",
        "data_root": "data/iNaturalist18",
        "split_dir": "data/iNaturalist18",
        "log_dir": "logs/iNaturalist18/stage1",
        "num_classes": 8142,
        "batch_size": 512,
        "num_epochs": 90,
        "feature_dim": 2048,
        "scheduler": "cosine",
        "scheduler_params": {"eta_min": 0.0},
    },
    "networks": {
        "feat_model": {
            "type": "resnet50",
            "params": {"use_modulatedatt": False, "use_fc": False},
            "optim_params": {"lr": 0.2, "momentum": 0.9, "weight_decay": 1e-4},
        },
        "classifier": {"optim_params": {"lr": 0.2, "momentum": 0.9, "weight_decay": 1e-4}},
    },
}
