"""One seed, one result: ``seed`` fixes Python, NumPy, torch and the data-loader workers (CPU).

Two short stage-1 trainings with the same seed must give bit-identical weights and logs, whatever
the global random state was before, with in-process loading and with two worker processes; a
different seed must give different weights (so the comparison can fail).
"""

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from oltr.common import run_files
from oltr.config.schema import load_config
from oltr.data import ensure_digits_lt, loaders
from oltr.engine.distributed import DistContext
from oltr.runs import trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
STAGE1 = "config/Digits_LT/stage_1_cfl.py"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return ensure_digits_lt(tmp_path_factory.mktemp("determinism") / "Digits_LT")


def _train(data, log_dir, seed=0, num_workers=0, noise=0):
    """Two epochs of stage 1 (with a learning-rate step between them); returns (weights, metrics records)."""
    # Disturb every global generator first: the run must not depend on what ran before it.
    random.seed(noise)
    np.random.seed(noise)
    torch.manual_seed(noise)
    config = load_config(
        REPO / STAGE1,
        [
            f"seed={seed}",
            f"training_opt.data_root={data}",
            f"training_opt.split_dir={data}",
            f"training_opt.log_dir={log_dir}",
            "training_opt.num_epochs=2",
            "training_opt.scheduler_params.step_size=1",
            f"training_opt.num_workers={num_workers}",
        ],
    )
    trainer.fit(config, DistContext(), echo=False)
    checkpoint = torch.load(Path(log_dir) / run_files.FINAL_CHECKPOINT, map_location="cpu", weights_only=True)
    records = [json.loads(line) for line in (Path(log_dir) / "metrics.jsonl").read_text().splitlines()]
    for record in records:
        record.pop("images_per_s")  # the clock
    return checkpoint["networks"], records


def _same(a, b):
    return all(torch.equal(a[net][key], b[net][key]) for net in a for key in a[net])


def test_epoch_seeds_differ_per_seed_epoch_and_rank():
    seeds = {trainer.epoch_seed(s, e, r) for s in range(3) for e in range(20) for r in range(8)}
    assert len(seeds) == 3 * 20 * 8


def test_seed_everything_fixes_python_numpy_and_torch():
    trainer.seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    trainer.seed_everything(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


@pytest.mark.slow
def test_same_seed_same_weights_in_process_loading(data, tmp_path):
    weights_a, records_a = _train(data, tmp_path / "a", noise=1)
    weights_b, records_b = _train(data, tmp_path / "b", noise=2)
    assert _same(weights_a, weights_b)
    assert records_a == records_b
    weights_c, _ = _train(data, tmp_path / "c", seed=1)
    assert not _same(weights_a, weights_c)


@pytest.mark.slow
def test_same_seed_same_weights_with_worker_processes(data, tmp_path):
    weights_a, records_a = _train(data, tmp_path / "a", num_workers=2, noise=1)
    weights_b, records_b = _train(data, tmp_path / "b", num_workers=2, noise=2)
    assert _same(weights_a, weights_b)
    assert records_a == records_b


def _first_batches(data, pipeline, num_workers, seed, count=3):
    """The first ``count`` training batches after ``trainer.start_epoch(loader, 0, seed)``."""
    config = load_config(
        REPO / STAGE1,
        [
            f"training_opt.data_root={data}",
            f"training_opt.split_dir={data}",
            "training_opt.log_dir=unused",
            f"training_opt.num_workers={num_workers}",
            f"training_opt.data_pipeline={pipeline}",
        ],
    )
    training_opt = config["training_opt"]
    dataset = loaders.build_dataset(training_opt, loaders.load_samples(training_opt, "train"), train=True)
    loader = loaders.build_train_loader(training_opt, dataset, config["seed"], DistContext())
    trainer.start_epoch(loader, 0, seed)  # epoch 0 every time: the same images, only the seed may change
    iterator = iter(loader)
    return [next(iterator) for _ in range(count)]  # three batches: both workers contribute


@pytest.mark.parametrize("pipeline", ["tensor", "pil"])
def test_worker_augmentations_follow_the_epoch_seed(data, pipeline):
    """The training loader with workers replays an epoch's crops exactly after reseeding."""
    seed = trainer.epoch_seed(0, 0)
    reference = _first_batches(data, pipeline, 2, seed)
    replay = _first_batches(data, pipeline, 2, seed)
    other = _first_batches(data, pipeline, 2, seed + 1)
    for (images, labels, indices), (images2, _, indices2), (images3, _, indices3) in zip(reference, replay, other):
        assert torch.equal(indices, indices2) and torch.equal(indices, indices3)
        assert torch.equal(images, images2)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(reference, other))


def test_tensor_augmentations_do_not_depend_on_the_workers(data):
    """Batch seeds, not worker seeds: no workers, two workers and persistent workers give the same batches."""
    seed = trainer.epoch_seed(0, 3)
    in_process = _first_batches(data, "tensor", 0, seed)
    for images, batch in zip([b[0] for b in in_process], _first_batches(data, "tensor", 2, seed)):
        assert torch.equal(images, batch[0])
