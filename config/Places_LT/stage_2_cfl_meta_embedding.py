# Places_LT stage 2 with the cyclical focal loss (CFL), starting from stage_1_cfl.py's run:
# the shared loss overlay config/losses/cfl.py over stage_2_meta_embedding.py.
_base_ = ["stage_2_meta_embedding.py", "../losses/cfl.py"]

config = {
    "training_opt": {"log_dir": "logs/Places_LT/stage2_cfl", "stage1_log_dir": "logs/Places_LT/stage1_cfl"},
}
