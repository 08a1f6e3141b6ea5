"""rich tables for results."""

from __future__ import annotations

from rich.table import Table


def fmt_ci(m: dict) -> str:
    return f"{m['value']:.3f} [{m['ci'][0]:.3f}, {m['ci'][1]:.3f}]"


def metrics_table(rep: dict, title: str = "evaluation") -> Table:
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value [95% CI]", justify="right")
    for m in ("accuracy", "f1", "mcc", "auroc"):
        if m in rep:
            t.add_row(m, fmt_ci(rep[m]))
    if "per_class_recall" in rep:
        for c, r in enumerate(rep["per_class_recall"]):
            t.add_row(f"recall class {c} (n={rep['class_counts'][c]})", f"{r:.3f}")
    if "ece" in rep:
        t.add_row("ECE", f"{rep['ece']:.3f}")
    return t
