# Digits_LT with timm's test_resnet (stage_1.py), stage 2 with
# the nearest class mean classifier:
# config/recipes/stage_2_ncm.py over stage_1.py, starting from stage_1.py's run.
_base_ = ["stage_1.py", "../recipes/stage_2_ncm.py"]

config = {
    "training_opt": {
        "log_dir": "logs/Digits_LT_timm/stage2_ncm",
        "stage1_log_dir": "logs/Digits_LT_timm/stage1",
    },
}
