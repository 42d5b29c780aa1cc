# CIFAR-100-LT stage 2, OLTR's recipe at CIFAR scale: the meta-embedding recipe
# (config/recipes/stage_2_meta_embedding.py: stage-1 weights + modulated attention (on the 4x4 last map
# of a 32-px input) + fc_add, meta-embedding classifier, class-aware sampler (4), performance loss +
# 0.01 x disc_centroids, OLTR's ImageNet-LT stage-2 learning rates 0.01 features / 0.1 classifier /
# 0.01 centroids) over stage_1.py, for OLTR's ImageNet-LT stage-2 length (60 epochs), cosine decay as
# in stage 1.
_base_ = ["stage_1.py", "../recipes/stage_2_meta_embedding.py"]

config = {
    "training_opt": {
        "log_dir": "logs/CIFAR100_LT/stage2",
        "stage1_log_dir": "logs/CIFAR100_LT/stage1",
        "num_epochs": 60,
    },
}
