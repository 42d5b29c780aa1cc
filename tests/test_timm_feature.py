"""``networks.feat_model.type: timm``: weights from a local file and from an offline hub cache, the
features contract, channels_last / bf16 / compile, and one-line errors. Never touches the network:
timm's tiny ``test_*`` models are built without weights and saved by the tests themselves."""

from __future__ import annotations

import pytest
import torch
from conftest import require_extra

timm = require_extra("timm")
safetensors_torch = require_extra("safetensors.torch")

from oltr.cli import main  # noqa: E402
from oltr.common.errors import CheckpointError, ConfigError  # noqa: E402
from oltr.config.schema import load_config  # noqa: E402
from oltr.models import build_feature_model  # noqa: E402
from oltr.models.network import build_network  # noqa: E402

HUB_ID = "timm/test_resnet.r160_in1k"  # timm's pretrained_cfg hf_hub_id of test_resnet


def saved_timm_model(seed=1):
    """A timm test_resnet with its classifier, as a user would save it, and its state dict."""
    torch.manual_seed(seed)
    model = timm.create_model("test_resnet", pretrained=False)
    return {key: value.detach().clone().contiguous() for key, value in model.state_dict().items()}


def assert_backbone_equals(feature_model, state):
    own = feature_model.backbone.state_dict()
    assert set(own) == {key for key in state if not key.startswith("fc.")}  # the classifier is left out
    for key, value in own.items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_file_loads_equal_weights(tmp_path, suffix):
    state = saved_timm_model()
    path = tmp_path / f"weights{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        safetensors_torch.save_file(state, str(path))
    fresh = build_feature_model("timm", model_name="test_resnet")
    assert not torch.equal(fresh.backbone.conv1[0].weight, state["conv1.0.weight"])  # the load is what makes them equal
    assert_backbone_equals(build_feature_model("timm", model_name="test_resnet", pretrained=str(path)), state)


def test_local_file_through_the_network_config(tmp_path):
    """The same file named in a config: build_network reads it; for_training=False (a test) leaves it out."""
    state = saved_timm_model(seed=2)
    path = tmp_path / "w.safetensors"
    safetensors_torch.save_file(state, str(path))
    config = load_config(
        "config/Digits_LT/stage_1.py",
        [
            "networks.feat_model.type=timm",
            f"networks.feat_model.params={{model_name: test_resnet, pretrained: {path}}}",
            "training_opt.feature_dim=96",
        ],
    )
    network = build_network(config)
    assert network.feat_model.feature_dim == 96 == timm.create_model("test_resnet", num_classes=0).num_features
    assert_backbone_equals(network.feat_model, state)
    untrained = build_network(config, for_training=False)
    assert not torch.equal(untrained.feat_model.backbone.conv1[0].weight, state["conv1.0.weight"])


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty Hugging Face cache in tmp_path, offline: HF_HOME and the hub's constants point at it."""
    import huggingface_hub.constants as constants

    hub = tmp_path / "hf" / "hub"
    hub.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads its environment once at import: its constants are what it consults
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    return hub


def test_hub_weights_come_from_the_offline_cache(offline_hub):
    state = saved_timm_model(seed=3)
    repo = offline_hub / f"models--{HUB_ID.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    safetensors_torch.save_file(state, str(repo / "snapshots" / commit / "model.safetensors"))
    assert_backbone_equals(build_feature_model("timm", model_name="test_resnet", pretrained=True), state)


def test_hub_weights_missing_from_the_cache_is_one_line(offline_hub):
    with pytest.raises(CheckpointError) as error:
        build_feature_model("timm", model_name="test_resnet", pretrained=True)
    message = str(error.value)
    assert "\n" not in message and "'test_resnet'" in message and "pretrained to the path" in message


def test_a_file_of_another_model_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "vit.pth"
    torch.save(timm.create_model("test_vit").state_dict(), path)
    with pytest.raises(CheckpointError, match="does not fit timm model 'test_resnet'"):
        build_feature_model("timm", model_name="test_resnet", pretrained=str(path))


