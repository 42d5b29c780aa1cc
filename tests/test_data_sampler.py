"""ClassAwareSampler: balance, runs of num_samples_cls, determinism, distributed shares."""

from collections import Counter

import numpy as np
import pytest
import torch

from oltr.data.samplers import ClassAwareSampler

# Very unbalanced: 1000, 100, 10, 3, 1 samples, labels interleaved so indices do not reveal classes.
COUNTS = [1000, 100, 10, 3, 1]


@pytest.fixture
def labels():
    labels = np.repeat(np.arange(len(COUNTS)), COUNTS)
    return np.random.default_rng(0).permutation(labels)


def test_default_length_is_the_dataset_size(labels):
    sampler = ClassAwareSampler(labels)
    assert len(sampler) == len(labels) == len(list(sampler))


def test_class_frequencies_are_balanced(labels):
    sampler = ClassAwareSampler(labels, num_samples_cls=4, num_samples=20_000)
    counts = Counter(labels[list(sampler)].tolist())
    # Every class gets one 4-sample run per pass through the class order: 20,000 / 5 = 4,000 each,
    # exactly up to the last, incomplete pass (at most one run of 4 off).
    assert set(counts) == set(range(len(COUNTS)))
    assert all(abs(counts[c] - 4000) <= 4 for c in counts)


def test_runs_of_num_samples_cls_from_one_class(labels):
    k = 3
    stream = list(ClassAwareSampler(labels, num_samples_cls=k, num_samples=3000))
    classes = labels[stream]
    runs = classes.reshape(-1, k)
    assert (runs == runs[:, :1]).all()
    # Each pass visits every class once, so consecutive passes of 5 runs hold each class exactly once.
    passes = runs[:, 0].reshape(-1, len(COUNTS))
    assert all(sorted(p) == list(range(len(COUNTS))) for p in passes)


def test_each_class_list_is_exhausted_before_repeating(labels):
    stream = list(ClassAwareSampler(labels, num_samples_cls=4, num_samples=5 * 4 * 50))
    of_class_2 = [i for i in stream if labels[i] == 2]  # class 2 has 10 samples: 200 draws = 20 full passes
    for start in range(0, len(of_class_2), 10):
        assert sorted(of_class_2[start : start + 10]) == sorted(np.flatnonzero(labels == 2).tolist())


def test_deterministic_per_seed_and_epoch(labels):
    first, second = ClassAwareSampler(labels, seed=7), ClassAwareSampler(labels, seed=7)
    first.set_epoch(3)
    second.set_epoch(3)
    assert list(first) == list(second)
    assert list(first) == list(first)  # iterating again replays, no hidden state
    second.set_epoch(4)
    assert list(first) != list(second)
    assert list(ClassAwareSampler(labels, seed=8)) != list(ClassAwareSampler(labels, seed=7))


def test_seed_and_epoch_do_not_collide(labels):
    a, b = ClassAwareSampler(labels, seed=0), ClassAwareSampler(labels, seed=1)
    a.set_epoch(1)
    assert list(a) != list(b)


def test_state_dict_round_trip(labels):
    sampler = ClassAwareSampler(labels, seed=5)
    sampler.set_epoch(9)
    resumed = ClassAwareSampler(labels)
    resumed.load_state_dict(sampler.state_dict())
    assert sampler.state_dict() == {"seed": 5, "epoch": 9}
    assert list(resumed) == list(sampler)


