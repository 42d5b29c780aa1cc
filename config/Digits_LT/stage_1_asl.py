# Stage 1 on Digits_LT with the asymmetric loss (ASL) as the performance loss.
_base_ = "stage_1.py"

config = {
    "training_opt": {"log_dir": "logs/Digits_LT/stage1_asl"},
    "criterions": {"PerformanceLoss": {"loss": "asl", "loss_params": {"gamma_pos": 0.0, "gamma_neg": 4.0, "label_smoothing": 0.1}}},
}
