"""Every table the commands print (rich): evaluation metrics, the bench side by side, pruning, exports, a recipe's
plan and its summary. Printed to a pipe or a file they keep their full width (:func:`edgegen.commands.console`)."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from edgegen.report import fmt_bytes, fmt_num, rows


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


def bench_table(result: dict) -> Table:
    threads = [str(t) for t in result["methodology"]["threads"]]
    t = Table(
        title=f"edgegen bench on {result['device']['name']} - {result['data']['n']} sequences "
        f"(reference: {result.get('baseline_name', Path(result['baseline']).name)})"
    )
    cols = ["model", "acc [95% CI]", "MCC", "ΔMCC", "agree", "size", "×smaller"]
    for th in threads:
        cols += [f"p50 ms ({th}t)", f"×faster ({th}t)"]
    cols += [f"seq/s ({threads[-1]}t)", "RSS MB (b1)", "RC-cons", "acc@5% err"]
    for c in cols:
        t.add_column(c, justify="left" if c == "model" else "right")
    for r in rows(result):
        if r["error"]:
            t.add_row(r["name"], f"[red]error: {r['error'][:60]}[/red]", *[""] * (len(cols) - 2))
            continue
        cells = [
            f"{r['name']} ({r['quant']})",
            f"{r['acc']:.3f} [{r['acc_ci'][0]:.3f},{r['acc_ci'][1]:.3f}]",
            fmt_num(r["mcc"]),
            fmt_num(r["d_mcc"], "+.3f"),
            fmt_num(r["agree"], ".3f"),
            fmt_bytes(r["size"]),
            fmt_num(r["size_ratio"], ".1f"),
        ]
        for th in threads:
            cells += [fmt_num(r.get(f"p50_t{th}"), ".2f"), fmt_num(r.get(f"speedup_t{th}"), ".1f")]
        cells += [
            fmt_num(r.get(f"thr_t{threads[-1]}"), ".0f"),
            fmt_num(r.get("rss_b1"), ".0f"),
            fmt_num(r.get("rc")),
            fmt_num((r.get("err") or {}).get("0.05")),
        ]
        t.add_row(*cells)
    return t


def attack_table(result: dict) -> Table | None:
    """The adversarial check of a bench result (``--attack ism``), or None when it did not run."""
    done = [m for m in result["models"] if m.get("attack")]
    if not done:
        return None
    k = done[0]["attack"]["max_edits"]
    t = Table(title="calls flipped by at most k substitutions (greedy ISM; lower is harder to fool)")
    for c in ["model", "n", *[f"k={i}" for i in range(1, k + 1)], "median edits"]:
        t.add_column(c, justify="left" if c == "model" else "right")
    for m in done:
        a = m["attack"]
        med = "-" if a["median_edits"] is None else f"{a['median_edits']:g}"
        t.add_row(m["name"], str(a["n"]), *[f"{x:.0%}" for x in a["success_at_k"]], med)
    return t


# ----------------------------------------------------------------------------- console tables of the commands
def prune_table(rep: dict) -> Table:
    """Before/after of a pruning report."""
    t = Table(title=f"pruning at {rep['seq_len']} tokens")
    t.add_column("")
    t.add_column("before", justify="right")
    t.add_column("after", justify="right")
    t.add_column("ratio", justify="right")
    b, a = rep["before"], rep["after"]
    t.add_row("params", f"{b['params']:,}", f"{a['params']:,}", f"{a['params'] / b['params']:.3f}")
    t.add_row("MACs / sequence", f"{b['macs']:,}", f"{a['macs']:,}", f"{a['macs'] / b['macs']:.3f}")
    t.add_row(
        "file bytes",
        f"{rep['size_before']:,}",
        f"{rep['size_after']:,}",
        f"{rep['size_after'] / rep['size_before']:.3f}",
    )
    if "d_model" in b:
        t.add_row("hidden width", str(b["d_model"]), str(a["d_model"]), f"{a['d_model'] / b['d_model']:.3f}")
    t.add_row("layers", str(b["layers"]), str(a["layers"]), "")
    t.add_row("heads per layer", str(b["heads"]), str(a["heads"]), "")
    t.add_row("FFN per layer", str(b["ffn"]), str(a["ffn"]), "")
    return t


def search_table(rep: dict) -> Table:
    """The candidates of a shape search (edgegen.shape_search), best first, and where their times come from."""
    ct = rep["cost_table"]
    t = Table(title=f"shapes under {rep['budget']}; times from {ct['measured_on']}, {ct['runtime']}")
    for col in ("layers", "width", "heads", "FFN", "params", "est. ms", "measured ms", "est. MB", "dev MCC", ""):
        t.add_column(col, justify="right")
    for c in rep["candidates"]:
        ms = "—" if c.get("measured_ms") is None else f"{c['measured_ms']:.3g}"
        mark = "over budget" if c.get("measured_ms") is not None and not c.get("meets_budget") else ""
        t.add_row(
            str(c["n_layers"]), str(c["d_model"]), str(c["heads"]), str(c["ffn"]), f"{c['params']:,}",
            f"{c['estimated_ms']:.3g}", ms, f"{c['estimated_size_mb']:.3g}", f"{c['dev_mcc']:.3f}",
            "chosen" if c == rep["chosen"] else mark,
        )  # fmt: skip
    return t


def export_table(result, cfg) -> Table:
    """What an export wrote and how it verified (an :class:`edgegen.export.ExportResult`)."""
    path, side = result.path, result.sidecar
    v = side["verification"]
    t = Table(title=f"{path} ({cfg.format}, quant={cfg.quant})")
    t.add_column("check")
    t.add_column("value", justify="right")
    t.add_row("file bytes", f"{path.stat().st_size:,}")
    if side.get("external_data"):
        t.add_row("external weights", f"{side['external_data']['file']} ({side['external_data']['bytes']:,} bytes)")
    t.add_row("max |logit diff| vs torch", f"{v['max_abs_diff']:.3g}")
    t.add_row("argmax agreement", f"{100 * v['argmax_agreement']:.2f}% of {v['n']}")
    if "accuracy" in v:
        t.add_row(
            "accuracy torch -> export",
            f"{v['torch_accuracy']:.4f} -> {v['accuracy']:.4f} ({-v['accuracy_drop_pp']:+.2f} pp)",
        )
    if side.get("kept_float"):
        t.add_row("kept in float", ", ".join(side["kept_float"]))
    if "weight_scales" in v:
        w = v["weight_scales"]
        if "per_tensor" in w:
            t.add_row(
                "weight scales",
                f"{w['chosen']} (per-tensor {w['per_tensor']['bytes']:,} B, per-channel {w['per_channel']['bytes']:,} "
                "B)",
            )
        else:
            t.add_row("weight scales", f"{w['chosen']} ({w['rule']})")
    t.add_row("implementation", side["quant_impl"] or "")
    return t


def plan_table(recipe, plan_rows: list[dict]) -> Table:
    """A recipe's stages, their keys and whether each is cached (``edgegen run --dry-run``)."""
    t = Table(title=f"plan for {recipe.name} -> {recipe.out}")
    for c in ("stage", "input hash", "status"):
        t.add_column(c)
    for row in plan_rows:
        t.add_row(row["stage"], row["key"], "cached" if row["cached"] else "to run")
    return t


