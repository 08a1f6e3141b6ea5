"""The ``edgegen`` commands (typer): each one only turns options into a config, calls one library function and prints
its result through :mod:`edgegen.report`. ``models`` (train, evaluate, prune, distill, teacher-logits, import),
``deploy`` (export, bench, devices, bundle, predict), ``pipeline`` (run). The entry point is :func:`edgegen.cli.main`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

import edgegen

app = typer.Typer(
    name="edgegen",
    help="Prune, distill, quantize and export genomic transformers for field devices, and prove they still work.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool):
    if value:
        typer.echo(f"edgegen {edgegen.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
):
    """edgegen: small, fast genomic transformers for field devices."""


def console():
    from rich.console import Console

    return Console()


def check_outputs(force: bool, *files: Optional[Path], folder: Optional[Path] = None) -> None:
    """Before any work: refuse outputs that exist (without --force) or cannot be written."""
    from edgegen.io import check_output

    for f in files:
        if f is not None:
            check_output(f, force, kind="file")
    if folder is not None:
        check_output(folder, force, kind="dir")


def save_json(path: Optional[Path], obj, force: bool = False) -> None:
    if path is not None:
        from edgegen.io import commit, temp_path, write_json

        tmp = temp_path(path)
        try:
            write_json(tmp, obj)
            commit([(tmp, Path(path))], force)
        finally:
            tmp.unlink(missing_ok=True)
        console().print(f"wrote {path}")


def load_yaml_config(cls, path: Optional[Path], overrides: dict):
    """Build a pydantic config from an optional YAML file plus CLI overrides (CLI wins)."""
    from edgegen.config_io import load_config

    return load_config(cls, path, {k: v for k, v in overrides.items() if v is not None})
