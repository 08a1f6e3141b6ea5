"""The ``edgegen`` commands (typer): each one only turns options into a config, calls one library function and prints
its result through :mod:`edgegen.report`. ``models`` (train, evaluate, prune, distill, teacher-logits, import),
``deploy`` (export, bench, devices, bundle, predict), ``pipeline`` (run). The entry point is
:func:`edgegen.cli.main`."""

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
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
):
    """edgegen: small, fast genomic transformers for field devices."""


LOG_WIDTH = 240  # columns for tables printed to a pipe or file (rich would cut them to 80 and names to "dist…")


def console():
    """The console tables print to: the terminal's width, or, when stdout is a pipe or file (CI logs, ``| tee``)
    and COLUMNS does not say otherwise, wide enough that no table is cut."""
    import os
    import sys

    from rich.console import Console

    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        return Console(width=LOG_WIDTH)
    return Console()


def check_outputs(force: bool, *files: Optional[Path], folder: Optional[Path] = None, inputs: tuple = ()) -> None:
    """Before any work: refuse outputs that exist (without --force), cannot be written, or are among ``inputs`` (or an
    input model's sidecar)."""
    from edgegen.io import check_output

    for f in files:
        if f is not None:
            check_output(f, force, kind="file", inputs=inputs)
    if folder is not None:
        check_output(folder, force, kind="dir", inputs=inputs)


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
