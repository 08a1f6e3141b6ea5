"""Commands that say whether a data set and a model can be trusted: audit (the library: :mod:`edgegen.audit`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from edgegen.commands import app, console


@app.command()
def audit(
    data: Path = typer.Argument(..., help="A labelled split folder (train/dev/test CSVs)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for audit.json and audit.md."),
    near: str = typer.Option(
        "auto", "--near", help="Near-duplicate search: auto (mmseqs2 when installed) | mmseqs2 | minhash."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an audit already in --out."),
):
    """Shortcut features, leakage between splits and class balance of a data set; exit 0 pass, 3 warn, 4 fail."""
    import shutil

    from edgegen.audit import EXIT_CODES, audit_data, write_audit
    from edgegen.errors import UsageError

    if near not in ("auto", "mmseqs2", "minhash"):
        raise UsageError(f"--near must be auto, mmseqs2 or minhash, got {near!r}")
    if near == "mmseqs2" and not shutil.which("mmseqs"):
        raise UsageError("--near mmseqs2: the mmseqs command is not installed (Debian: apt install mmseqs2)")
    rep = audit_data(data, near_method=near)
    t = Table(title=f"audit of {data}: {rep['verdict'].upper()}")
    t.add_column("feature")
    t.add_column("AUROC alone", justify="right")
    t.add_column("grade")
    for f in rep["shortcuts"]["features"][:6]:
        t.add_row(f["feature"], f"{f['auroc']:.3f}", f["grade"])
    console().print(t)
    for r in rep["reasons"] or ["pass: no finding"]:
        console().print(f"- {r}")
    if out is not None:
        write_audit(rep, out, force=force)
        console().print(f"audit: {out / 'audit.json'}, {out / 'audit.md'}")
    raise typer.Exit(EXIT_CODES[rep["verdict"]])
