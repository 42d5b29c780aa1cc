# iNaturalist 2018 stage 2 with the tau-normalised classifier, tau picked on the validation split.
# Published (ResNet-50, 90-epoch features): 65.6 top-1. The validation split is the reported one here
# (iNaturalist18_test.txt is a copy of it), so tau is picked on the split it is scored on, as in the paper.
_base_ = ["stage_1.py", "../recipes/stage_2_tau_norm.py"]

config = {
    "training_opt": {
        "log_dir": "logs/iNaturalist18/stage2_tau_norm",
        "stage1_log_dir": "logs/iNaturalist18/stage1",
    },
}
