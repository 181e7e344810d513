"""The package's shape: imports only go down the layers (io at the bottom, cli at the top), there is no
import circle, no private name is imported from another module, and no module grows past ~500 lines.
The imports are read with ``ast`` (nothing is imported), including those inside functions."""
import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "deepfake_keras"

#: the layers, bottom first: a module may import from its own layer (without circles) or from a lower one
LAYERS = [
    ["io"],
    ["config"],
    ["assets"],
    ["data"],
    ["weights"],
    ["embeddings"],
    ["demo"],
    ["evaluation"],
    ["models"],
    ["training"],
    ["explain"],
    ["reporting"],
    ["inference"],
    ["pipelines"],
    ["cli"],
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
MAX_LINES = 520


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path) -> list:
    """``[(imported module, [names], line)]`` of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, [], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            out.append((target, [a.name for a in node.names], node.lineno))
    return out


def edges() -> list:
    """``(importer, imported module of the package, names, line)``; ``from pkg import mod`` counts as an
    import of ``pkg.mod``."""
    mods = modules()
    out = []
    for name, path in mods.items():
        for target, names, line in imports_of(name, path):
            if not target or not target.startswith("deepfake_keras"):
                continue
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in mods]
            for t in submodules or [target]:
                out.append((name, t, [n for n in names if f"{target}.{n}" not in mods], line))
    return out


def layer(module: str):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the package root (its __version__)


def test_every_module_has_a_layer():
    missing = sorted({layer(m) for m in modules()} - set(RANK) - {None})
    assert not missing, f"modules outside every layer of LAYERS: {missing}; add them where they belong"


def test_imports_only_go_down():
    upward = []
    for importer, target, _, line in edges():
        a, b = layer(importer), layer(target)
        if a is None or b is None or a == b:
            continue
        if RANK[b] > RANK[a]:
            upward.append(f"{importer}:{line} imports {target} ({b} is above {a})")
    assert not upward, "\n".join(upward)


def test_no_import_circles():
    graph = {}
    for importer, target, _, _ in edges():
        if importer != target and target in modules():
            graph.setdefault(importer, set()).add(target)
    seen, stack, cycles = set(), [], []

    def visit(node):
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            visit(nxt)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_private_name_is_imported_from_another_module():
    private = [f"{importer}:{line} imports {n} from {target}" for importer, target, names, line in edges()
               for n in names if n.startswith("_") and not n.startswith("__") and target != importer]
    assert not private, "\n".join(private)


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_small(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines; split it (see CONTRIBUTING.md)"


def test_the_checker_sees_an_upward_import_and_a_circle(tmp_path, monkeypatch):
    """The checks above would fail on a package that breaks the rules (they are not vacuous)."""
    root = tmp_path / "deepfake_keras"
    (root / "data").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "io.py").write_text("from .data import store\n")
    (root / "data" / "__init__.py").write_text("")
    (root / "data" / "store.py").write_text("from ..io import _hidden\nfrom . import video\n")
    (root / "data" / "video.py").write_text("from .store import x\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", root)
    found = edges()
    assert ("deepfake_keras.io", "deepfake_keras.data.store", [], 1) in found
    with pytest.raises(AssertionError, match="data is above io"):
        test_imports_only_go_down()
    with pytest.raises(AssertionError, match="store -> deepfake_keras.data.video -> deepfake_keras.data.store"):
        test_no_import_circles()
    with pytest.raises(AssertionError, match="imports _hidden"):
        test_no_private_name_is_imported_from_another_module()
