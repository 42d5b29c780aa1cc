"""What main.py runs: training a run (either stage, any recipe) and testing it.

run.py              the Run: everything one training run owns, built once from the config
trainer.py          fit(): the epoch loop, validation, best-epoch bookkeeping; a recipe that does
                    not train is fitted instead
run_state.py        what a run saves each epoch and restores on --resume
evaluate.py         --test / --test_open: closed- and open-set metrics into the results JSON
evaluate_extras.py  the intervals and per-image predictions a test adds to its results
open_scoring.py     --test_open's scorers: built from the config, fitted (cached), scored per split
"""
