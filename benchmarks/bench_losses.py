"""Forward+backward time of every registered loss relative to F.cross_entropy.

    python benchmarks/bench_losses.py [--batch 512] [--classes 1000] [--repeats 30] [--threads N] [--keep-freed-memory]

All candidates run side by side in one process: each round times every
candidate (in a shuffled order, a few iterations each) right beside
F.cross_entropy, and the verdict uses the median of those paired ratios, so
load on the machine hits both sides of a comparison alike. Targets: the focal family, balanced softmax, logit adjustment
and LDAM within 1.5x of ``F.cross_entropy``; class-balanced, equalized focal and seesaw
losses within 3x. Nothing here asserts;
rows over target are flagged. Focal-family losses are timed at their defaults
and again with the paper's label smoothing 0.1. On a machine busy with other
work the ratios are noise (parallel kernels wait for descheduled threads): run
it on an idle machine, or compare the "best" column.

Each loss is its plain PyTorch formula, differentiated by autograd. For context a plain
re-implementation in the style of the published CFL code (one-hot built by scatter, B x C
tensor-valued ``torch.pow``) of its ASLSingleLabel and Cyclical_FocalLoss forward passes is
timed too. The ratios are information: inside a training step the loss is a small share
(``bench_train.py --sections loss``).
"""

import argparse
import ctypes
import os
import random
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from losses import available_losses, build_loss  # noqa: E402

# (registry name, target ratio to F.cross_entropy)
ROWS = [
    ("softmax", 1.5),
    ("focal", 1.5),
    ("asl", 1.5),
    ("cfl", 1.5),
    ("casl", 1.5),
    ("cb_softmax", 3.0),
    ("cb_sigmoid", 3.0),
    ("cb_focal", 3.0),
    ("efl", 3.0),
    ("balanced_softmax", 1.5),
    ("logit_adjusted", 1.5),
    ("ldam", 1.5),
    ("seesaw", 3.0),
]
# Losses timed on cosine logits in [-1, 1], what the normalised classifier they are used with
# produces (LDAM's NormedLinear): their scale s = 30 turns randn logits into softmax
# probabilities in float32's denormal range, where F.cross_entropy itself slows down 6x.
COSINE_INPUT = ("ldam",)
# Losses written on F.cross_entropy alone.
CROSS_ENTROPY_BASED = ("balanced_softmax", "logit_adjusted", "ldam", "seesaw")
FOCAL_FAMILY = ("softmax", "focal", "asl", "cfl", "casl")
# Progress at which cyclical losses are timed: xi = 0.6 for f = 4, so both terms are live.
PROGRESS = 0.1
# Progress at which LDAM is timed a second time: past drw_start (0.8), deferred re-weighting on.
DRW_PROGRESS = 0.9


def long_tail_counts(num_classes, largest=1000, smallest=5):
    """Exponentially decaying class counts, as in ImageNet-LT-like splits."""
    ratio = smallest / largest
    return [max(1, int(round(largest * ratio ** (i / max(1, num_classes - 1))))) for i in range(num_classes)]


def published_style_asl(logits, targets, gamma_pos=0.0, gamma_neg=4.0, eps=0.1):
    """ASL single-label as the published code computes it: dense one-hot and tensor-valued pow."""
    num_classes = logits.shape[-1]
    log_p = torch.log_softmax(logits, dim=-1)
    one_hot = torch.zeros_like(logits).scatter_(1, targets.unsqueeze(1), 1)
    others = 1 - one_hot
    p = torch.exp(log_p)
    base = 1 - p * one_hot - (1 - p) * others
    weighted_log_p = log_p * torch.pow(base, gamma_pos * one_hot + gamma_neg * others)
    target_dist = one_hot.mul(1 - eps).add(eps / num_classes)
    return -(target_dist * weighted_log_p).sum(dim=-1).mean()


def published_style_cfl(logits, targets, xi, gamma_pos=0.0, gamma_neg=4.0, gamma_hc=2.0, eps=0.1):
    """Cyclical focal loss in the published style: the ASL weights plus a dense (1 + p)^(gamma_hc one-hot)."""
    num_classes = logits.shape[-1]
    log_p = torch.log_softmax(logits, dim=-1)
    one_hot = torch.zeros_like(logits).scatter_(1, targets.unsqueeze(1), 1)
    others = 1 - one_hot
    p = torch.exp(log_p)
    p_target = p * one_hot
    base = 1 - p_target - (1 - p) * others
    low = torch.pow(base, gamma_pos * one_hot + gamma_neg * others)
    high = torch.pow(1 + p_target, gamma_hc * one_hot)
    weighted_log_p = log_p * ((1 - xi) * low + xi * high)
    target_dist = one_hot.mul(1 - eps).add(eps / num_classes)
    return -(target_dist * weighted_log_p).sum(dim=-1).mean()


