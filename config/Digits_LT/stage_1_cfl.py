# Stage 1 on Digits_LT with the cyclical focal loss (CFL) as the performance loss.
_base_ = "stage_1.py"

config = {
    "training_opt": {"log_dir": "logs/Digits_LT/stage1_cfl"},
    "criterions": {"PerformanceLoss": {"loss": "cfl", "loss_params": {"gamma": 2.0, "gamma_hc": 2.0, "cyclical_factor": 2.0, "label_smoothing": 0.1}}},
}
