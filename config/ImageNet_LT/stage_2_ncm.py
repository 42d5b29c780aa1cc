# ImageNet_LT stage 2 with the nearest class mean classifier (NCM) (Kang et al., ICLR 2020):
# the shared recipe
# config/recipes/stage_2_ncm.py over stage_1.py, starting from stage_1.py's run.
_base_ = ["stage_1.py", "../recipes/stage_2_ncm.py"]

config = {
    "training_opt": {
        "log_dir": "logs/ImageNet_LT/stage2_ncm",
        "stage1_log_dir": "logs/ImageNet_LT/stage1",
    },
}
