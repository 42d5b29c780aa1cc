"""Seeds: one mixer for every derived stream, and the one function that seeds the global generators.

A run has one ``seed``. Every stream drawn from it has its own seed ``mix_seed(seed, *parts)``:
the trainer's per-epoch, per-rank seed (``epoch_seed``: the global generators and the data-loader
workers, which take theirs from the loader's generator), and the shuffled and class-aware
samplers' per-epoch orders (``mix_seed(seed, epoch)``, the same on every rank, which then take
their own shares). A resumed run recomputes the same seeds, so it replays the same randomness.
"""

import random

import numpy as np
import torch


def mix_seed(seed, *parts):
    """A 63-bit seed for the stream named by ``(seed, *parts)``, e.g. ``mix_seed(seed, epoch)``.

    NumPy's SeedSequence hashes the tuple: nearby tuples give unrelated streams (``seed + epoch``
    would collide across seeds), and tuples of different lengths never coincide.
    """
    sequence = np.random.SeedSequence(int(seed), spawn_key=tuple(int(part) for part in parts))
    return int(sequence.generate_state(1, dtype=np.uint64)[0] >> 1)


def epoch_seed(seed, epoch, rank=0):
    """Every epoch starts from its own seed, so a resumed run replays the same randomness.

    Each rank gets its own seed too: with one seed for all, every rank would
    draw the same crops and flips for its different images.
    """
    return mix_seed(seed, epoch, rank)


def seed_everything(seed):
    """Seed Python, NumPy and torch (all devices); data-loader workers are seeded from the loader's generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
