"""Data tools: ``python -m oltr.data {check,make-lt,digits,cifar-lt,inat18} ...`` (also ``oltr data ...``).

A user-caused problem (missing file, bad line, impossible counts) prints one
line on stderr and exits 2; ``check`` exits 1 when it finds defects.
"""

import argparse
import json
import sys

from ..common.errors import DataError, OltrError
from .split_file import refuse_existing

EXIT_DEFECTS = 1
EXIT_USER_ERROR = 2


class _HelpFormatter(argparse.HelpFormatter):
    """Append '(default: X)' to a flag's help unless the help already names its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.required or not action.option_strings or action.default is argparse.SUPPRESS:
            return text
        return text + " (default: %(default)s)"


def _open_classes(text):
    """'3' -> 3 (a count); 'cat,dog' or '8,9' -> a list of names or indices."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return [int(item) if item.strip().isdigit() else item.strip() for item in text.split(",") if item.strip()]


def _add_check(commands):
    parser = commands.add_parser(
        "check", help="check a dataset's split files and print a report", formatter_class=_HelpFormatter
    )
    parser.add_argument("--split_dir", required=True, help="folder holding <dataset>_{train,val,test,open}.txt")
    parser.add_argument("--dataset", required=True, help="dataset name prefix of the split files, e.g. Places_LT")
    parser.add_argument("--data_root", required=True, help="folder the image paths in the split files are relative to")
    parser.add_argument(
        "--num_classes", type=int, default=None, help="number of known classes (default: largest train label + 1)"
    )
    parser.add_argument(
        "--open_root",
        default=None,
        help=(
            "folder of the open-set images (default: the first of data_root, <split_dir>/<dataset>_open, "
            "split_dir that holds them)"
        ),
    )
    parser.add_argument("--many_threshold", type=int, default=100, help="many-shot: at least this many training images")
    parser.add_argument("--few_threshold", type=int, default=20, help="few-shot: at most this many training images")
    parser.add_argument(
        "--exclusive",
        action="store_true",
        help="use many > and few < (the OLTR paper's text) instead of >= and <= (its code)",
    )
    parser.add_argument("--json", default=None, help="also write the report as JSON to this file")
    parser.set_defaults(run=_run_check)