@pytest.mark.parametrize(
    ("params", "culprits"),
    [
        ("{model_name: resnet_50}", ["'resnet_50'", "did you mean 'resnet50'", "timm.list_models"]),
        ("{model_name: test_resnet, pretrained: /nowhere/w.pth}", ["/nowhere/w.pth", "does not exist", ".safetensors"]),
        ("{model_name: test_resnet, lora: {target_modules: [qkv]}}", ["'qkv'", "target_modules"]),
        (
            "{model_name: test_resnet, model_kwargs: {no_such_arg: 1}}",
            ["'test_resnet' rejects model_kwargs", "no_such_arg"],
        ),
    ],
)
def test_bad_model_name_or_file_is_one_line_from_the_cli(capsys, tmp_path, params, culprits):
    argv = [
        "--config",
        "config/Digits_LT/stage_1.py",
        "--opts",
        "networks.feat_model.type=timm",
        f"networks.feat_model.params={params}",
        f"training_opt.log_dir={tmp_path / 'run'}",
    ]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for culprit in culprits:
        assert culprit in lines[0], (culprit, lines[0])
    assert not (tmp_path / "run").exists()


def test_features_are_timms_pre_logits():
    """features == the classifier-free timm model's output on the same weights; extra is None."""
    torch.manual_seed(0)
    feature_model = build_feature_model("timm", model_name="test_vit").eval()
    reference = timm.create_model("test_vit", num_classes=0).eval()
    reference.load_state_dict(feature_model.backbone.state_dict())
    images = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        features, extra = feature_model(images)
        assert extra is None
        torch.testing.assert_close(features, reference(images))
    assert features.shape == (2, feature_model.feature_dim) and feature_model.feature_dim == reference.num_features


def test_oltr_options_on_a_convolutional_map_and_not_on_tokens():
    model = build_feature_model(
        "timm", model_name="test_resnet", input_size=32, use_modulatedatt=True, use_fc=True, feature_dim=24
    )
    features, maps = model(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 24) and len(maps) == 3
    with torch.no_grad():
        feature_map = model.backbone.forward_features(torch.randn(2, 3, 32, 32))
    assert maps[0].shape[1:] == feature_map.shape[1:]  # the attention runs on the backbone's own map
    with pytest.raises(ConfigError, match="use_modulatedatt needs a convolutional map"):
        build_feature_model("timm", model_name="test_vit", input_size=160, use_modulatedatt=True)


def test_engine_settings_apply_channels_last_bf16_and_compile():
    """What the engine does to any network (oltr/runs/run.py): channels_last, bf16 autocast, torch.compile."""
    torch.manual_seed(0)
    config = load_config(
        "config/Digits_LT/stage_1.py",
        [
            "networks.feat_model.type=timm",
            "networks.feat_model.params={model_name: test_resnet}",
            "training_opt.feature_dim=96",
        ],
    )
    network = build_network(config).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        reference, _ = network(images)
    network.to(memory_format=torch.channels_last)
    conv = network.feat_model.backbone.conv1[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits, _ = network(images.to(memory_format=torch.channels_last))
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), reference, atol=0.1, rtol=0.05)
    compiled = torch.compile(network, backend="eager")  # dynamo traces the wrapper; eager: no C++ build
    with torch.no_grad():
        torch.testing.assert_close(compiled(images)[0], reference)


def test_lora_wraps_the_named_layers_and_takes_plain_weights():
    torch.manual_seed(0)
    plain = build_feature_model("timm", model_name="test_vit")
    lora = build_feature_model("timm", model_name="test_vit", lora={"target_modules": ["qkv"], "r": 2})
    qkv = [name for name, module in plain.named_modules() if name.endswith(".qkv")]
    wrapped = {name.rsplit(".lora_A", 1)[0] for name, _ in lora.named_modules() if name.endswith(".lora_A")}
    assert wrapped == set(qkv) and len(qkv) > 0
    lora.load_state_dict(lora.adapt_state_dict(plain.state_dict()), strict=False)
    for name, value in plain.state_dict().items():
        target = name.replace(".qkv.", ".qkv.base_layer.")
        assert torch.equal(lora.state_dict()[target], value), name
    images = torch.randn(2, 3, 160, 160)
    with torch.no_grad():  # LoRA's B starts at zero: the wrapped model computes what the plain one does
        torch.testing.assert_close(lora.eval()(images)[0], plain.eval()(images)[0])
