"""The decoupled stage-2 recipes (Kang et al. 2020: crt, lws, tau_norm, ncm), post-hoc logit adjustment,
and the one-line errors around them, on the tiny Digits split.

One stage-1 run (one epoch) is shared by the module; each recipe runs over it through the real CLI.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from oltr.cli import main
from oltr.common.errors import ConfigError, DataError
from oltr.config.schema import load_config
from oltr.engine.checkpoint import load_checkpoint
from oltr.evaluation.posthoc import adjust_logits
from oltr.models import build_classifier
from oltr.recipes.ncm import class_means_of_normalised
from oltr.recipes.tau_norm import tau_grid

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]


def tiny_opts(root, log_dir, **extra):
    opts = [
        "training_opt.dataset=Tiny",
        f"training_opt.data_root={root}",
        f"training_opt.split_dir={root}",
        f"training_opt.log_dir={log_dir}",
        "training_opt.batch_size=16",
        "training_opt.num_epochs=1",
    ]
    return opts + [f"{key}={value}" for key, value in extra.items()]


@pytest.fixture(scope="module")
def stage1(tiny_digits_root, tmp_path_factory, one_torch_thread):
    log_dir = tmp_path_factory.mktemp("stage1")
    assert (
        main(["--config", str(REPO / "config/Digits_LT/stage_1.py"), "--opts", *tiny_opts(tiny_digits_root, log_dir)])
        == 0
    )
    return log_dir


def run_recipe(recipe, root, stage1_dir, log_dir, *flags, **extra):
    args = [
        "--config",
        str(REPO / f"config/Digits_LT/stage_2_{recipe}.py"),
        *flags,
        "--opts",
        *tiny_opts(root, log_dir, **extra),
        f"training_opt.stage1_log_dir={stage1_dir}",
    ]
    return main(args)


def networks(log_dir):
    return load_checkpoint(Path(log_dir) / "final_model_checkpoint.pth")["networks"]


def assert_same(state, reference):
    assert set(state) == set(reference)
    for key, value in reference.items():
        assert torch.equal(state[key], value), key


@pytest.mark.parametrize("recipe", ["crt", "lws"])
def test_trained_recipes_leave_every_feature_model_tensor_as_stage_1_left_it(
    recipe, tiny_digits_root, stage1, tmp_path
):
    assert run_recipe(recipe, tiny_digits_root, stage1, tmp_path, **{"training_opt.num_epochs": 2}) == 0
    before, after = networks(stage1), networks(tmp_path)
    # parameters and BatchNorm running statistics (num_batches_tracked too): bit-identical
    assert any("running_mean" in key for key in before["feat_model"])
    assert_same(after["feat_model"], before["feat_model"])
    classifier = after["classifier"]
    if recipe == "lws":  # only the scales change
        assert set(classifier) == {"fc.weight", "fc.bias", "scales"}
        assert torch.equal(classifier["fc.weight"], before["classifier"]["fc.weight"])
        assert torch.equal(classifier["fc.bias"], before["classifier"]["fc.bias"])
        assert not torch.equal(classifier["scales"], torch.ones_like(classifier["scales"]))
    else:  # re-initialised and trained: nothing of stage 1's classifier is left
        assert not torch.equal(classifier["fc.weight"], before["classifier"]["fc.weight"])


def test_lws_trains_only_the_scales():
    classifier = build_classifier("lws", in_dim=5, num_classes=3)
    assert [name for name, p in classifier.named_parameters() if p.requires_grad] == ["scales"]
    x = torch.randn(4, 5)
    with torch.no_grad():
        classifier.scales.copy_(torch.tensor([1.0, 2.0, 0.5]))
    assert torch.allclose(classifier(x)[0], classifier.fc(x) * torch.tensor([1.0, 2.0, 0.5]))


def test_tau_norm_formula_and_tau_0_is_the_linear_classifier():
    torch.manual_seed(0)
    classifier = build_classifier("tau_norm", in_dim=5, num_classes=3)
    x = torch.randn(7, 5)
    assert torch.equal(classifier(x)[0], classifier.fc(x))
    classifier.set_tau(1.5)
    norms = classifier.fc.weight.norm(dim=1, keepdim=True)
    expected = x @ (classifier.fc.weight / norms**1.5).T + classifier.fc.bias
    assert torch.allclose(classifier(x)[0], expected, atol=1e-6)
    assert tau_grid({"tau_grid": {"min": 0.0, "max": 2.0, "step": 0.1}}) == [round(0.1 * i, 10) for i in range(21)]


def test_tau_norm_with_tau_0_reproduces_stage_1_and_records_its_tau(tiny_digits_root, stage1, tmp_path):
    grid = {"training_opt.tau_grid.max": 0.0, "training_opt.save_logits": "true"}
    assert run_recipe("tau_norm", tiny_digits_root, stage1, tmp_path, **grid) == 0
    assert run_recipe("tau_norm", tiny_digits_root, stage1, tmp_path, "--test", **grid) == 0
    stage1_logits_dir = tmp_path / "stage1_test"
    stage1_logits_dir.mkdir()
    import shutil

    shutil.copy(stage1 / "final_model_checkpoint.pth", stage1_logits_dir)
    assert (
        main(
            [
                "--config",
                str(REPO / "config/Digits_LT/stage_1.py"),
                "--test",
                "--opts",
                *tiny_opts(tiny_digits_root, stage1_logits_dir),
                "training_opt.save_logits=true",
            ]
        )
        == 0
    )
    ours = np.load(tmp_path / "results_test_closed.npz")["logits"]
    theirs = np.load(stage1_logits_dir / "results_test_closed.npz")["logits"]
    assert np.array_equal(ours.argmax(1), theirs.argmax(1))
    assert np.allclose(ours, theirs, atol=1e-5)
    results = json.loads((tmp_path / "results_test_closed.json").read_text())
    assert results["recipe"] == "tau_norm" and results["recipe_fit"]["tau"] == 0.0


def test_tau_norm_picks_tau_on_the_validation_split(tiny_digits_root, stage1, tmp_path):
    assert run_recipe("tau_norm", tiny_digits_root, stage1, tmp_path) == 0
    fit = load_checkpoint(tmp_path / "final_model_checkpoint.pth")["recipe_fit"]
    scores = {float(tau): score for tau, score in fit["val_top1_by_tau"].items()}
    assert len(scores) == 21 and fit["tau"] in scores
    assert scores[fit["tau"]] == max(scores.values())
    assert fit["tau"] == min(tau for tau, score in scores.items() if score == max(scores.values()))


def test_ncm_is_the_hand_computed_nearest_mean_on_a_toy_set():
    features = torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, 2.0], [0.0, 5.0], [-1.0, 0.1]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    means = class_means_of_normalised(features, labels, 3)
    # by hand: class 0 = mean of (1, 0) and (1/sqrt2, 1/sqrt2); class 1 = (0, 1); class 2 = normalised (-1, 0.1)
    s = 2**-0.5
    expected = torch.tensor([[(1 + s) / 2, s / 2], [0.0, 1.0], [-1 / 1.01**0.5, 0.1 / 1.01**0.5]])
    assert torch.allclose(means, expected, atol=1e-6)
    classifier = build_classifier("ncm", in_dim=2, num_classes=3)
    classifier.means.copy_(means)
    queries = torch.tensor([[1.0, 0.2], [0.1, 1.0], [-2.0, 0.0], [1.0, 1.5]])
    cosines = [
        [float(np.dot(q, m) / np.linalg.norm(q) / np.linalg.norm(m)) for m in expected.numpy()] for q in queries.numpy()
    ]
    assert classifier(queries)[0].argmax(1).tolist() == [int(np.argmax(row)) for row in cosines] == [0, 1, 2, 1]
    assert torch.allclose(classifier(queries)[0], 16.0 * torch.tensor(cosines), atol=1e-5)
    with pytest.raises(DataError, match="class 2 has none"):
        class_means_of_normalised(features[:4], labels[:4], 3)


def test_ncm_centered_l2_is_classifier_balancings_default_by_hand():
    generator = np.random.default_rng(0)
    features = generator.normal(size=(12, 3)) + 2.0
    labels = np.array([0, 1, 2, 3] * 3)
    mu = features.sum(axis=0) / len(features)
    unit = [(f - mu) / math.sqrt(sum((f - mu) ** 2)) for f in features]
    means = np.array([sum(u for u, y in zip(unit, labels) if y == c) / 3 for c in range(4)])
    queries = generator.normal(size=(5, 3))
    expected = []
    for q in queries:
        q_hat = (q - mu) / math.sqrt(sum((q - mu) ** 2))
        expected.append([-sum((q_hat[d] - m[d]) ** 2 for d in range(3)) for m in means])
    center = torch.tensor(features).mean(dim=0)
    fitted = class_means_of_normalised(torch.tensor(features), torch.tensor(labels), 4, center=center)
    assert np.allclose(fitted.numpy(), means, atol=1e-6)
    classifier = build_classifier("ncm", in_dim=3, num_classes=4, mode="centered_l2")
    classifier.means.copy_(fitted)
    classifier.feature_mean.copy_(center.float())
    logits = classifier(torch.tensor(queries, dtype=torch.float32))[0]
    assert np.allclose(logits.numpy(), np.array(expected), atol=1e-5)
    # an NCM checkpoint from before the centred mode (no feature_mean) still loads, in cosine mode
    old = build_classifier("ncm", in_dim=3, num_classes=4).state_dict()
    del old["feature_mean"]
    build_classifier("ncm", in_dim=3, num_classes=4).load_state_dict(old)
    with pytest.raises(ConfigError, match="mode"):
        build_classifier("ncm", in_dim=3, num_classes=4, mode="cos")


def test_ncm_run_is_tested_like_any_run_and_logit_adjustment_is_recorded(tiny_digits_root, stage1, tmp_path):
    assert run_recipe("ncm", tiny_digits_root, stage1, tmp_path) == 0
    assert_same(networks(tmp_path)["feat_model"], networks(stage1)["feat_model"])
    assert run_recipe("ncm", tiny_digits_root, stage1, tmp_path, "--test_open") == 0
    tau = {"training_opt.save_logits": "true"}
    assert run_recipe("ncm", tiny_digits_root, stage1, tmp_path, "--test", **tau) == 0
    raw = np.load(tmp_path / "results_test_closed.npz")["logits"]
    assert (
        run_recipe(
            "ncm", tiny_digits_root, stage1, tmp_path, "--test", **tau, **{"evaluation.logit_adjustment_tau": 1.5}
        )
        == 0
    )
    adjusted = np.load(tmp_path / "results_test_closed.npz")["logits"]
    results = json.loads((tmp_path / "results_test_closed.json").read_text())
    counts = np.asarray(results["class_counts"], dtype=np.float64)
    assert np.allclose(adjusted, raw - 1.5 * np.log(counts / counts.sum()), atol=1e-5)
    assert results["logit_adjustment_tau"] == 1.5 and results["recipe"] == "ncm"
    labels = np.load(tmp_path / "results_test_closed.npz")["labels"]
    assert results["overall_top1"] == pytest.approx(float((adjusted.argmax(1) == labels).mean()))
    opened = json.loads((tmp_path / "results_test_open.json").read_text())
    assert opened["logit_adjustment_tau"] == 0.0 and opened["setting"] == "open"


def test_adjust_logits_formula_and_zero_counts():
    logits = torch.randn(3, 4)
    counts = [10, 5, 2, 1]
    prior = torch.tensor(counts, dtype=torch.float64) / 18
    assert torch.equal(adjust_logits(logits, counts, 0.0), logits)
    assert torch.allclose(adjust_logits(logits, counts, 0.5), logits - 0.5 * prior.log().float())
    with pytest.raises(DataError, match="class 1 has no training image"):
        adjust_logits(logits, [3, 0, 1, 1], 1.0)


# ----------------------------------------------------------------------------- bad input: one line, exit 2


def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "opts, message",
    [
        (["training_opt.recipe=crtt"], "training_opt.recipe must be one of"),
        (["training_opt.sampler.type=class_balancd"], "(did you mean 'class_balanced'?)"),
        (["evaluation.logit_adjustment_tau=-0.5"], "evaluation.logit_adjustment_tau must be a number >= 0.0, got -0.5"),
        (["training_opt.stage1_log_dir=null"], "training_opt.stage1_log_dir is not set"),
        (
            ["training_opt.stage=1", "networks.feat_model.stage1_weights=false"],
            "training_opt.recipe 'crt' is a stage-2 recipe",
        ),
        (["networks.classifier.type=lws"], "needs networks.classifier.type a trainable classifier"),
    ],
)
def test_config_errors_are_one_line(opts, message, capsys, tmp_path):
    args = [
        "--config",
        str(REPO / "config/Digits_LT/stage_2_crt.py"),
        "--opts",
        f"training_opt.log_dir={tmp_path}",
        *opts,
    ]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert message in err
    if "crtt" in opts[0]:
        assert "(did you mean 'crt'?)" in err


def test_a_decoupled_recipe_without_its_stage_1_run(tiny_digits_root, tmp_path, capsys):
    assert run_recipe("ncm", tiny_digits_root, tmp_path / "nothing", tmp_path / "run") == 2
    err = one_line_error(capsys)
    assert "the ncm recipe needs the stage-1 checkpoint" in err and "nothing" in err


def test_a_stage_1_checkpoint_with_another_num_classes(tiny_digits_root, stage1, tmp_path, capsys):
    # Nine classes, each with training images: class 0's images of every split are split into 0 and 8.
    nine = tmp_path / "nine"
    nine.mkdir()
    for split in ("train", "val", "test", "open"):
        lines, seen = [], 0
        for line in (tiny_digits_root / f"Tiny_{split}.txt").read_text().splitlines():
            path, label = line.rsplit(None, 1)
            if label == "0":
                seen += 1
                label = "8" if seen % 2 == 0 else label
            lines.append(f"{path} {label}")
        (nine / f"Tiny_{split}.txt").write_text("\n".join(lines) + "\n")
    assert (
        run_recipe(
            "lws",
            tiny_digits_root,
            stage1,
            tmp_path / "run",
            **{"training_opt.num_classes": 9, "training_opt.split_dir": nine},
        )
        == 2
    )
    assert "holds class counts of 8 classes but training_opt.num_classes is 9" in one_line_error(capsys)


def test_a_class_without_training_images(tiny_digits_root, tmp_path, capsys):
    # 9 classes, of which the training split has 8: refused before training (and before the
    # class-balanced sampler, which could not draw class 8)
    args = [
        "--config",
        str(REPO / "config/Digits_LT/stage_1.py"),
        "--opts",
        *tiny_opts(tiny_digits_root, tmp_path),
        "training_opt.num_classes=9",
        "training_opt.sampler={type: class_balanced}",
    ]
    assert main(args) == 2
    assert "known classes have no training image (class 8)" in one_line_error(capsys)


def test_every_dataset_has_the_four_recipe_configs():
    for dataset in ("ImageNet_LT", "Places_LT", "Digits_LT", "CIFAR10_LT", "CIFAR100_LT"):
        for recipe in ("crt", "lws", "tau_norm", "ncm"):
            config = load_config(REPO / f"config/{dataset}/stage_2_{recipe}.py")
            assert config["training_opt"]["recipe"] == recipe and config["training_opt"]["stage"] == 2
            assert config["training_opt"]["stage1_log_dir"] == f"logs/{dataset}/stage1"
    published = load_config(REPO / "config/ImageNet_LT/stage_2_crt.py")["training_opt"]
    assert (published["batch_size"], published["num_epochs"], published["scheduler"]) == (512, 10, "cosine")
