# ImageNet-LT ResNeXt-50 stage 2 with the nearest class mean classifier over the stage-1 features.
# Published: 47.3 top-1.
_base_ = ["stage_1.py", "../recipes/stage_2_ncm.py"]

config = {
    "training_opt": {
        "log_dir": "logs/ImageNet_LT_ResNeXt50/stage2_ncm",
        "stage1_log_dir": "logs/ImageNet_LT_ResNeXt50/stage1",
    },
}
