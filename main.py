"""python main.py --config config/Digits_LT/stage_1_cfl.py [--test | --test_open] -- see `--help`."""

import sys

from oltr.cli import main

if __name__ == "__main__":
    sys.exit(main())
