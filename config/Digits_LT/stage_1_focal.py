# Stage 1 on Digits_LT with the focal loss (FL) as the performance loss.
_base_ = "stage_1.py"

config = {
    "training_opt": {"log_dir": "logs/Digits_LT/stage1_focal"},
    "criterions": {"PerformanceLoss": {"loss": "focal", "loss_params": {"gamma": 2.0, "label_smoothing": 0.1}}},
}
