"""Distributed training on CPU (gloo): the collectives in isolation, then both stages under torchrun.

The first test spawns two processes joined by a file store and checks every collective the
engine relies on against a single-process computation (including ranks that hold no data). The
end-to-end test trains stage 1 and stage 2 of Digits_LT with two processes and compares the
closed-set test accuracy with a single-process run of the same settings.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import losses
from oltr.config.schema import load_config
from oltr.data import ensure_digits_lt
from oltr.engine.distributed import DistContext, broadcast_buffers_, gather_rows
from oltr.engine.inference import collect_logits, compute_centroids
from oltr.runs import evaluate as evaluation
from oltr.runs import trainer

REPO = Path(__file__).resolve().parents[1]
WORLD_SIZE = 2


# ----------------------------------------------------------------------------- collectives, two processes


class _Images(torch.utils.data.Dataset):
    """``(image, label, index)`` like SplitDataset, over fixed tensors."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], int(self.labels[index]), index


class _FlattenFeatures(torch.nn.Module):
    feature_dim = 12

    def forward(self, images):
        return images.flatten(1) * 2.0, None


class _LinearNetwork(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.arange(12 * 3, dtype=torch.float32).reshape(12, 3) / 10.0

    def forward(self, images, centroids=None):
        return images.flatten(1) @ self.weight, None


def _share(dataset, indices):
    return torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=2)


def _check_gather_rows(ctx):
    mine = torch.arange(3 * 4, dtype=torch.float32).reshape(3, 4) + 100 * ctx.rank
    both = gather_rows(mine[: 2 + ctx.rank], ctx)  # 2 rows from rank 0, 3 from rank 1
    assert torch.equal(both, torch.cat([mine[:2] - 100 * ctx.rank, mine[:3] + 100 * (1 - ctx.rank)]))
    only_rank0 = gather_rows(mine if ctx.rank == 0 else torch.empty(0), ctx)
    assert only_rank0.shape == (3, 4) and torch.equal(only_rank0, torch.arange(12.0).reshape(3, 4))


def _check_centroids_and_logits(ctx, dataset):
    everything = list(range(len(dataset)))
    expected = torch.zeros(4, 12, dtype=torch.float64)
    for label in range(4):  # class 3 has no sample: its centroid stays zero
        members = [dataset.images[i].double().flatten() * 2 for i in everything if dataset.labels[i] == label]
        if members:
            expected[label] = torch.stack(members).mean(0)
    single_logits = _LinearNetwork()(dataset.images)[0]
    for shares in ([everything, []], [everything[::2], everything[1::2]]):  # rank 1 empty, then interleaved
        loader = _share(dataset, shares[ctx.rank])
        centroids = compute_centroids(_FlattenFeatures(), loader, 4, ctx)
        torch.testing.assert_close(centroids, expected.float())
        logits, labels, indices = collect_logits(_LinearNetwork(), loader, None, ctx)
        assert torch.equal(indices, torch.arange(len(dataset)))
        assert torch.equal(labels, torch.as_tensor(dataset.labels))
        torch.testing.assert_close(logits, single_logits)


def _check_broadcast_buffers(ctx):
    norm = torch.nn.BatchNorm1d(3)
    norm.running_mean.fill_(float(ctx.rank + 1))
    broadcast_buffers_(norm, ctx)
    assert torch.equal(norm.running_mean, torch.ones(3))


def _efl_training(model, features, targets, steps=3):
    """A few SGD steps of ``model`` under EFL; returns the loss module (its statistics)."""
    loss = losses.build_loss("efl", num_classes=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss(model(features), targets).backward()
        optimizer.step()
    return loss


def _efl_problem():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(8, 6, generator=generator)
    targets = torch.tensor([0, 1, 2, 3, 0, 0, 1, 0])
    torch.manual_seed(0)
    return torch.nn.Linear(6, 4), features, targets


def _efl_single_process():
    """The reference, computed before the process group exists (so EFL does not all-reduce)."""
    model, features, targets = _efl_problem()
    loss = _efl_training(model, features, targets)
    return loss.pos_grad.clone(), loss.g.clone(), [p.detach().clone() for p in model.parameters()]


def _check_efl_statistics_under_ddp(ctx, reference):
    """EFL's gradient statistics are all-reduced inside DDP's backward without upsetting its buckets.

    Per-rank gradients are 2x the whole-batch ones (a mean over half the batch); the all-reduce
    averages them, so the statistics, g = pos/neg and the weights are the single process's.
    """
    pos_grad, g, parameters = reference
    model, features, targets = _efl_problem()
    ddp = torch.nn.parallel.DistributedDataParallel(model, gradient_as_bucket_view=True)
    half = slice(4 * ctx.rank, 4 * ctx.rank + 4)
    loss = _efl_training(ddp, features[half], targets[half])
    torch.testing.assert_close(loss.g, g)
    torch.testing.assert_close(loss.pos_grad, pos_grad)
    for mine, expected in zip(model.parameters(), parameters):
        torch.testing.assert_close(mine.detach(), expected)


def _collectives_worker(rank, store):
    torch.set_num_threads(1)
    efl_reference = _efl_single_process()
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD_SIZE)
    try:
        ctx = DistContext(rank=rank, world_size=WORLD_SIZE)
        generator = torch.Generator().manual_seed(1)
        dataset = _Images(torch.randn(7, 3, 2, 2, generator=generator), [0, 1, 2, 0, 1, 0, 0])
        _check_gather_rows(ctx)
        _check_centroids_and_logits(ctx, dataset)
        _check_broadcast_buffers(ctx)
        _check_efl_statistics_under_ddp(ctx, efl_reference)
    finally:
        dist.destroy_process_group()


