"""The finetune recipe: each mode trains exactly the parameters it names, counted against a brute-force walk
over the parameter names and a closed form for LoRA, and checked by an optimizer step that moves those only."""

from __future__ import annotations

import pytest
import torch
from conftest import require_extra

require_extra("timm")
require_extra("peft")

from oltr.common.errors import ConfigError  # noqa: E402
from oltr.config.schema import load_config  # noqa: E402
from oltr.engine import optim  # noqa: E402
from oltr.models.network import build_network  # noqa: E402
from oltr.recipes import resolve  # noqa: E402

CONFIG = "config/Digits_LT/stage_2_finetune.py"
# the class names of every normalisation layer in timm's test_resnet and test_vit, written out by hand
NORM_CLASSES = {"BatchNorm2d", "BatchNormAct2d", "LayerNorm"}
FEATURE_DIMS = {"test_resnet": 96, "test_vit": 64}


def config_for(model_name, mode, *extra):
    return load_config(
        CONFIG,
        [
            "networks.feat_model.type=timm",
            f"networks.feat_model.params={{model_name: {model_name}}}",
            "networks.feat_model.stage1_weights=false",
            f"training_opt.feature_dim={FEATURE_DIMS[model_name]}",
            f"training_opt.finetune.mode={mode}",
            *extra,
        ],
    )


def prepared(config):
    torch.manual_seed(0)
    recipe = resolve(config)
    network, lines = recipe.prepare_network(build_network(config), config)
    return network, lines


def expected_names(feat_model, mode):
    """By name and owner class: independent of the recipe's isinstance walk."""
    expected = set()
    for name, _ in feat_model.named_parameters():
        owner_path, _, leaf = name.rpartition(".")
        owner = type(feat_model.get_submodule(owner_path)).__name__
        if mode == "full":
            expected.add(name)
        elif mode == "bias_norm" and (leaf == "bias" or owner in NORM_CLASSES or name.startswith("fc_add.")):
            expected.add(name)
        elif mode == "lora" and (".lora_A." in name or ".lora_B." in name or name.startswith("fc_add.")):
            expected.add(name)
    return expected


def one_step(network, config):
    """One SGD step of the run's optimizers: (the parameters that got a gradient, those the step changed).

    A parameter may get a zero gradient at init (timm zero-initialises each block's last norm), so
    "got a gradient" is the exact test; "changed" checks the frozen ones stayed put."""
    before = {name: p.detach().clone() for name, p in network.named_parameters()}
    optimizers = optim.build_optimizers(network, {}, config)
    network.train()
    images = torch.randn(4, 3, 32, 32)
    logits, _ = network(images)
    torch.nn.functional.cross_entropy(logits.float(), torch.tensor([0, 1, 2, 3])).backward()
    for optimizer in optimizers.values():
        optimizer.step()
    with_grad = {name for name, p in network.named_parameters() if p.grad is not None}
    return with_grad, {name for name, p in network.named_parameters() if not torch.equal(p.detach(), before[name])}


@pytest.mark.parametrize(
    ("model_name", "mode", "extra"),
    [
        ("test_resnet", "full", []),
        ("test_resnet", "bias_norm", []),
        ("test_vit", "bias_norm", ["networks.feat_model.params.use_fc=true", "training_opt.feature_dim=32"]),
        ("test_vit", "linear_probe", []),
        ("test_vit", "lora", ["networks.feat_model.params.lora={target_modules: [qkv], r: 2}"]),
    ],
)
def test_each_mode_trains_exactly_what_it_names(model_name, mode, extra):
    config = config_for(model_name, mode, *extra)
    network, lines = prepared(config)
    feat_model = network.feat_model
    expected = expected_names(feat_model, mode)
    trainable = {name for name, p in feat_model.named_parameters() if p.requires_grad}
    assert trainable == expected
    count = sum(p.numel() for name, p in feat_model.named_parameters() if name in expected)
    assert f"{count:,} of" in lines[-1]
    assert all(p.requires_grad for p in network.classifier.parameters())
    if mode == "lora":  # closed form: per wrapped qkv, A is r x dim and B is 3 dim x r
        blocks, dim = len(feat_model.backbone.blocks), feat_model.backbone.embed_dim
        assert count == blocks * (2 * dim + 3 * dim * 2)
    if mode == "bias_norm":
        assert 0 < count < sum(p.numel() for p in feat_model.parameters())
    with_grad, moved = one_step(network, config)
    classifier = {f"classifier.{name}" for name, _ in network.classifier.named_parameters()}
    allowed = {f"feat_model.{name}" for name in expected} | classifier
    assert with_grad == allowed and classifier <= moved <= allowed


