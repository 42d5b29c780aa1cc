"""Equalized focal loss (Li et al. 2022): values, gradients and the gradient statistics."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

import losses.equalized_focal  # noqa: F401  (registers efl)
from losses.equalized_focal import EqualizedFocalLoss
from losses.registry import build_loss

C = 5


def sample_batch(seed=0, batch=8, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, C, generator=gen, dtype=torch.float64) * scale
    y = torch.randint(0, C, (batch,), generator=gen)
    return z, y


def reference_efl(z, y, g, gamma_b=2.0, s=8.0, alpha=0.25):
    """Sum over all entries of Eq. 7, float64, entry by entry (not yet divided by B)."""
    total = []
    for i in range(z.shape[0]):
        row = 0.0
        for j in range(z.shape[1]):
            gamma_j = gamma_b + s * (1.0 - float(g[j]))
            w_j = gamma_j / gamma_b
            is_target = j == int(y[i])
            p = 1.0 / (1.0 + torch.exp(-z[i, j]))
            p_t = p if is_target else 1.0 - p
            alpha_t = 1.0 if alpha < 0 else (alpha if is_target else 1.0 - alpha)
            row = row + alpha_t * w_j * (1.0 - p_t) ** gamma_j * (-torch.log(p_t))
        total.append(row)
    return torch.stack(total)  # per-sample sums over classes


def hand_statistics(z64, y, g, weight=1.0, **params):
    """|dL/dz| summed over positives / negatives of each class, L = weight * mean-reduced EFL."""
    z_ref = z64.clone().requires_grad_()
    loss = weight * reference_efl(z_ref, y, g, **params).sum() / z64.shape[0]
    (grad,) = torch.autograd.grad(loss, z_ref)
    onehot = F.one_hot(y, z64.shape[1]).double()
    return (grad.abs() * onehot).sum(0), (grad.abs() * (1 - onehot)).sum(0)


def set_g(loss_fn, g):
    """Buffers giving exactly the ratios g (neg = 1, pos = g)."""
    loss_fn.pos_grad.copy_(torch.as_tensor(g, dtype=torch.float64))
    loss_fn.neg_grad.fill_(1.0 - 1e-10)


def test_starts_as_sigmoid_focal_loss():
    from torchvision.ops import sigmoid_focal_loss  # imported here: keeps the spawned workers light

    loss_fn = EqualizedFocalLoss(num_classes=C)
    assert torch.equal(loss_fn.g, torch.ones(C, dtype=torch.float64))
    z64, y = sample_batch()
    onehot = F.one_hot(y, C).double()
    for alpha in (0.25, -1.0):
        loss_fn = EqualizedFocalLoss(num_classes=C, alpha=alpha).eval()
        z = z64.float().requires_grad_()
        z_ref = z64.clone().requires_grad_()
        got = loss_fn(z, y)
        expected = sigmoid_focal_loss(z_ref, onehot, alpha=alpha, gamma=2.0, reduction="sum") / z64.shape[0]
        got.backward()
        expected.backward()
        assert torch.allclose(got.double(), expected.detach(), rtol=1e-5)
        assert torch.allclose(z.grad.double(), z_ref.grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("alpha", [0.25, -1.0])
def test_values_and_gradients_with_class_dependent_factors(reduction, alpha):
    g = [0.0, 0.3, 1.0, 0.05, 0.7]
    loss_fn = EqualizedFocalLoss(num_classes=C, gamma_b=2.0, scale_factor=4.0, alpha=alpha, reduction=reduction)
    set_g(loss_fn, g)
    assert torch.allclose(loss_fn.g, torch.tensor(g, dtype=torch.float64), atol=1e-9)
    loss_fn.eval()  # values only: keep the statistics fixed
    z64, y = sample_batch(seed=1)
    z_ref = z64.clone().requires_grad_()
    per_sample = reference_efl(z_ref, y, g, s=4.0, alpha=alpha)
    expected = {"mean": per_sample.sum() / z64.shape[0], "sum": per_sample.sum(), "none": per_sample}[reduction]
    z = z64.float().requires_grad_()
    got = loss_fn(z, y)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert torch.allclose(got.double(), expected.detach(), rtol=1e-5, atol=1e-7)
    upstream = torch.linspace(0.5, 1.5, got.numel(), dtype=torch.float64).reshape(got.shape)
    (got * upstream.float()).sum().backward()
    (expected * upstream).sum().backward()
    assert torch.allclose(z.grad.double(), z_ref.grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("weight", [0.7, -0.7])
def test_gradient_statistics_match_hand_computation_and_accumulate(weight):
    # the loss's weight in the objective reaches the statistics, as in the original's hook;
    # a negative one checks that magnitudes |G| are summed
    loss_fn = EqualizedFocalLoss(num_classes=C)
    z64, y = sample_batch(seed=2)
    z = z64.float().requires_grad_()
    (weight * loss_fn(z, y)).backward()
    pos, neg = hand_statistics(z64, y, torch.ones(C), weight=weight)
    assert torch.allclose(loss_fn.pos_grad, pos, rtol=1e-5)
    assert torch.allclose(loss_fn.neg_grad, neg, rtol=1e-5)
    g1 = torch.clamp(pos / (neg + 1e-10), 0, 1)
    assert torch.allclose(loss_fn.g, g1, rtol=1e-5)
    assert not torch.allclose(loss_fn.g, torch.ones(C, dtype=torch.float64))

    # a second step uses the updated g and adds to the sums
    z64b, yb = sample_batch(seed=3)
    zb = z64b.float().requires_grad_()
    (weight * loss_fn(zb, yb)).backward()
    pos_b, neg_b = hand_statistics(z64b, yb, g1, weight=weight)
    assert torch.allclose(loss_fn.pos_grad, pos + pos_b, rtol=1e-5)
    assert torch.allclose(loss_fn.neg_grad, neg + neg_b, rtol=1e-5)


def test_g_is_clamped_to_one_and_zero():
    # Class 0 is every sample's target and badly predicted: its positive gradient dwarfs a
    # negative gradient of zero, so the raw ratio is huge -> 1. Class 1 is never a target -> 0.
    loss_fn = EqualizedFocalLoss(num_classes=2)
    z = torch.tensor([[-3.0, 0.5], [-2.0, 1.0]], requires_grad=True)
    loss_fn(z, torch.tensor([0, 0])).backward()
    assert loss_fn.neg_grad[0] == 0 and loss_fn.pos_grad[0] > 0 and loss_fn.pos_grad[1] == 0
    assert torch.equal(loss_fn.g, torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_statistics_survive_state_dict_round_trip():
    loss_fn = EqualizedFocalLoss(num_classes=C)
    z64, y = sample_batch(seed=4)
    loss_fn(z64.float().requires_grad_(), y).backward()
    state = loss_fn.state_dict()
    assert set(state) == {"pos_grad", "neg_grad"}
    restored = EqualizedFocalLoss(num_classes=C)
    restored.load_state_dict(state)
    assert torch.equal(restored.pos_grad, loss_fn.pos_grad) and torch.equal(restored.g, loss_fn.g)
    z_new, y_new = sample_batch(seed=5)
    assert torch.equal(restored.eval()(z_new.float(), y_new), loss_fn.eval()(z_new.float(), y_new))


def test_no_statistics_in_eval_mode_under_no_grad_or_without_grad():
    z64, y = sample_batch(seed=6)
    loss_fn = EqualizedFocalLoss(num_classes=C).eval()
    z = z64.float().requires_grad_()
    loss_fn(z, y).backward()
    assert z.grad is not None and loss_fn.pos_grad.abs().sum() == 0 and loss_fn.neg_grad.abs().sum() == 0
    loss_fn.train()
    with torch.no_grad():
        loss_fn(z, y)
    loss_fn(z64.float(), y)  # logits outside autograd
    assert loss_fn.pos_grad.abs().sum() == 0 and loss_fn.neg_grad.abs().sum() == 0


def test_hooks_do_not_pile_up_on_a_reused_leaf():
    z64, y = sample_batch(seed=7)
    z = z64.float().requires_grad_()
    loss_fn = EqualizedFocalLoss(num_classes=C)
    loss_fn(z, y).backward()
    once = loss_fn.pos_grad.clone(), loss_fn.neg_grad.clone()
    loss_fn.pos_grad.zero_()
    loss_fn.neg_grad.zero_()
    loss_fn(z, y).backward()  # same leaf, fresh statistics: counted once, not twice
    assert torch.allclose(loss_fn.pos_grad, once[0]) and torch.allclose(loss_fn.neg_grad, once[1])


def test_half_precision_logits():
    loss_fn = build_loss("efl", num_classes=C, class_counts=[1] * C, num_epochs=3, feat_dim=8)
    z64, y = sample_batch(seed=8)
    z = z64.to(torch.bfloat16).requires_grad_()
    got = loss_fn(z, y)
    assert got.dtype == torch.float32
    got.backward()
    assert z.grad.dtype == torch.bfloat16 and loss_fn.pos_grad.sum() > 0


def test_stable_at_large_logits():
    loss_fn = EqualizedFocalLoss(num_classes=3)
    set_g(loss_fn, [0.0, 0.5, 1.0])
    z = torch.tensor([[100.0, -100.0, 100.0], [-100.0, 100.0, -100.0]], requires_grad=True)
    got = loss_fn(z, torch.tensor([0, 0]))
    got.backward()
    assert torch.isfinite(got) and torch.isfinite(z.grad).all()
    # Only the wrong entries count: (0, 2) non-target at +100, (1, 0) target at -100 and (1, 1)
    # non-target at +100, each |z| * alpha_t * w_j with the modulator ~1.
    w = [(2.0 + 8.0 * (1 - g)) / 2.0 for g in (0.0, 0.5, 1.0)]
    expected = (0.75 * w[2] * 100 + 0.25 * w[0] * 100 + 0.75 * w[1] * 100) / 2
    assert torch.allclose(got, torch.tensor(expected), rtol=1e-5)


@pytest.mark.parametrize(
    "params, culprit",
    [
        ({}, "num_classes"),
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": C, "gamma_b": 0.0}, "gamma_b"),
        ({"num_classes": C, "gamma_b": -1.0}, "gamma_b"),
        ({"num_classes": C, "scale_factor": -1.0}, "scale_factor"),
        ({"num_classes": C, "alpha": 1.5}, "alpha"),
        ({"num_classes": C, "alpha": float("nan")}, "alpha"),
        ({"num_classes": C, "reduction": "avg"}, "reduction"),
    ],
)
def test_invalid_parameters_name_the_culprit(params, culprit):
    with pytest.raises(ValueError, match=culprit):
        build_loss("efl", **params)


def test_invalid_inputs():
    loss_fn = EqualizedFocalLoss(num_classes=C)
    with pytest.raises(ValueError, match="targets"):
        loss_fn(torch.zeros(2, C), torch.tensor([0, C]))
    with pytest.raises(ValueError, match="num_classes"):
        loss_fn(torch.zeros(2, C + 1), torch.tensor([0, 1]))


def _distributed_worker(rank, world_size, init_file, out_dir):
    torch.set_num_threads(1)  # a forked child must not enter the parent's OpenMP pool
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        loss_fn = EqualizedFocalLoss(num_classes=C)
        z64, y = sample_batch(seed=100 + rank)
        loss_fn(z64.float().requires_grad_(), y).backward()
        torch.save(
            {"pos": loss_fn.pos_grad, "neg": loss_fn.neg_grad, "g": loss_fn.g}, os.path.join(out_dir, f"rank{rank}.pt")
        )
    finally:
        dist.destroy_process_group()


def test_distributed_ranks_share_statistics(tmp_path):
    # Two gloo ranks in child processes; fork (where there is one) skips re-importing torch.
    world_size = 2
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    context = mp.get_context(method)
    workers = [
        context.Process(target=_distributed_worker, args=(rank, world_size, str(tmp_path / "store"), str(tmp_path)))
        for rank in range(world_size)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0] * world_size
    results = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(world_size)]
    pos = neg = 0
    for rank in range(world_size):
        z64, y = sample_batch(seed=100 + rank)
        pos_r, neg_r = hand_statistics(z64, y, torch.ones(C))
        pos, neg = pos + pos_r, neg + neg_r
    # averaged over ranks: each rank's mean is over half the global batch, so this is one process's sums
    pos, neg = pos / world_size, neg / world_size
    for result in results:
        assert torch.allclose(result["pos"], pos, rtol=1e-5) and torch.allclose(result["neg"], neg, rtol=1e-5)
        assert torch.allclose(result["g"], torch.clamp(pos / (neg + 1e-10), 0, 1), rtol=1e-5)
    assert torch.equal(results[0]["g"], results[1]["g"])


def test_non_finite_step_is_skipped():
    # An fp16 GradScaler overflow step sends inf through backward; it must not poison g.
    loss_fn = EqualizedFocalLoss(num_classes=C)
    z64, y = sample_batch(seed=9)
    loss_fn(z64.float().requires_grad_(), y).backward()
    before = loss_fn.pos_grad.clone(), loss_fn.neg_grad.clone()
    (loss_fn(z64.float().requires_grad_(), y) * float("inf")).backward()
    assert torch.equal(loss_fn.pos_grad, before[0]) and torch.equal(loss_fn.neg_grad, before[1])
    assert torch.isfinite(loss_fn.g).all()


def test_only_this_loss_gradient_is_collected():
    # Another loss on the same logits changes dObjective/dlogits but not EFL's statistics.
    z64, y = sample_batch(seed=10)
    alone, shared = EqualizedFocalLoss(num_classes=C), EqualizedFocalLoss(num_classes=C)
    alone(z64.float().requires_grad_(), y).backward()
    z = z64.float().requires_grad_()
    (shared(z, y) + 5.0 * F.cross_entropy(z, y)).backward()
    assert torch.allclose(shared.pos_grad, alone.pos_grad) and torch.allclose(shared.neg_grad, alone.neg_grad)


def test_autocast_keeps_float32():
    z64, y = sample_batch(seed=11)
    loss_fn = EqualizedFocalLoss(num_classes=C).eval()
    set_g(loss_fn, [0.0, 0.3, 1.0, 0.05, 0.7])
    expected = loss_fn(z64.float(), y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss_fn(z64.float(), y)
    assert got.dtype == torch.float32 and torch.allclose(got, expected, rtol=1e-6)


def test_int32_targets():
    z64, y = sample_batch(seed=12)
    loss_fn = EqualizedFocalLoss(num_classes=C).eval()
    assert torch.equal(loss_fn(z64.float(), y.int()), loss_fn(z64.float(), y))
