"""The benchmark configs (ImageNet_LT, Places_LT, CIFAR10_LT, CIFAR100_LT) build and run their real pipelines.

No real data and no network: each dataset gets a tiny fake split of a few JPEG/PNG files
in tmp_path, the config is loaded with --opts-style overrides pointing at it, and the
trainer's own set-up (trainer.build_run: data, transforms, network, stage-1 weights,
centroids, losses, optimizers, schedulers, loader) runs unchanged, at the config's real
input size. Stage 2 starts from a stage-1 checkpoint written by trainer.save_final.
Places-LT's ImageNet weights come from a local fake state dict handed to torchvision's
weights API, so its real loading code runs. Hyper-parameters are checked against the
published OLTR values (the README's "Hyper-parameters" table) and the CIFAR-LT conventions.
"""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from oltr.common import run_files
from oltr.common.errors import DataError
from oltr.config.schema import load_config
from oltr.data import loaders
from oltr.engine.distributed import DistContext
from oltr.runs import trainer

REPO = Path(__file__).resolve().parent.parent
LOSSES = ("softmax", "focal", "asl", "cfl", "casl")
BENCHMARKS = ("ImageNet_LT", "Places_LT", "CIFAR10_LT", "CIFAR100_LT")

# What each benchmark must be: classes, input size, backbone, image files (OLTR's datasets; CIFAR-LT export).
EXPECTED = {
    "ImageNet_LT": dict(num_classes=1000, input_size=224, arch="resnet10", image=(".JPEG", (80, 60))),
    "Places_LT": dict(num_classes=365, input_size=224, arch="resnet152", image=(".jpg", (64, 64))),
    "CIFAR10_LT": dict(num_classes=8, input_size=32, arch="resnet18", image=(".png", (32, 32))),
    "CIFAR100_LT": dict(num_classes=90, input_size=32, arch="resnet18", image=(".png", (32, 32))),
}

# (epochs, feature lr, classifier lr, centroid lr, schedule) of the published runs (the README's "Hyper-parameters").
PUBLISHED = {
    ("ImageNet_LT", 1): (30, 0.1, 0.1, None, ("step", 10)),
    ("ImageNet_LT", 2): (60, 0.01, 0.1, 0.01, ("step", 20)),
    ("Places_LT", 1): (30, 0.001, 0.1, None, ("step", 10)),
    ("Places_LT", 2): (30, 0.0001, 0.01, 0.01, ("step", 10)),
    # CIFAR-LT: 200 cosine epochs (the CIFAR-LT papers' length), then OLTR's ImageNet-LT stage 2 rates
    ("CIFAR10_LT", 1): (200, 0.1, 0.1, None, ("cosine", None)),
    ("CIFAR10_LT", 2): (60, 0.01, 0.1, 0.01, ("cosine", None)),
    ("CIFAR100_LT", 1): (200, 0.1, 0.1, None, ("cosine", None)),
    ("CIFAR100_LT", 2): (60, 0.01, 0.1, 0.01, ("cosine", None)),
}

# The loss parameters every benchmark shares with the paper's runs.
LOSS_PARAMS = {
    "softmax": {},
    "focal": {"gamma": 2.0, "label_smoothing": 0.1},
    "asl": {"gamma_pos": 0.0, "gamma_neg": 4.0, "label_smoothing": 0.1},
    "cfl": {"gamma": 2.0, "gamma_hc": 2.0, "cyclical_factor": 2.0, "label_smoothing": 0.1},
    "casl": {"gamma_pos": 0.0, "gamma_neg": 4.0, "gamma_hc": 2.0, "cyclical_factor": 2.0, "label_smoothing": 0.1},
}

CPU = DistContext()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a shared 2-core machine a second OpenMP thread spins and makes runs ~10x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def config_path(dataset, stage, loss="softmax"):
    if stage == 1:
        name = "stage_1.py" if loss == "softmax" else f"stage_1_{loss}.py"
    else:
        name = "stage_2_meta_embedding.py" if loss == "softmax" else f"stage_2_{loss}_meta_embedding.py"
    return REPO / "config" / dataset / name


# ----------------------------------------------------------------------------- values, no building


