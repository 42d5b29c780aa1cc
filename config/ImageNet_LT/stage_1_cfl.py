# ImageNet_LT stage 1 with the cyclical focal loss (CFL):
# the shared loss overlay config/losses/cfl.py over stage_1.py.
_base_ = ["stage_1.py", "../losses/cfl.py"]

config = {"training_opt": {"log_dir": "logs/ImageNet_LT/stage1_cfl"}}
