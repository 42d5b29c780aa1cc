# Digits_LT stage 2 with the finetune recipe: stage 1's feature model fine-tuned whole (mode full) with a
# fresh classifier (lr 0.1), the features at a tenth of stage 1's rate, for half its epochs
# (config/recipes/stage_2_finetune.py over stage_1.py, starting from stage_1.py's run).
_base_ = ["stage_1.py", "../recipes/stage_2_finetune.py"]

config = {
    "training_opt": {
        "log_dir": "logs/Digits_LT/stage2_finetune",
        "stage1_log_dir": "logs/Digits_LT/stage1",
        "num_epochs": 12,
    },
    "networks": {"feat_model": {"optim_params": {"lr": 0.01}}, "classifier": {"optim_params": {"lr": 0.1}}},
}
