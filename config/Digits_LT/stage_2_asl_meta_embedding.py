# Digits_LT stage 2 with the asymmetric loss (ASL), starting from stage_1_asl.py's run:
# the shared loss overlay config/losses/asl.py over stage_2_meta_embedding.py.
_base_ = ["stage_2_meta_embedding.py", "../losses/asl.py"]

config = {
    "training_opt": {"log_dir": "logs/Digits_LT/stage2_asl", "stage1_log_dir": "logs/Digits_LT/stage1_asl"},
}
