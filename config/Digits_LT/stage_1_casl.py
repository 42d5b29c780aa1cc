# Stage 1 on Digits_LT with the cyclical asymmetric focal loss (CASL) as the performance loss.
_base_ = "stage_1.py"

config = {
    "training_opt": {"log_dir": "logs/Digits_LT/stage1_casl"},
    "criterions": {"PerformanceLoss": {"loss": "casl", "loss_params": {"gamma_pos": 0.0, "gamma_neg": 4.0, "gamma_hc": 2.0, "cyclical_factor": 2.0, "label_smoothing": 0.1}}},
}
