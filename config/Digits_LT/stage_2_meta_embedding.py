# Stage 2 on Digits_LT: OLTR's meta-embedding recipe (config/recipes/stage_2_meta_embedding.py:
# stage-1 weights + modulated attention and fc_add, meta-embedding classifier over class centroids,
# class-aware sampler (4 per class), 0.01 x disc_centroids, OLTR's stage-2 learning rates) over
# stage_1.py, for as many epochs as stage 1.
_base_ = ["stage_1.py", "../recipes/stage_2_meta_embedding.py"]

config = {
    "training_opt": {
        "log_dir": "logs/Digits_LT/stage2",
        "stage1_log_dir": "logs/Digits_LT/stage1",
        "num_epochs": 24,
    },
}
