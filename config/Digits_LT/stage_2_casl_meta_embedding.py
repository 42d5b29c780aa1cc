# Digits_LT stage 2 with the cyclical asymmetric focal loss (CASL), starting from stage_1_casl.py's run:
# the shared loss overlay config/losses/casl.py over stage_2_meta_embedding.py.
_base_ = ["stage_2_meta_embedding.py", "../losses/casl.py"]

config = {
    "training_opt": {"log_dir": "logs/Digits_LT/stage2_casl", "stage1_log_dir": "logs/Digits_LT/stage1_casl"},
}
