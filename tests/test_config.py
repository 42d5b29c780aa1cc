"""Config loading: _base_ inheritance, YAML, overrides, and one-sentence errors naming the key."""

import pytest

from oltr.common.errors import ConfigError
from oltr.config.schema import apply_overrides, config_hash, deep_merge, dump_yaml, load_config, parse_override

MINIMAL = """
config = {
    "training_opt": {"dataset": "Toy", "data_root": "data/Toy", "log_dir": "logs/toy", "num_classes": 3},
    "networks": {
        "feat_model": {"type": "resnet10", "optim_params": {"lr": 0.1}},
        "classifier": {"type": "dot_product", "optim_params": {"lr": 0.1}},
    },
}
"""


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "base.py"
    path.write_text(MINIMAL)
    return path


def test_defaults_are_filled_and_split_dir_follows_data_root(base):
    config = load_config(base)
    assert config["seed"] == 0
    assert config["training_opt"]["batch_size"] == 128
    assert config["training_opt"]["split_dir"] == "data/Toy"
    assert config["training_opt"]["sampler"] is None
    assert config["criterions"]["PerformanceLoss"]["loss"] == "softmax"
    assert config["criterions"]["FeatureLoss"] is None
    assert config["networks"]["feat_model"]["optim_params"]["momentum"] == 0.9


def test_base_inheritance_deep_merges(tmp_path, base):
    child = tmp_path / "child.py"
    child.write_text(
        '_base_ = "base.py"\nconfig = {"training_opt": {"log_dir": "logs/child"}, '
        '"criterions": {"PerformanceLoss": {"loss": "cfl", "loss_params": {"gamma_hc": 3}}}}\n'
    )
    config = load_config(child)
    assert config["training_opt"]["log_dir"] == "logs/child"
    assert config["training_opt"]["dataset"] == "Toy"  # inherited
    assert config["criterions"]["PerformanceLoss"]["loss_params"] == {"gamma_hc": 3}


def test_yaml_config_with_python_base(tmp_path, base):
    child = tmp_path / "child.yaml"
    child.write_text("_base_: base.py\nseed: 7\ntraining_opt:\n  num_epochs: 2\n")
    config = load_config(child)
    assert config["seed"] == 7 and config["training_opt"]["num_epochs"] == 2


