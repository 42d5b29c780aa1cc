"""Follow a config from the command line through training and testing, module by module.

    python tools/module_stops.py [--show]

Trains a one-epoch stage-1 run of Digits_LT's config on a few images and tests it (``--test``), in this
process under ``sys.setprofile``. Each function of the package (oltr/) is counted at its first call
only, so a loop over batches does not repeat itself; consecutive calls in one module make one stop.
Prints the number of stops, how many of them return to a module already left, and the modules entered
most often (``--show``: the whole path). Nothing is written outside a temporary folder.
"""

import argparse
import contextlib
import io
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def trace(argvs):
    """The modules of the package's functions in order of first call, over the commands ``argvs``."""
    from oltr.cli import main

    seen, path = set(), []
    package = str(ROOT / "oltr")

    def profile(frame, event, arg):
        if event != "call":
            return
        code = frame.f_code
        if not code.co_filename.startswith(package) or code in seen:
            return
        seen.add(code)
        module = frame.f_globals.get("__name__", "?")
        if not path or path[-1] != module:
            path.append(module)

    for argv in argvs:
        sys.setprofile(profile)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
        finally:
            sys.setprofile(None)
        if code != 0:
            raise SystemExit(f"error: {' '.join(argv)} exited {code}")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="print every stop")
    args = parser.parse_args(argv)
    import os

    os.chdir(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("OLTR_CACHE_DIR", f"{tmp}/cache")
        from oltr.data.digits_lt import ensure_digits_lt

        data = ensure_digits_lt(Path(tmp) / "Digits_LT")
        opts = [
            "--opts",
            f"training_opt.data_root={data}",
            f"training_opt.split_dir={data}",
            f"training_opt.log_dir={tmp}/run",
            "training_opt.num_epochs=1",
            "training_opt.num_workers=0",
        ]
        config = ["--config", "config/Digits_LT/stage_1.py"]
        stops = trace([config + opts, config + ["--test"] + opts])
    left, returns = set(), 0
    for index, module in enumerate(stops):
        if module in left:
            returns += 1
        if index:
            left.add(stops[index - 1])
    print(f"{len(stops)} stops, {returns} of them returns to a module already left, {len(set(stops))} modules")
    print("entered most often: " + ", ".join(f"{m} {n}" for m, n in Counter(stops).most_common(6)))
    if args.show:
        print("\n".join(stops))
    return 0


if __name__ == "__main__":
    sys.exit(main())
