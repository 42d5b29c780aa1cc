"""Fixtures shared by the tests that train for real on tiny data."""

import hashlib
import importlib
import os
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from oltr.data import ensure_digits_lt

# Images per class of each "Tiny" split: enough for every code path, an epoch in about a second.
TINY_PER_CLASS = {"train": 6, "val": 2, "test": 2, "open": 8}


def _write_tiny_splits(digits_root, split_dir):
    """Tiny_<split>.txt in ``split_dir``: the first few Digits_LT lines of each class."""
    split_dir.mkdir(parents=True, exist_ok=True)
    for split, per_class in TINY_PER_CLASS.items():
        kept, taken = [], defaultdict(int)
        for line in (digits_root / f"Digits_LT_{split}.txt").read_text().splitlines():
            label = line.rsplit(None, 1)[1]
            if taken[label] < per_class:
                taken[label] += 1
                kept.append(line)
        (split_dir / f"Tiny_{split}.txt").write_text("\n".join(kept) + "\n")
    return split_dir


@pytest.fixture(scope="session", autouse=True)
def image_cache_dir(tmp_path_factory):
    """The decoded-image stores of every test's runs in one temporary folder, not ~/.cache;
    subprocesses inherit it through the environment."""
    import os

    path = tmp_path_factory.mktemp("image-cache")
    previous = os.environ.get("OLTR_CACHE_DIR")
    os.environ["OLTR_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("OLTR_CACHE_DIR", None)
    else:
        os.environ["OLTR_CACHE_DIR"] = previous


@pytest.fixture(scope="module")
def tiny_digits_root(tmp_path_factory):
    """Digits_LT images plus "Tiny" split files beside the full ones (dataset name "Tiny")."""
    root = ensure_digits_lt(tmp_path_factory.mktemp("data") / "Digits_LT")
    _write_tiny_splits(root, root)
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny batches run several times faster on one thread, more so on a busy machine.

    Module-scoped, so module-scoped training fixtures run under it too; the caller's setting
    is restored afterwards.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_opts(data_root, log_dir, split_dir=None, **extra):
    """--opts for a one-epoch run on the tiny Digits splits (dataset "Tiny")."""
    opts = {
        "training_opt.dataset": "Tiny",
        "training_opt.data_root": data_root,
        "training_opt.split_dir": split_dir or data_root,
        "training_opt.log_dir": log_dir,
        "training_opt.num_epochs": 1,
        "training_opt.batch_size": 16,
        "training_opt.num_workers": 0,
    }
    opts.update(extra)
    return [f"{key}={value}" for key, value in opts.items()]


def hashes(directory):
    """SHA-256 of every file under ``directory``, by relative path."""
    root = Path(directory)
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def one_line_error(code, err, *culprits):
    """A user error: exit 2, one 'error:' line naming every culprit, no traceback; returns the line."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for culprit in culprits:
        assert str(culprit) in lines[0], (culprit, lines[0])
    return lines[0]


def require_extra(module, extra="timm"):
    """``module`` of an optional extra: skipped without it, except under CI=true (.ci/run installs every
    extra), where a missing module fails the test instead of hiding it."""
    if os.environ.get("CI") == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"the {extra} extra is not installed (pip install -e '.[{extra}]')")


def run_cli(capsys, argv):
    """(exit code, stderr, stdout) of ``oltr.cli.main(argv)``."""
    from oltr.cli import main

    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.err, captured.out


def refused(capsys, argv, untouched, *culprits):
    """The command is one user error naming every culprit and changes no file under ``untouched``."""
    before = hashes(untouched)
    code, err, _ = run_cli(capsys, argv)
    line = one_line_error(code, err, *culprits)
    assert hashes(untouched) == before
    return line


@pytest.fixture(scope="module")
def trained(tiny_digits_root, tmp_path_factory):
    """A finished, tested 1-epoch stage-1 run (Digits_LT's config on the tiny splits); copy it before changing it."""
    from oltr.cli import main

    log_dir = tmp_path_factory.mktemp("finished") / "run"
    argv = ["--config", "config/Digits_LT/stage_1.py", "--opts", *tiny_opts(tiny_digits_root, log_dir)]
    assert main(argv) == 0
    assert main(["--test", *argv]) == 0
    return log_dir


@pytest.fixture
def run_copy(trained, tmp_path):
    """A copy of the ``trained`` run, for a test to change."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


REPO = Path(__file__).resolve().parent.parent


def write_tiny_checkout(folder, data_root, epochs=2, stage2_epochs=1):
    """A folder to run the sweep from: main.py, the shared config overlays and ``config/Tiny`` (Digits_LT's
    configs on the tiny splits: a stage costs a second or two). Returns the folder."""
    folder = Path(folder)
    (folder / "config" / "Tiny").mkdir(parents=True, exist_ok=True)
    (folder / "main.py").symlink_to(REPO / "main.py")
    for shared in ("losses", "recipes", "replay_published"):
        (folder / "config" / shared).symlink_to(REPO / "config" / shared, target_is_directory=True)
    tiny = {
        "dataset": "Tiny",
        "data_root": str(data_root),
        "split_dir": str(data_root),
        "batch_size": 16,
        "num_workers": 0,
        "num_epochs": epochs,
    }
    digits = REPO / "config" / "Digits_LT"
    (folder / "config" / "Tiny" / "stage_1.py").write_text(
        f"_base_ = {str(digits / 'stage_1.py')!r}\nconfig = {{'training_opt': {tiny!r}}}\n"
    )
    for recipe in ("meta_embedding", "crt"):
        (folder / "config" / "Tiny" / f"stage_2_{recipe}.py").write_text(
            f"_base_ = ['stage_1.py', {str(REPO / 'config' / 'recipes' / f'stage_2_{recipe}.py')!r}]\n"
            f"config = {{'training_opt': {{'num_epochs': {stage2_epochs}, 'log_dir': 'logs/Tiny/stage2', "
            f"'stage1_log_dir': 'logs/Tiny/stage1'}}}}\n"
        )
    return folder


@pytest.fixture
def tiny_checkout(tmp_path, tiny_digits_root, monkeypatch):
    """The current folder is a tiny checkout (write_tiny_checkout) for the test."""
    folder = write_tiny_checkout(tmp_path / "checkout", tiny_digits_root)
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real one-node SLURM cluster (tests/slurm_cluster.py) for the session; SLURM_CONF points at it.

    If it cannot start, the test fails under CI=true (where .ci/run installs it) and is skipped otherwise.
    """
    import importlib.util
    import os

    import slurm_cluster as cluster

    folder = tmp_path_factory.mktemp("slurm")
    try:
        if importlib.util.find_spec("submitit") is None:  # the executor's own extra, not the README's install line
            raise cluster.ClusterUnavailable("submitit is not installed (pip install -e '.[slurm]')")
        env = cluster.start(folder)
    except cluster.ClusterUnavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the SLURM test cluster did not start: {error}")
        pytest.skip(f"no SLURM test cluster: {error}")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = env["SLURM_CONF"]
    yield folder
    cluster.stop(folder)
    if previous is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = previous


def torchrun_by_hand(argv, log_dir, into, env=None):
    """Run main.py with ``argv`` as ``torchrun --standalone --nproc_per_node=2`` would by hand, writing into
    ``into`` instead of ``log_dir``: the truth a DDP step of the sweep is held against."""
    import subprocess
    import sys

    argv = [f"training_opt.log_dir={into}" if arg == f"training_opt.log_dir={log_dir}" else arg for arg in argv]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "main.py", *argv]
    process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr
