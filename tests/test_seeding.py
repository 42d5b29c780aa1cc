"""One seed mixer: every stream a run draws (epochs, ranks, samplers) is seeded by mix_seed(seed, *parts)."""

import torch

from oltr.common.seeding import epoch_seed, mix_seed
from oltr.data import samplers
from oltr.data.samplers import ClassAwareSampler, EpochShuffleSampler


def test_nearby_tuples_and_tuples_of_other_lengths_never_collide():
    pairs = {mix_seed(s, e) for s in range(4) for e in range(50)}
    triples = {mix_seed(s, e, r) for s in range(4) for e in range(50) for r in range(8)}
    assert len(pairs) == 4 * 50 and len(triples) == 4 * 50 * 8 and not pairs & triples
    assert all(0 <= seed < 2**63 for seed in pairs | triples)


def test_the_trainer_and_both_samplers_use_it(monkeypatch):
    assert epoch_seed(3, 5, 1) == mix_seed(3, 5, 1)
    shuffle = EpochShuffleSampler(10, seed=3)
    shuffle.set_epoch(5)
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(mix_seed(3, 5))).tolist()
    assert list(shuffle) == expected
    asked = []
    monkeypatch.setattr(samplers, "mix_seed", lambda *parts: asked.append(parts) or mix_seed(*parts))
    balanced = ClassAwareSampler([0, 0, 1, 2, 2, 2], seed=3)
    balanced.set_epoch(5)
    list(balanced)
    assert asked == [(3, 5)]
