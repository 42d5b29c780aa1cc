"""The import graph of the ``oltr`` package, by package: which package imports which, and any upward import.

    python tools/layers.py            print the package order, each package's imports, upward imports
                                      and import circles between modules (exit 1 if there are any)

A package may import only packages before it in ``ORDER`` (and itself); ``losses`` is a sibling library
below all of them. Every import counts, also one inside a function. tests/test_layers.py holds the
package to it.
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Data flows one way: config -> data, models -> engine -> recipes -> runs (train, test) -> report -> sweep.
# evaluation (metrics from logits alone) sits low: data's split checker uses its shot groups.
ORDER = ("common", "config", "evaluation", "data", "models", "engine", "recipes", "runs", "report", "sweep", "cli")


def package_of(module):
    """``oltr.engine.trainer`` -> ``engine``; ``oltr.cli`` -> ``cli``; None outside oltr."""
    parts = module.split(".")
    if parts[0] != "oltr" or len(parts) < 2:
        return None
    return parts[1]


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """Every module ``path`` imports (absolute names), at any depth of its code."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # "from .. import build" names a module
    return found


def graph():
    """{package: {imported package}} over every module of oltr/."""
    modules = {module_name(path) for path in (ROOT / "oltr").rglob("*.py")}
    edges = {}
    for path in (ROOT / "oltr").rglob("*.py"):
        own = package_of(module_name(path))
        for target in imports_of(path):
            if target in modules or target.rpartition(".")[0] in modules:
                other = package_of(target)
                if other and other != own:
                    edges.setdefault(own, set()).add(other)
    return edges


def module_graph():
    """{module: {oltr module it imports}}, over every module of oltr/ (a package's __init__ as the package)."""
    paths = {module_name(path): path for path in (ROOT / "oltr").rglob("*.py")}
    edges = {}
    for module, path in paths.items():
        targets = {t if t in paths else t.rpartition(".")[0] for t in imports_of(path)}
        edges[module] = {t for t in targets if t in paths and t != module}
    return edges


def cycles(edges):
    """The import circles among modules: each a sorted list of the modules on it (Tarjan's strongly
    connected components of more than one module). A package's ``__init__`` importing its own modules
    is not a circle unless one of them imports the package back."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def violations(edges):
    """(importer, imported) pairs that go up the order (or name a package missing from it)."""
    rank = {name: index for index, name in enumerate(ORDER)}
    return sorted(
        (a, b) for a, targets in edges.items() for b in targets if a not in rank or b not in rank or rank[b] > rank[a]
    )


def main():
    edges = graph()
    print("order: " + " -> ".join(ORDER))
    for package in ORDER:
        print(f"{package:>10}: {', '.join(sorted(edges.get(package, ()))) or '-'}")
    bad = violations(edges)
    for a, b in bad:
        print(f"upward import: {a} -> {b}")
    circles = cycles(module_graph())
    for circle in circles:
        print(f"import circle: {' <-> '.join(circle)}")
    return 1 if bad or circles else 0


if __name__ == "__main__":
    sys.exit(main())
