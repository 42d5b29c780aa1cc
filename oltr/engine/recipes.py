"""The decoupled classifier recipes of stage 2 (Kang et al., "Decoupling Representation and Classifier
for Long-Tailed Recognition", ICLR 2020), alternatives to OLTR's meta-embedding.

Each starts from a finished stage-1 run (``training_opt.stage1_log_dir``) and keeps its feature
model exactly as stage 1 left it: its tensors are loaded strictly, frozen, and run in eval mode
without gradients (``FrozenFeatureNetwork``), so neither its parameters nor its BatchNorm
statistics move. What each does to the classifier (``training_opt.recipe``):

    crt       re-initialise the classifier, train it alone (class-balanced sampling; any loss)
    lws       the stage-1 classifier, frozen, times a learnt scale per class (LWSClassifier)
    tau_norm  W_j / ||W_j||^tau, no training; tau picked on the validation split over
              training_opt.tau_grid (never on test) and recorded
    ncm       nearest class mean of L2-normalised features (cosine), the means from one pass
              over the training split (test-time transforms)

crt and lws train with the ordinary trainer (``run.py`` calls ``prepare_network``);
tau_norm and ncm are fitted here (``fit_without_training``). Every recipe writes a normal run
directory with ``final_model_checkpoint.pth``, tested by ``--test`` / ``--test_open`` as any run.
"""
import json
from pathlib import Path

import numpy as np
import torch

from .. import build
from ..atomic import write_text_atomic
from ..config import DECOUPLED_RECIPES, config_hash, dump_yaml, recipe_of
from ..errors import CheckpointError, DataError
from ..run_files import FINAL_CHECKPOINT, METRICS_LOG, RESOLVED_CONFIG
from ..seeding import seed_everything
from .checkpoint import load_checkpoint, save_atomic
from .distributed import barrier
from .inference import collect_logits
from .run_log import RunLogger, progress_bar

TRAINED_RECIPES = ("crt", "lws")
FITTED_RECIPES = ("tau_norm", "ncm")  # no training: fitted in one pass
STAGE1_CLASSIFIER_RECIPES = ("lws", "tau_norm")  # start from the stage-1 classifier's fc


def is_decoupled(config):
    return recipe_of(config) in DECOUPLED_RECIPES


def needs_no_training(config):
    return recipe_of(config) in FITTED_RECIPES


class FrozenFeatureNetwork(build.OLTRNetwork):
    """OLTRNetwork whose feature model stays in eval mode and runs without gradients.

    ``train()`` puts only the classifier in training mode, so BatchNorm keeps stage 1's
    running statistics; the state dict is OLTRNetwork's, so ``--test`` loads it as any run.
    """

    def train(self, mode=True):
        super().train(mode)
        self.feat_model.eval()
        return self

    def forward(self, images, centroids=None):
        with torch.no_grad():
            features, _ = self.feat_model(images)
        logits, _ = self.classifier(features, centroids)
        return logits, features


def stage1_checkpoint_path(config):
    return Path(config["training_opt"]["stage1_log_dir"]) / FINAL_CHECKPOINT


def load_stage1(config):
    """The stage-1 checkpoint a decoupled recipe starts from, checked against this config's classes."""
    path, recipe = stage1_checkpoint_path(config), recipe_of(config)
    if not path.is_file():
        raise CheckpointError(f"the {recipe} recipe needs the stage-1 checkpoint {path}, which does not exist; "
                              "train stage 1 first (python main.py --config <its stage_1 config>) or fix "
                              "training_opt.stage1_log_dir")
    checkpoint = load_checkpoint(path, what="stage-1 checkpoint", required=("networks", "class_counts"))
    num_classes = config["training_opt"]["num_classes"]
    theirs = len(checkpoint["class_counts"])
    if theirs != num_classes:
        raise CheckpointError(f"stage-1 checkpoint {path} was trained on {theirs} classes but "
                              f"training_opt.num_classes is {num_classes}; use the stage-1 run of this dataset")
    return checkpoint, path


def prepare_network(network, config):
    """Stage 1's feature model (all tensors, strictly) and, for lws / tau_norm, its classifier.

    Returns (FrozenFeatureNetwork, report lines). A cRT classifier keeps its fresh init;
    an NCM classifier's means are computed later.
    """
    checkpoint, path = load_stage1(config)
    stage1 = checkpoint["networks"]
    _load_strict(network.feat_model, stage1["feat_model"], path, "feature model", "networks.feat_model")
    network.feat_model.requires_grad_(False)
    recipe = recipe_of(config)
    lines = [f"feat_model: all {len(network.feat_model.state_dict())} tensors from stage 1 ({path}), frozen, eval mode"]
    if recipe in STAGE1_CLASSIFIER_RECIPES:
        fc = {key[len("fc."):]: value for key, value in stage1["classifier"].items() if key.startswith("fc.")}
        _load_strict(network.classifier.fc, fc, path, "classifier fc (a dot_product classifier)",
                     "networks.classifier")
        lines.append(f"classifier: stage-1 fc.weight and fc.bias, frozen ({recipe})")
    elif recipe == "crt":
        lines.append("classifier: re-initialised (crt)")
    return FrozenFeatureNetwork(network.feat_model, network.classifier), lines


def _load_strict(module, state, path, what, key):
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        first = " ".join(line.strip() for line in str(error).strip().splitlines()[:2])[:240]
        raise CheckpointError(f"stage-1 checkpoint {path}: its {what} does not match {key} of this config "
                              f"({first}); a decoupled recipe keeps stage 1's {what} exactly, so use the "
                              "dataset's stage_1.py settings") from None


