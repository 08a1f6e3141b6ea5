"""The import graph has no upward arrow: what travels to a device imports only what travels with it, and
``runtime`` never imports the layers above it (every import counted, top-level or inside a function)."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "edgegen"


def imports_of(path: Path) -> set[str]:
    """Every ``edgegen.*`` module a file imports, resolved to a path relative to the package (``runtime/__init__.py``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for n in names:
            if n == "edgegen" or not n.startswith("edgegen."):
                continue
            rel = Path(*n.split(".")[1:])
            for cand in (PKG / rel.with_suffix(".py"), PKG / rel / "__init__.py"):
                if cand.exists():
                    out.add(str(cand.relative_to(PKG)))
    return out


def test_device_side_modules_import_only_device_side_modules():
    from edgegen.remote import LITE_MODULES

    lite = set(LITE_MODULES)
    bad = {m: sorted(imports_of(PKG / m) - lite) for m in lite}
    assert {m: b for m, b in bad.items() if b} == {}


def test_runtime_imports_nothing_above_it():
    below = {"errors.py", "io.py", "integrity.py", "tokenizers.py"}
    for f in (PKG / "runtime").glob("*.py"):
        up = {m for m in imports_of(f) if not m.startswith("runtime/") and m not in below}
        assert not up, f"{f.name} imports {sorted(up)}"


def test_no_module_of_the_package_exceeds_about_300_lines():
    sizes = {str(p.relative_to(PKG)): len(p.read_text().splitlines()) for p in PKG.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 320} == {}
