# Places-LT stage 2 as published: OLTR's meta-embedding recipe (config/recipes/stage_2_meta_embedding.py:
# stage-1 weights + modulated attention, meta-embedding classifier, class-aware sampler (4), 0.01 x
# disc_centroids, centroids lr 0.01) over stage_1.py, with Places-LT's own: `fix` (only the attention
# and fc_add train in the feature model), lr 0.0001 features / 0.01 classifier, 30 epochs, step 10 x0.1.
_base_ = ["stage_1.py", "../recipes/stage_2_meta_embedding.py"]

config = {
    "training_opt": {
        "log_dir": "logs/Places_LT/stage2",
        "stage1_log_dir": "logs/Places_LT/stage1",
    },
    "networks": {
        "feat_model": {
            # Stage-1 weights replace the ImageNet ones, so nothing is downloaded here.
            "params": {"pretrained": None},
            "optim_params": {"lr": 0.0001},
            "fix": True,
        },
        "classifier": {"optim_params": {"lr": 0.01}},
    },
}
