# Places-LT stage 1 as published by OLTR: ResNet-152 initialised from ImageNet weights, + fc_add to
# 512, 30 epochs, batch 128, lr 0.001 features / 0.1 classifier, step 10 x0.1, plain shuffling.
# The original used Caffe-converted ImageNet weights; we use torchvision's IMAGENET1K_V1 weights,
# the modern equivalent (fetched once by torchvision; numbers may differ slightly from the paper's).
# Data: OLTR's Places_LT_{train,val,test,open}.txt in data/Places_LT/, paths relative to the
# Places-365 root data/Places365/ (see data/README.md).
_base_ = "../recipes/stage_1.py"

config = {
    "training_opt": {
        "dataset": "Places_LT",
        "data_root": "data/Places365",
        "split_dir": "data/Places_LT",
        "log_dir": "logs/Places_LT/stage1",
        "num_classes": 365,
    },
    "networks": {
        "feat_model": {
            "type": "resnet152",
            "params": {"use_modulatedatt": False, "use_fc": True, "pretrained": "imagenet"},
            "optim_params": {"lr": 0.001},
        },
    },
}
