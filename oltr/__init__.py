"""The OLTR pipeline; data flows one way, each package handing plain objects to the next
(``python tools/layers.py`` prints the order and checks it):

    common/      the shared rules: errors, atomic writes, run-file names, seeding
    config/      read .py/.yaml configs, merge _base_ and overlays, validate every key
    evaluation/  metrics, open-set measures, intervals and post-hoc adjustment, from logits alone
    data/        split files, datasets, the tensor and PIL pipelines, samplers, loaders, split tools
    models/      feature models, classifiers and the OLTRNetwork, by registry name
    engine/      checkpoints, distributed set-up, inference, optimizers, run directories, logs, stop signals
    recipes/     stage-2 recipes as registered objects: OLTR's meta-embedding and the decoupled ones
    runs/        training a run (the epoch loop) and testing it
    report/      Tables 3-4 and plots from results files
    sweep/       ./run_all.sh: a plan of commands and the local or SLURM executor
    cli.py       main.py and the ``oltr`` console script
"""
