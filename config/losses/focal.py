# The focal loss (FL) as the performance loss, with the paper's OLTR hyper-parameters (gamma 2,
# label smoothing 0.1; see README "Reproducing Tables 3-4"). An overlay: merge it over a stage's
# config (`_base_ = ["stage_1.py", "../losses/focal.py"]`, or `main.py --overlay`).
config = {
    "criterions": {"PerformanceLoss": {"loss": "focal", "loss_params": {"gamma": 2.0, "label_smoothing": 0.1}}},
}
