# CIFAR100_LT stage 1 with the focal loss (FL); the same loss parameters as the ImageNet_LT and Places_LT runs
# (label smoothing 0.1, gamma_hc 2, the CFL code's cyclical factor 2; see README "Reproducing Tables 3-4").
_base_ = "stage_1.py"

config = {
    "training_opt": {"log_dir": "logs/CIFAR100_LT/stage1_focal"},
    "criterions": {"PerformanceLoss": {"loss": "focal", "loss_params": {"gamma": 2.0, "label_smoothing": 0.1}}},
}
