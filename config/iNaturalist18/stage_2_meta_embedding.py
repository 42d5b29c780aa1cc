# iNaturalist 2018 stage 2 with OLTR's meta-embedding recipe (modulated attention on the 7x7x2048 map, fc_add
# to 512-d features, 8,142 centroids): the sweep's default stage 2; OLTR published no iNaturalist number.
_base_ = ["stage_1.py", "../recipes/stage_2_meta_embedding.py"]

config = {
    "training_opt": {
        "log_dir": "logs/iNaturalist18/stage2",
        "stage1_log_dir": "logs/iNaturalist18/stage1",
        "num_epochs": 30,
        "feature_dim": 512,
        "batch_size": 128,
        "scheduler": "step",
        "scheduler_params": {"step_size": 10, "gamma": 0.1},
    },
    "networks": {"feat_model": {"params": {"feature_dim": 512}}},
}
