"""What a test computes from logits alone (no model, no data loading):

metrics.py        shot groups; closed-set top-1 overall and many/medium/few; open-set metrics at
                  OLTR's threshold, the F-measure, AUROC/AUPR/FPR95/OSCR
metrics_open.py   the threshold-free open-set measures
open_scores.py    every number of one open-set scorer: AUROC, FPR95 (both sides), AUPR, OSCR, AUROC by
                  shot group, and the F-measure at the validation threshold
scorers/          the open-set scorers (msp, max_logit, energy, gen, mahalanobis, knn), by name
uncertainty.py    bootstrap and t intervals, paired differences
paired_open.py    paired bootstrap differences of the open-set F-measure and AUROC
posthoc.py        post-hoc logit adjustment (logits - tau log prior)
summary.py        the short results table --test prints
"""
