# Digits_LT with timm's test_resnet (stage_1.py), stage 2 with
# classifier re-training (cRT):
# config/recipes/stage_2_crt.py over stage_1.py, starting from stage_1.py's run.
_base_ = ["stage_1.py", "../recipes/stage_2_crt.py"]

config = {
    "training_opt": {
        "log_dir": "logs/Digits_LT_timm/stage2_crt",
        "stage1_log_dir": "logs/Digits_LT_timm/stage1",
    },
}