def test_collectives_match_a_single_process(tmp_path):
    # Forked, like DataLoader workers (each sets one thread first): no re-import of torch per process.
    mp.start_processes(_collectives_worker, args=(str(tmp_path / "store"),), nprocs=WORLD_SIZE, start_method="fork")


# ----------------------------------------------------------------------------- both stages under torchrun

STAGE1 = "config/Digits_LT/stage_1_cfl.py"
STAGE2 = "config/Digits_LT/stage_2_cfl_meta_embedding.py"
EPOCHS = 4


def _opts(data, log_dir, stage1_dir=None):
    opts = [
        f"training_opt.data_root={data}",
        f"training_opt.split_dir={data}",
        f"training_opt.log_dir={log_dir}",
        f"training_opt.num_epochs={EPOCHS}",
        "training_opt.scheduler_params.step_size=3",
    ]
    return opts + ([f"training_opt.stage1_log_dir={stage1_dir}"] if stage1_dir else [])


def _torchrun(config, opts):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    # --standalone: a rendezvous on a free local port, so parallel test runs cannot collide.
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={WORLD_SIZE}",
        "main.py",
        "--config",
        config,
        "--opts",
        *opts,
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _test_accuracy(config_path, opts):
    config = load_config(REPO / config_path, opts)
    return evaluation.evaluate(config, DistContext(), echo=False)["overall_top1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    data = ensure_digits_lt(root / "Digits_LT")  # built once, before two processes would race for it
    single1, single2, ddp1, ddp2 = (root / name for name in ("single1", "single2", "ddp1", "ddp2"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer.fit(load_config(REPO / STAGE1, _opts(data, single1)), DistContext(), echo=False)
        trainer.fit(load_config(REPO / STAGE2, _opts(data, single2, single1)), DistContext(), echo=False)
    finally:
        torch.set_num_threads(threads)
    outputs = [_torchrun(STAGE1, _opts(data, ddp1)), _torchrun(STAGE2, _opts(data, ddp2, ddp1))]
    accuracy = {
        "single": _test_accuracy(STAGE2, _opts(data, single2, single1)),
        "ddp": _test_accuracy(STAGE2, _opts(data, ddp2, ddp1)),
    }
    return {"ddp1": ddp1, "ddp2": ddp2, "outputs": outputs, "accuracy": accuracy}


@pytest.mark.slow
def test_two_process_training_matches_one_process(runs):
    accuracy = runs["accuracy"]
    assert accuracy["ddp"] > 0.5  # chance is 1/8
    # Same global batch and sampler stream; only the BatchNorm batches (16 per rank instead of 32),
    # the augmentation draws and float summation order differ.
    assert abs(accuracy["ddp"] - accuracy["single"]) <= 0.10, accuracy


@pytest.mark.slow
def test_only_rank_zero_writes(runs):
    for log_dir, output in zip((runs["ddp1"], runs["ddp2"]), runs["outputs"]):
        for name in ("final_model_checkpoint.pth", "last_checkpoint.pth", "config.yaml", "log.txt", "metrics.jsonl"):
            assert (log_dir / name).is_file(), log_dir / name
        assert not [p.name for p in log_dir.iterdir() if p.name.startswith(".")]  # no temp files left
        records = [json.loads(line) for line in (log_dir / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in records] == list(range(1, EPOCHS + 1))  # one writer, not two
        log = (log_dir / "log.txt").read_text()
        assert log.count(f"epoch {EPOCHS}/{EPOCHS}:") == 1
        assert output.count("best epoch") == 1  # only rank 0 prints


@pytest.mark.slow
def test_stage2_under_ddp_trained_its_centroids(runs):
    checkpoint = torch.load(runs["ddp2"] / "final_model_checkpoint.pth", map_location="cpu", weights_only=True)
    centroids = checkpoint["centroids"]
    assert centroids.shape == (8, 128) and torch.isfinite(centroids).all()
    assert (centroids.norm(dim=1) > 0).all()  # every class has one (computed, all-reduced, trained)
    assert checkpoint["metrics"]["best_val_top1"] > 0.5
