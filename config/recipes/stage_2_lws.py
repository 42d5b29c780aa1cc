# Learnable weight scaling, LWS (Kang et al., ICLR 2020, Sec. 4), shared by every dataset's
# stage_2_lws.py: `_base_ = ["stage_1.py", "../recipes/stage_2_lws.py"]`. Start from the stage-1 run
# (training_opt.stage1_log_dir), keep its feature model and its classifier's weights and bias frozen,
# and learn one scale per class (initialised to 1; logits_j = s_j (W_j . x + b_j)) with class-balanced
# sampling, for classifier-balancing's 5 epochs with cosine decay to 0. Only the scales change.
# Over stage_2_decoupled_training.py (sampler, schedule, frozen features, no memory).
# Not a complete config on its own: it has no dataset.
_base_ = "stage_2_decoupled_training.py"

config = {
    "training_opt": {"recipe": "lws", "num_epochs": 5},
    "networks": {"classifier": {"type": "lws", "params": {}, "stage1_weights": True}},
}