def summary_table(summary: dict) -> Table:
    """A run's compressed models against its teacher (``edgegen run``)."""
    t = Table(title=f"{summary['recipe']}: compressed models vs the teacher ({summary['teacher']})")
    for c in ("model", "quant", "acc", "Δacc pp", "MCC", "ΔMCC", "size", "×smaller", "p50 ms (1t)", "×faster (1t)"):
        t.add_column(c, justify="right" if c not in ("model", "quant") else "left")
    tm = summary["teacher_metrics"]
    t.add_row(
        "teacher",
        "fp32",
        f"{tm['accuracy']:.3f}",
        "",
        f"{tm['mcc']:.3f}",
        "",
        f"{tm['size_bytes'] / 1024:.0f} KB",
        "1.0",
        f"{tm['p50_ms_t1']:.2f}" if tm.get("p50_ms_t1") else "-",
        "1.0",
    )
    for m in summary["models"]:
        t.add_row(
            m["name"],
            str(m["quant"]),
            f"{m['accuracy']:.3f}",
            f"{m['accuracy_delta_pp']:+.2f}",
            f"{m['mcc']:.3f}",
            f"{m['mcc_delta']:+.3f}",
            f"{m['size_bytes'] / 1024:.0f} KB",
            f"{m['size_ratio']:.1f}",
            f"{m['p50_ms_t1']:.2f}" if m.get("p50_ms_t1") else "-",
            f"{m['latency_ratio_t1']:.1f}" if m.get("latency_ratio_t1") else "-",
        )
    return t
