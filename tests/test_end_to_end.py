"""Stage 1 -> stage 2 -> --test -> --test_open on the embedded Digits_LT with CFL, through the real CLI."""

import json

import pytest

from oltr.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data = root / "Digits_LT"
    stage1, stage2 = root / "stage1_cfl", root / "stage2_cfl"
    common = [
        f"training_opt.data_root={data}",
        f"training_opt.split_dir={data}",
        "training_opt.num_epochs=8",
        "training_opt.scheduler_params.step_size=6",
    ]
    stage1_args = ["--config", "config/Digits_LT/stage_1_cfl.py", "--opts", *common, f"training_opt.log_dir={stage1}"]
    stage2_args = [
        "--config",
        "config/Digits_LT/stage_2_cfl_meta_embedding.py",
        "--opts",
        *common,
        f"training_opt.log_dir={stage2}",
        f"training_opt.stage1_log_dir={stage1}",
    ]
    assert main(stage1_args) == 0
    assert main(stage2_args) == 0
    assert main(["--test", *stage2_args]) == 0
    assert main(["--test_open", *stage2_args]) == 0
    return stage1, stage2


def test_stage_outputs(runs):
    stage1, stage2 = runs
    for run in (stage1, stage2):
        for name in ("final_model_checkpoint.pth", "last_checkpoint.pth", "config.yaml", "log.txt", "metrics.jsonl"):
            assert (run / name).is_file(), run / name
    history = [json.loads(line) for line in (stage2 / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 8
    # Paper Eq. 8 with f = 2 on t = e / 7: 1 - 2t up to t = 1/2, then 2t - 1.
    expected = [1 - 2 * e / 7 if 2 * e / 7 <= 1 else 2 * e / 7 - 1 for e in range(8)]
    assert [record["xi"] for record in history] == pytest.approx(expected)


def test_closed_set_results(runs):
    _, stage2 = runs
    results = json.loads((stage2 / "results_test_closed.json").read_text())
    assert results["dataset"] == "Digits_LT" and results["loss"] == "cfl" and results["stage"] == 2
    assert results["setting"] == "closed"
    for key in ("many_shot_top1", "medium_shot_top1", "few_shot_top1", "macro_f1", "ece"):
        assert key in results
    assert 0.0 <= results["overall_top1"] <= 1.0
    assert results["overall_top1"] > 0.5  # chance is 1/8


def test_open_set_results(runs):
    _, stage2 = runs
    results = json.loads((stage2 / "results_test_open.json").read_text())
    assert results["setting"] == "open"
    for key in ("f_measure", "open_auroc", "fpr_at_95_tpr", "many_shot_top1", "few_shot_top1"):
        assert results[key] is not None
    assert 0.0 <= results["f_measure"] <= 1.0
