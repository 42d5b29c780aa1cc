# CIFAR10_LT stage 1 with the asymmetric loss (ASL):
# the shared loss overlay config/losses/asl.py over stage_1.py.
_base_ = ["stage_1.py", "../losses/asl.py"]

config = {"training_opt": {"log_dir": "logs/CIFAR10_LT/stage1_asl"}}
