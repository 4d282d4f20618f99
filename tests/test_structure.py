"""The package's shape: no import cycles, and no module using another module's private
names. Imports are read from the source (every `import`, at the top or inside a function,
since a lazy import still ties two modules together)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "froster"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(current: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module an import names (`from ..x import y` in froster.a.b -> froster.x)."""
    if level == 0:
        return name or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, current: str, modules: dict[str, Path]):
    """[(imported froster module, [names taken from it])] of one file."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.startswith("froster")]
        elif isinstance(node, ast.ImportFrom):
            target = resolve(current, is_package, node.level, node.module)
            if not target.startswith("froster"):
                continue
            names = []
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in modules:  # `from . import backbones`: the module itself
                    found.append((sub, []))
                else:
                    names.append(alias.name)
            if names:
                found.append((target, names))
    return found


def graph():
    modules = package_modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    private = []
    for name, path in modules.items():
        for target, names in imports_of(path, name, modules):
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target == name:
                continue
            edges[name].add(target)
            private += [f"{name} takes {n} from {target}" for n in names
                        if n.startswith("_") and not n.startswith("__")]
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_cycle_and_a_private_import():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert resolve("froster.inference.api", False, 2, "checkpoint") == "froster.checkpoint"
    assert resolve("froster.interop", True, 1, "imported") == "froster.interop.imported"


def test_no_import_cycles():
    edges, _ = graph()
    assert len(edges) > 50
    assert cycles(edges) == []


def test_no_module_imports_another_modules_private_names():
    _, private = graph()
    assert private == []


def test_tests_and_benchmarks_use_public_names_only():
    modules = package_modules()
    found = []
    for folder in (ROOT / "tests", ROOT / "bench"):
        for path in folder.glob("*.py"):
            for target, names in imports_of(path, "tests.x", modules):
                found += [f"{path.name} takes {n} from {target}" for n in names
                          if n.startswith("_") and not n.startswith("__")]
    assert found == []


def test_missing_shared_material_fails_where_it_is_required(monkeypatch, tmp_path):
    import pytest
    from _shared import require

    monkeypatch.delenv("FROSTER_REQUIRE_SHARED", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require(tmp_path / "absent")
    monkeypatch.setenv("FROSTER_REQUIRE_SHARED", "1")
    with pytest.raises(pytest.fail.Exception, match="FROSTER_REQUIRE_SHARED"):
        require(tmp_path / "absent")
    assert require(tmp_path) == tmp_path
