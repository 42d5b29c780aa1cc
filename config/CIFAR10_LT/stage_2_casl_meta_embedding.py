# CIFAR10_LT stage 2 with the cyclical asymmetric focal loss (CASL), starting from stage_1_casl.py's run.
_base_ = "stage_2_meta_embedding.py"

config = {
    "training_opt": {"log_dir": "logs/CIFAR10_LT/stage2_casl", "stage1_log_dir": "logs/CIFAR10_LT/stage1_casl"},
    "criterions": {"PerformanceLoss": {"loss": "casl", "loss_params": {"gamma_pos": 0.0, "gamma_neg": 4.0, "gamma_hc": 2.0, "cyclical_factor": 2.0, "label_smoothing": 0.1}}},
}
