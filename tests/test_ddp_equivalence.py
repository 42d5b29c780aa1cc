"""A DDP step is the single-process step spread out: with gloo and 2 or 4 processes, each taking a
contiguous share of one global batch, the trainer's ``train_step`` leaves the same weights, centroids,
reported losses and loss statistics (seesaw's counts, EFL's gradient sums) as one process given the
whole batch, for every registered loss beside OLTR's centroid loss.

The truth is the single process, computed in each worker before its process group exists (the
losses then do not all-reduce). Plain SGD (lr 0.1): a weight's change is its gradient, scaled.
"""

from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import losses
from oltr.engine.distributed import DistContext
from oltr.runs import trainer

CLASSES, FEATURES, BATCH, STEPS = 5, 6, 16, 2
# every registered loss; ldam also with DRW on (its batch mean is weighted); progress past drw_start
PERFORMANCE_LOSSES = [(name, {}) for name in losses.available_losses() if name != "disc_centroids"]
PERFORMANCE_LOSSES.append(("ldam", {"drw_start": 0.5}))
CLASS_COUNTS = [40, 20, 9, 4, 2]


class _Net(torch.nn.Module):
    """Features and logits without BatchNorm (whose per-rank statistics DDP does not share)."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(12, FEATURES)
        self.head = torch.nn.Linear(FEATURES, CLASSES)

    def forward(self, images, centroids=None):
        features = torch.tanh(self.body(images.flatten(1)))
        return self.head(features), features


def _problem():
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(STEPS, BATCH, 3, 2, 2, generator=generator)
    # classes spread over the ranks' shares, so per-rank counts differ from the global ones
    labels = torch.randint(0, CLASSES, (STEPS, BATCH), generator=generator)
    return images, labels


def _run(name, params, ctx):
    torch.manual_seed(0)
    network = _Net()
    context = dict(num_classes=CLASSES, feat_dim=FEATURES, class_counts=CLASS_COUNTS, num_epochs=2)
    performance = losses.build_loss({"name": name, **params}, **context)
    centroid_loss = losses.build_loss("disc_centroids", **context)
    if hasattr(performance, "set_progress"):
        performance.set_progress(0.75)
    model = torch.nn.parallel.DistributedDataParallel(network) if ctx.distributed else network
    return SimpleNamespace(
        config={"training_opt": {"amp": "off"}},
        ctx=ctx,
        network=network,
        train_model=model,
        criterions={
            "PerformanceLoss": SimpleNamespace(module=performance.train(), weight=1.0),
            "FeatureLoss": SimpleNamespace(module=centroid_loss.train(), weight=0.5),
        },
        feature_loss=centroid_loss,
        centroids=lambda: None,
        optimizers={
            "network": torch.optim.SGD(network.parameters(), lr=0.1),
            "centroids": torch.optim.SGD(centroid_loss.parameters(), lr=0.1),
        },
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        epoch=0,
    )


def _train(name, params, ctx):
    """STEPS steps of ``train_step``; each rank takes its contiguous share of every global batch."""
    run = _run(name, params, ctx)
    images, labels = _problem()
    share = slice(ctx.rank * BATCH // ctx.world_size, (ctx.rank + 1) * BATCH // ctx.world_size)
    reported = [trainer.train_step(run, images[s, share], labels[s, share], s)["loss"] for s in range(STEPS)]
    state = {f"network.{k}": v for k, v in run.network.state_dict().items()}
    state.update({f"performance.{k}": v for k, v in run.criterions["PerformanceLoss"].module.state_dict().items()})
    state["centroids"] = run.feature_loss.centroids.detach()
    return {key: value.detach().clone() for key, value in state.items()}, torch.stack(reported)


def _worker(rank, world_size, store):
    torch.set_num_threads(1)
    single = {(name, str(params)): _train(name, params, DistContext()) for name, params in PERFORMANCE_LOSSES}
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    try:
        ctx = DistContext(rank=rank, world_size=world_size)
        for name, params in PERFORMANCE_LOSSES:
            expected_state, expected_losses = single[(name, str(params))]
            state, reported = _train(name, params, ctx)
            torch.testing.assert_close(
                reported, expected_losses, rtol=1e-5, atol=1e-6, msg=lambda m: f"{name} {params}: {m}"
            )
            assert state.keys() == expected_state.keys()
            for key, value in state.items():
                torch.testing.assert_close(
                    value,
                    expected_state[key],
                    rtol=1e-5,
                    atol=1e-6,
                    msg=lambda m, key=key: f"{name} {params} {key}: {m}",
                )
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("world_size", [2, 4])
def test_a_ddp_step_is_the_single_process_step(tmp_path, world_size):
    # Forked, like DataLoader workers: no re-import of torch per process.
    mp.start_processes(_worker, args=(world_size, str(tmp_path / "store")), nprocs=world_size, start_method="fork")


def test_the_problem_exercises_the_centroid_loss():
    """The repel term is inside its clamp (it has a gradient) and a class spans ranks' shares."""
    run = _run("softmax", {}, DistContext())
    images, labels = _problem()
    _, features = run.network(images[0])
    value = losses.disc_centroids.negative_distance_sum(features, run.feature_loss.centroids, labels[0])
    assert run.feature_loss.margin - value / (BATCH * CLASSES) > 0
    quarters = labels[0].reshape(4, -1)
    assert any(len({int(q) for q in quarters[:, 0]} & set(quarters[i].tolist())) for i in range(1, 4))
