"""Training and testing a run, on one device or under torchrun:

    run.py          the Run: everything one training run owns, built once from the config
    trainer.py      fit(): the epoch loop, validation, best-epoch bookkeeping
    run_state.py    what a run saves each epoch and restores on --resume
    checkpoint.py   checkpoint files: written atomically, loaded with weights_only=True
    inference.py    logits and features over a loader; class centroids
    evaluate.py     --test / --test_open: closed- and open-set metrics into a results JSON
    run_log.py      log.txt, metrics.jsonl and the progress bar (rank 0 only)
    distributed.py  the DistContext (device, rank, world size) that travels with a run
"""
