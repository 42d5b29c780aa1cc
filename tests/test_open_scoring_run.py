"""``--test_open`` with the open-set scorers, end to end on the tiny Digits splits: the results and the
predictions file carry every scorer, the feature scorers' fit is cached under the checkpoint's hash and
reused, and a wrong scorer name is one line before any pass."""

import json

import numpy as np
import pytest
from conftest import one_line_error, tiny_opts

from oltr.cli import main
from oltr.common.run_files import RESULTS_OPEN, predictions_path
from oltr.evaluation.scorers import build_scorer
from oltr.runs import open_scoring

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STAGE1 = "config/Digits_LT/stage_1.py"
ALL = "evaluation.open_scores=[msp,max_logit,energy,gen,mahalanobis,knn]"


def test_every_scorer_is_in_the_results_and_the_feature_fit_is_cached(tiny_digits_root, tmp_path, monkeypatch):
    run = tmp_path / "run"
    args = [
        "--config",
        STAGE1,
        "--opts",
        *tiny_opts(tiny_digits_root, run),
        ALL,
        "evaluation.open_score_params={knn: {k: 3}}",
    ]
    assert main(args) == 0
    fits = []
    real = open_scoring.collect_features
    monkeypatch.setattr(open_scoring, "collect_features", lambda *a, **k: fits.append(1) or real(*a, **k))
    assert main(["--test_open", *args]) == 0
    results = json.loads((run / RESULTS_OPEN).read_text())
    scorers = results["open_scorers"]
    assert list(scorers) == ["msp", "max_logit", "energy", "gen", "mahalanobis", "knn"]
    assert scorers["knn"]["scorer"] == "knn (k=3)" and results["val_accept_rate"] == 0.95
    # msp is OLTR's score: its AUROC is the results' open_auroc
    assert scorers["msp"]["auroc"] == pytest.approx(results["open_auroc"], abs=1e-12)
    for entry in scorers.values():
        assert 0 <= entry["auroc"] <= 1 and entry["at_val"]["known_accepted"] >= 0.5
        assert set(entry["auroc_by_shot"]) == {"many", "medium", "few"}
    with np.load(predictions_path(run, True)) as saved:
        labels = saved["labels"]
        kept = {name: saved[f"score_{name}"] for name in scorers}
    assert all(values.shape == labels.shape for values in kept.values())
    cached = list(run.glob("open_fit_features-*.npz"))
    assert len(fits) == 1 and len(cached) == 1 and results["weights_sha256"].startswith(cached[0].name[18:34])
    # the scores saved are the scorers' own on the saved logits (save_logits keeps them)
    assert main(["--test_open", *args, "training_opt.save_logits=true"]) == 0
    assert len(fits) == 1  # the second test read the cache
    with np.load(run / "results_test_open.npz") as saved:
        logits = saved["logits"]
    assert np.allclose(kept["energy"], build_scorer("energy").score(logits), rtol=1e-5, atol=1e-5)
    assert json.loads((run / RESULTS_OPEN).read_text())["open_scorers"] == scorers  # same checkpoint, same numbers


def test_an_unknown_scorer_is_one_line_before_any_pass(tiny_digits_root, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--config", STAGE1, "--opts", *tiny_opts(tiny_digits_root, run)]
    assert main(args) == 0
    capsys.readouterr()
    code = main(["--test_open", *args, "evaluation.open_scores=[msp,mahalanobs]"])
    one_line_error(code, capsys.readouterr().err, "mahalanobs", "did you mean 'mahalanobis'")
    assert not (run / RESULTS_OPEN).exists()
    code = main(["--test_open", *args, "evaluation.open_score_params={knn: {k: 3}}"])
    one_line_error(code, capsys.readouterr().err, "open_score_params.knn")


def test_a_misspelt_scorer_stops_training_before_it_starts(tiny_digits_root, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--config", STAGE1, "--opts", *tiny_opts(tiny_digits_root, run), "evaluation.open_scores=[msp,nergy]"]
    one_line_error(main(args), capsys.readouterr().err, "nergy", "did you mean 'energy'")
    assert not run.exists()
