# The cyclical focal loss (CFL, paper Eq. 9) as the performance loss, with the paper's OLTR
# hyper-parameters (gamma 2, gamma_hc 2, the CFL code's cyclical factor 2, label smoothing 0.1; see
# README "Reproducing Tables 3-4"). An overlay: merge it over a stage's config
# (`_base_ = ["stage_1.py", "../losses/cfl.py"]`, or `main.py --overlay`).
config = {
    "criterions": {
        "PerformanceLoss": {
            "loss": "cfl",
            "loss_params": {"gamma": 2.0, "gamma_hc": 2.0, "cyclical_factor": 2.0, "label_smoothing": 0.1},
        }
    },
}
