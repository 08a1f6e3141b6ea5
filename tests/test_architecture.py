"""The import graph has no upward arrow: what travels to a device imports only what travels with it, and
``runtime`` never imports the layers above it (every import counted, top-level or inside a function)."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "edgegen"


def imports_of(path: Path) -> set[str]:
    """Every ``edgegen.*`` module a file imports, resolved to a path relative to the package
    (``runtime/__init__.py``)."""
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
    from edgegen.bundle import LITE_MODULES

    lite = set(LITE_MODULES)
    bad = {m: sorted(imports_of(PKG / m) - lite) for m in lite}
    assert {m: b for m, b in bad.items() if b} == {}


def test_runtime_imports_nothing_above_it():
    below = {"errors.py", "io.py", "integrity.py", "alphabet.py", "dna_tokenizer.py"}
    for f in (PKG / "runtime").glob("*.py"):
        up = {m for m in imports_of(f) if not m.startswith("runtime/") and m not in below}
        assert not up, f"{f.name} imports {sorted(up)}"


def test_no_module_of_the_package_exceeds_about_300_lines():
    sizes = {str(p.relative_to(PKG)): len(p.read_text().splitlines()) for p in PKG.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 320} == {}


# The layers of ARCHITECTURE.md, bottom to top: an import only ever points to its own layer or one below.
LAYERS = [
    (
        "device-side",
        [
            "__init__.py",
            "errors.py",
            "io.py",
            "integrity.py",
            "bundle_check.py",
            "alphabet.py",
            "dna_tokenizer.py",
            "token_kinds.py",
            "bpe.py",
            "metrics.py",
            "validity.py",
            "data/__init__.py",
            "data/readers.py",
            "data/reads.py",
            "data/fastx.py",
            "runtime/*",
            "predict.py",
            "standalone.py",
            "runner_cli.py",
            "signing.py",
            "health.py",
            "releases.py",
            "deploy_agent.py",
            "drift.py",
            "watch.py",
            "run_folder.py",
            "status_page.py",
        ],
    ),
    (
        "model",
        [
            "model_config.py",
            "layers.py",
            "model.py",
            "foundation.py",
            "hf_files.py",
            "checkpoint.py",
            "inference.py",
            "machine.py",
        ],
    ),
    (
        "support",
        [
            "distributed.py",
            "progress.py",
            "config_io.py",
            "export/quant_modes.py",
            "devices.py",
            "data/checks.py",
            "data/synthetic.py",
            "data/load.py",
            "tables.py",
            "plots.py",
            "report.py",
            "wheelhouse.py",
        ],
    ),
    (
        "stages",
        [
            "fit.py",
            "bench_measure.py",
            "distill_loop.py",
            "distill_data.py",
            "hf_classic.py",
            "baseline.py",
            "train.py",
            "student.py",
            "prune*.py",
            "shape_*.py",
            "teacher_logits.py",
            "distill.py",
            "export/*",
            "hf.py",
            "evaluate.py",
            "bundle.py",
            "remote.py",
            "bench.py",
            "acceptance.py",
            "deploy.py",
            "audit_shortcuts.py",
            "audit_leakage.py",
            "audit.py",
            "model_card.py",
            "attack.py",
            "monitor.py",
        ],
    ),
    ("orchestration", ["recipe.py", "pipeline/*"]),
    ("shell", ["cli.py", "commands/*", "boundary.py"]),
]
CIRCLE_BY_DESIGN = "pipeline/"  # the stage registry and its kinds: the engine finds kinds through the registry


def _layer(rel: str) -> int:
    import fnmatch

    found = [i for i, (_, pats) in enumerate(LAYERS) if any(fnmatch.fnmatch(rel, p) for p in pats)]
    assert found, f"{rel} is in no layer of ARCHITECTURE.md: add it there and to LAYERS"
    return found[0]


def _graph() -> dict[str, set[str]]:
    return {str(p.relative_to(PKG)): imports_of(p) - {str(p.relative_to(PKG))} for p in PKG.rglob("*.py")}


def test_no_module_imports_from_a_layer_above_its_own():
    up = [
        f"{m} ({LAYERS[_layer(m)][0]}) -> {x} ({LAYERS[_layer(x)][0]})"
        for m, xs in _graph().items()
        for x in xs
        if _layer(x) > _layer(m)
    ]
    assert up == []


def test_no_import_circle_but_the_stage_registry():
    graph = _graph()
    circles = []
    for start in graph:  # a module that reaches itself again, outside the pipeline package
        seen, todo = set(), list(graph[start])
        while todo:
            m = todo.pop()
            if m == start:
                circles.append(start)
                break
            if m not in seen:
                seen.add(m)
                todo += graph.get(m, ())
    assert [c for c in circles if not c.startswith(CIRCLE_BY_DESIGN)] == []


# Functions over 80 lines that are still to be split into their steps (issue "Each stage owns its verb"): none may
# grow, and no other function may pass 80 lines.
STILL_TO_SPLIT: dict[str, int] = {}  # a function over 80 lines waiting to be split, with its length


def test_no_function_over_80_lines():
    long = {}
    for p in PKG.rglob("*.py"):
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 80:
                long[f"{p.relative_to(PKG)}:{n.name}"] = n.end_lineno - n.lineno + 1
    grown = {k: v for k, v in long.items() if v > STILL_TO_SPLIT.get(k, 80)}
    assert grown == {}


def test_ruff_is_clean():
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    root = PKG.parent
    for cmd in ([ruff, "check", "."], [ruff, "format", "--check", "."]):
        r = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
