"""The results of one test as the short table ``--test`` prints (percentages, intervals, shot groups)."""

from .metrics import ECE_BINS


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _score(value):
    return "n/a" if value is None else f"{value:.3f}"


_TABLE_ROWS = (
    ("overall top-1", "overall_top1", _percent),
    ("many-shot top-1", "many_shot_top1", _percent),
    ("medium-shot top-1", "medium_shot_top1", _percent),
    ("few-shot top-1", "few_shot_top1", _percent),
    ("top-5", "top5", _percent),
    ("macro F1", "macro_f1", _score),
    ("F-measure", "f_measure", _score),
    ("open AUROC", "open_auroc", _percent),
    ("open AUPR (known +)", "open_aupr_in", _percent),
    ("open AUPR (open +)", "open_aupr_out", _percent),
    ("OSCR", "oscr", _percent),
    ("FPR at 95% TPR", "fpr_at_95_tpr", _percent),
    ("open rejection acc", "open_rejection_acc", _percent),
    (f"ECE ({ECE_BINS} bins)", "ece", _percent),
)


def format_results_table(results):
    """A short human-readable table of a closed or open results dict (for the CLI to print)."""
    setting = results.get("setting", "open" if "f_measure" in results else "closed")
    if setting == "open":
        header = (
            f"open-set results: {results.get('num_known', '?')} known + "
            f"{results.get('num_open', '?')} open samples, threshold {results.get('threshold', '?')}"
        )
    else:
        header = f"closed-set results: {results.get('num_samples', '?')} samples"
    groups = results.get("shot_groups") or {}
    width = max(len(label) for label, _, _ in _TABLE_ROWS)
    lines = [header]
    for label, key, show in _TABLE_ROWS:
        if key not in results:
            continue
        line = f"  {label:<{width}}  {show(results[key]):>7}"
        interval = (results.get("ci95") or {}).get(key)
        if interval:
            line += f" [{show(interval[0])}, {show(interval[1])}]"
        group = groups.get(key.split("_shot_")[0]) if "_shot_" in key else None
        if isinstance(group, dict):
            line += f"   ({group.get('rule', '?')}: {group.get('num_classes', '?')} classes)"
        lines.append(line)
    if "inclusive" in groups:
        convention = "OLTR code, inclusive" if groups["inclusive"] else "OLTR paper text, exclusive"
        lines.append(f"  shot groups by training count ({convention})")
    lines += _scorer_lines(results)
    return "\n".join(lines)


def _scorer_lines(results):
    """One line per open-set scorer: threshold-free numbers, then F at the validation threshold."""
    scorers = results.get("open_scorers")
    if not isinstance(scorers, dict) or not scorers:
        return []
    rate = results.get("val_accept_rate")
    width = max(len(name) for name in scorers)
    lines = [
        f"  {'scorer':<{width}}  {'AUROC':>7} {'FPR95':>7} {'AUPR-in':>7} {'AUPR-out':>8} {'OSCR':>7}"
        f"  {'F@val':>6} {'acc@val':>7}   (known = positive; val threshold accepts "
        f"{_percent(rate) if isinstance(rate, (int, float)) else '?'} of the validation split)"
    ]
    for name, entry in scorers.items():
        at_val = entry.get("at_val") or {}
        lines.append(
            f"  {name:<{width}}  {_percent(entry.get('auroc')):>7} {_percent(entry.get('fpr95')):>7} "
            f"{_percent(entry.get('aupr_in')):>7} {_percent(entry.get('aupr_out')):>8} {_percent(entry.get('oscr')):>7}"
            f"  {_score(at_val.get('f_measure')):>6} {_percent(at_val.get('overall_top1')):>7}"
        )
    return lines
