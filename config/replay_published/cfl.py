# Replay of the CFL fork's OLTR runs (lnsmith54/CFL, OLTR/) for the cfl loss: `./run_all.sh
# --replay-published`, or by hand `main.py --config config/ImageNet_LT/stage_1_cfl.py --overlay
# config/replay_published/cfl.py`. What it changes, and only that: xi follows the fork's code
# (schedule "reference", 1-based epochs, losses/schedule.py:reference_xi) with the fork's loss-local
# epoch count, 30 in all four of its OLTR configs (ImageNet-LT and Places-LT, both stages), although
# its ImageNet-LT stage 2 trains 60 epochs. The other values are config/losses/cfl.py's, which are
# already the fork's command-line defaults (gamma_hc 2, cyclical factor 2; label smoothing 0.1 is its
# Cyclical_FocalLoss's eps). The fork's own "CFL" runs computed our casl: see replay_published/casl.py.
_base_ = "../losses/cfl.py"

config = {
    "criterions": {"PerformanceLoss": {"loss_params": {"schedule": "reference", "epochs": 30}}},
}
