"""The names of the files a run directory holds, in one place.

build, the trainer, evaluate, the sweep and the report all find a run's files
through these, so renaming one is a one-line change.

    <log_dir>/config.yaml                  the resolved config the run trained with
              log.txt, metrics.jsonl       the human log and one JSON record per finished epoch
              last_checkpoint.pth          every epoch, for --resume
              final_model_checkpoint.pth   the best validation epoch: what --test loads
              results_test_closed.json     --test
              results_test_open.json       --test_open (and .npz beside either with save_logits)
              .lock                        while a training run or a test uses the directory (pid, host)
              predictions_test_closed.npz  --test: per-image labels, predictions, max probability
              predictions_test_open.npz    --test_open: the same (label -1 = open); the report's paired
                                           bootstrap reads them
"""

from pathlib import Path

RESOLVED_CONFIG = "config.yaml"
HUMAN_LOG = "log.txt"
METRICS_LOG = "metrics.jsonl"
LAST_CHECKPOINT = "last_checkpoint.pth"
FINAL_CHECKPOINT = "final_model_checkpoint.pth"
RESULTS_CLOSED = "results_test_closed.json"
RESULTS_OPEN = "results_test_open.json"
LOCK_FILE = ".lock"
PREDICTIONS_CLOSED = "predictions_test_closed.npz"
PREDICTIONS_OPEN = "predictions_test_open.npz"

# results file name -> which test wrote it
RESULTS_FILES = {RESULTS_CLOSED: "closed", RESULTS_OPEN: "open"}


def results_path(log_dir, open_set):
    """Where ``--test`` (open_set False) or ``--test_open`` (True) writes its results JSON."""
    return Path(log_dir) / (RESULTS_OPEN if open_set else RESULTS_CLOSED)


def predictions_path(log_dir, open_set):
    """Where ``--test`` / ``--test_open`` saves per-image labels, predictions and scores (beside the results)."""
    return Path(log_dir) / (PREDICTIONS_OPEN if open_set else PREDICTIONS_CLOSED)
