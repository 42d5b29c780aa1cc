"""``--test --test_open`` (the sweep's one test step): both tests from one scoring of the test split.

Each pass is counted by the images of the loader it scores, checked against the split files' line
counts; both results must equal those of ``--test`` and ``--test_open`` run one by one.
"""

import json

import pytest
from conftest import tiny_opts

from oltr.cli import main
from oltr.common.run_files import RESULTS_CLOSED, RESULTS_OPEN
from oltr.runs import evaluate

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STAGE1 = "config/Digits_LT/stage_1.py"


def lines(path):
    return len(path.read_text().splitlines())


def test_both_tests_in_one_command_score_the_test_split_once_with_the_same_results(
    tiny_digits_root, tmp_path, monkeypatch
):
    passes = []
    real = evaluate.collect_logits

    def counting(network, loader, *args, **kwargs):
        passes.append(len(loader.dataset))
        return real(network, loader, *args, **kwargs)

    monkeypatch.setattr(evaluate, "collect_logits", counting)
    args = ["--config", STAGE1, "--opts", *tiny_opts(tiny_digits_root, tmp_path / "run")]
    assert main(args) == 0
    num_test, num_open = lines(tiny_digits_root / "Tiny_test.txt"), lines(tiny_digits_root / "Tiny_open.txt")
    num_val = lines(tiny_digits_root / "Tiny_val.txt")  # the open-set scorers' validation threshold
    passes.clear()  # training's own validation passes are not the tests'
    assert main(["--test", *args]) == 0 and main(["--test_open", *args]) == 0
    assert passes == [num_test, num_test, num_open, num_val]  # one by one: the test split twice
    alone = {name: json.loads((tmp_path / "run" / name).read_text()) for name in (RESULTS_CLOSED, RESULTS_OPEN)}
    passes.clear()
    assert main(["--test", "--test_open", *args]) == 0
    assert passes == [num_test, num_open, num_val]  # together: once
    together = {name: json.loads((tmp_path / "run" / name).read_text()) for name in (RESULTS_CLOSED, RESULTS_OPEN)}
    assert together == alone and together[RESULTS_OPEN]["f_measure"] is not None
