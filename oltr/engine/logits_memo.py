"""The test split's logits, kept from ``--test`` for a ``--test_open`` of the same run in the same process.

The open-set test scores the test split and the open split; the in-process sweep runs ``--test`` and
then ``--test_open`` of each run, so without this memo the test split would be scored twice. The
memo holds only the latest entry (memory stays bounded: one split's logits), keyed by everything
those logits depend on: the checkpoint's weights, the network config that loads them, the split file
(path and content), the data root, the transforms, amp and channels_last, the batch size, the device
and the rank. The logit adjustment comes after, so it is not in the key. The images themselves are
not hashed: an image rewritten in place under the same split file between two tests in one process
would go unnoticed.
"""
import hashlib
import json
from pathlib import Path

_latest = None  # (key, logits, labels) of the last test split scored


def memo_key(config, weights_sha256, split_file, ctx):
    """Everything the test split's logits depend on, as one string."""
    training_opt = config["training_opt"]
    split_file = Path(split_file)
    parts = {
        "weights": weights_sha256,
        "networks": config["networks"],
        "num_classes": training_opt["num_classes"],
        "feature_dim": training_opt["feature_dim"],
        "split_file": str(split_file.resolve()),
        "split_sha256": hashlib.sha256(split_file.read_bytes()).hexdigest(),
        "data_root": str(Path(training_opt["data_root"]).resolve()),
        "transforms": training_opt["transforms"],
        "amp": training_opt["amp"],
        "channels_last": training_opt["channels_last"],
        "batch_size": training_opt["eval_batch_size"] or training_opt["batch_size"],
        "device": str(ctx.device),
        "rank": ctx.rank,
        "world_size": ctx.world_size,
    }
    return json.dumps(parts, sort_keys=True, default=repr)


def memoized_logits(key, compute):
    """(logits, labels) of the test split: the memo's if its key is ``key``, else ``compute()``'s, kept."""
    global _latest
    if _latest is None or _latest[0] != key:
        _latest = None  # the old entry goes before the new one is computed: never two in memory
        logits, labels = compute()
        _latest = (key, logits, labels)
    return _latest[1].clone(), _latest[2].clone()


def clear():
    global _latest
    _latest = None
