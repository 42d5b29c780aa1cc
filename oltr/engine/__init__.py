"""The machinery a run stands on, on one device or under torchrun (nothing here trains by itself):

checkpoint.py         checkpoint files: written atomically, loaded with weights_only=True
checkpoint_config.py  which config keys a test may differ in from its checkpoint's
distributed.py        the DistContext (device, rank, world size) and the collectives
inference.py          logits and features over a loader; class centroids
optim.py              the losses (Criterions), optimizers and schedulers from the config
precision.py          amp auto: bf16 where the hardware has it, fp32 elsewhere
run_dir.py            what may be written into a log_dir, and by whom (the lock, --overwrite)
run_log.py            log.txt, metrics.jsonl and the progress bar (rank 0 only)
stop.py               stop signals (SLURM's time limit, preemption): end at the next safe point
tensorboard_log.py    the optional TensorBoard event files
"""
