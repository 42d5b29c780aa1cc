"""The package's import graph (tools/layers.py): data flows one way and no module import circles back."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import layers  # noqa: E402


def test_no_package_imports_one_after_it_in_the_order():
    edges = layers.graph()
    assert set(edges) <= set(layers.ORDER)  # every package with imports is placed
    assert layers.violations(edges) == []


def test_no_import_circle_between_modules():
    assert layers.cycles(layers.module_graph()) == []


def test_the_checks_see_an_upward_import_and_a_circle():
    """The checks themselves: an edge up the order and a two-module circle are reported."""
    assert layers.violations({"engine": {"runs"}, "runs": {"engine"}}) == [("engine", "runs")]
    assert layers.cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_every_package_docstring_names_each_of_its_files():
    """Each package's __init__ docstring lists its modules, and stays true as files come and go."""
    for init in sorted((layers.ROOT / "oltr").glob("*/__init__.py")):
        doc = (init.read_text().split('"""')[1:2] or [""])[0]
        for path in sorted(init.parent.glob("*.py")):
            if path.name not in ("__init__.py", "__main__.py"):
                assert path.name in doc, f"{init.relative_to(layers.ROOT)} does not name {path.name}"
