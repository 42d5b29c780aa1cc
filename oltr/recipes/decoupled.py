"""What the decoupled recipes share (Kang et al., "Decoupling Representation and Classifier for
Long-Tailed Recognition", ICLR 2020): a finished stage-1 run, its feature model kept exactly.

Each starts from ``training_opt.stage1_log_dir``: its feature model is loaded strictly, frozen, and run
in eval mode without gradients (``FrozenFeatureNetwork``), so neither its parameters nor its BatchNorm
statistics move. ``DecoupledRecipe`` is the base of those that train (crt, lws); ``FittedRecipe`` of
those fitted in one pass over stage 1's features (tau_norm, ncm), which write the run directory
themselves. Every one writes a normal run directory with ``final_model_checkpoint.pth``, tested by
``--test`` / ``--test_open`` as any run.
"""

import json
from pathlib import Path

import torch

from ..common.atomic import write_text_atomic
from ..common.errors import CheckpointError, ConfigError
from ..common.run_files import FINAL_CHECKPOINT, METRICS_LOG, RESOLVED_CONFIG
from ..common.seeding import seed_everything
from ..config.schema import config_hash, dump_yaml
from ..data import loaders
from ..engine.checkpoint import check_class_counts, load_checkpoint, save_atomic
from ..engine.distributed import barrier
from ..engine.inference import collect_logits
from ..engine.run_log import RunLogger, progress_bar
from ..models import network as networks
from .base import RECIPES, Recipe
from .stage1_weights import check_same_dataset


class FrozenFeatureNetwork(networks.OLTRNetwork):
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


class DecoupledRecipe(Recipe):
    """A stage-2 recipe over a finished stage-1 run whose feature model it keeps frozen."""

    decoupled = True

    def check(self, config, where):
        super().check(config, where)
        training = config["training_opt"]
        if training["stage1_log_dir"] is None:
            raise ConfigError(
                f"{where}: training_opt.recipe {self.name!r} starts from a finished stage-1 run but "
                "training_opt.stage1_log_dir is not set; point it at the stage-1 run's log_dir"
            )
        memory = [f"memory.{key}" for key in ("centroids", "init_centroids") if config["memory"][key]]
        if memory:
            raise ConfigError(
                f"{where}: {memory[0]} belongs to the meta_embedding recipe, not {self.name!r}; turn it off"
            )
        classifier = config["networks"]["classifier"]["type"]
        # a recipe without a classifier of its own (crt) trains any classifier but the other recipes' own
        others = {"meta_embedding", *filter(None, (RECIPES.get(name).classifier for name in RECIPES.names()))}
        if (self.classifier and classifier != self.classifier) or (not self.classifier and classifier in others):
            need = repr(self.classifier) if self.classifier else "a trainable classifier such as 'dot_product'"
            raise ConfigError(
                f"{where}: training_opt.recipe {self.name!r} needs networks.classifier.type {need}, "
                f"got {classifier!r} (config/recipes/stage_2_{self.name}.py sets it)"
            )

    def prepare_network(self, network, config):
        """Stage 1's feature model (all tensors, strictly) and, for ``uses_stage1_classifier``, its classifier fc.

        Returns (FrozenFeatureNetwork, report lines).
        """
        checkpoint, path = self.load_stage1(config)
        stage1 = checkpoint["networks"]
        _load_strict(network.feat_model, stage1["feat_model"], path, "feature model", "networks.feat_model")
        network.feat_model.requires_grad_(False)
        lines = [
            f"feat_model: all {len(network.feat_model.state_dict())} tensors from stage 1 ({path}), frozen, eval mode"
        ]
        if self.uses_stage1_classifier:
            fc = {key[len("fc.") :]: value for key, value in stage1["classifier"].items() if key.startswith("fc.")}
            _load_strict(
                network.classifier.fc, fc, path, "classifier fc (a dot_product classifier)", "networks.classifier"
            )
            lines.append(f"classifier: stage-1 fc.weight and fc.bias, frozen ({self.name})")
        else:
            lines.append(f"classifier: re-initialised ({self.name})")
        return FrozenFeatureNetwork(network.feat_model, network.classifier), lines

    def load_stage1(self, config):
        """The stage-1 checkpoint the recipe starts from, checked against this config's classes."""
        path = Path(config["training_opt"]["stage1_log_dir"]) / FINAL_CHECKPOINT
        if not path.is_file():
            raise CheckpointError(
                f"the {self.name} recipe needs the stage-1 checkpoint {path}, which does not "
                "exist; train stage 1 first (python main.py --config <its stage_1 config>) or fix "
                "training_opt.stage1_log_dir"
            )
        checkpoint = load_checkpoint(path, what="stage-1 checkpoint", required=("networks", "class_counts"))
        check_same_dataset(checkpoint, config, path)
        checkpoint["class_counts"] = check_class_counts(
            checkpoint, path, config["training_opt"]["num_classes"], "stage-1 checkpoint"
        )
        return checkpoint, path


