# Places_LT stage 1 with the focal loss (FL):
# the shared loss overlay config/losses/focal.py over stage_1.py.
_base_ = ["stage_1.py", "../losses/focal.py"]

config = {"training_opt": {"log_dir": "logs/Places_LT/stage1_focal"}}
