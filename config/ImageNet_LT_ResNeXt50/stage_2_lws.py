# ImageNet-LT ResNeXt-50 stage 2 with learnable weight scaling (LWS), classifier-balancing's cls_lws.yaml:
# batch 512, lr 0.2, 5 epochs, cosine to 0, class-aware sampler (4 per class). Published: 49.9 top-1.
_base_ = ["stage_1.py", "../recipes/stage_2_lws.py"]

config = {
    "training_opt": {
        "log_dir": "logs/ImageNet_LT_ResNeXt50/stage2_lws",
        "stage1_log_dir": "logs/ImageNet_LT_ResNeXt50/stage1",
        "batch_size": 512,
        "num_epochs": 5,
        "sampler": {"type": "class_aware", "num_samples_cls": 4},
    },
    "networks": {"classifier": {"optim_params": {"lr": 0.2}}},
}
