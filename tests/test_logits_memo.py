"""--test then --test_open in one process score the test split once (oltr/engine/logits_memo.py).

Each pass is counted by the images of the loader it scores, checked against the split files' line
counts; the open results with the memo must equal those computed from scratch, and new weights
must not reuse the memo.
"""
import json

import pytest
import torch

from conftest import tiny_opts
from oltr.cli import main
from oltr.engine import evaluate, logits_memo
from oltr.run_files import FINAL_CHECKPOINT, RESULTS_OPEN

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STAGE1 = "config/Digits_LT/stage_1.py"


@pytest.fixture
def scored(monkeypatch):
    """The number of images of each pass evaluate makes, in order."""
    passes = []

    def counting(network, loader, *args, **kwargs):
        passes.append(len(loader.dataset))
        return real(network, loader, *args, **kwargs)

    real = evaluate.collect_logits
    monkeypatch.setattr(evaluate, "collect_logits", counting)
    logits_memo.clear()
    yield passes
    logits_memo.clear()


def lines(path):
    return len(path.read_text().splitlines())


def test_test_open_after_test_scores_only_the_open_split_with_the_same_results(tiny_digits_root, tmp_path, scored):
    args = ["--config", STAGE1, "--opts", *tiny_opts(tiny_digits_root, tmp_path / "run")]
    assert main(args) == 0
    num_test, num_open = lines(tiny_digits_root / "Tiny_test.txt"), lines(tiny_digits_root / "Tiny_open.txt")
    scored.clear()  # training's own validation passes are not the tests'
    assert main(["--test", *args]) == 0 and main(["--test_open", *args]) == 0
    assert scored == [num_test, num_open]  # the test split once
    shared = json.loads((tmp_path / "run" / RESULTS_OPEN).read_text())

    logits_memo.clear()  # as in a fresh process
    scored.clear()
    assert main(["--test_open", *args]) == 0
    assert scored == [num_test, num_open]
    alone = json.loads((tmp_path / "run" / RESULTS_OPEN).read_text())
    assert alone == shared and shared["f_measure"] is not None

    # other weights in the same log_dir: the test split is scored again
    checkpoint_path = tmp_path / "run" / FINAL_CHECKPOINT
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    weights = checkpoint["networks"]["classifier"]
    name = next(key for key, value in weights.items() if value.is_floating_point())
    weights[name] = weights[name] + 1.0
    torch.save(checkpoint, checkpoint_path)
    scored.clear()
    assert main(["--test_open", *args]) == 0
    assert scored == [num_test, num_open]
    assert json.loads((tmp_path / "run" / RESULTS_OPEN).read_text())["weights_sha256"] != shared["weights_sha256"]
