"""Command line of main.py.

    python main.py --config FILE [--overlay FILE ...] [--test] [--test_open] [--resume] [--opts K=V ...]

The CLI only wires: config -> fit / evaluate. User errors print one line and
exit 2 (``--debug`` shows the traceback instead).
"""

import argparse
import os
import re
import sys

from .common.errors import ConfigError, OltrError

# The CFL fork's flags; each overrides the performance loss's parameter of the same name.
LOSS_FLAGS = ("gamma_hc", "gamma_pos", "gamma_neg", "cyclical_factor")


def build_parser():
    parser = argparse.ArgumentParser(
        description="Train (stage 1 or 2) or evaluate an OLTR run described by a config file.",
        epilog="Other commands of the `oltr` script: `oltr report RESULTS_DIR...`, "
        "`oltr data {check,make-lt,digits,cifar-lt}`, "
        "`oltr sweep [run_all.sh's options]`, `oltr sweep status LOGS`.",
    )
    parser.add_argument("--config", required=True, help="a .py (config = {...}) or .yaml config file")
    parser.add_argument(
        "--overlay",
        action="append",
        default=[],
        metavar="FILE",
        help="a config file deep-merged over --config, before --opts; repeatable, merged in "
        "order, e.g. --overlay config/losses/cfl.py (default: none)",
    )
    parser.add_argument(
        "--test", action="store_true", help="closed-set test of the trained run in training_opt.log_dir"
    )
    parser.add_argument(
        "--test_open",
        action="store_true",
        help="open-set test (test + open splits); with --test, both tests from one scoring of the test split",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue training from <log_dir>/last_checkpoint.pth (default: start a new run, "
        "refused when the log_dir already holds one)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="train even though the log_dir holds a run: the old run is moved aside to "
        "<log_dir>.old-<timestamp>, never deleted (default: refuse)",
    )
    parser.add_argument(
        "--allow-config-change",
        action="store_true",
        help="--test/--test_open: test even though the model, classes, transforms, data or loss "
        "of the config differ from the checkpoint's (default: refuse, naming the first key)",
    )
    parser.add_argument(
        "--opts",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override config values by dotted key, e.g. training_opt.num_epochs=3 seed=1",
    )
    for flag in LOSS_FLAGS:
        parser.add_argument(
            f"--{flag}",
            type=float,
            default=None,
            help=f"set criterions.PerformanceLoss.loss_params.{flag} (default: the config's)",
        )
    parser.add_argument(
        "--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: cuda if available, else cpu)"
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    return parser


def overrides_from_args(args):
    overrides = list(args.opts)
    for flag in LOSS_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"criterions.PerformanceLoss.loss_params.{flag}={value}")
    return overrides


def check_device(name):
    """``--device``: a torch device this machine has; ConfigError naming it otherwise."""
    if name is None:
        return None
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a torch device; use e.g. cpu, cuda or cuda:1") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name!r}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0"
            )
    return name


def run(args):
    # Imported here so `--help` and config errors answer without loading torch.
    from .config.schema import load_config

    config = load_config(args.config, overrides_from_args(args), overlays=args.overlay)
    from .recipes import resolve

    recipe = resolve(config, where=args.config)  # the stage-2 recipe's own rules, checked once
    from .engine.distributed import init_distributed, shutdown_distributed

    testing = args.test or args.test_open
    if args.overwrite and (args.resume or testing):
        raise ConfigError(
            f"--overwrite starts a new training run; it cannot go with "
            f"{'--resume' if args.resume else '--test/--test_open'}"
        )
    from .engine.run_dir import claim

    ctx = init_distributed(check_device(args.device))
    if ctx.device.type == "cuda":
        import torch

        # Every batch has one input size (the transforms crop to it): cuDNN's autotuner picks the fastest
        # convolution algorithms once and reuses them (README, "Speed").
        torch.backends.cudnn.benchmark = True
    try:
        if testing:
            from .runs.evaluate import evaluate

            settings = ("closed",) * args.test + ("open",) * args.test_open
            with claim(config, ctx, "test"):
                evaluate(config, ctx, settings=settings, allow_config_change=args.allow_config_change)
        else:
            from .engine import stop
            from .runs.trainer import fit

            # claimed after the set-up: a bad split line or loss is reported first, and nothing is written
            with stop.handling():
                fit(
                    config,
                    ctx,
                    resume=args.resume,
                    recipe=recipe,
                    claim=claim(config, ctx, "train", resume=args.resume, overwrite=args.overwrite),
                )
    finally:
        shutdown_distributed(ctx)


