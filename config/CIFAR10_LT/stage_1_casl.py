# CIFAR10_LT stage 1 with the cyclical asymmetric focal loss (CASL); the same loss parameters as the ImageNet_LT and Places_LT runs
# (label smoothing 0.1, gamma_hc 2, the CFL code's cyclical factor 2; see README "Reproducing Tables 3-4").
_base_ = "stage_1.py"

config = {
    "training_opt": {"log_dir": "logs/CIFAR10_LT/stage1_casl"},
    "criterions": {"PerformanceLoss": {"loss": "casl", "loss_params": {"gamma_pos": 0.0, "gamma_neg": 4.0, "gamma_hc": 2.0, "cyclical_factor": 2.0, "label_smoothing": 0.1}}},
}
