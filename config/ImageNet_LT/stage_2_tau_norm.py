# ImageNet_LT stage 2 with the tau-normalised classifier (Kang et al., ICLR 2020):
# the shared recipe
# config/recipes/stage_2_tau_norm.py over stage_1.py, starting from stage_1.py's run.
_base_ = ["stage_1.py", "../recipes/stage_2_tau_norm.py"]

config = {
    "training_opt": {
        "log_dir": "logs/ImageNet_LT/stage2_tau_norm",
        "stage1_log_dir": "logs/ImageNet_LT/stage1",
    },
}
