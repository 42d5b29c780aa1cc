"""balanced_softmax, logit_adjusted, ldam and seesaw against float64 references written from the formulas."""

import math

import pytest
import torch
import torch.nn.functional as F

from losses import build_loss

COUNTS = [500, 120, 40, 9, 3, 1]
C = len(COUNTS)


def make_batch(batch=20, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    logits = (torch.randn(batch, C, generator=generator, dtype=torch.float64) * 3).to(dtype)
    targets = torch.randint(0, C, (batch,), generator=generator)
    return logits, targets


def reduce(per_sample, reduction, weights=None):
    if reduction == "none":
        return per_sample if weights is None else per_sample * weights
    if weights is None:
        return per_sample.mean() if reduction == "mean" else per_sample.sum()
    total = (per_sample * weights).sum()
    return total / weights.sum() if reduction == "mean" else total


def prior_shift_reference(z, y, counts, tau):
    """-log(n_y^tau e^{z_y} / sum_j n_j^tau e^{z_j}), written as a ratio of exponentials."""
    n = torch.tensor(counts, dtype=torch.float64)
    numerators = n.pow(tau) * torch.exp(z - z.max(dim=1, keepdim=True).values)
    return -torch.log(numerators[torch.arange(len(y)), y] / numerators.sum(dim=1))


def ldam_reference(z, y, counts, max_margin, scale, weights=None):
    rows = []
    raw = [n**-0.25 for n in counts]
    margins = [max_margin * m / max(raw) for m in raw]
    for i in range(z.shape[0]):
        row = [scale * (z[i, j] - (margins[j] if j == y[i] else 0.0)) for j in range(C)]
        row = torch.stack(row)
        rows.append(-(row[y[i]] - torch.logsumexp(row, dim=0)))
    return torch.stack(rows)


def drw_weights_reference(counts, beta):
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    return torch.tensor([w * C / sum(raw) for w in raw], dtype=torch.float64)


def seesaw_reference(z, y, counts, p, q, eps=1e-2):
    """The paper's S_ij by brute force: explicit conditions, sigma from softmax of the detached logits,
    the target's probability floored at ``eps`` in the compensation (mmdetection's SeesawLoss)."""
    sigma = torch.softmax(z.detach(), dim=1)
    n = [max(1.0, float(c)) for c in counts]
    rows = []
    for i in range(z.shape[0]):
        k = int(y[i])
        shifted = []
        for j in range(C):
            s = 1.0
            if j != k:
                if n[j] < n[k]:
                    s *= (n[j] / n[k]) ** p
                ratio = float(sigma[i, j]) / max(float(sigma[i, k]), eps)
                if ratio > 1:
                    s *= ratio**q
            shifted.append(z[i, j] + math.log(s))
        row = torch.stack(shifted)
        rows.append(torch.logsumexp(row, dim=0) - row[k])
    return torch.stack(rows)


def values_and_grads(function, logits):
    z = logits.clone().requires_grad_(True)
    value = function(z)
    weights = torch.linspace(0.5, 1.5, value.numel(), dtype=value.dtype).reshape(value.shape)
    (grad,) = torch.autograd.grad((value * weights).sum(), z)
    return value.detach(), grad


def assert_matches(mine, reference, logits, rtol=1e-10, atol=1e-12):
    for a, b in zip(values_and_grads(mine, logits), values_and_grads(reference, logits)):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.allclose(a, b, rtol=rtol, atol=atol), (a - b).abs().max()


# ---- values and gradients against the references ---------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_balanced_softmax(reduction):
    logits, y = make_batch()
    loss = build_loss("balanced_softmax", class_counts=COUNTS, num_classes=C, reduction=reduction)
    assert_matches(lambda z: loss(z, y), lambda z: reduce(prior_shift_reference(z, y, COUNTS, 1.0), reduction), logits)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 2.0])
def test_logit_adjusted(tau, reduction):
    logits, y = make_batch(seed=1)
    loss = build_loss("logit_adjusted", class_counts=COUNTS, tau=tau, reduction=reduction)
    assert_matches(lambda z: loss(z, y), lambda z: reduce(prior_shift_reference(z, y, COUNTS, tau), reduction), logits)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("max_margin, scale", [(0.5, 30.0), (0.3, 1.0), (1.0, 5.0)])
