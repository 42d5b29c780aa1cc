# iNaturalist 2018 stage 2 with learnable weight scaling (LWS), classifier-balancing's iNaturalist18/cls_lws.yaml:
# batch 512, lr 0.2, weight decay 1e-4, 5 epochs, cosine to 0, class-aware sampler (4 per class).
# Published (ResNet-50, 90-epoch features): 65.9 top-1.
_base_ = ["stage_1.py", "../recipes/stage_2_lws.py"]

config = {
    "training_opt": {
        "log_dir": "logs/iNaturalist18/stage2_lws",
        "stage1_log_dir": "logs/iNaturalist18/stage1",
        "batch_size": 512,
        "num_epochs": 5,
        "sampler": {"type": "class_aware", "num_samples_cls": 4},
    },
    "networks": {"classifier": {"optim_params": {"lr": 0.2, "weight_decay": 1e-4}}},
}
