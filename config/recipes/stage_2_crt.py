# Classifier re-training, cRT (Kang et al., "Decoupling Representation and Classifier for Long-Tailed
# Recognition", ICLR 2020, Sec. 4), shared by every dataset's stage_2_crt.py:
# `_base_ = ["stage_1.py", "../recipes/stage_2_crt.py"]`. Start from the stage-1 run
# (training_opt.stage1_log_dir, set by the dataset), keep its feature model exactly (frozen, eval mode,
# no grad), re-initialise the dot-product classifier and train it alone with class-balanced sampling,
# for classifier-balancing's 10 epochs with cosine decay to 0. Any registry loss may be the
# performance loss (softmax by default, as the paper). A dataset overrides what is its own
# (log dirs, batch, learning rate; ImageNet-LT and Places-LT use the published values).
# Over stage_2_decoupled_training.py (sampler, schedule, frozen features, no memory).
# Not a complete config on its own: it has no dataset.
_base_ = "stage_2_decoupled_training.py"

config = {
    "training_opt": {"recipe": "crt", "num_epochs": 10},
    "networks": {"classifier": {"type": "dot_product", "params": {}, "stage1_weights": False}},
}
