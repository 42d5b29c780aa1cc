# LDAM with deferred re-weighting (Cao et al. 2019) as the performance loss, fitted to OLTR's
# classifiers. LDAM's scale s = 30 is meant for raw cosine logits (its NormedLinear classifier,
# values in [-1, 1]); OLTR's logits are already scaled (stage 1's dot product is unnormalised,
# stage 2's meta-embedding classifier multiplies its cosines by 16 and a reachability factor), so
# s = 30 on top made stage 2 diverge within an epoch on Digits_LT. s = 1 keeps the logits as the
# classifier made them; the margins (largest 0.5) and DRW (from 80% of training) are the paper's.
# An overlay: merge it over a stage's config (`main.py --overlay`; the sweep uses it for --losses ldam).
config = {
    "criterions": {"PerformanceLoss": {"loss": "ldam", "loss_params": {"scale": 1.0}}},
}
