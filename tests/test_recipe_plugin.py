"""A new stage-2 recipe is one code file plus its config: written here into a temporary folder, it trains
(here: fits) through main.py, is tested like any run, and the sweep and the report know it by its name.

The recipe, "median_ncm", is NCM with each class's median of the normalised features as its mean (a
robust variant); the truth is the same median computed here from the stage-1 features directly.
"""

import importlib.util
import json

import pytest
import torch
from conftest import REPO, tiny_opts

from oltr import report
from oltr.cli import main
from oltr.common.run_files import FINAL_CHECKPOINT, RESULTS_CLOSED, RESULTS_OPEN
from oltr.engine.checkpoint import load_checkpoint
from oltr.recipes import RECIPES, recipe_names
from oltr.sweep import plan

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECIPE_FILE = '''
"""Median class means: NCM with the per-class median of the L2-normalised training features."""
import torch

from oltr.recipes import register_recipe
from oltr.recipes.decoupled import FittedRecipe, collect_features


@register_recipe
class MedianNCM(FittedRecipe):
    name = "median_ncm"
    label = "median-NCM"
    classifier = "ncm"

    def fit_classifier(self, classifier, feat_model, training_opt, train_samples, ctx, logger, val):
        features, labels = collect_features(feat_model, training_opt, train_samples, ctx, "class medians")
        normalised = torch.nn.functional.normalize(features, dim=1)
        for j in range(training_opt["num_classes"]):
            classifier.means[j] = normalised[labels == j].median(dim=0).values
        return {"statistic": "median"}
'''

CONFIG_FILE = """
_base_ = [{stage1!r}, {recipe!r}]
config = {{"training_opt": {{"recipe": "median_ncm"}}}}
"""


@pytest.fixture
def median_ncm(tmp_path):
    """The recipe file imported (which registers it), and removed from the registry afterwards."""
    path = tmp_path / "median_ncm.py"
    path.write_text(RECIPE_FILE)
    spec = importlib.util.spec_from_file_location("median_ncm", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    yield RECIPES.get("median_ncm")
    RECIPES._entries.pop("median_ncm")


def test_a_recipe_in_one_file_runs_tests_and_is_known_to_the_sweep_and_the_report(
    median_ncm, tiny_digits_root, tmp_path
):
    assert "median_ncm" in recipe_names() and recipe_names()[-1] == "median_ncm"  # after the built-in ones
    stage1, run = tmp_path / "stage1", tmp_path / "median"
    assert main(["--config", "config/Digits_LT/stage_1.py", "--opts", *tiny_opts(tiny_digits_root, stage1)]) == 0
    config = tmp_path / "stage_2_median_ncm.py"
    config.write_text(
        CONFIG_FILE.format(
            stage1=str(REPO / "config/Digits_LT/stage_1.py"), recipe=str(REPO / "config/recipes/stage_2_ncm.py")
        )
    )
    args = [
        "--config",
        str(config),
        "--opts",
        *tiny_opts(tiny_digits_root, run),
        f"training_opt.stage1_log_dir={stage1}",
    ]
    assert main(args) == 0 and main(["--test", "--test_open", *args]) == 0
    checkpoint = load_checkpoint(run / FINAL_CHECKPOINT, what="test")
    assert checkpoint["recipe_fit"]["statistic"] == "median" and checkpoint["recipe_fit"]["recipe"] == "median_ncm"
    # the truth: the medians of stage 1's normalised features, computed here
    from oltr.config import load_config
    from oltr.data import loaders
    from oltr.engine.distributed import DistContext
    from oltr.recipes.decoupled import collect_features
    from oltr.runs.evaluate import load_trained_network

    resolved = load_config(config, args[3:])
    network, _, _, _ = load_trained_network(resolved, DistContext())
    training_opt = resolved["training_opt"]
    features, labels = collect_features(
        network.feat_model, training_opt, loaders.load_samples(training_opt, "train"), DistContext(), "test"
    )
    normalised = torch.nn.functional.normalize(features, dim=1)
    expected = torch.stack([normalised[labels == j].median(dim=0).values for j in range(8)])
    assert torch.allclose(checkpoint["networks"]["classifier"]["means"], expected)
    # tested like any run; the report names its rows by the recipe's label
    for name in (RESULTS_CLOSED, RESULTS_OPEN):
        assert json.loads((run / name).read_text())["recipe"] == "median_ncm"
    rows = report.build_table(report.collect_results([run]), "Tiny")
    assert [row["label"] for row in rows] == ["CE + median-NCM"]
    # the sweep plans it over each loss's stage-1 run, in stage2_<loss>_median_ncm
    assert plan.stage2_dir_name("cfl", "median_ncm") == "stage2_cfl_median_ncm"