def test_overrides_parse_yaml_values(base):
    config = load_config(
        base, ["training_opt.num_epochs=3", "seed=1", "training_opt.sampler=null", "training_opt.open_threshold=0.25"]
    )
    assert config["training_opt"]["num_epochs"] == 3 and config["seed"] == 1
    assert config["training_opt"]["open_threshold"] == 0.25


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("training_opt.num_epoch=3", "unknown config key 'training_opt.num_epoch' (did you mean 'num_epochs'?)"),
        ("training_opt.num_epochs=-3", "training_opt.num_epochs must be an integer >= 1, got -3"),
        ("training_opt.batch_size=abc", "training_opt.batch_size must be an integer >= 1, got 'abc'"),
        ("training_opt.amp=bf32", "training_opt.amp must be one of 'auto', 'off', 'bf16', 'fp16'"),
        ("training_opt.channels_last=3", "training_opt.channels_last must be true/false"),
        ("trainig_opt.seed=1", "did you mean 'training_opt'?"),
    ],
)
def test_bad_values_name_the_key(base, override, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(base, [override])
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_required_key_and_file(tmp_path):
    path = tmp_path / "c.py"
    path.write_text('config = {"training_opt": {"dataset": "x"}}\n')
    with pytest.raises(ConfigError, match="required config key 'training_opt.data_root' is missing"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.py")


def test_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("config = {\n  'seed': 1,\n  oops oops\n}\n")
    with pytest.raises(ConfigError, match=r"broken\.py:3: Python syntax error"):
        load_config(path)


def test_invalid_yaml_names_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("seed: 1\ntraining_opt: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml:\d+: invalid YAML"):
        load_config(path)


def test_shot_thresholds_must_be_ordered(base):
    with pytest.raises(ConfigError, match="few .* must be below"):
        load_config(base, ["training_opt.shot_thresholds.few=200"])


def test_override_cannot_descend_into_a_value(base):
    with pytest.raises(ConfigError, match="training_opt.dataset is a value, not a section"):
        load_config(base, ["training_opt.dataset.x=1"])
    # A key only present as a default is caught by validation instead.
    with pytest.raises(ConfigError, match="seed must be an integer >= 0 and <= 9223372036854775807, got {'x': 1}"):
        load_config(base, ["seed.x=1"])


def test_helpers():
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}
    assert apply_overrides({"a": {"b": 1}}, ["a.c=x"]) == {"a": {"b": 1, "c": "x"}}
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_resolved_config_round_trips_through_yaml(tmp_path, base):
    config = load_config(base)
    saved = tmp_path / "resolved.yaml"
    saved.write_text(dump_yaml(config))
    assert load_config(saved) == config


# Overlays (a loss, a recipe, the published-run replay) are parts of a config, merged over an entry point.
OVERLAY_DIRS = ("losses", "recipes", "replay_published")


def test_every_shipped_config_loads():
    from pathlib import Path

    configs = sorted(path for path in Path("config").rglob("*.py") if path.parts[1] not in OVERLAY_DIRS)
    assert configs, "no configs found"
    for path in configs:
        config = load_config(path)
        assert config["training_opt"]["log_dir"], path
        stage = config["training_opt"]["stage"]
        assert stage == (2 if path.name.startswith("stage_2") else 1), path


def test_every_shipped_overlay_merges_over_a_stage_config():
    from pathlib import Path

    overlays = sorted(path for name in OVERLAY_DIRS for path in (Path("config") / name).glob("*.py"))
    assert {path.parent.name for path in overlays} == set(OVERLAY_DIRS)
    for overlay in overlays:
        config = load_config("config/Digits_LT/stage_2_meta_embedding.py", overlays=[str(overlay)])
        assert config["training_opt"]["dataset"] == "Digits_LT", overlay


def test_bare_off_means_off_although_yaml_reads_it_as_false(tmp_path, base):
    assert load_config(base, ["training_opt.amp=off"])["training_opt"]["amp"] == "off"
    child = tmp_path / "child.yaml"
    child.write_text("_base_: base.py\ntraining_opt:\n  amp: off\n")
    assert load_config(child)["training_opt"]["amp"] == "off"
    with pytest.raises(ConfigError, match="training_opt.channels_last must be true/false"):
        load_config(base, ["training_opt.channels_last=bf16"])


# ----------------------------------------------------------------------------- _base_ lists and overlays


def write(path, text):
    path.write_text(text)
    return path


def test_base_list_merges_left_to_right_then_the_file(tmp_path, base):
    write(tmp_path / "a.py", 'config = {"seed": 1, "training_opt": {"num_epochs": 5, "batch_size": 8}}\n')
    write(tmp_path / "b.yaml", "seed: 2\ntraining_opt:\n  batch_size: 16\n")
    child = write(
        tmp_path / "child.py", '_base_ = ["base.py", "a.py", "b.yaml"]\nconfig = {"training_opt": {"batch_size": 32}}\n'
    )
    config = load_config(child)
    assert config["training_opt"]["dataset"] == "Toy"  # from base.py
    assert config["training_opt"]["num_epochs"] == 5  # from a.py
    assert config["seed"] == 2  # b.yaml over a.py
    assert config["training_opt"]["batch_size"] == 32  # the file over all of its bases
    yaml_child = write(tmp_path / "child.yaml", "_base_: [base.py, a.py]\n")
    assert load_config(yaml_child)["seed"] == 1


def test_a_shared_base_reached_twice_is_not_a_cycle(tmp_path, base):
    write(tmp_path / "left.py", '_base_ = "base.py"\nconfig = {"seed": 3}\n')
    write(tmp_path / "right.py", '_base_ = "base.py"\nconfig = {"training_opt": {"num_epochs": 4}}\n')
    child = write(tmp_path / "child.py", '_base_ = ["left.py", "right.py"]\nconfig = {}\n')
    config = load_config(child)
    assert config["seed"] == 3 and config["training_opt"]["dataset"] == "Toy"
    assert config["training_opt"]["num_epochs"] == 4


@pytest.mark.parametrize(
    "bases, fragment",
    [
        ('["self.py"]', "includes itself through _base_"),
        ('["base.py", 3]', "_base_ must be a path string or a list of path strings, got ['base.py', 3]"),
        ("{'a': 'base.py'}", "_base_ must be a path string or a list of path strings"),
        ('["base.py", "missing.py"]', "_base_ 'missing.py' does not exist"),
    ],
)
def test_bad_base_lists_are_one_line_naming_the_file(tmp_path, base, bases, fragment):
    path = write(tmp_path / "self.py", f"_base_ = {bases}\nconfig = {{}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert fragment in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_cycle_through_a_base_list_names_the_file(tmp_path, base):
    write(tmp_path / "a.py", '_base_ = ["base.py", "b.py"]\nconfig = {}\n')
    write(tmp_path / "b.py", '_base_ = "a.py"\nconfig = {}\n')
    with pytest.raises(ConfigError, match=r"a\.py includes itself through _base_"):
        load_config(tmp_path / "a.py")


def test_overlays_merge_over_the_config_before_the_opts(tmp_path, base):
    first = write(
        tmp_path / "loss.py",
        'config = {"criterions": {"PerformanceLoss": {"loss": "focal", "loss_params": {"gamma": 2.0}}}, "seed": 4}\n',
    )
    second = write(
        tmp_path / "more.yaml",
        "seed: 5\ncriterions:\n  PerformanceLoss:\n    loss_params:\n      label_smoothing: 0.1\n",
    )
    config = load_config(base, ["seed=6"], overlays=[str(first), str(second)])
    assert config["criterions"]["PerformanceLoss"] == {
        "loss": "focal",
        "weight": 1.0,
        "loss_params": {"gamma": 2.0, "label_smoothing": 0.1},
    }
    assert config["seed"] == 6
    assert load_config(base, overlays=[str(first), str(second)])["seed"] == 5
    with pytest.raises(ConfigError, match=r"--overlay .*nope\.py does not exist"):
        load_config(base, overlays=[str(tmp_path / "nope.py")])
    bad = write(tmp_path / "bad.py", 'config = {"trainig_opt": {}}\n')
    with pytest.raises(ConfigError, match=r"base\.py \+ .*bad\.py: unknown config key 'trainig_opt'"):
        load_config(base, overlays=[str(bad)])


# ----------------------------------------------------------------------------- rules between keys


def test_stage_defaults_to_1_and_is_1_or_2(base):
    assert load_config(base)["training_opt"]["stage"] == 1
    assert load_config(base, ["training_opt.stage=2"])["training_opt"]["stage"] == 2
    with pytest.raises(ConfigError, match="training_opt.stage must be an integer >= 1 and <= 2, got 3"):
        load_config(base, ["training_opt.stage=3"])


STAGE_2 = [
    "training_opt.stage=2",
    "training_opt.stage1_log_dir=logs/s1",
    "criterions.FeatureLoss={optim_params: {lr: 0.01}}",
]


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (
            ["training_opt.stage=2", "memory.centroids=true"],
            "memory.centroids is true but criterions.FeatureLoss is not set; the centroids live in the disc_centroids "
            "feature loss",
        ),
        (
            ["training_opt.stage=2", "networks.classifier.stage1_weights=true"],
            "networks.classifier.stage1_weights is true but training_opt.stage1_log_dir is not set; point it at the "
            "stage-1 run's log_dir",
        ),
        (
            STAGE_2[1:] + ["networks.feat_model.stage1_weights=true"],
            "networks.feat_model.stage1_weights is a stage-2 setting but training_opt.stage is 1; "
            "set training_opt.stage to 2",
        ),
        (STAGE_2[1:] + ["memory.centroids=true"], "memory.centroids is a stage-2 setting but training_opt.stage is 1"),
        (["memory.init_centroids=true"], "memory.init_centroids is a stage-2 setting"),
    ],
)
def test_stage_2_settings_need_each_other_and_stage_2(base, overrides, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(base, overrides)
    assert str(info.value).startswith(f"{base} (with --opts): ")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_complete_stage_2_config_validates(base):
    config = load_config(
        base,
        STAGE_2 + ["networks.feat_model.stage1_weights=true", "memory.centroids=true", "memory.init_centroids=true"],
    )
    assert config["training_opt"]["stage"] == 2 and config["criterions"]["FeatureLoss"]["weight"] == 0.01
