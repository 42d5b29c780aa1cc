# What the two decoupled recipes that train (cRT and LWS; Kang et al., ICLR 2020, Sec. 4) share:
# stage 2 from the stage-1 run's feature model (frozen, eval mode), class-balanced sampling, cosine
# decay to 0, and neither centroid memory nor a feature loss (those are the meta-embedding's).
# stage_2_crt.py and stage_2_lws.py add their recipe, epochs and classifier.
# Not a complete config on its own: it has no dataset.
config = {
    "training_opt": {
        "stage": 2,
        "sampler": {"type": "class_balanced"},
        "scheduler": "cosine",
        "scheduler_params": {"eta_min": 0.0},
    },
    "networks": {"feat_model": {"stage1_weights": True}},
    "criterions": {"FeatureLoss": None},
    "memory": {"centroids": False, "init_centroids": False},
}
