"""``edgegen run``: a whole recipe through the pipeline engine."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgegen.commands import app, console


@app.command()
def run(
    recipe: Path = typer.Argument(..., help="Recipe YAML (see recipes/)."),
    set_: Optional[List[str]] = typer.Option(
        None, "--set", help="Override a field: key=value (dotted keys, e.g. steps.0.epochs=2)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved plan and what is cached; run nothing."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (instead of the recipe's out)."),
):
    """Run a whole pipeline: train -> prune -> distill -> export -> bench -> report. Reruns skip unchanged stages."""
    from edgegen.recipe import dry_run as _dry_run
    from edgegen.recipe import load_recipe, run_recipe

    r = load_recipe(recipe, set_ or [])
    if out is not None:
        r = r.model_copy(update={"out": str(out)})
    con = console()
    if dry_run:
        from edgegen.tables import plan_table

        con.print_json(r.model_dump_json())
        con.print(plan_table(r, _dry_run(r)))
        return
    import time as _time

    t0 = _time.perf_counter()

    def on_stage(name, status):
        if status == "cached":
            con.print(f"[dim]- {name}: cached[/dim]")
        elif status == "running":
            con.print(f"[bold]> {name}[/bold]")

    summary = run_recipe(r, on_stage=on_stage)
    if summary:
        from edgegen.tables import summary_table

        con.print(summary_table(summary))
        if summary.get("best"):
            b = summary["best"]
            con.print(
                f"best within 1 pp of the teacher: [bold]{b['name']}[/bold] - {b['size_ratio']:.1f}x smaller, "
                f"{b['latency_ratio_t1']:.1f}x faster (batch 1, 1 thread), accuracy {b['accuracy_delta_pp']:+.2f} pp"
            )
        con.print(f"report: {summary['report']}  (summary: {Path(r.out) / 'report' / 'summary.json'})")
    con.print(f"done in {_time.perf_counter() - t0:.1f} s")
