"""The class-prior samplers (class_balanced, square_root, progressive; Kang et al. 2020) and the sampler dispatch.

Empirical class frequencies over many draws match p_j; shards are disjoint across ranks and
together are the single-process stream; the stream is a function of (seed, epoch).
"""

from collections import Counter

import numpy as np
import pytest

from oltr.common.errors import DataError
from oltr.data.loaders import build_sampler
from oltr.data.samplers import ClassAwareSampler, ClassPriorSampler, EpochShuffleSampler, class_sampling_probabilities
from oltr.engine.distributed import DistContext

COUNTS = [1000, 300, 60, 9, 1]
DRAWS = 100_000


@pytest.fixture
def labels():
    return np.random.default_rng(0).permutation(np.repeat(np.arange(len(COUNTS)), COUNTS))


def expected(kind, t=0.0):
    n = np.asarray(COUNTS, dtype=np.float64)
    return {
        "class_balanced": np.full(len(n), 1 / len(n)),
        "square_root": np.sqrt(n) / np.sqrt(n).sum(),
        "progressive": (1 - t) * n / n.sum() + t / len(n),
    }[kind]


def frequencies(sampler, labels):
    counts = Counter(labels[list(sampler)].tolist())
    return np.array([counts[c] for c in range(len(COUNTS))]) / len(sampler)


def assert_matches(observed, p, draws=DRAWS):
    sigma = np.sqrt(p * (1 - p) / draws)
    assert np.all(np.abs(observed - p) <= 5 * sigma + 1e-12), (observed, p)


@pytest.mark.parametrize("kind", ["class_balanced", "square_root"])
def test_class_frequencies_match_the_formula(kind, labels):
    assert np.allclose(class_sampling_probabilities(kind, COUNTS), expected(kind))
    sampler = ClassPriorSampler(labels, kind, num_samples=DRAWS, seed=3)
    assert_matches(frequencies(sampler, labels), expected(kind))


@pytest.mark.parametrize("epoch, t", [(0, 0.0), (2, 0.5), (4, 1.0)])
def test_progressive_follows_eq_1_over_training(epoch, t, labels):
    sampler = ClassPriorSampler(labels, "progressive", num_samples=DRAWS, num_epochs=5, seed=1)
    sampler.set_epoch(epoch)
    assert sampler.progress() == t
    assert np.allclose(sampler.probabilities(), expected("progressive", t))
    assert_matches(frequencies(sampler, labels), expected("progressive", t))


def test_within_a_class_every_image_comes_before_any_repeats(labels):
    stream = list(ClassPriorSampler(labels, "class_balanced", num_samples=5000, seed=0))
    of_class_3 = [i for i in stream if labels[i] == 3]  # 9 images
    members = sorted(np.flatnonzero(labels == 3).tolist())
    for start in range(0, len(of_class_3) - 9, 9):
        assert sorted(of_class_3[start : start + 9]) == members


@pytest.mark.parametrize("kind", ["class_balanced", "square_root", "progressive"])
def test_shards_are_disjoint_and_together_the_global_stream(kind, labels):
    world = 3
    shards = [
        ClassPriorSampler(labels, kind, num_samples=1000, num_epochs=4, seed=5, rank=r, world_size=world)
        for r in range(world)
    ]
    for shard in shards:
        shard.set_epoch(1)
    streams = [list(shard) for shard in shards]
    assert len({len(s) for s in streams}) == 1 and len(streams[0]) == len(shards[0])
    positions = [set(range(rank, shards[0].total_size, world)) for rank in range(world)]
    assert all(not (a & b) for i, a in enumerate(positions) for b in positions[i + 1 :])  # disjoint shares
    merged = [streams[i % world][i // world] for i in range(shards[0].total_size)]
    assert merged == shards[0].global_stream()


def test_deterministic_per_seed_and_epoch_and_resumable(labels):
    first, second = (ClassPriorSampler(labels, "square_root", seed=7) for _ in range(2))
    assert list(first) == list(second)
    second.set_epoch(1)
    assert list(first) != list(second)
    third = ClassPriorSampler(labels, "square_root", seed=0)
    third.load_state_dict(second.state_dict())
    assert list(third) == list(second)


def test_a_class_without_images_cannot_be_drawn():
    labels = np.array([0, 0, 2, 2])
    with pytest.raises(ValueError, match="draws class 1, which has no training image"):
        ClassPriorSampler(labels, "class_balanced", num_classes=3)
    with pytest.raises(ValueError, match="draws class 1"):
        ClassPriorSampler(labels, "progressive", num_classes=3)  # p_1 > 0 once t > 0
    sampler = ClassPriorSampler(labels, "square_root", num_classes=3)  # p_1 = 0: fine
    assert set(labels[list(sampler)].tolist()) <= {0, 2}


def opts(sampler, num_classes=5):
    return {"sampler": sampler, "num_classes": num_classes, "num_epochs": 3}


def test_build_sampler_dispatch(labels):
    ctx = DistContext()
    assert isinstance(build_sampler(opts(None), labels, 0, ctx), EpochShuffleSampler)
    assert isinstance(
        build_sampler(opts({"type": "instance", "num_samples_cls": 4}), labels, 0, ctx), EpochShuffleSampler
    )
    assert isinstance(
        build_sampler(opts({"type": "class_aware", "num_samples_cls": 4}), labels, 0, ctx), ClassAwareSampler
    )
    for kind in ("class_balanced", "square_root", "progressive"):
        sampler = build_sampler(opts({"type": kind, "num_samples_cls": 4}), labels, 0, ctx)
        assert isinstance(sampler, ClassPriorSampler) and sampler.kind == kind and sampler.num_epochs == 3
    with pytest.raises(DataError, match="training_opt.sampler.type 'class_balanced'"):
        build_sampler(opts({"type": "class_balanced", "num_samples_cls": 4}, num_classes=6), labels, 0, ctx)
