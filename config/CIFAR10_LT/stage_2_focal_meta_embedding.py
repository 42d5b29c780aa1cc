# CIFAR10_LT stage 2 with the focal loss (FL), starting from stage_1_focal.py's run.
_base_ = "stage_2_meta_embedding.py"

config = {
    "training_opt": {"log_dir": "logs/CIFAR10_LT/stage2_focal", "stage1_log_dir": "logs/CIFAR10_LT/stage1_focal"},
    "criterions": {"PerformanceLoss": {"loss": "focal", "loss_params": {"gamma": 2.0, "label_smoothing": 0.1}}},
}