@pytest.mark.parametrize("dataset", BENCHMARKS)
@pytest.mark.parametrize("stage", (1, 2))
def test_published_hyper_parameters(dataset, stage):
    epochs, feature_lr, classifier_lr, centroid_lr, (schedule, step) = PUBLISHED[dataset, stage]
    config = load_config(config_path(dataset, stage))
    training_opt, networks = config["training_opt"], config["networks"]
    assert training_opt["dataset"] == dataset
    assert training_opt["num_classes"] == EXPECTED[dataset]["num_classes"]
    assert training_opt["transforms"]["input_size"] == EXPECTED[dataset]["input_size"]
    assert networks["feat_model"]["type"] == EXPECTED[dataset]["arch"]
    assert training_opt["num_epochs"] == epochs and training_opt["batch_size"] == 128
    assert networks["feat_model"]["optim_params"]["lr"] == feature_lr
    assert networks["classifier"]["optim_params"]["lr"] == classifier_lr
    assert training_opt["scheduler"] == schedule
    if step is not None:
        assert training_opt["scheduler_params"] == {"step_size": step, "gamma": 0.1, "eta_min": 0.0}
    for network in networks.values():
        assert network["optim_params"]["momentum"] == 0.9 and network["optim_params"]["weight_decay"] == 5e-4
    assert training_opt["feature_dim"] == 512
    assert training_opt["shot_thresholds"] == {"many": 100, "few": 20, "inclusive": True}
    if stage == 1:
        assert training_opt["sampler"] is None and config["criterions"]["FeatureLoss"] is None
        assert networks["classifier"]["type"] == "dot_product"
    else:
        assert training_opt["sampler"] == {"type": "class_aware", "num_samples_cls": 4}
        assert networks["classifier"]["type"] == "meta_embedding"
        assert networks["feat_model"]["params"]["use_modulatedatt"] and networks["feat_model"]["params"]["use_fc"]
        assert networks["feat_model"]["stage1_weights"] and networks["classifier"]["stage1_weights"]
        feature_loss = config["criterions"]["FeatureLoss"]
        assert feature_loss["loss"] == "disc_centroids" and feature_loss["weight"] == 0.01
        assert feature_loss["optim_params"]["lr"] == centroid_lr
        assert config["memory"] == {"centroids": True, "init_centroids": True}
        assert networks["feat_model"]["fix"] == (dataset == "Places_LT")  # OLTR freezes Places' trunk


@pytest.mark.parametrize("dataset", BENCHMARKS)
def test_every_loss_variant_differs_from_its_base_only_in_the_loss_and_log_dirs(dataset):
    for stage in (1, 2):
        base = load_config(config_path(dataset, stage))
        for loss in LOSSES[1:]:
            variant = load_config(config_path(dataset, stage, loss))
            assert variant["criterions"]["PerformanceLoss"] == {
                "loss": loss,
                "loss_params": LOSS_PARAMS[loss],
                "weight": 1.0,
            }
            opts = variant["training_opt"]
            assert opts["log_dir"] == f"logs/{dataset}/stage{stage}_{loss}"
            if stage == 2:  # stage 2 of a loss starts from stage 1 of the same loss
                assert opts["stage1_log_dir"] == f"logs/{dataset}/stage1_{loss}"
            for key in ("log_dir", "stage1_log_dir"):
                opts[key] = base["training_opt"][key]
            variant["criterions"]["PerformanceLoss"] = base["criterions"]["PerformanceLoss"]
            assert variant == base


@pytest.mark.parametrize(
    "num_known, max_count, groups",
    [
        (8, 4900, (6, 2, 0)),  # CIFAR-10-LT: 2 of 10 classes held out, 5000 - 100 val per class
        (90, 490, (31, 30, 29)),  # CIFAR-100-LT: 10 of 100 held out, 500 - 10 val per class
    ],
)
def test_cifar_lt_shot_groups_at_imbalance_factor_100(num_known, max_count, groups):
    """The group sizes the CIFAR configs state, from n_i = floor(max * (1/100)^(i/(K-1))) (Cui et al. 2019)."""
    counts = [math.floor(max_count * 0.01 ** (i / (num_known - 1)) + 1e-9) for i in range(num_known)]
    counts[-1] = max_count // 100
    many = sum(c >= 100 for c in counts)
    few = sum(c <= 20 for c in counts)
    assert (many, num_known - many - few, few) == groups
    dataset = "CIFAR10_LT" if num_known == 8 else "CIFAR100_LT"
    assert load_config(config_path(dataset, 1))["training_opt"]["num_classes"] == num_known
    # and the exporter the preparer calls uses this very profile
    from oltr.data import long_tail_counts

    assert long_tail_counts(num_known, max_count, imbalance_factor=100) == counts


