"""The OLTR pipeline; data flows one way, each step handing plain objects to the next:

    config.py (+ config_loading.py)  read .py/.yaml configs, merge _base_ and overlays, validate
    build.py                         config -> datasets, networks, Criterions, optimizers (by registry name)
    engine/                          a run's set-up, the epoch loop, saving and resuming, the tests
    metrics.py                       shot groups and closed/open-set metrics from logits alone
    report/                          Tables 3-4 and plots from results files
    sweep.py                         ./run_all.sh: every loss x dataset, both stages, both tests
    cli.py                           main.py and the ``oltr`` console script

Shared rules, one of each: run_files.py (a run directory's file names), atomic.py (all-or-nothing
writes), seeding.py (how seeds are derived), errors.py (the user errors printed as one line).
data/ holds split files, datasets, samplers and the split tools; models/ the networks.
"""
