# ImageNet-LT ResNeXt-50 stage 2 with classifier re-training (cRT), classifier-balancing's cls_crt.yaml:
# the stage-1 features frozen, a fresh classifier, batch 512, lr 0.2, weight decay 5e-4, 10 epochs, cosine
# to 0, class-aware sampler (4 per class). Published: 49.6 top-1 (61.8 many / 46.2 medium / 27.4 few).
_base_ = ["stage_1.py", "../recipes/stage_2_crt.py"]

config = {
    "training_opt": {
        "log_dir": "logs/ImageNet_LT_ResNeXt50/stage2_crt",
        "stage1_log_dir": "logs/ImageNet_LT_ResNeXt50/stage1",
        "batch_size": 512,
        "num_epochs": 10,
        "sampler": {"type": "class_aware", "num_samples_cls": 4},
    },
    "networks": {"classifier": {"optim_params": {"lr": 0.2}}},
}