def build_candidates(num_classes, cosine_logits):
    """[(label, description, target or None, loss_fn, logits or None)] with F.cross_entropy first.

    A candidate with its own logits is timed, and compared, beside F.cross_entropy on those logits.
    """
    context = {
        "num_classes": num_classes,
        "num_epochs": 90,
        "class_counts": long_tail_counts(num_classes),
        "feat_dim": 512,
    }
    candidates = [
        ("F.cross_entropy", "", None, F.cross_entropy, None),
        ("F.cross_entropy", "label_smoothing=0.1", None, lambda z, y: F.cross_entropy(z, y, label_smoothing=0.1), None),
    ]
    registered = set(available_losses())
    skipped = []
    for name, target in ROWS:
        if name not in registered:
            skipped.append(name)
            continue
        variants = [({}, PROGRESS)]
        if name in FOCAL_FAMILY:
            variants.append(({"label_smoothing": 0.1}, PROGRESS))  # the paper's setting for FL/ASL/CFL/CASL
        if name == "ldam":
            variants.append(({}, DRW_PROGRESS))
        for params, progress in variants:
            loss = build_loss(name, **params, **context)
            description = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
            if hasattr(loss, "set_progress"):
                loss.set_progress(progress)
                description += f", xi={loss.xi:.2g}" if hasattr(loss, "xi") else f", progress {progress}"
            inputs = None
            if name in COSINE_INPUT:
                inputs, description = cosine_logits, description + ", cosine logits"
            candidates.append((name, description, target, loss, inputs))
    xi = 0.6
    candidates.append(("published-style ASL", "eps=0.1", None, published_style_asl, None))
    candidates.append(
        ("published-style CFL", f"eps=0.1, xi={xi}", None, lambda z, y: published_style_cfl(z, y, xi), None)
    )
    return candidates, skipped


def time_candidates(candidates, logits, targets, repeats, inner, warmup=3):
    """Time every candidate against the baseline (candidates[0]) in adjacent pairs.

    Each round visits the candidates in a shuffled order; every visit times
    ``inner`` forward+backward passes of the baseline and of the candidate back
    to back (which one first alternates), so a load change on the machine hits
    both sides of a pair alike. Returns per candidate: all its seconds-per-pass
    samples and the paired ratios to the baseline.
    """

    def seconds_per_pass(loss_fn, z):
        start = time.perf_counter()
        for _ in range(inner):
            loss = loss_fn(z, targets)
            torch.autograd.grad(loss, z)
        return (time.perf_counter() - start) / inner

    for _, _, _, loss_fn, inputs in candidates:
        for _ in range(warmup):
            seconds_per_pass(loss_fn, logits if inputs is None else inputs)
    baseline = candidates[0][3]
    samples = [[] for _ in candidates]
    ratios = [[] for _ in candidates]
    shuffler = random.Random(0)
    order = list(range(1, len(candidates)))
    for round_index in range(repeats):
        shuffler.shuffle(order)
        for visit, index in enumerate(order):
            loss_fn, inputs = candidates[index][3], candidates[index][4]
            z = logits if inputs is None else inputs
            if (round_index + visit) % 2:
                mine, base = seconds_per_pass(loss_fn, z), seconds_per_pass(baseline, z)
            else:
                base, mine = seconds_per_pass(baseline, z), seconds_per_pass(loss_fn, z)
            samples[0].append(base)
            samples[index].append(mine)
            ratios[index].append(mine / base)
    ratios[0] = [1.0]
    return samples, ratios


def keep_freed_memory():
    """Ask glibc not to return freed memory to the OS (no heap trimming, no mmap for big blocks).

    Every 2 MB buffer a loss allocates then reuses pages instead of faulting in
    fresh ones; in a VM those page faults can cost as much as the arithmetic and
    hit losses that allocate more buffers harder. Returns False where glibc's
    mallopt is unavailable.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_trim_threshold, 2**30)) and bool(libc.mallopt(m_mmap_threshold, 2**26))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30, help="timed rounds over all candidates")
    parser.add_argument("--inner", type=int, default=3, help="forward+backward passes per timing")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: leave torch's default)"
    )
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="disable glibc heap trimming so page faults on fresh buffers do not dominate the timings",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    allocator_note = ""
    if args.keep_freed_memory:
        allocator_note = ", glibc trimming off" if keep_freed_memory() else ", (mallopt unavailable)"

    torch.manual_seed(0)
    logits = torch.randn(args.batch, args.classes, requires_grad=True)
    targets = torch.randint(0, args.classes, (args.batch,))
    cosine_logits = (torch.rand(args.batch, args.classes) * 2 - 1).requires_grad_(True)
    candidates, skipped = build_candidates(args.classes, cosine_logits)
    samples, ratios = time_candidates(candidates, logits, targets, args.repeats, args.inner)
    best_baseline = min(samples[0])

    print(
        f"B={args.batch} C={args.classes} float32, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.repeats} rounds x {args.inner} forward+backward per timing{allocator_note}"
    )
    print(
        "x CE = median of ratios to F.cross_entropy timed right beside it (the verdict); "
        "best x CE = fastest timing / fastest F.cross_entropy"
    )
    header = (
        f"| {'loss':<28} | {'parameters':<28} | {'median ms':>9} | {'x CE':>6} | {'best x CE':>9} "
        f"| {'target':>6} | {'verdict':<11} |"
    )
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    for row, (label, description, target, _, _) in enumerate(candidates):
        ratio = statistics.median(ratios[row])
        if target is None:
            target_text, verdict = "", ("baseline" if row == 0 else "context")
        else:
            target_text, verdict = f"{target:.1f}x", ("PASS" if ratio <= target else "OVER TARGET")
        print(
            f"| {label:<28} | {description:<28} | {statistics.median(samples[row]) * 1e3:9.3f} | {ratio:6.2f} "
            f"| {min(samples[row]) / best_baseline:9.2f} | {target_text:>6} | {verdict:<11} |"
        )
    if skipped:
        print(f"not registered (skipped): {', '.join(skipped)}")


if __name__ == "__main__":
    main()
