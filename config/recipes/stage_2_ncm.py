# Nearest class mean, NCM (Kang et al., ICLR 2020, Sec. 4), shared by every dataset's stage_2_ncm.py:
# `_base_ = ["stage_1.py", "../recipes/stage_2_ncm.py"]`. No training: `main.py --config` on it takes
# the stage-1 feature model as it is, computes each class's mean of L2-normalised features in one pass
# over the training split (test-time transforms), and classifies by cosine similarity to the means
# (logits = params.scale x cosine, default 16: the argmax is the nearest mean; the scale only sharpens
# the softmax the open-set threshold reads). `params.mode: "centered_l2"` is classifier-balancing's
# default instead: centred, L2-normalised features and the negative squared L2 distance (no scale).
# Not a complete config on its own: it has no dataset.
config = {
    "training_opt": {"stage": 2, "recipe": "ncm", "sampler": None},
    "networks": {
        "feat_model": {"stage1_weights": True},
        "classifier": {"type": "ncm", "params": {"scale": 16.0, "mode": "cosine"}, "stage1_weights": False},
    },
    # no centroid memory and no feature loss: those are the meta-embedding's
    "criterions": {"FeatureLoss": None},
    "memory": {"centroids": False, "init_centroids": False},
}
