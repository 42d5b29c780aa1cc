"""ClassAwareSampler: balance, runs of num_samples_cls, determinism, distributed shares."""

from collections import Counter

import numpy as np
import pytest

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
