"""iNaturalist 2018 from the lists classifier-balancing publishes, on a tiny fake tree laid out like the 2018
release: ``python -m oltr.data inat18`` completes the splits, ``check`` passes, and a run trains and tests
closed- and open-set on it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from oltr.cli import main as cli_main
from oltr.common.run_files import RESULTS_OPEN
from oltr.data.__main__ import main as data_main

# class id -> (super-category, training images): a long tail over 6 classes, 3 validation images each
CLASSES = {0: ("Plantae", 12), 1: ("Aves", 8), 2: ("Insecta", 5), 3: ("Plantae", 4), 4: ("Fungi", 3), 5: ("Aves", 2)}


def jpeg(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, size=(12, 12, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


@pytest.fixture
def inat(tmp_path):
    """<tmp>/iNaturalist18 (train_val2018/<super>/<id>/<hash>.jpg + the two published lists), and an open set."""
    root = tmp_path / "iNaturalist18"
    lines = {"train": [], "val": []}
    seed = 0
    for label, (supercategory, count) in CLASSES.items():
        for split, n in (("train", count), ("val", 3)):
            for _ in range(n):
                seed += 1
                relative = f"train_val2018/{supercategory}/{label}/{seed:032x}.jpg"
                jpeg(root / relative, seed)
                lines[split].append(f"{relative} {label}\n")
    for split, found in lines.items():
        (root / f"iNaturalist18_{split}.txt").write_text("".join(found))
    open_root = tmp_path / "ImageNet_LT_open"
    open_lines = []
    for index in range(4):
        jpeg(open_root / "n0000" / f"{index}.JPEG", 1000 + index)
        open_lines.append(f"n0000/{index}.JPEG -1\n")
    (tmp_path / "ImageNet_LT_open.txt").write_text("".join(open_lines))
    return root, tmp_path / "ImageNet_LT_open.txt", open_root


def prepare(root, open_split, open_root, *extra):
    argv = ["inat18", "--split_dir", str(root), "--open_split", str(open_split), "--open_root", str(open_root)]
    return data_main([*argv, "--num_classes", "6", *extra])


def test_prepare_writes_test_and_open_and_check_passes(inat, capsys):
    root, open_split, open_root = inat
    assert prepare(root, open_split, open_root) == 0
    assert (root / "iNaturalist18_test.txt").read_text() == (root / "iNaturalist18_val.txt").read_text()
    assert (root / "iNaturalist18_open.txt").read_text() == open_split.read_text()
    assert (root / "iNaturalist18_open").resolve() == open_root.resolve()
    capsys.readouterr()
    import json

    report_path = root / "report.json"
    argv = ["check", "--split_dir", str(root), "--dataset", "iNaturalist18", "--data_root", str(root)]
    assert data_main([*argv, "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["ok"] and report["num_classes"] == 6
    assert report["train"]["class_counts"] == [count for _, count in CLASSES.values()]
    assert report["splits"]["open"]["images"] == 4 and report["splits"]["open"]["root"].endswith("iNaturalist18_open")


def test_prepare_refuses_to_overwrite_and_checks_the_layout(inat, capsys):
    root, open_split, open_root = inat
    assert prepare(root, open_split, open_root) == 0
    before = (root / "iNaturalist18_test.txt").read_bytes()
    capsys.readouterr()
    assert prepare(root, open_split, open_root) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "iNaturalist18_test.txt already exists" in err[0] and "--force" in err[0]
    assert (root / "iNaturalist18_test.txt").read_bytes() == before
    assert prepare(root, open_split, open_root, "--force") == 0
    # a line whose class folder is not its label
    train = root / "iNaturalist18_train.txt"
    first, *rest = train.read_text().splitlines(keepends=True)
    train.write_text(first.replace(" 0\n", " 1\n") + "".join(rest))
    capsys.readouterr()
    assert prepare(root, open_split, open_root, "--force") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "iNaturalist18_train.txt:1:" in err[0] and "(label 1)" in err[0]


def test_a_run_trains_and_tests_open_set_on_the_tree(inat, tmp_path, capsys):
    root, open_split, open_root = inat
    assert prepare(root, open_split, open_root) == 0
    log_dir = tmp_path / "run"
    argv = [
        "--config",
        "config/iNaturalist18/stage_1.py",
        "--opts",
        f"training_opt.data_root={root}",
        f"training_opt.split_dir={root}",
        f"training_opt.log_dir={log_dir}",
        "training_opt.num_classes=6",
        "training_opt.num_epochs=1",
        "training_opt.batch_size=8",
        "training_opt.num_workers=0",
        "training_opt.feature_dim=64",
        "training_opt.transforms={input_size: 16, resize_size: 16}",
        "networks.feat_model.type=resnet10",
        "networks.feat_model.params={small_input: true, base_channels: 8}",
        "evaluation.ci_resamples=0",
    ]
    assert cli_main(argv) == 0
    assert cli_main(["--test", "--test_open", *argv]) == 0
    import json

    results = json.loads((log_dir / RESULTS_OPEN).read_text())
    assert results["dataset"] == "iNaturalist18" and (results["num_known"], results["num_open"]) == (18, 4)
