"""Plan a recipe into stages and run them: cached by key, resumable, each built in a temp folder.

Every stage writes into ``RUN_DIR/<stage>/`` with a ``stage.json`` holding its key (the hash of its config and its
inputs' keys); a rerun skips stages whose key is unchanged, and a run interrupted mid-stage resumes at that stage
(earlier outputs are never touched: each stage is built in a temp folder and moved into place). The engine knows no
stage kind by name: each one is a registered :class:`~edgegen.pipeline.registry.StageKind`.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from edgegen.errors import ConfigError
from edgegen.pipeline.context import RunContext
from edgegen.pipeline.registry import Plan, Stage, kind_of, stage_hash


def data_fingerprint(spec: str | None) -> str:
    if not spec:
        return "none"
    if spec.startswith("synthetic:"):
        return spec
    from edgegen.io import sha256_file

    d = Path(spec)
    files = sorted(p for p in d.iterdir() if p.is_file() and p.name.split(".")[0] in ("train", "dev", "test"))
    return stage_hash({p.name: sha256_file(p) for p in files})


def content_key(spec: str) -> str:
    """A recipe input keyed by what it holds, never by its path string: the sha256 of a file, or of a folder's files
    (relative names and contents, every depth). New files at the same path give a new key, so no stage built from
    the old ones is reused.

    Raises:
        ConfigError: nothing is at that path.
    """
    from edgegen.io import sha256_file

    p = Path(spec)
    if p.is_file():
        return sha256_file(p)
    if not p.is_dir():
        raise ConfigError("recipe input not found: no such file or folder", path=p)
    files = sorted(
        f for f in p.rglob("*") if f.is_file() and not any(x.startswith(".") for x in f.relative_to(p).parts)
    )
    return stage_hash({str(f.relative_to(p)): sha256_file(f) for f in files})


def plan(recipe) -> Plan:
    """The stages a recipe resolves to (in phase order, then step order), each keyed by its config and inputs."""
    p = Plan(recipe, data_fingerprint(recipe.data))
    order = sorted(range(len(recipe.steps)), key=lambda i: (kind_of(recipe.steps[i].type).phase, i))
    for i in order:
        kind_of(recipe.steps[i].type).expand(recipe.steps[i], p)
    return p


def _stage_done(run_dir: Path, st: Stage) -> bool:
    f = run_dir / st.name / "stage.json"
    if not f.exists():
        return False
    try:
        return json.loads(f.read_text()).get("key") == st.key
    except (json.JSONDecodeError, OSError):
        return False


def dry_run(recipe) -> list[dict]:
    out = Path(recipe.out)
    return [{"stage": s.name, "key": s.key, "cached": _stage_done(out, s)} for s in plan(recipe)]


def run_recipe(recipe, *, show_progress: bool = True, on_stage=None) -> dict | None:
    """Execute a recipe; return its summary (also written to ``RUN_DIR/report/summary.json``), or None without a bench.

    ``on_stage(name, status)`` is called with ``cached``, ``running`` and ``done``.
    """
    from edgegen.io import check_output, held_or_refused

    run_dir = Path(recipe.out)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"out: {run_dir} is a file; a run writes a folder there")
    check_output(run_dir / "stage", True)  # a parent that is a file is refused here, with its name
    p = plan(recipe)
    for st in p:  # every stage folder lies directly inside the run folder
        if (run_dir / st.name).resolve().parent != run_dir.resolve():
            raise ConfigError(f"stage name {st.name!r} would write outside {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    with held_or_refused(run_dir / RUN_LOCK, "run folder"):
        return _run_stages(recipe, run_dir, p, show_progress, on_stage)


RUN_LOCK = ".edgegen-run.lock"  # held while a run works in its folder: a second run there is refused at once


def _run_stages(recipe, run_dir: Path, p, show_progress: bool, on_stage) -> dict | None:
    from edgegen.io import staging_dir, write_json
    from edgegen.pipeline.summary import summarize

    for stale in run_dir.glob(".*.tmp"):  # half-built stages of a crashed run (the lock says none is running)
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    ctx = RunContext(recipe, run_dir, p, show_progress=show_progress)
    for st in p:
        if _stage_done(run_dir, st):
            if on_stage:
                on_stage(st.name, "cached")
            continue
        if on_stage:
            on_stage(st.name, "running")
        t0 = time.perf_counter()
        with staging_dir(run_dir / st.name, force=True) as tmp:
            info = kind_of(st.step.type).run(ctx, st, tmp)
            write_json(
                tmp / "stage.json",
                {
                    "stage": st.name,
                    "key": st.key,
                    "kind": st.kind,
                    "seconds": time.perf_counter() - t0,
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    **(info or {}),
                },
            )
        if on_stage:
            on_stage(st.name, "done")
    summary = summarize(recipe, run_dir)
    if summary:
        write_json(run_dir / "report" / "summary.json", summary)
    return summary
