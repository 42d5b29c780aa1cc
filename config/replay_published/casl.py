# Replay of the CFL fork's OLTR runs (lnsmith54/CFL, OLTR/) for the casl loss: `./run_all.sh
# --replay-published`, or by hand `main.py --config config/ImageNet_LT/stage_1_casl.py --overlay
# config/replay_published/casl.py`. The fork's OLTR main.py overrides its configs' loss parameters
# with its argparse defaults (gamma_pos 0, gamma_neg 4, gamma_hc 2, cyclical factor 2) for every
# config named *cfl*, and builds Cyclical_FocalLoss (eps, our label smoothing, 0.1): so its "CFL"
# runs computed this, our casl, whose parameters in config/losses/casl.py are those values already.
# What the replay changes, and only that: xi follows the fork's code (schedule "reference", 1-based
# epochs, losses/schedule.py:reference_xi) with the fork's loss-local epoch count, 30 in all four of
# its OLTR configs, although its ImageNet-LT stage 2 trains 60 epochs.
_base_ = "../losses/casl.py"

config = {
    "criterions": {"PerformanceLoss": {"loss_params": {"schedule": "reference", "epochs": 30}}},
}