# torch re-raises an exception from a DataLoader worker as a new exception of the same type
# whose message is "Caught X in DataLoader worker process N." plus the worker's traceback.
_WORKER_MESSAGE = re.compile(r"Caught \w+ in DataLoader worker process \d+\.")


def one_line(error):
    """The sentence of a user error, on one line, even when it crossed a DataLoader worker.

    The worker's traceback ends with ``module.ErrorType: <the original sentence>``; that
    last line is the message, the rest is noise to a user.
    """
    text = str(error).strip()
    if _WORKER_MESSAGE.match(text):
        last = text.splitlines()[-1].strip()
        for name in (f"{type(error).__module__}.{type(error).__qualname__}", type(error).__qualname__):
            if last.startswith(name + ": "):
                last = last[len(name) + 2 :]
                break
        text = last
    return " ".join(line.strip() for line in text.splitlines() if line.strip()) or type(error).__name__


# What gloo and NCCL raise on the ranks left behind when one rank's process ends mid-collective.
_PEER_LOST = re.compile(
    r"connection (closed|reset) by peer|broken pipe|connection refused|socket timeout|timed out|"
    r"remote process exited|ncclRemoteError|ProcessGroupGloo|gloo/transport",
    re.IGNORECASE,
)


def lost_a_peer(error):
    """Whether ``error`` is a collective failing because another rank is gone (only in a distributed run)."""
    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return False
    if type(error).__name__ in ("DistBackendError", "DistNetworkError"):
        return True
    return bool(_PEER_LOST.search(str(error)))


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except OltrError as e:
        if args.debug:
            raise
        code = getattr(e, "exit_code", 2)
        print(("error: " if code == 2 else "") + one_line(e), file=sys.stderr)
        return code
    except OSError as e:  # the environment's answer (a file in the way, a full disk...) is the user's to fix
        if args.debug or e.filename is None:
            raise
        from .engine.run_dir import describe_os_error

        print(f"error: cannot access {e.filename}: {describe_os_error(e)}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # under DDP: another rank ended (killed, failed) while this one waited for it
        if args.debug or not lost_a_peer(e):
            raise
        rank = os.environ.get("RANK", "?")
        print(
            f"error: rank {rank}: another process of this distributed run ended while this one waited for it "
            f"({one_line(e)[:100]}); its own output says why. Rerun with --resume to continue from the last "
            "finished epoch",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        if args.test or args.test_open:  # a test resumes nothing: its files are written at its end
            print("interrupted; the test wrote nothing (its results come at its end); run it again", file=sys.stderr)
        else:
            print("interrupted; rerun with --resume to continue from the last finished epoch", file=sys.stderr)
        return 130
    return 0


def entry_point(argv=None):
    """The `oltr` console script: `oltr report ...`, `oltr data ...`, `oltr sweep ...` (run_all.sh's options,
    or `status LOGS`), or main.py's arguments."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "report":
        from .report import main as report_main

        return report_main(argv[1:])
    if argv and argv[0] == "sweep":
        from .sweep import main as sweep_main

        return sweep_main(argv[1:])
    if argv and argv[0] == "data":
        from .data.__main__ import main as data_main

        return data_main(argv[1:])
    return main(argv)
