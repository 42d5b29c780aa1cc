"""read_split / scan_split: good files, and every planted defect named by file and line."""

import warnings

import pytest

from oltr.common.errors import DataError
from oltr.data.split_file import find_image_root, read_split, scan_split, split_path, write_split


@pytest.fixture
def root(tmp_path):
    """A data root with four empty 'images', one with a space in its name."""
    for name in ("a/1.jpg", "a/2.jpg", "b/3.jpg", "b/with space.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    return tmp_path


def write(root, text, name="X_train.txt"):
    path = root / name
    path.write_text(text)
    return path


def test_split_path_names_the_convention(tmp_path):
    assert split_path(tmp_path, "Places_LT", "open") == tmp_path / "Places_LT_open.txt"
    with pytest.raises(DataError, match="train, val, test, open"):
        split_path(tmp_path, "Places_LT", "training")


def test_good_file_with_blank_lines_spaces_and_leading_slash(root):
    path = write(root, "a/1.jpg 0\n\n  /a/2.jpg\t1  \nb/with space.jpg 2\n\n")
    samples = read_split(path, root, num_classes=3)
    assert samples == [(str(root / "a/1.jpg"), 0), (str(root / "a/2.jpg"), 1), (str(root / "b/with space.jpg"), 2)]


def test_open_split_accepts_minus_one_and_refuses_a_known_label(root):
    path = write(root, "a/1.jpg -1\nb/3.jpg -1\n", "X_open.txt")
    assert [label for _, label in read_split(path, root, 2, allow_open=True)] == [-1, -1]
    path = write(root, "a/1.jpg -1\nb/3.jpg 1\n", "X_open.txt")
    with pytest.raises(DataError, match=r"X_open.txt:2: label 1 is a known class, but the open split holds only"):
        read_split(path, root, 2, allow_open=True)


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("a/1.jpg 0\njustonefield\n", 2, "expected 'relative/path label'"),
        ("a/1.jpg 0\n\na/2.jpg one\n", 3, "'one' is not an integer"),
        ("a/1.jpg 0\na/2.jpg 1.5\n", 2, "is not an integer"),
        ("a/1.jpg 3\n", 1, "label 3 is outside [0, 3)"),
        ("a/1.jpg 0\na/2.jpg -2\n", 2, "label -2 is outside [0, 3)"),
        ("a/1.jpg 0\nb/3.jpg -1\n", 2, "only the open split"),
        ("a/1.jpg 0\na/missing.jpg 1\n", 2, "missing.jpg does not exist"),
    ],
)
def test_each_defect_names_file_and_line(root, text, line, fragment):
    path = write(root, text)
    with pytest.raises(DataError) as caught:
        read_split(path, root, num_classes=3)
    message = str(caught.value)
    assert f"X_train.txt:{line}:" in message
    assert fragment in message


def test_open_split_still_rejects_other_negative_labels(root):
    path = write(root, "a/1.jpg -3\n", "X_open.txt")
    with pytest.raises(DataError, match=r"X_open.txt:1: label -3 is outside \[0, 2\) or -1"):
        read_split(path, root, 2, allow_open=True)


def test_missing_split_file_is_named(root):
    with pytest.raises(DataError, match="X_val.txt does not exist"):
        read_split(root / "X_val.txt", root, 3)


def test_empty_split_file_is_an_error(root):
    with pytest.raises(DataError, match="has no 'relative/path label' lines"):
        read_split(write(root, "\n\n"), root, 3)


def test_check_files_false_skips_existence(root):
    path = write(root, "nowhere.jpg 0\n")
    assert read_split(path, root, 1, check_files=False) == [(str(root / "nowhere.jpg"), 0)]


def test_duplicates_warn_with_both_line_numbers_and_are_kept(root):
    path = write(root, "a/1.jpg 0\nb/3.jpg 1\na/1.jpg 0\n")
    with pytest.warns(UserWarning, match=r"X_train.txt: 1 duplicate .*'a/1.jpg' on lines 1 and 3"):
        samples = read_split(path, root, 2)
    assert len(samples) == 3


def test_no_warning_without_duplicates(root):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_split(write(root, "a/1.jpg 0\na/2.jpg 0\n"), root, 1)


def test_scan_collects_every_defect(root):
    path = write(root, "a/1.jpg 0\nbad\nb/3.jpg x\nb/3.jpg 9\nzz.jpg 0\na/1.jpg 0\n")
    scan = scan_split(path, root, num_classes=2)
    assert [line.line_number for line in scan.defects("malformed")] == [2, 3]
    assert [line.line_number for line in scan.defects("label")] == [4]
    assert [line.line_number for line in scan.defects("missing")] == [5]
    assert scan.duplicates == [(1, 6, "a/1.jpg")]


def test_non_utf8_line_is_malformed(root):
    path = root / "X_train.txt"
    path.write_bytes(b"a/1.jpg 0\n\xff\xfe 1\n")
    with pytest.raises(DataError, match="X_train.txt:2: line is not valid UTF-8"):
        read_split(path, root, 2)


def test_write_then_read_round_trip(root):
    path = write_split(root / "Y_train.txt", [("a/1.jpg", 0), ("b/with space.jpg", 1)])
    assert read_split(path, root, 2) == [(str(root / "a/1.jpg"), 0), (str(root / "b/with space.jpg"), 1)]


def test_find_image_root_picks_the_root_holding_the_images(root, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere")
    path = write(root, "a/1.jpg -1\n", "X_open.txt")
    assert find_image_root(path, [other, root]) == root
    assert find_image_root(path, [other, other / "nope"]) == other
