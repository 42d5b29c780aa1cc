# ImageNet-LT ResNeXt-50 stage 2 with the tau-normalised classifier: stage 1's classifier, tau picked on the
# validation split (training_opt.tau_grid). Published: 49.4 top-1.
_base_ = ["stage_1.py", "../recipes/stage_2_tau_norm.py"]

config = {
    "training_opt": {
        "log_dir": "logs/ImageNet_LT_ResNeXt50/stage2_tau_norm",
        "stage1_log_dir": "logs/ImageNet_LT_ResNeXt50/stage1",
    },
}
