# Digits_LT with timm's test_resnet (stage_1.py), stage 2 with
# the finetune recipe (mode bias_norm: biases and norm layers of stage 1's test_resnet):
# config/recipes/stage_2_finetune.py over stage_1.py, starting from stage_1.py's run.
_base_ = ["stage_1.py", "../recipes/stage_2_finetune.py"]

config = {
    "training_opt": {
        "log_dir": "logs/Digits_LT_timm/stage2_finetune",
        "stage1_log_dir": "logs/Digits_LT_timm/stage1",
        "finetune": {"mode": "bias_norm"},
        "num_epochs": 12,
    },
    "networks": {"feat_model": {"optim_params": {"lr": 0.01}}},
}
