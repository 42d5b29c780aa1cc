# Digits_LT with timm's test_resnet (stage_1.py), stage 2 with
# OLTR's meta-embedding recipe (modulated attention on test_resnet's map, fc_add):
# config/recipes/stage_2_meta_embedding.py over stage_1.py, starting from stage_1.py's run.
_base_ = ["stage_1.py", "../recipes/stage_2_meta_embedding.py"]

config = {
    "training_opt": {
        "log_dir": "logs/Digits_LT_timm/stage2",
        "stage1_log_dir": "logs/Digits_LT_timm/stage1",
    },
}
