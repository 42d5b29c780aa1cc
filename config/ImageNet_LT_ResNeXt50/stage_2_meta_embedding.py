# ImageNet-LT ResNeXt-50 stage 2 with OLTR's meta-embedding recipe (modulated attention on the 7x7x2048
# map, fc_add to 512-d features): the sweep's default stage 2; no published number for this backbone.
_base_ = ["stage_1.py", "../recipes/stage_2_meta_embedding.py"]

config = {
    "training_opt": {
        "log_dir": "logs/ImageNet_LT_ResNeXt50/stage2",
        "stage1_log_dir": "logs/ImageNet_LT_ResNeXt50/stage1",
        "num_epochs": 30,
        "feature_dim": 512,
        "scheduler": "step",
        "scheduler_params": {"step_size": 10, "gamma": 0.1},
        "batch_size": 128,
    },
    "networks": {"feat_model": {"params": {"feature_dim": 512}}},
}
