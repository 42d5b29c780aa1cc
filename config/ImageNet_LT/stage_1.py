# ImageNet-LT stage 1 as published by OLTR (Liu et al. 2019): ResNet-10 from scratch, 30 epochs,
# batch 128, SGD lr 0.1 (features and classifier), step 10 x0.1, plain shuffling, softmax.
# Data: OLTR's ImageNet_LT_{train,val,test,open}.txt in data/ImageNet_LT/, paths relative to the
# ImageNet 2012 root data/ImageNet/ (see data/README.md).
_base_ = "../recipes/stage_1.py"

config = {
    "training_opt": {
        "dataset": "ImageNet_LT",
        "data_root": "data/ImageNet",
        "split_dir": "data/ImageNet_LT",
        "log_dir": "logs/ImageNet_LT/stage1",
        "num_classes": 1000,
    },
    "networks": {
        "feat_model": {
            "type": "resnet10",
            "params": {"use_modulatedatt": False, "use_fc": False},
            "optim_params": {"lr": 0.1},
        },
    },
}