def test_linear_probe_keeps_the_feature_model_in_eval_mode():
    network, _ = prepared(config_for("test_resnet", "linear_probe"))
    network.train()
    assert not network.feat_model.training and network.classifier.training
    before = {k: v.clone() for k, v in network.feat_model.state_dict().items()}
    network(torch.randn(4, 3, 32, 32))
    assert all(torch.equal(v, before[k]) for k, v in network.feat_model.state_dict().items())  # BN stats too


@pytest.mark.parametrize(
    ("extra", "culprit"),
    [
        (["training_opt.finetune.mode=lora"], "params.lora"),
        (["networks.feat_model.params.lora={target_modules: [qkv]}"], "mode is 'full'"),
        (["networks.feat_model.fix=true"], "fix"),
        (["networks.classifier.type=lws"], "'lws'"),
    ],
)
def test_inconsistent_settings_are_config_errors(extra, culprit):
    with pytest.raises(ConfigError) as error:
        resolve(config_for("test_vit", "full", *extra))
    assert culprit in str(error.value) and "\n" not in str(error.value)


def test_cosine_classifier_is_scale_times_the_cosine():
    import numpy as np

    from oltr.models import build_classifier

    torch.manual_seed(0)
    head = build_classifier("scaled_cosine", in_dim=5, num_classes=3, scale=25)
    x = torch.randn(4, 5)
    xs, ws = x.double().numpy(), head.weight.detach().double().numpy()
    reference = np.array([[25 * a @ w / np.sqrt(a @ a) / np.sqrt(w @ w) for w in ws] for a in xs])
    np.testing.assert_allclose(head(x)[0].detach().double().numpy(), reference, rtol=1e-5)


def test_class_mean_init_sets_each_class_row_to_its_normalised_mean_feature(tiny_digits_root, tmp_path):
    """The run's classifier rows == the L2-normalised mean feature of each class, recomputed here image by
    image in float64 from the same feature model and the test-time transforms."""
    from oltr.data import loaders
    from oltr.engine.distributed import DistContext
    from oltr.runs import trainer

    config = config_for(
        "test_resnet",
        "bias_norm",
        "training_opt.dataset=Tiny",
        f"training_opt.data_root={tiny_digits_root}",
        f"training_opt.split_dir={tiny_digits_root}",
        f"training_opt.log_dir={tmp_path}",
        "training_opt.batch_size=16",
        "training_opt.amp=off",
        "training_opt.data_pipeline=pil",  # the dataset itself gives normalised tensors
        "networks.classifier.type=scaled_cosine",
        "training_opt.finetune.classifier_init=class_mean",
    )
    torch.manual_seed(0)
    run = trainer.build_run(config, DistContext(), echo=False)
    training = config["training_opt"]
    dataset = loaders.build_dataset(training, loaders.load_samples(training, "train"), train=False)
    feat_model = run.network.feat_model.eval()
    sums = torch.zeros(training["num_classes"], 96, dtype=torch.float64)
    counts = torch.zeros(training["num_classes"], dtype=torch.float64)
    with torch.no_grad():
        for index in range(len(dataset)):
            image, label = dataset[index][:2]
            sums[label] += feat_model(image.unsqueeze(0))[0][0].double()
            counts[label] += 1
    expected = torch.nn.functional.normalize(sums / counts.unsqueeze(1), dim=1)
    torch.testing.assert_close(run.network.classifier.weight.double(), expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ConfigError, match="classifier_init 'class_mean' sets the weights of a cosine"):
        resolve(config_for("test_resnet", "full", "training_opt.finetune.classifier_init=class_mean"))