class _FeaturesOnly(torch.nn.Module):
    """images -> (features, None), so ``collect_logits`` collects features."""

    def __init__(self, feat_model):
        super().__init__()
        self.feat_model = feat_model

    def forward(self, images, centroids=None):
        return self.feat_model(images)[0], None


def collect_features(feat_model, training_opt, samples, ctx, what):
    """(features float32, labels) of ``samples`` with test-time transforms, gathered in dataset order."""
    dataset = build.build_dataset(training_opt, samples, train=False)
    loader = build.build_eval_loader(training_opt, dataset, ctx, passes="one")
    features, labels, _ = collect_logits(_FeaturesOnly(feat_model), loader, None, ctx, amp=training_opt["amp"],
                                         channels_last=training_opt["channels_last"],
                                         progress=progress_bar(what, ctx))
    return features, labels


def class_means_of_normalised(features, labels, num_classes):
    """m_j = mean of the L2-normalised features of class j (C x D); a DataError for an empty class."""
    counts = torch.bincount(labels, minlength=num_classes)
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise DataError(f"the ncm recipe needs a training image of every class, but class {empty[0]} has none "
                        f"(class counts {counts.tolist()}); fix the training split or training_opt.num_classes")
    normalised = torch.nn.functional.normalize(features.double(), dim=1)
    sums = torch.zeros(num_classes, features.shape[1], dtype=torch.float64).index_add_(0, labels, normalised)
    return (sums / counts.unsqueeze(1).double()).float()


def tau_grid(training_opt):
    """The tau values tried: min, min + step, ..., max (default 0, 0.1, ..., 2)."""
    grid = training_opt["tau_grid"]
    count = int(np.floor((grid["max"] - grid["min"]) / grid["step"] + 1e-9)) + 1
    return [round(grid["min"] + i * grid["step"], 10) for i in range(count)]


def top1(logits, labels):
    return (logits.argmax(dim=1) == labels).double().mean().item()


@torch.no_grad()
def fit_tau(classifier, features, labels, taus):
    """The tau of ``taus`` with the best validation top-1 (the smallest on ties), and every score."""
    scores = {}
    for tau in taus:
        classifier.set_tau(tau)
        scores[tau] = top1(classifier(features)[0], labels)
    best = max(taus, key=lambda tau: (scores[tau], -tau))
    classifier.set_tau(best)
    return best, scores


@torch.no_grad()
def fit_without_training(config, ctx, echo=True):
    """tau_norm or ncm: fit the classifier on stage 1's features, write the run directory."""
    training_opt, recipe = config["training_opt"], recipe_of(config)
    seed_everything(config["seed"])
    logger = RunLogger(training_opt["log_dir"], enabled=ctx.is_main, echo=echo)
    build.prepare_data(training_opt)
    train_samples = build.load_samples(training_opt, "train")
    val_samples = build.load_samples(training_opt, "val")
    class_counts = build.class_counts_of(train_samples, training_opt["num_classes"])
    network, lines = prepare_network(build.build_network(config), config)
    for line in lines:
        logger.info(f"stage-1 weights: {line}")
    network.to(ctx.device).eval()
    classifier = network.classifier
    val_features, val_labels = collect_features(network.feat_model, training_opt, val_samples, ctx, "validation")
    fit = {"recipe": recipe}
    classifier.cpu()  # fitted on the gathered CPU features
    if recipe == "ncm":
        features, labels = collect_features(network.feat_model, training_opt, train_samples, ctx, "class means")
        classifier.means.copy_(class_means_of_normalised(features, labels, training_opt["num_classes"]))
        logger.info(f"ncm: class means of L2-normalised features from {len(labels)} training images")
    else:
        taus = tau_grid(training_opt)
        best, scores = fit_tau(classifier, val_features, val_labels, taus)
        fit.update(tau=best, val_top1_by_tau={str(tau): score for tau, score in scores.items()})
        logger.info(f"tau_norm: tau {best} (validation top-1 {scores[best]:.4f}; grid {taus[0]}..{taus[-1]}, "
                    f"{len(taus)} values)")
    val_top1 = top1(classifier(val_features)[0], val_labels)
    fit["val_top1"] = val_top1
    record = {"epoch": 1, "val_top1": val_top1, **{k: v for k, v in fit.items() if k != "val_top1_by_tau"}}
    if ctx.is_main:
        _save(config, network, class_counts, record, fit)
    barrier(ctx)
    logger.info(f"{recipe}: val top-1 {val_top1:.4f}; saved {training_opt['log_dir']}/{FINAL_CHECKPOINT}")
    return {"best_epoch": 1, "best_val_top1": val_top1}


def _save(config, network, class_counts, record, fit):
    """The run directory of a fitted recipe: what ``save_final`` writes for a trained run, plus the fit."""
    log_dir = Path(config["training_opt"]["log_dir"])
    write_text_atomic(log_dir / RESOLVED_CONFIG, dump_yaml(config))
    write_text_atomic(log_dir / METRICS_LOG, json.dumps(record, default=float) + "\n")
    state = {name: {k: v.detach().cpu().clone() for k, v in getattr(network, name).state_dict().items()}
             for name in ("feat_model", "classifier")}
    save_atomic({
        "networks": state,
        "centroids": None,
        "losses": {},
        "config": config,
        "config_hash": config_hash(config),
        "class_counts": class_counts,
        "recipe_fit": fit,
        "metrics": {"best_epoch": 1, "best_val_top1": record["val_top1"], "history": [record]},
    }, log_dir / FINAL_CHECKPOINT)