# ----------------------------------------------------------------------------- a fake split on disk


def write_fake_split(root, dataset, num_classes):
    """Two train images (first and last class), one val, one test and one open image; real files."""
    suffix, size = EXPECTED[dataset]["image"]
    rng = np.random.default_rng(0)
    lines = {"train": [0, num_classes - 1], "val": [num_classes - 1], "test": [0], "open": [-1]}
    for split, labels in lines.items():
        rows = []
        for number, label in enumerate(labels):
            relative = f"{split}/img_{number}{suffix}"
            pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
            (root / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / relative, format="JPEG" if suffix.lower() != ".png" else "PNG")
            rows.append(f"{relative} {label}\n")
        (root / f"{dataset}_{split}.txt").write_text("".join(rows))


def overrides(data, log_dir, stage1_log_dir=None):
    opts = [
        f"training_opt.data_root={data}",
        f"training_opt.split_dir={data}",
        f"training_opt.log_dir={log_dir}",
        "training_opt.batch_size=2",
        "training_opt.num_workers=0",
    ]
    if stage1_log_dir is not None:
        opts.append(f"training_opt.stage1_log_dir={stage1_log_dir}")
    return opts


def fake_imagenet_weights(arch_builder):
    """A torchvision-format ImageNet state dict (random, Kaiming-scaled), without the BN batch counters
    that torchvision's V1 files lack; built on the meta device so nothing is initialised twice."""
    with torch.device("meta"):
        shapes = {
            name: tensor.shape
            for name, tensor in arch_builder().state_dict().items()
            if not name.endswith("num_batches_tracked")
        }
    generator = torch.Generator().manual_seed(7)
    state = {}
    for name, shape in shapes.items():
        if len(shape) == 4:  # conv: He init keeps a 152-layer forward finite
            fan_in = shape[1] * shape[2] * shape[3]
            state[name] = torch.randn(shape, generator=generator) * math.sqrt(2.0 / fan_in)
        elif name.endswith("running_var") or (name.endswith("weight") and len(shape) == 1):
            state[name] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[name] = torch.randn(shape, generator=generator) * 0.01
    return state


def run_stage1(dataset, root, monkeypatch):
    """Stage-1 set-up + one training step (forward only for ResNet-152) + a save_final checkpoint."""
    num_classes = EXPECTED[dataset]["num_classes"]
    data = root / "data"
    write_fake_split(data, dataset, num_classes)
    fetched = []
    if dataset == "Places_LT":
        pretrained = fake_imagenet_weights(torchvision.models.resnet152)

        def get_state_dict(weights, *args, **kwargs):
            fetched.append(weights)
            return dict(pretrained)

        monkeypatch.setattr(torchvision.models.ResNet152_Weights, "get_state_dict", get_state_dict)
    config = load_config(config_path(dataset, 1), overrides(data, root / "stage1"))
    run = trainer.build_run(config, CPU, echo=False, require_every_class=False)  # two training images
    if dataset == "Places_LT":
        # "imagenet" = torchvision's IMAGENET1K_V1, loaded into the trunk; the ImageNet fc head is not
        assert fetched == [torchvision.models.ResNet152_Weights.IMAGENET1K_V1]
        trunk = run.network.feat_model.state_dict()
        for name in ("conv1.weight", "bn1.running_var", "layer3.35.conv2.weight", "layer4.2.bn3.bias"):
            assert torch.equal(trunk[name], pretrained[name]), name
        assert run.network.feat_model.fc_add.weight.shape == (512, 2048)
    images, labels, _ = next(iter(run.train_loader))
    size = EXPECTED[dataset]["input_size"]
    assert images.shape == (2, 3, size, size) and images.dtype == torch.float32
    assert sorted(labels.tolist()) == [0, num_classes - 1]
    if dataset == "Places_LT":
        with torch.no_grad():
            logits, features = run.network(images)
    else:
        logits, features = run.network(images)
        before = run.network.feat_model.conv1.weight.detach().clone()
        parts = trainer.train_step(run, images, labels, step=0)
        assert math.isfinite(parts["loss"])
        assert not torch.equal(before, run.network.feat_model.conv1.weight)  # the SGD step reached the trunk
    assert logits.shape == (2, num_classes) and features.shape == (2, 512)
    assert torch.isfinite(logits).all()
    run.best = {
        "epoch": 0,
        "top1": 0.5,
        "centroids": None,
        "networks": {
            name: {k: v.detach().clone() for k, v in getattr(run.network, name).state_dict().items()}
            for name in ("feat_model", "classifier")
        },
    }
    trainer.save_final(run)
    return {
        "root": root,
        "data": data,
        "config": config,
        "run": run,
        "logits": logits,
        "checkpoint": root / "stage1" / run_files.FINAL_CHECKPOINT,
    }


