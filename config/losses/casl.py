# The cyclical asymmetric focal loss (CASL, paper Eq. 10) as the performance loss, with the paper's
# OLTR hyper-parameters (gamma_pos 0, gamma_neg 4, gamma_hc 2, the CFL code's cyclical factor 2, label
# smoothing 0.1; see README "Reproducing Tables 3-4"). An overlay: merge it over a stage's config
# (`_base_ = ["stage_1.py", "../losses/casl.py"]`, or `main.py --overlay`).
config = {
    "criterions": {
        "PerformanceLoss": {
            "loss": "casl",
            "loss_params": {
                "gamma_pos": 0.0,
                "gamma_neg": 4.0,
                "gamma_hc": 2.0,
                "cyclical_factor": 2.0,
                "label_smoothing": 0.1,
            },
        }
    },
}
