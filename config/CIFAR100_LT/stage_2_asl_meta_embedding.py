# CIFAR100_LT stage 2 with the asymmetric loss (ASL), starting from stage_1_asl.py's run.
_base_ = "stage_2_meta_embedding.py"

config = {
    "training_opt": {"log_dir": "logs/CIFAR100_LT/stage2_asl", "stage1_log_dir": "logs/CIFAR100_LT/stage1_asl"},
    "criterions": {"PerformanceLoss": {"loss": "asl", "loss_params": {"gamma_pos": 0.0, "gamma_neg": 4.0, "label_smoothing": 0.1}}},
}
