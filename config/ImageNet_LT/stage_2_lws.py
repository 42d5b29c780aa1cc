# ImageNet_LT stage 2 with learnable weight scaling (LWS) (Kang et al., ICLR 2020):
# the shared recipe
# config/recipes/stage_2_lws.py over stage_1.py, starting from stage_1.py's run.
# classifier-balancing's published ImageNet_LT cls_lws.yaml:
# batch 512, lr 0.2, 5 epochs, cosine to 0, class-aware sampler (4 per class).
# (Their feature models were ResNeXt-50 / ResNet-152 trained 90 / 30 epochs; ours is this
# dataset's stage 1.)
_base_ = ["stage_1.py", "../recipes/stage_2_lws.py"]

config = {
    "training_opt": {
        "log_dir": "logs/ImageNet_LT/stage2_lws",
        "stage1_log_dir": "logs/ImageNet_LT/stage1",
        "batch_size": 512,
        "num_epochs": 5,
        "sampler": {"type": "class_aware", "num_samples_cls": 4},
    },
    "networks": {"classifier": {"optim_params": {"lr": 0.2}}},
}
