# Digits_LT stage 2 with the focal loss (FL), starting from stage_1_focal.py's run:
# the shared loss overlay config/losses/focal.py over stage_2_meta_embedding.py.
_base_ = ["stage_2_meta_embedding.py", "../losses/focal.py"]

config = {
    "training_opt": {"log_dir": "logs/Digits_LT/stage2_focal", "stage1_log_dir": "logs/Digits_LT/stage1_focal"},
}