def _run_check(args):
    from .check import check_split

    report = check_split(
        args.split_dir,
        args.dataset,
        args.data_root,
        args.num_classes,
        args.many_threshold,
        args.few_threshold,
        inclusive=not args.exclusive,
        open_root=args.open_root,
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    return 0 if report["ok"] else EXIT_DEFECTS


def _add_make_lt(commands):
    parser = commands.add_parser(
        "make-lt",
        help="write long-tailed open-set split files for a labelled image folder",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("image_root", help="folder with one subfolder of images per class (ImageFolder layout)")
    parser.add_argument("out_dir", help="where to write <dataset>_{train,val,test,open}.txt, _classes.txt, _meta.json")
    parser.add_argument("--dataset", required=True, help="dataset name used as the split files' prefix")
    parser.add_argument(
        "--profile", choices=("pareto", "exponential"), default="pareto", help="shape of the per-class train counts"
    )
    parser.add_argument(
        "--max_count",
        type=int,
        default=None,
        help="train images of the largest class (default: the most every class can give after val and test)",
    )
    limits = parser.add_mutually_exclusive_group()
    limits.add_argument("--min_count", type=int, default=None, help="train images of the smallest class (default 5)")
    limits.add_argument(
        "--imbalance_factor", type=float, default=None, help="max_count / min_count, instead of --min_count"
    )
    parser.add_argument("--val_per_class", type=int, default=20, help="val images per known class")
    parser.add_argument("--test_per_class", type=int, default=50, help="test images per known class")
    parser.add_argument(
        "--open_classes",
        type=_open_classes,
        default=0,
        help="classes held out as the open set: a count (drawn with the seed) or comma-separated class names",
    )
    parser.add_argument(
        "--open_per_class", type=int, default=None, help="open-set images per held-out class (default: test_per_class)"
    )
    parser.add_argument(
        "--open_from",
        metavar="DIR",
        default=None,
        help="take the open split from another ImageFolder tree (e.g. SVHN or Textures), instead of "
        "--open_classes; images equal to a training image are left out",
    )
    parser.add_argument(
        "--keep_profile_order",
        action="store_true",
        help="give the largest count to the first class in name order instead of dealing the profile randomly",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    _add_force(parser)
    parser.set_defaults(run=_run_make_lt)


def _add_force(parser):
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace split files already in the output folder (default: refuse, naming them)",
    )


def _run_make_lt(args):
    from .make_lt import make_lt

    summary = make_lt(
        args.image_root,
        args.out_dir,
        args.dataset,
        args.profile,
        args.max_count,
        args.min_count,
        args.imbalance_factor,
        args.val_per_class,
        args.test_per_class,
        args.open_classes,
        args.open_per_class,
        args.seed,
        shuffle_profile=not args.keep_profile_order,
        force=args.force,
        open_from=args.open_from,
    )
    _print_summary(summary)
    return 0


def _add_digits(commands):
    parser = commands.add_parser(
        "digits", help="build the embedded Digits_LT dataset (no network needed)", formatter_class=_HelpFormatter
    )
    parser.add_argument(
        "--root", default="data/Digits_LT", help="where to build it (data_root and split_dir of its configs)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="move an older or incomplete Digits_LT build at --root aside to "
        "<root>.old-<timestamp> and build afresh (default: refuse)",
    )
    parser.set_defaults(run=_run_digits)


def _run_digits(args):
    from pathlib import Path

    from .digits_lt import ensure_digits_lt, is_complete

    root = Path(args.root)
    if root.is_dir() and any(root.iterdir()) and not is_complete(root) and not args.force:
        raise DataError(
            f"{root} holds an older or incomplete Digits_LT build (or other files); nothing was "
            "written. Pass --force to move it aside to <root>.old-<timestamp> and build afresh, "
            "or choose another --root"
        )
    root = ensure_digits_lt(root, replace=args.force)
    with open(root / "meta.json", encoding="utf-8") as handle:
        meta = json.load(handle)
    print(f"Digits_LT ready at {root}")
    _print_summary(meta)
    return 0


def _add_cifar_lt(commands):
    parser = commands.add_parser(
        "cifar-lt", help="export CIFAR-10/100-LT as PNGs and split files", formatter_class=_HelpFormatter
    )
    parser.add_argument("--which", choices=("cifar10", "cifar100"), default="cifar10", help="CIFAR variant")
    parser.add_argument("--root", default="data/cifar", help="where torchvision keeps (or downloads) the CIFAR archive")
    parser.add_argument("--out_dir", default=None, help="output folder (default: data/CIFAR10_LT or data/CIFAR100_LT)")
    parser.add_argument("--imbalance_factor", type=float, default=100, help="largest / smallest train class")
    parser.add_argument(
        "--profile",
        choices=("exponential", "pareto"),
        default="exponential",
        help="shape of the per-class train counts",
    )
    parser.add_argument(
        "--open_classes",
        type=_open_classes,
        default=None,
        help=(
            "held-out classes: a count (the last ones; default 2 for CIFAR-10, 10 for CIFAR-100) or "
            "comma-separated names/indices"
        ),
    )
    parser.add_argument(
        "--val_per_class",
        type=int,
        default=None,
        help="val images per known class (default 100 for CIFAR-10, 10 for CIFAR-100)",
    )
    parser.add_argument(
        "--max_count",
        type=int,
        default=None,
        help="train images of the largest class (default: per-class train size - val)",
    )
    parser.add_argument("--dataset", default=None, help="split-file prefix (default CIFAR10_LT / CIFAR100_LT)")
    parser.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="use an already extracted archive under --root (default: download it when absent)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    _add_force(parser)
    parser.set_defaults(run=_run_cifar_lt)


def _run_cifar_lt(args):
    from .cifar_lt import VARIANTS, export_cifar_lt

    imbalance = int(args.imbalance_factor) if float(args.imbalance_factor).is_integer() else args.imbalance_factor
    out_dir = args.out_dir or f"data/{args.dataset or VARIANTS[args.which][1]}"
    refuse_existing(out_dir, args.dataset or VARIANTS[args.which][1], args.force)
    summary = export_cifar_lt(
        args.root,
        out_dir,
        args.which,
        imbalance,
        args.profile,
        args.open_classes,
        args.val_per_class,
        args.max_count,
        args.download,
        args.seed,
        args.dataset,
    )
    _print_summary(summary)
    return 0


def _add_inat18(commands):
    parser = commands.add_parser(
        "inat18",
        help="complete iNaturalist 2018's published lists: test (= val), open split",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--split_dir",
        default="data/iNaturalist18",
        help="folder holding classifier-balancing's iNaturalist18_train.txt and iNaturalist18_val.txt",
    )
    parser.add_argument(
        "--open_split",
        default=None,
        help="a split file of open-set images (labels -1), e.g. data/ImageNet_LT/ImageNet_LT_open.txt "
        "(default: none; --test_open then has no split)",
    )
    parser.add_argument(
        "--open_root",
        default=None,
        help="folder the open split's paths start from, linked as <split_dir>/iNaturalist18_open",
    )
    parser.add_argument("--num_classes", type=int, default=8142, help="known classes")
    _add_force(parser)
    parser.set_defaults(run=_run_inat18)


def _run_inat18(args):
    from .inaturalist import prepare_inaturalist18

    _print_summary(prepare_inaturalist18(args.split_dir, args.open_split, args.open_root, args.num_classes, args.force))
    return 0


def _print_summary(summary):
    counts = summary["train_counts"]
    print(
        f"{summary['dataset']}: {summary['num_classes']} known classes, train per class {max(counts)} to "
        f"{min(counts)} ({summary.get('profile')}), sizes {summary['sizes']}, open classes {summary['open_classes']}"
    )
    duplicates = summary.get("open_duplicates_of_train") or []
    if duplicates:
        print(
            f"  left out of the open split, equal to a training image ({len(duplicates)}): "
            f"{', '.join(duplicates[:5])}{', ...' if len(duplicates) > 5 else ''}"
        )
    for path in summary.get("files", []):
        print(f"  wrote {path}")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m oltr.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{check,make-lt,digits,cifar-lt,inat18}")
    for add in (_add_check, _add_make_lt, _add_digits, _add_cifar_lt, _add_inat18):
        add(commands)
    return parser


def main(argv=None):
    """Run a data tool; returns the exit code (0 ok, 1 defects found by check, 2 user error)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except OltrError as error:  # DataError, and OutputError from the writers
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as error:
        print(f"error: cannot access {error.filename or 'a file'}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