def check_stage1(result, dataset):
    run, config = result["run"], result["config"]
    assert set(run.optimizers) == {"feat_model", "classifier"}
    assert run.optimizers["feat_model"].param_groups[0]["lr"] == config["networks"]["feat_model"]["optim_params"]["lr"]
    scheduler = run.schedulers["feat_model"]
    if config["training_opt"]["scheduler"] == "step":
        assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR) and scheduler.step_size == 10
    else:
        assert isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR) and scheduler.T_max == 200
    assert run.class_counts[0] == 1 and run.class_counts[-1] == 1 and sum(run.class_counts) == 2
    assert run.steps_per_epoch == 1
    # the open split reads label -1 from the same data root
    assert loaders.load_samples(config["training_opt"], "open")[0][1] == -1
    saved = torch.load(result["checkpoint"], map_location="cpu", weights_only=True)
    assert set(saved) >= {"networks", "centroids", "config", "class_counts", "metrics"}


def run_stage2(dataset, stage1):
    """Stage-2 set-up from the stage-1 checkpoint, one training step; checks what came from stage 1."""
    num_classes = EXPECTED[dataset]["num_classes"]
    stage1_state = torch.load(stage1["checkpoint"], map_location="cpu", weights_only=True)["networks"]
    config = load_config(
        config_path(dataset, 2), overrides(stage1["data"], stage1["root"] / "stage2", stage1["root"] / "stage1")
    )
    run = trainer.build_run(config, CPU, echo=False, require_every_class=False)  # two training images

    feat_model = run.network.feat_model.state_dict()
    loaded = [k for k in feat_model if k in stage1_state["feat_model"]]
    for key in loaded:
        assert torch.equal(feat_model[key], stage1_state["feat_model"][key]), key
    fresh = {key.split(".")[0] for key in feat_model if key not in stage1_state["feat_model"]}
    # layers new in stage 2 keep their init; Places' stage 1 already had fc_add
    assert fresh == ({"modulatedatt"} if dataset == "Places_LT" else {"modulatedatt", "fc_add"})
    classifier = run.network.classifier
    assert torch.equal(classifier.fc_hallucinator.weight, stage1_state["classifier"]["fc.weight"])
    assert torch.equal(classifier.fc_hallucinator.bias, stage1_state["classifier"]["fc.bias"])

    centroids = run.feature_loss.centroids.detach()
    assert centroids.shape == (num_classes, 512) and torch.isfinite(centroids).all()
    assert centroids[0].abs().sum() > 0 and centroids[1].abs().sum() == 0  # class 1 has no training image
    assert set(run.optimizers) == {"feat_model", "classifier", "FeatureLoss"}
    assert run.optimizers["FeatureLoss"].param_groups[0]["lr"] == 0.01

    trainable = {name.split(".")[0] for name, p in run.network.feat_model.named_parameters() if p.requires_grad}
    assert trainable == (
        {"modulatedatt", "fc_add"}
        if dataset == "Places_LT"
        else {name.split(".")[0] for name, _ in run.network.feat_model.named_parameters()}
    )
    params_before = {name: p.detach().clone() for name, p in run.network.feat_model.named_parameters()}
    images, labels, _ = next(iter(run.train_loader))
    size = EXPECTED[dataset]["input_size"]
    assert images.shape == (2, 3, size, size)
    parts = trainer.train_step(run, images, labels, step=0)
    assert math.isfinite(parts["loss"]) and parts["feature"] > 0
    after = dict(run.network.feat_model.named_parameters())
    assert not torch.equal(after["fc_add.weight"], params_before["fc_add.weight"])
    if dataset == "Places_LT":  # `fix`: the trunk does not move
        for name in ("conv1.weight", "layer4.2.conv3.weight", "layer1.0.bn1.weight"):
            assert torch.equal(after[name], params_before[name]), name