@pytest.mark.parametrize("world_size, num_samples", [(2, 1000), (3, 1000), (4, 1114)])
def test_distributed_shares_are_disjoint_and_cover_the_global_stream(labels, world_size, num_samples):
    single = ClassAwareSampler(labels, num_samples=num_samples, seed=1)
    single.set_epoch(2)
    shares = []
    for rank in range(world_size):
        sampler = ClassAwareSampler(labels, num_samples=num_samples, seed=1, rank=rank, world_size=world_size)
        sampler.set_epoch(2)
        shares.append(list(sampler))
        assert len(sampler) == len(shares[-1]) == -(-num_samples // world_size)
    total = len(shares[0]) * world_size
    assert total % world_size == 0 and num_samples <= total < num_samples + world_size
    interleaved = [None] * total
    for rank, share in enumerate(shares):
        interleaved[rank::world_size] = share
    # The positions are disjoint and together give the global stream, whose first num_samples
    # are exactly what a single process draws for the same (seed, epoch).
    assert interleaved == sampler.global_stream()
    assert interleaved[:num_samples] == list(single)


def test_classes_absent_from_labels_are_skipped():
    labels = np.array([0, 0, 5, 5, 5, 9])
    counts = Counter(labels[list(ClassAwareSampler(labels, num_samples_cls=1, num_samples=300))].tolist())
    assert counts == {0: 100, 5: 100, 9: 100}


@pytest.mark.parametrize(
    "kwargs",
    [dict(num_samples_cls=0), dict(num_samples=0), dict(rank=2, world_size=2), dict(rank=-1), dict(world_size=0)],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        ClassAwareSampler([0, 1, 1], **kwargs)


def test_open_set_labels_are_rejected():
    with pytest.raises(ValueError, match="negative"):
        ClassAwareSampler([0, -1, 1])


@pytest.mark.parametrize("world_size, batch, num_samples", [(2, 8, 1000), (4, 4, 1114), (3, 6, 1000)])
def test_each_rank_takes_its_contiguous_chunk_of_every_global_batch(labels, world_size, batch, num_samples):
    """The ranks' n-th batches, in rank order, are the single process's n-th batch of batch * world_size."""
    single = ClassAwareSampler(labels, num_samples=num_samples, seed=1)
    single.set_epoch(2)
    stream = single.global_stream()
    shares = []
    for rank in range(world_size):
        sampler = ClassAwareSampler(labels, num_samples=num_samples, seed=1, rank=rank, world_size=world_size)
        sampler.batch_size = batch
        sampler.set_epoch(2)
        shares.append(list(sampler))
        assert len(shares[-1]) == len(sampler)
    steps = num_samples // (batch * world_size)
    for step in range(steps):
        together = [index for share in shares for index in share[step * batch : (step + 1) * batch]]
        assert together == stream[step * batch * world_size : (step + 1) * batch * world_size]
    # all of the (padded) global stream, once
    everything = sorted(index for share in shares for index in share)
    assert everything == sorted(sampler.global_stream())
    # a class's turn of 4 consecutive samples stays on one rank when 4 divides the per-rank batch
    if batch % 4 == 0:
        first = shares[0][:batch]
        assert all(len({int(labels[i]) for i in first[k : k + 4]}) == 1 for k in range(0, batch, 4))


@pytest.mark.parametrize("kind", ["class_aware", "square_root"])
def test_the_training_loader_splits_global_batches_into_chunks(kind):
    from oltr.data.loaders import build_sampler, build_train_loader
    from oltr.engine.distributed import DistContext

    options = {
        "sampler": {"type": kind, "num_samples_cls": 4},
        "num_classes": 3,
        "num_epochs": 2,
        "gpu_decode": False,
        "batch_size": 8,
        "data_pipeline": "pil",
        "num_workers": 0,
    }
    labels = np.array([0] * 20 + [1] * 8 + [2] * 4)
    dataset = type(
        "Labels",
        (torch.utils.data.Dataset,),
        {"labels": labels, "__len__": lambda self: len(labels), "__getitem__": lambda self, i: (i, int(labels[i]), i)},
    )()
    single = build_sampler(options, labels, 7, DistContext())
    batches = [[], []]
    for rank in range(2):
        loader = build_train_loader(options, dataset, 7, DistContext(rank=rank, world_size=2))
        batches[rank] = [images.tolist() for images, _, _ in loader]
    stream = single.global_stream()
    assert [a + b for a, b in zip(*batches)] == [stream[8 * n : 8 * n + 8] for n in range(len(labels) // 8)]
