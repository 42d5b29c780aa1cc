# Places_LT stage 2 with classifier re-training (cRT) (Kang et al., ICLR 2020):
# the shared recipe
# config/recipes/stage_2_crt.py over stage_1.py, starting from stage_1.py's run.
# classifier-balancing's published Places_LT cls_crt.yaml:
# batch 256, classifier lr 0.1, 10 epochs, cosine to 0, class-aware sampler (4 per class).
# (Their feature models were ResNeXt-50 / ResNet-152 trained 90 / 30 epochs; ours is this
# dataset's stage 1.)
_base_ = ["stage_1.py", "../recipes/stage_2_crt.py"]

config = {
    "training_opt": {
        "log_dir": "logs/Places_LT/stage2_crt",
        "stage1_log_dir": "logs/Places_LT/stage1",
        "batch_size": 256,
        "num_epochs": 10,
        "sampler": {"type": "class_aware", "num_samples_cls": 4},
    },
    "networks": {"classifier": {"optim_params": {"lr": 0.1}}},
}
