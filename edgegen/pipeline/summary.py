"""A run's summary: the teacher against every compressed model, from the bench results, and the best one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def summarize(recipe, run_dir: Path) -> dict | None:
    """Teacher vs every benched model (and the fastest within 1 pp accuracy); None when the run has no bench."""
    bj = run_dir / "bench" / "bench.json"
    if not bj.exists():
        return None
    res = json.loads(bj.read_text())
    rep_dir = run_dir / "report"
    rep_dir.mkdir(exist_ok=True)
    for f in (run_dir / "bench").iterdir():
        if f.suffix in (".md", ".png", ".json") and f.name != "stage.json":
            shutil.copy2(f, rep_dir / f.name)
    from edgegen.report import rows

    rs = [x for x in rows(res) if not x["error"]]
    teacher = rs[0]
    t1 = str(res["methodology"]["threads"][0])
    summary = {"recipe": recipe.name, "run_dir": str(run_dir), "teacher": teacher["name"], "models": []}
    for x in rs[1:]:
        summary["models"].append(
            {
                "name": x["name"],
                "backend": x["backend"],
                "quant": x["quant"],
                "accuracy": x["acc"],
                "mcc": x["mcc"],
                "accuracy_delta_pp": 100 * (x["acc"] - teacher["acc"]),
                "mcc_delta": x["mcc"] - teacher["mcc"],
                "mcc_delta_ci": x["d_mcc_ci"],
                "size_bytes": x["size"],
                "size_ratio": x["size_ratio"],
                "latency_ratio_t1": x.get(f"speedup_t{t1}"),
                "p50_ms_t1": x.get(f"p50_t{t1}"),
                "rc_consistency": x.get("rc"),
            }
        )
    ok = [m for m in summary["models"] if m["accuracy_delta_pp"] >= -1.0]
    if ok:
        summary["best"] = max(ok, key=lambda m: m["latency_ratio_t1"] or 0)
    summary["teacher_metrics"] = {
        "accuracy": teacher["acc"],
        "mcc": teacher["mcc"],
        "size_bytes": teacher["size"],
        "p50_ms_t1": teacher.get(f"p50_t{t1}"),
    }
    summary["report"] = str(rep_dir / "report.md")
    return summary


def brief(rep: dict | None) -> dict | None:
    """The headline metrics of a classification report, for stage.json."""
    if not rep:
        return None
    return {k: rep[k]["value"] for k in ("accuracy", "mcc", "f1", "auroc") if k in rep}
