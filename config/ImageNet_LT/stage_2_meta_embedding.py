# ImageNet-LT stage 2 as published: OLTR's meta-embedding recipe (config/recipes/stage_2_meta_embedding.py:
# stage-1 weights + modulated attention + fc_add, meta-embedding classifier, class-aware sampler (4),
# lr 0.01 features / 0.1 classifier / 0.01 centroids, performance loss + 0.01 x disc_centroids)
# over stage_1.py, for 60 epochs with step 20 x0.1.
_base_ = ["stage_1.py", "../recipes/stage_2_meta_embedding.py"]

config = {
    "training_opt": {
        "log_dir": "logs/ImageNet_LT/stage2",
        "stage1_log_dir": "logs/ImageNet_LT/stage1",
        "num_epochs": 60,
        "scheduler_params": {"step_size": 20, "gamma": 0.1},
    },
}
