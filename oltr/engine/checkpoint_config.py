"""Does a test test the model it says it tests? The config keys that decide what a checkpoint is.

``--test`` / ``--test_open`` build the network from the command line's config and load the
checkpoint's weights into it; these keys must agree with the config stored in the checkpoint
(the model, the classes, the transforms, the data and the loss), or the numbers would describe
another model. Keys that only steer evaluation (batch sizes, workers, open_threshold,
shot_thresholds, amp, save_logits) or only training (learning rates, epochs, samplers) and the
data's location (data_root, split_dir: data may move) are free to differ.
"""

# Dotted keys (a section compares all its leaves).
KEYS_THAT_MATTER = (
    "training_opt.dataset",
    "training_opt.num_classes",
    "training_opt.feature_dim",
    "training_opt.transforms",
    "networks.feat_model.type",
    "networks.feat_model.params",
    "networks.classifier.type",
    "networks.classifier.params",
    "memory.centroids",
    "criterions.PerformanceLoss.loss",
    "criterions.PerformanceLoss.loss_params",
    "criterions.FeatureLoss",
)

_ABSENT = object()


def _get(config, dotted):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def _leaves(value, prefix):
    if isinstance(value, dict) and value:
        for key in sorted(value, key=str):
            yield from _leaves(value[key], f"{prefix}.{key}")
    else:
        yield prefix, value


def config_differences(current, stored):
    """[(dotted key, command line's value, checkpoint's value)] over KEYS_THAT_MATTER, in order.

    A key the stored config does not have at all (a checkpoint older than the key) is not compared.
    """
    differences = []
    for dotted in KEYS_THAT_MATTER:
        ours, theirs = _get(current, dotted), _get(stored, dotted)
        if theirs is _ABSENT:
            continue
        ours_leaves = dict(_leaves(ours, dotted)) if ours is not _ABSENT else {}
        theirs_leaves = dict(_leaves(theirs, dotted))
        for key in list(dict.fromkeys([*theirs_leaves, *ours_leaves])):
            a, b = ours_leaves.get(key, _ABSENT), theirs_leaves.get(key, _ABSENT)
            if not _same(a, b):
                differences.append((key, _show(a), _show(b)))
    return differences


def _same(a, b):
    if (
        isinstance(a, (int, float))
        and isinstance(b, (int, float))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        return float(a) == float(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _show(value):
    return "(not set)" if value is _ABSENT else value
