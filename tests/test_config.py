"""Config loading: _base_ inheritance, YAML, overrides, and one-sentence errors naming the key."""
import pytest

from oltr.config import apply_overrides, config_hash, deep_merge, dump_yaml, load_config, parse_override
from oltr.errors import ConfigError

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
    child.write_text('_base_ = "base.py"\nconfig = {"training_opt": {"log_dir": "logs/child"}, '
                     '"criterions": {"PerformanceLoss": {"loss": "cfl", "loss_params": {"gamma_hc": 3}}}}\n')
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
    config = load_config(base, ["training_opt.num_epochs=3", "seed=1", "training_opt.sampler=null",
                                "training_opt.open_threshold=0.25"])
    assert config["training_opt"]["num_epochs"] == 3 and config["seed"] == 1
    assert config["training_opt"]["open_threshold"] == 0.25


@pytest.mark.parametrize("override, fragment", [
    ("training_opt.num_epoch=3", "unknown config key 'training_opt.num_epoch' (did you mean 'num_epochs'?)"),
    ("training_opt.num_epochs=-3", "training_opt.num_epochs must be an integer >= 1, got -3"),
    ("training_opt.batch_size=abc", "training_opt.batch_size must be an integer >= 1, got 'abc'"),
    ("training_opt.amp=bf32", "training_opt.amp must be one of 'off', 'bf16', 'fp16'"),
    ("training_opt.channels_last=3", "training_opt.channels_last must be true/false"),
    ("trainig_opt.seed=1", "did you mean 'training_opt'?"),
])
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
    with pytest.raises(ConfigError, match="seed must be an integer >= 0, got {'x': 1}"):
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


def test_every_shipped_config_loads():
    from pathlib import Path
    configs = sorted(Path("config").rglob("*.py"))
    assert configs, "no configs found"
    for path in configs:
        config = load_config(path)
        assert config["training_opt"]["log_dir"], path


def test_bare_off_means_off_although_yaml_reads_it_as_false(tmp_path, base):
    assert load_config(base, ["training_opt.amp=off"])["training_opt"]["amp"] == "off"
    child = tmp_path / "child.yaml"
    child.write_text("_base_: base.py\ntraining_opt:\n  amp: off\n")
    assert load_config(child)["training_opt"]["amp"] == "off"
    with pytest.raises(ConfigError, match="training_opt.channels_last must be true/false"):
        load_config(base, ["training_opt.channels_last=bf16"])