def _load_strict(module, state, path, what, key):
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        first = " ".join(line.strip() for line in str(error).strip().splitlines()[:2])[:240]
        raise CheckpointError(
            f"stage-1 checkpoint {path}: its {what} does not match {key} of this config "
            f"({first}); a decoupled recipe keeps stage 1's {what} exactly, so use the "
            "dataset's stage_1.py settings"
        ) from None


class _FeaturesOnly(torch.nn.Module):
    """images -> (features, None), so ``collect_logits`` collects features."""

    def __init__(self, feat_model):
        super().__init__()
        self.feat_model = feat_model

    def forward(self, images, centroids=None):
        return self.feat_model(images)[0], None


def collect_features(feat_model, training_opt, samples, ctx, what):
    """(features float32, labels) of ``samples`` with test-time transforms, gathered in dataset order."""
    dataset = loaders.build_dataset(training_opt, samples, train=False)
    loader = loaders.build_eval_loader(training_opt, dataset, ctx, passes="one")
    features, labels, _ = collect_logits(
        _FeaturesOnly(feat_model),
        loader,
        None,
        ctx,
        amp=training_opt["amp"],
        channels_last=training_opt["channels_last"],
        progress=progress_bar(what, ctx),
    )
    return features, labels


def top1(logits, labels):
    return (logits.argmax(dim=1) == labels).double().mean().item()


class FittedRecipe(DecoupledRecipe):
    """A decoupled recipe fitted in one pass over stage 1's features: no training, nothing to resume."""

    trains = False

    def fit_classifier(self, classifier, feat_model, training_opt, train_samples, ctx, logger, val):
        """Set the classifier's fitted values (on the CPU); returns what to record (``recipe_fit``).
        ``val``: the validation features and labels."""
        raise NotImplementedError

    @torch.no_grad()
    def fit(self, config, ctx, echo=True):
        training_opt = config["training_opt"]
        seed_everything(config["seed"])
        logger = RunLogger(training_opt["log_dir"], enabled=ctx.is_main, echo=echo)
        loaders.prepare_data(training_opt)
        train_samples = loaders.load_samples(training_opt, "train")
        val_samples = loaders.load_samples(training_opt, "val")
        class_counts = loaders.class_counts_of(train_samples, training_opt["num_classes"])
        network, lines = self.prepare_network(networks.build_network(config), config)
        for line in lines:
            logger.info(f"stage-1 weights: {line}")
        network.to(ctx.device).eval()
        classifier = network.classifier
        val = collect_features(network.feat_model, training_opt, val_samples, ctx, "validation")
        classifier.cpu()  # fitted on the gathered CPU features
        fit = {
            "recipe": self.name,
            **self.fit_classifier(classifier, network.feat_model, training_opt, train_samples, ctx, logger, val),
        }
        val_top1 = top1(classifier(val[0])[0], val[1])
        fit["val_top1"] = val_top1
        record = {"epoch": 1, "val_top1": val_top1, **{k: v for k, v in fit.items() if k != "val_top1_by_tau"}}
        if ctx.is_main:
            _save(config, network, class_counts, record, fit)
        barrier(ctx)
        logger.info(f"{self.name}: val top-1 {val_top1:.4f}; saved {training_opt['log_dir']}/{FINAL_CHECKPOINT}")
        return {"best_epoch": 1, "best_val_top1": val_top1}


def _save(config, network, class_counts, record, fit):
    """The run directory of a fitted recipe: what ``save_final`` writes for a trained run, plus the fit."""
    log_dir = Path(config["training_opt"]["log_dir"])
    write_text_atomic(log_dir / RESOLVED_CONFIG, dump_yaml(config))
    write_text_atomic(log_dir / METRICS_LOG, json.dumps(record, default=float) + "\n")
    state = {
        name: {k: v.detach().cpu().clone() for k, v in getattr(network, name).state_dict().items()}
        for name in ("feat_model", "classifier")
    }
    save_atomic(
        {
            "networks": state,
            "centroids": None,
            "losses": {},
            "config": config,
            "config_hash": config_hash(config),
            "class_counts": class_counts,
            "recipe_fit": fit,
            "metrics": {"best_epoch": 1, "best_val_top1": record["val_top1"], "history": [record]},
        },
        log_dir / FINAL_CHECKPOINT,
    )
