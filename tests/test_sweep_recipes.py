"""``./run_all.sh --recipes`` (the sweep's stage-2 recipes) and the report's rows named by loss and recipe."""

import json
from pathlib import Path

import pytest
from test_sweep import dry_run, opts_of

from oltr import report
from oltr.sweep import cli as sweep

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_recipes_run_once_per_loss_over_its_stage_1_run(in_repo, capsys):
    runs = dry_run(capsys, "--losses", "softmax", "ldam", "--recipes", "meta_embedding", "crt", "tau_norm")[:-1]
    assert len(runs) == 2 * (1 + 3 * 2)  # per loss: stage 1, then stage 2 + its tests per recipe
    by_dir = {}
    for command in runs:
        by_dir.setdefault(opts_of(command)["training_opt.log_dir"], []).append(command)
    assert sorted(by_dir) == sorted(
        f"logs/Digits_LT/{name}"
        for name in (
            "stage1_softmax",
            "stage2_softmax",
            "stage2_softmax_crt",
            "stage2_softmax_tau_norm",
            "stage1_ldam",
            "stage2_ldam",
            "stage2_ldam_crt",
            "stage2_ldam_tau_norm",
        )
    )
    crt = by_dir["logs/Digits_LT/stage2_ldam_crt"]
    assert [c[c.index("--config") + 1] for c in crt] == ["config/Digits_LT/stage_2_crt.py"] * 2
    assert ["--test" in c for c in crt] == [False, True] and "--test_open" in crt[1]
    assert opts_of(crt[0])["training_opt.stage1_log_dir"] == "logs/Digits_LT/stage1_ldam"
    assert crt[0][crt[0].index("--overlay") + 1] == "config/losses/ldam.py"  # the shared LDAM overlay
    tau = by_dir["logs/Digits_LT/stage2_softmax_tau_norm"][0]
    assert tau[tau.index("--config") + 1] == "config/Digits_LT/stage_2_tau_norm.py"  # fitted by main.py, no --test


def test_the_default_recipe_is_the_meta_embedding_with_unchanged_dirs(in_repo, capsys):
    assert dry_run(capsys, "--losses", "cfl") == dry_run(capsys, "--losses", "cfl", "--recipes", "meta_embedding")


def test_an_unknown_recipe_is_one_line_with_the_closest(in_repo, capsys):
    assert sweep.main(["--dry-run", "--recipes", "crt", "tau-norm"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "'tau-norm' (did you mean 'tau_norm'?)" in captured.err


def write(directory, setting, loss, recipe, top1):
    directory.mkdir(parents=True, exist_ok=True)
    result = {
        "dataset": "Digits_LT",
        "stage": 2,
        "loss": loss,
        "loss_params": {},
        "seed": 1 if recipe is None else 0,  # two seeds of one row (one seed twice would count once)
        "recipe": recipe,
        "overall_top1": top1,
        "many_shot_top1": top1,
        "medium_shot_top1": top1,
        "few_shot_top1": top1,
        "f_measure": 0.5,
    }
    (directory / f"results_test_{setting}.json").write_text(json.dumps(result))


def test_report_rows_are_named_by_loss_and_recipe(tmp_path):
    for loss in ("softmax", "balanced_softmax", "cfl"):
        for recipe in ("meta_embedding", "crt", "tau_norm", None):
            if recipe is None and loss != "cfl":
                continue
            for setting in ("closed", "open"):
                write(tmp_path / f"{loss}_{recipe}", setting, loss, recipe, 0.5)
    rows = report.build_table(report.collect_results([tmp_path]), "Digits_LT")
    assert [row["label"] for row in rows] == [
        "OLTR",
        "OLTR + CFL",
        "OLTR + Balanced Softmax",  # a results file without a recipe is the meta-embedding's
        "CE + cRT",
        "CFL + cRT",
        "Balanced Softmax + cRT",
        "CE + tau-norm",
        "CFL + tau-norm",
        "Balanced Softmax + tau-norm",
    ]
    cfl = next(row for row in rows if row["label"] == "OLTR + CFL")
    assert cfl["num_closed"] == 2  # meta_embedding and recipe-less results share a row


def test_imagenet_paper_rows_stay_with_the_meta_embedding_rows(tmp_path):
    for loss, recipe in (("softmax", "meta_embedding"), ("softmax", "crt"), ("ldam", "crt")):
        write(tmp_path / f"{loss}_{recipe}", "closed", loss, recipe, 0.3)
    results = [dict(r, dataset="ImageNet_LT") for r in report.collect_results([tmp_path])]
    labels = [row["label"] for row in report.build_table(results, "ImageNet_LT")]
    assert labels[:3] == ["OLTR", "OLTR (paper)", "OLTR (ours - paper)"]
    assert labels[-2:] == ["CE + cRT", "LDAM + cRT"]
    assert labels.index("OLTR + CASL (paper)") < labels.index("CE + cRT")
