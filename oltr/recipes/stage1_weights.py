"""Stage-1 weights into a stage-2 network, where ``networks.<name>.stage1_weights`` asks for them."""

from pathlib import Path

from ..common.errors import CheckpointError
from ..common.run_files import FINAL_CHECKPOINT
from ..engine.checkpoint import load_checkpoint


def load_stage1_weights(network, config):
    """Copy stage-1 weights into the networks that ask for them; returns a short report."""
    networks = config["networks"]
    wanted = [name for name in ("feat_model", "classifier") if networks[name]["stage1_weights"]]
    if not wanted:
        return []
    # config.validate made sure stage1_log_dir is set whenever a network wants stage-1 weights
    path = Path(config["training_opt"]["stage1_log_dir"]) / FINAL_CHECKPOINT
    if not path.is_file():
        raise CheckpointError(
            f"stage 2 needs the stage-1 checkpoint {path}, which does not exist; "
            "train stage 1 first (python main.py --config <its stage_1 config>)"
        )
    checkpoint = load_checkpoint(path, what="stage-1 checkpoint", required=("networks",))
    check_same_dataset(checkpoint, config, path)
    stage1 = checkpoint["networks"]
    report = []
    if "feat_model" in wanted:
        report.append(_load_matching(network.feat_model, stage1["feat_model"], "feat_model"))
    if "classifier" in wanted:
        classifier = network.classifier
        if hasattr(classifier, "init_from_stage1"):
            classifier.init_from_stage1(stage1["classifier"])
            report.append("classifier: stage-1 classifier copied into fc_hallucinator")
        else:
            report.append(_load_matching(classifier, stage1["classifier"], "classifier"))
    return report


def check_same_dataset(checkpoint, config, path):
    """Stage 2 builds on a stage-1 run of its own dataset: another dataset's run with as many classes would
    load without a mismatch, and its features mean nothing here."""
    stored = checkpoint.get("config")
    theirs = stored.get("training_opt", {}).get("dataset") if isinstance(stored, dict) else None
    ours = config["training_opt"]["dataset"]
    if theirs is not None and theirs != ours:
        raise CheckpointError(
            f"stage-1 checkpoint {path} was trained on dataset {theirs!r} but this run's training_opt.dataset is "
            f"{ours!r}; point training_opt.stage1_log_dir at a stage-1 run of {ours}"
        )


def _load_matching(module, state, name):
    """Load the tensors whose names and shapes match; layers new in stage 2 keep their init."""
    if hasattr(module, "adapt_state_dict"):  # a LoRA-wrapped timm model renames the layers it wraps
        state = module.adapt_state_dict(state)
    own = module.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    module.load_state_dict(usable, strict=False)
    fresh = sorted({k.split(".")[0] for k in own if k not in usable})
    return f"{name}: {len(usable)}/{len(own)} tensors from stage 1" + (f"; new: {', '.join(fresh)}" if fresh else "")
