"""What a test computes from logits alone (no model, no data loading):

metrics.py        shot groups; closed-set top-1 overall and many/medium/few; open-set metrics at
                  OLTR's threshold, the F-measure, AUROC/AUPR/FPR95/OSCR
metrics_open.py   the threshold-free open-set measures
uncertainty.py    bootstrap and t intervals, paired differences
posthoc.py        post-hoc logit adjustment (logits - tau log prior)
summary.py        the short results table --test prints
"""