# ----------------------------------------------------------------------------- the pipelines


@pytest.fixture(scope="module")
def stage1_runs(tmp_path_factory):
    """One stage-1 run per dataset, built on first request and shared by the stage-1 and stage-2 tests."""
    runs = {}
    patcher = pytest.MonkeyPatch()

    def get(dataset):
        if dataset not in runs:
            runs[dataset] = run_stage1(dataset, tmp_path_factory.mktemp(dataset), patcher)
        return runs[dataset]

    yield get
    patcher.undo()


SMALL = ("ImageNet_LT", "CIFAR10_LT", "CIFAR100_LT")
WITH_PLACES = [*SMALL, pytest.param("Places_LT", marks=pytest.mark.slow)]  # ResNet-152 at 224 px on a CPU


@pytest.mark.parametrize("dataset", WITH_PLACES)
def test_stage1_builds_loads_and_steps(stage1_runs, dataset):
    check_stage1(stage1_runs(dataset), dataset)


@pytest.mark.parametrize("dataset", WITH_PLACES)
def test_stage2_starts_from_the_stage1_checkpoint(stage1_runs, dataset):
    run_stage2(dataset, stage1_runs(dataset))


# ----------------------------------------------------------------------------- CIFAR-LT on first use


class FakeCifar:
    """Stands in for torchvision's CIFAR10: ``data`` (N, 32, 32, 3) uint8, ``targets``, ``classes``."""

    CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, per_class):
        self.targets = [c for c in range(10) for _ in range(per_class)]
        self.data = np.random.default_rng(per_class).integers(0, 256, (len(self.targets), 32, 32, 3), dtype=np.uint8)
        self.classes = list(self.CLASSES)


def test_cifar10_lt_is_exported_on_first_use(tmp_path, monkeypatch):
    from oltr.data import cifar_lt

    calls = []

    def fake_load(which, root, train, download):
        calls.append((which, Path(root), train, download))
        return FakeCifar(per_class=150 if train else 3)  # 150 - 100 val = 50 train images at most

    monkeypatch.setattr(cifar_lt, "load_cifar", fake_load)
    data_root = tmp_path / "data" / "CIFAR10_LT"
    config = load_config(config_path("CIFAR10_LT", 1), overrides(data_root, tmp_path / "log"))
    loaders.prepare_data(config["training_opt"])
    assert calls[0] == ("cifar10", tmp_path / "data" / "cifar", True, True)  # downloads next to the export
    train = loaders.load_samples(config["training_opt"], "train")
    counts = loaders.class_counts_of(train, config["training_opt"]["num_classes"])
    assert counts[0] == 50 and counts[-1] == 1 and counts == sorted(counts, reverse=True)  # 50 down to max(1, 50 / 100)
    assert len(loaders.load_samples(config["training_opt"], "val")) == 8 * 100
    open_split = loaders.load_samples(config["training_opt"], "open")
    assert len(open_split) == 2 * 3 and {label for _, label in open_split} == {-1}  # ship and truck held out
    assert all("/ship/" in path or "/truck/" in path for path, _ in open_split)
    calls.clear()
    loaders.prepare_data(config["training_opt"])
    assert calls == []  # exported once


def test_cifar100_lt_offline_says_what_to_download_and_where(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(torchvision.datasets.CIFAR100, "__init__", offline)
    training_opt = load_config(
        config_path("CIFAR100_LT", 1), overrides(tmp_path / "data" / "CIFAR100_LT", tmp_path / "log")
    )["training_opt"]
    with pytest.raises(DataError) as error:
        loaders.prepare_data(training_opt)
    message = str(error.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in message
    assert f"{tmp_path / 'data' / 'cifar'}/" in message and "cifar-100-python/" in message
    assert "Name or service not known" in message and "\n" not in message
