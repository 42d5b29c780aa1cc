# tau-normalised classifier (Kang et al., ICLR 2020, Sec. 4): W_j / ||W_j||^tau on the stage-1
# classifier, no training, shared by every dataset's stage_2_tau_norm.py:
# `_base_ = ["stage_1.py", "../recipes/stage_2_tau_norm.py"]`. `main.py --config` on it picks tau on
# the validation split over training_opt.tau_grid (0 to 2 in steps of 0.1; the best top-1, the smallest
# tau on ties; never the test split), records it and writes the run's checkpoint. tau = 0 is stage 1.
# The stage-1 bias is kept (params.use_bias; classifier-balancing's tau_norm.py drops it: false).
# Not a complete config on its own: it has no dataset.
config = {
    "training_opt": {
        "stage": 2,
        "recipe": "tau_norm",
        "sampler": None,
        "tau_grid": {"min": 0.0, "max": 2.0, "step": 0.1},
    },
    "networks": {
        "feat_model": {"stage1_weights": True},
        "classifier": {"type": "tau_norm", "params": {"use_bias": True}, "stage1_weights": True},
    },
    # no centroid memory and no feature loss: those are the meta-embedding's
    "criterions": {"FeatureLoss": None},
    "memory": {"centroids": False, "init_centroids": False},
}
