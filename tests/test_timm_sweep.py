"""End to end: a timm feature model through both OLTR stages, every decoupled recipe and the finetune recipe,
from the sweep (./run_all.sh), on the tiny Digits splits; the run directories then load and test as any run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, require_extra

from oltr.common.run_files import RESULTS_CLOSED, RESULTS_OPEN
from oltr.config.schema import load_config
from oltr.recipes import resolve
from oltr.sweep import cli

require_extra("timm")
require_extra("peft")

RECIPES = ("meta_embedding", "crt", "lws", "tau_norm", "ncm", "finetune")


def test_digits_lt_timm_configs_resolve():
    for recipe in RECIPES:
        config = load_config(REPO / f"config/Digits_LT_timm/stage_2_{recipe}.py")
        assert resolve(config).name == recipe and config["networks"]["feat_model"]["type"] == "timm"
        assert config["training_opt"]["stage1_log_dir"] == "logs/Digits_LT_timm/stage1"


@pytest.mark.slow
def test_a_timm_model_through_the_sweep(tiny_checkout, capsys):
    """Digits_LT_timm's stage 1 on the tiny splits (one epoch), each recipe's stage 2 (one epoch) and tests."""
    tiny = Path("config/Tiny/stage_1.py").read_text().split("config = ", 1)[1]
    folder = Path("config/TinyTimm")
    folder.mkdir()
    (folder / "stage_1.py").write_text(f"_base_ = {str(REPO / 'config/Digits_LT_timm/stage_1.py')!r}\nconfig = {tiny}")
    for recipe in RECIPES:
        extra = "'finetune': {'mode': 'lora'}, " if recipe == "finetune" else ""
        networks = (
            ", 'networks': {'feat_model': {'params': {'lora': {'target_modules': ['conv2'], 'r': 2}}}}"
            if recipe == "finetune"
            else ""
        )
        (folder / f"stage_2_{recipe}.py").write_text(
            f"_base_ = ['stage_1.py', {str(REPO / 'config' / 'recipes' / f'stage_2_{recipe}.py')!r}]\n"
            f"config = {{'training_opt': {{{extra}'num_epochs': 1, 'log_dir': 'x', 'stage1_log_dir': 'y'}}"
            f"{networks}}}\n"
        )
    argv = ["TinyTimm", "--losses", "softmax", "--recipes", *RECIPES, "--threads-per-step", "1"]
    assert cli.main([*argv, "--logs", "logs", "--out", "out"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert f"{2 + 2 * len(RECIPES)} done (of {2 + 2 * len(RECIPES)} steps" in out  # stage 1, 2 per recipe, report
    for label in (
        "| OLTR |",
        "| CE + cRT |",
        "| CE + LWS |",
        "| CE + tau-norm |",
        "| CE + NCM |",
        "| CE + fine-tune |",
    ):
        assert label in out, label
    for name in ("stage2_softmax", *(f"stage2_softmax_{r}" for r in RECIPES[1:])):
        for results in (RESULTS_CLOSED, RESULTS_OPEN):
            found = json.loads((Path("logs/TinyTimm") / name / results).read_text())
            assert 0.0 <= found["overall_top1"] <= 1.0
    finetune = json.loads((Path("logs/TinyTimm/stage2_softmax_finetune") / RESULTS_CLOSED).read_text())
    assert finetune["recipe"] == "finetune"
    log = Path("logs/TinyTimm/stage2_softmax_finetune/log.txt").read_text()
    assert "finetune lora:" in log and "feature-model parameters train" in log


@pytest.mark.parametrize(
    ("folder", "files", "source"),
    [
        ("ImageNet_LT_ResNeXt50", "data/ImageNet_LT/ImageNet_LT", "ImageNet 2012 (ILSVRC2012)"),
        ("iNaturalist18", "data/iNaturalist18/iNaturalist18", "python -m oltr.data inat18"),
    ],
)
def test_a_config_folder_names_its_datasets_files_when_they_are_missing(
    tmp_path, monkeypatch, capsys, folder, files, source
):
    """The sweep runs a config folder; the split files it looks for are its config's dataset's."""
    (tmp_path / "config").symlink_to(REPO / "config", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    assert cli.main([folder]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: ")
    assert all(f"{files}_{split}.txt" in error for split in ("train", "val", "test", "open"))
    assert source in error and not Path("logs").exists()
