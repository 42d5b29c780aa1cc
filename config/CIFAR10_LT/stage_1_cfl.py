# CIFAR10_LT stage 1 with the cyclical focal loss (CFL):
# the shared loss overlay config/losses/cfl.py over stage_1.py.
_base_ = ["stage_1.py", "../losses/cfl.py"]

config = {"training_opt": {"log_dir": "logs/CIFAR10_LT/stage1_cfl"}}
