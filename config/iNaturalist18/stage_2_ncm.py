# iNaturalist 2018 stage 2 with the nearest class mean classifier. Published (ResNet-50, 90 epochs): 58.2 top-1.
_base_ = ["stage_1.py", "../recipes/stage_2_ncm.py"]

config = {
    "training_opt": {
        "log_dir": "logs/iNaturalist18/stage2_ncm",
        "stage1_log_dir": "logs/iNaturalist18/stage1",
    },
}
