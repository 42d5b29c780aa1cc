# CIFAR100_LT stage 2 with the cyclical focal loss (CFL), starting from stage_1_cfl.py's run.
_base_ = "stage_2_meta_embedding.py"

config = {
    "training_opt": {"log_dir": "logs/CIFAR100_LT/stage2_cfl", "stage1_log_dir": "logs/CIFAR100_LT/stage1_cfl"},
    "criterions": {"PerformanceLoss": {"loss": "cfl", "loss_params": {"gamma": 2.0, "gamma_hc": 2.0, "cyclical_factor": 2.0, "label_smoothing": 0.1}}},
}