def test_ldam_without_drw(max_margin, scale, reduction):
    logits, y = make_batch(seed=2)
    loss = build_loss("ldam", class_counts=COUNTS, max_margin=max_margin, scale=scale, reduction=reduction)
    loss.set_progress(0.5)  # before drw_start
    assert_matches(
        lambda z: loss(z, y), lambda z: reduce(ldam_reference(z, y, COUNTS, max_margin, scale), reduction), logits
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ldam_with_drw_weights_as_cross_entropy_weights_them(reduction):
    logits, y = make_batch(seed=3)
    loss = build_loss("ldam", class_counts=COUNTS, drw_beta=0.999, reduction=reduction)
    loss.set_progress(0.9)
    weights = drw_weights_reference(COUNTS, 0.999)[y]
    assert_matches(
        lambda z: loss(z, y), lambda z: reduce(ldam_reference(z, y, COUNTS, 0.5, 30.0), reduction, weights), logits
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("p, q", [(0.8, 2.0), (0.0, 2.0), (0.8, 0.0), (1.5, 0.5)])
def test_seesaw_static(p, q, reduction):
    logits, y = make_batch(seed=4)
    loss = build_loss("seesaw", class_counts=COUNTS, num_classes=C, p=p, q=q, counts="static", reduction=reduction)
    assert_matches(lambda z: loss(z, y), lambda z: reduce(seesaw_reference(z, y, COUNTS, p, q), reduction), logits)


@pytest.mark.parametrize("eps", [0.0, 1e-2, 0.3])
def test_seesaw_eps_floors_the_target_probability(eps):
    # logits far apart, so the target's probability is below every floor tried
    logits, y = make_batch(seed=5)
    logits = (logits * 6).detach().requires_grad_()
    loss = build_loss("seesaw", class_counts=COUNTS, num_classes=C, eps=eps, counts="static")
    assert_matches(lambda z: loss(z, y), lambda z: seesaw_reference(z, y, COUNTS, 0.8, 2.0, eps).mean(), logits)


def test_seesaw_matches_mmdetections_value_on_the_issue_example():
    # mmdetection's SeesawLoss (eps 1e-2) on these inputs gives 12.0996; without the floor, 13.0986
    logits, label = torch.tensor([[-4.0, 0.0, 0.0, 0.0]]), torch.tensor([0])
    with_floor = build_loss("seesaw", class_counts=[10] * 4, num_classes=4, counts="static")
    without = build_loss("seesaw", class_counts=[10] * 4, num_classes=4, counts="static", eps=0.0)
    assert with_floor(logits, label).item() == pytest.approx(12.0996, abs=1e-4)
    assert without(logits, label).item() == pytest.approx(13.0986, abs=1e-4)


def test_seesaw_online_counts_include_the_current_batch():
    loss = build_loss("seesaw", num_classes=C)
    seen = torch.zeros(C, dtype=torch.float64)
    for seed in range(3):
        logits, y = make_batch(seed=10 + seed)
        seen += torch.bincount(y, minlength=C).double()
        snapshot = seen.tolist()
        # Classes not seen yet count as 1 (mmdetection's clamp).
        assert_matches(lambda z: loss(z, y), lambda z: seesaw_reference(z, y, snapshot, 0.8, 2.0).mean(), logits)
        assert torch.equal(loss.seen_counts, seen)


def test_seesaw_online_counts_only_grow_in_training_steps():
    loss = build_loss("seesaw", num_classes=C)
    logits, y = make_batch(seed=5)
    loss(logits, y)  # no graph: not a training step
    with torch.no_grad():
        loss(logits.clone().requires_grad_(True), y)
    loss.eval()
    loss(logits.clone().requires_grad_(True), y)
    assert loss.seen_counts.sum() == 0
    loss.train()
    loss(logits.clone().requires_grad_(True), y)
    assert torch.equal(loss.seen_counts, torch.bincount(y, minlength=C).double())


def test_seesaw_counts_survive_a_state_dict_round_trip_bit_for_bit():
    loss = build_loss("seesaw", num_classes=C)
    for seed in range(4):
        logits, y = make_batch(seed=20 + seed)
        loss(logits.clone().requires_grad_(True), y).backward()
    state = loss.state_dict()
    assert set(state) == {"seen_counts"} and state["seen_counts"].dtype == torch.float64
    restored = build_loss("seesaw", num_classes=C)
    restored.load_state_dict(state)
    assert torch.equal(restored.seen_counts, loss.seen_counts)
    logits, y = make_batch(seed=30)
    assert torch.equal(restored(logits, y), loss(logits, y))


# ---- the special cases ------------------------------------------------------------------------


def cross_entropy(reduction="mean"):
    return lambda z, y: F.cross_entropy(z, y, reduction=reduction)


@pytest.mark.parametrize(
    "name, params",
    [
        ("logit_adjusted", {"class_counts": COUNTS, "tau": 0.0}),
        ("balanced_softmax", {"class_counts": [7] * C}),
        ("ldam", {"class_counts": COUNTS, "max_margin": 0.0, "scale": 1.0, "drw_start": None}),
        ("seesaw", {"num_classes": C, "class_counts": COUNTS, "p": 0.0, "q": 0.0, "counts": "static"}),
        ("seesaw", {"num_classes": C, "p": 0.0, "q": 0.0}),
    ],
)
def test_special_cases_equal_cross_entropy(name, params):
    logits, y = make_batch(seed=6)
    loss = build_loss(name, **params, reduction="none")
    loss.set_progress(1.0) if hasattr(loss, "set_progress") else None
    assert_matches(lambda z: loss(z, y), lambda z: F.cross_entropy(z, y, reduction="none"), logits)


def test_logit_adjusted_with_tau_one_is_balanced_softmax():
    logits, y = make_batch(seed=7)
    adjusted = build_loss("logit_adjusted", class_counts=COUNTS, reduction="none")
    balanced = build_loss("balanced_softmax", class_counts=COUNTS, reduction="none")
    assert_matches(lambda z: adjusted(z, y), lambda z: balanced(z, y), logits, rtol=1e-12, atol=1e-13)


def test_drw_switches_on_exactly_at_drw_start():
    logits, y = make_batch(seed=8)
    loss = build_loss("ldam", class_counts=COUNTS, drw_start=0.8)
    plain = ldam_reference(logits, y, COUNTS, 0.5, 30.0)
    weights = drw_weights_reference(COUNTS, 0.9999)[y]
    epochs = 200  # LDAM-DRW's CIFAR schedule: DRW from 0-based epoch 160 of 200
    for epoch in (0, 158, 159, 160, 161, 199):
        loss.set_progress(epoch / (epochs - 1))
        expected = (plain * weights).sum() / weights.sum() if epoch >= 160 else plain.mean()
        assert torch.allclose(loss(logits, y), expected, rtol=1e-10), epoch
    loss.set_progress(0.8)
    assert loss.reweighting
    loss.set_progress(math.nextafter(0.8, 0.0))
    assert not loss.reweighting


# ---- conventions ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["balanced_softmax", "logit_adjusted", "ldam", "seesaw"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_logits_computed_in_float32(name, dtype):
    logits, y = make_batch(seed=9)
    kwargs = {"class_counts": COUNTS, "num_classes": C, **({"counts": "static"} if name == "seesaw" else {})}
    half = logits.to(dtype).requires_grad_(True)
    value = build_loss(name, **kwargs)(half, y)
    assert value.dtype == torch.float32
    expected = build_loss(name, **kwargs)(half.detach().float(), y)
    assert torch.allclose(value, expected, rtol=1e-6)
    value.backward()
    assert half.grad.dtype == dtype and torch.isfinite(half.grad).all()


@pytest.mark.parametrize("name", ["balanced_softmax", "logit_adjusted", "ldam", "seesaw"])
def test_a_zero_count_names_the_class_index(name):
    with pytest.raises(ValueError, match=r"class_counts.*class 2 has 0"):
        build_loss(name, class_counts=[5, 3, 0, 1], num_classes=4, counts="static") if name == "seesaw" else build_loss(
            name, class_counts=[5, 3, 0, 1], num_classes=4
        )


@pytest.mark.parametrize(
    "name, params, culprit",
    [
        ("logit_adjusted", {"tau": -0.5}, "tau"),
        ("logit_adjusted", {}, "class_counts"),
        ("balanced_softmax", {"class_counts": [3, 2]}, "class_counts"),  # num_classes is C
        ("ldam", {"max_margin": -1.0}, "max_margin"),
        ("ldam", {"scale": 0.0}, "scale"),
        ("ldam", {"drw_start": 1.5}, "drw_start"),
        ("ldam", {"drw_beta": 1.0}, "drw_beta"),
        ("seesaw", {"p": -0.1}, "p"),
        ("seesaw", {"q": float("nan")}, "q"),
        ("seesaw", {"counts": "offline"}, "counts"),
        ("seesaw", {"num_classes": None}, "num_classes"),
        ("ldam", {"reduction": "avg"}, "reduction"),
    ],
)
def test_invalid_parameters_name_the_culprit(name, params, culprit):
    kwargs = {"class_counts": COUNTS, "num_classes": C, **params}
    if name == "logit_adjusted" and "class_counts" not in params and not params.get("tau"):
        kwargs.pop("class_counts")
    with pytest.raises(ValueError, match=culprit):
        build_loss(name, **kwargs)


@pytest.mark.parametrize("name", ["balanced_softmax", "logit_adjusted", "ldam", "seesaw"])
def test_bad_inputs_are_value_errors(name):
    loss = build_loss(name, class_counts=COUNTS, num_classes=C)
    with pytest.raises(ValueError, match="targets"):
        loss(torch.zeros(2, C), torch.tensor([0, C]))
    with pytest.raises(ValueError, match="classes"):
        loss(torch.zeros(2, C + 1), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="logits"):
        loss(torch.zeros(2, C, 1), torch.tensor([0, 1]))
