"""``python -m losses``: the registered losses and their parameters."""

import argparse
import inspect
import sys

from . import available_losses, get_loss_class


def _signature(name):
    params = list(inspect.signature(get_loss_class(name).__init__).parameters.values())[1:]
    return ", ".join(str(p) for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD)


def main(argv=None):
    argparse.ArgumentParser(prog="python -m losses", description=__doc__.strip("`: ")).parse_args(argv)
    for name in available_losses():
        print(f"{name}({_signature(name)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
