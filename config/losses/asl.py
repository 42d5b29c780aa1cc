# The asymmetric loss (ASL) as the performance loss, with the paper's OLTR hyper-parameters
# (gamma_pos 0, gamma_neg 4, label smoothing 0.1; see README "Reproducing Tables 3-4"). An overlay:
# merge it over a stage's config (`_base_ = ["stage_1.py", "../losses/asl.py"]`, or `main.py --overlay`).
config = {
    "criterions": {
        "PerformanceLoss": {"loss": "asl", "loss_params": {"gamma_pos": 0.0, "gamma_neg": 4.0, "label_smoothing": 0.1}}
    },
}
