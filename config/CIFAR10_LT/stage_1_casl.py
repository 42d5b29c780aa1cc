# CIFAR10_LT stage 1 with the cyclical asymmetric focal loss (CASL):
# the shared loss overlay config/losses/casl.py over stage_1.py.
_base_ = ["stage_1.py", "../losses/casl.py"]

config = {"training_opt": {"log_dir": "logs/CIFAR10_LT/stage1_casl"}}
