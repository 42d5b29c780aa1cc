# ImageNet-LT stage 1 with classifier-balancing's ResNeXt-50 (32x4d) from scratch (Kang et al., ICLR 2020;
# facebookresearch/classifier-balancing config/ImageNet_LT/feat_uniform.yaml): 90 epochs, batch 512,
# SGD lr 0.2 (features and classifier), momentum 0.9, weight decay 5e-4, cosine decay to 0, plain
# shuffling, softmax, 2048-d features, no fc_add. The network is timm's resnext50_32x4d without
# weights (timm extra: pip install -e '.[timm]'). Published: joint 49.6 top-1 after cRT (docs/backbones.md).
# Data and the open split are ImageNet_LT's (over ../ImageNet_LT/stage_1.py).
_base_ = "../ImageNet_LT/stage_1.py"

config = {
    "training_opt": {
        "log_dir": "logs/ImageNet_LT_ResNeXt50/stage1",
        "batch_size": 512,
        "num_epochs": 90,
        "feature_dim": 2048,
        "scheduler": "cosine",
        "scheduler_params": {"eta_min": 0.0},
    },
    "networks": {
        "feat_model": {
            "type": "timm",
            # zero_init_last false: every BatchNorm starts at 1, as in classifier-balancing's (torchvision's)
            # ResNeXt; timm's default zero-initialises each block's last one
            "params": {"model_name": "resnext50_32x4d", "pretrained": False, "model_kwargs": {"zero_init_last": False}},
            "optim_params": {"lr": 0.2, "momentum": 0.9, "weight_decay": 5e-4},
        },
        "classifier": {"optim_params": {"lr": 0.2, "momentum": 0.9, "weight_decay": 5e-4}},
    },
}
