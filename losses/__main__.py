"""``python -m losses``: the registered losses and the state of the fused CPU kernels.

    python -m losses            list the losses, say whether the kernels are built
    python -m losses --build    also build (or load) the kernels now; exit 1 if that fails
"""
import argparse
import inspect
import sys

from . import available_losses, get_loss_class, native


def _signature(name):
    params = list(inspect.signature(get_loss_class(name).__init__).parameters.values())[1:]
    return ", ".join(str(p) for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m losses", description=__doc__.splitlines()[0].strip("`: "))
    parser.add_argument("--build", action="store_true", help="build or load the fused CPU kernels now")
    args = parser.parse_args(argv)
    for name in available_losses():
        print(f"{name}({_signature(name)})")
    try:
        for line in native.describe():
            print(line)
    except ValueError as error:  # a bad OLTR_NATIVE_LOSSES value
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.build:
        try:
            native.load()
        except Exception as error:
            # The diagnostic command: the whole build log (ninja's commands and the compiler's
            # output), then the one-line reason.
            print(str(error).rstrip(), file=sys.stderr)
            reason = native.summarize_error(error)
            print(f"error: the fused CPU kernels could not be built or loaded: {reason}", file=sys.stderr)
            return 1
        print("loaded: torch.ops.oltr_losses.softmax_focal, sigmoid_focal, scale_rows_collect")
    return 0


if __name__ == "__main__":
    sys.exit(main())
