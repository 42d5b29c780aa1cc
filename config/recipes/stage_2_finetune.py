# Fine-tuning (oltr/recipes/finetune.py), shared by every dataset's stage_2_finetune.py:
# `_base_ = ["stage_1.py", "../recipes/stage_2_finetune.py"]`. The feature model starts from the stage-1
# run (training_opt.stage1_log_dir, set by the dataset) or, in configs that turn stage1_weights off, from
# its pretrained weights (networks.feat_model.params.pretrained); a fresh classifier; plain shuffling,
# cosine decay to 0, no centroid memory or feature loss; any registry loss. training_opt.finetune.mode
# picks what trains (full, bias_norm, linear_probe, lora): e.g. --opts training_opt.finetune.mode=bias_norm.
# Not a complete config on its own: it has no dataset.
config = {
    "training_opt": {
        "stage": 2,
        "recipe": "finetune",
        "finetune": {"mode": "full"},
        "sampler": None,
        "scheduler": "cosine",
        "scheduler_params": {"eta_min": 0.0},
    },
    "networks": {"feat_model": {"stage1_weights": True}, "classifier": {"stage1_weights": False}},
    "criterions": {"FeatureLoss": None},
    "memory": {"centroids": False, "init_centroids": False},
}
