"""Bench output for people: a rich table, a Markdown report and PNG plots (matplotlib)."""

from __future__ import annotations

from pathlib import Path

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


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def rows(result: dict) -> list[dict]:
    """One flat row per model: what the table, the Markdown and summary.json show."""
    threads = [str(t) for t in result["methodology"]["threads"]]
    out = []
    for m in result["models"]:
        r = {"name": m["name"], "backend": m["backend"], "quant": m.get("quant"), "error": m.get("error")}
        if "metrics" in m:
            met = m["metrics"]
            r.update(acc=met["accuracy"]["value"], acc_ci=met["accuracy"]["ci"], mcc=met["mcc"]["value"], mcc_ci=met["mcc"]["ci"],
                     f1=met["f1"]["value"], auroc=met["auroc"]["value"], recall=met["per_class_recall"], ece=met["ece"])
        vb = m.get("vs_baseline", {})
        r.update(agree=vb.get("argmax_agreement"), d_acc=(vb.get("accuracy_delta") or {}).get("delta"),
                 d_mcc=(vb.get("mcc_delta") or {}).get("delta"), d_mcc_ci=(vb.get("mcc_delta") or {}).get("ci"),
                 size=m.get("size_bytes"), size_ratio=vb.get("size_ratio"), params=m.get("params"), macs=m.get("macs"),
                 rss=m.get("peak_rss_mb"), rss_b1=m.get("peak_rss_b1_mb"), load_s=m.get("load_s"), tok_ms=m.get("tokenize_ms_per_seq"))
        for t in threads:
            tm = m.get("timing", {}).get(t)
            if tm:
                r[f"p50_t{t}"] = tm["latency_b1"]["p50_ms"]
                r[f"p99_t{t}"] = tm["latency_b1"]["p99_ms"]
                r[f"thr_t{t}"] = tm["throughput"]["seq_per_s"]
                r[f"speedup_t{t}"] = vb.get(f"speedup_b1_t{t}")
        if "validity" in m:
            v = m["validity"]
            r["rc"] = v.get("rc_consistency")
            r["err"] = {k: x["accuracy"] for k, x in v.get("sequencing_error", {}).items()}
        out.append(r)
    return out


def _f(x, spec=".3f", dash="-"):
    return dash if x is None else format(x, spec)


def bench_table(result: dict) -> Table:
    threads = [str(t) for t in result["methodology"]["threads"]]
    t = Table(title=f"edgegen bench on {result['device']['name']} - {result['data']['n']} sequences (reference: {result.get('baseline_name', Path(result['baseline']).name)})")
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
        cells = [f"{r['name']} ({r['quant']})", f"{r['acc']:.3f} [{r['acc_ci'][0]:.3f},{r['acc_ci'][1]:.3f}]", _f(r["mcc"]),
                 _f(r["d_mcc"], "+.3f"), _f(r["agree"], ".3f"), _fmt_bytes(r["size"]), _f(r["size_ratio"], ".1f")]
        for th in threads:
            cells += [_f(r.get(f"p50_t{th}"), ".2f"), _f(r.get(f"speedup_t{th}"), ".1f")]
        cells += [_f(r.get(f"thr_t{threads[-1]}"), ".0f"), _f(r.get("rss_b1"), ".0f"), _f(r.get("rc")), _f((r.get("err") or {}).get("0.05"))]
        t.add_row(*cells)
    return t


def write_report(result: dict, out_dir: str | Path) -> Path:
    """Markdown summary + accuracy-vs-latency (Pareto front marked) and size plots (:mod:`edgegen.plots`)."""
    from edgegen.io import atomic_write_text, write_json
    from edgegen.plots import accuracy_vs_latency, size_bars

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rs = [r for r in rows(result) if not r["error"]]
    t1 = str(result["methodology"]["threads"][0])
    front = accuracy_vs_latency(rs, t1, out / "accuracy_vs_latency.png")
    size_bars(rs, out / "size.png", _fmt_bytes)
    atomic_write_text(out / "report.md", markdown(result, front_names=[rs[i]["name"] for i in front]))
    write_json(out / "bench.json", result)
    return out


def _cpu_detail(machine: dict) -> str:
    """The CPU's family, model and int8 features, e.g. ' (family 26 model 2; int8 features: avx2, avx512_vnni)':
    which int8 kernels the numbers came from."""
    parts = []
    if "cpu_family" in machine:
        parts.append(f"family {machine['cpu_family']} model {machine.get('cpu_model', '?')}")
    if "int8_features" in machine:
        parts.append("int8 features: " + (", ".join(machine["int8_features"]) or "none"))
    return f" ({'; '.join(parts)})" if parts else ""


def markdown(result: dict, front_names: list[str] = ()) -> str:
    m = result["methodology"]
    threads = [str(t) for t in m["threads"]]
    hm = result["host_machine"]
    lines = [
        f"# edgegen benchmark — {result['device']['name']}",
        "",
        f"Data: `{result['data']['path']}` ({result['data']['n']} sequences, class counts {result['data']['class_counts']}, "
        f"~{result['data']['seq_len_nt']} nt). Reference model: `{result.get('baseline_name', Path(result['baseline']).name)}`. Created {result['created']}.",
        "",
        "| model | quant | accuracy [95% CI] | MCC [95% CI] | ΔMCC vs ref [95% CI] | agreement | size | ×smaller | "
        + " | ".join(f"p50 ms {t}t | ×faster {t}t" for t in threads) + f" | seq/s {threads[-1]}t | peak RSS MB (batch 1 / all) |",
        "|---|---|---|---|---|---|---|---|" + "---|---|" * len(threads) + "---|---|",
    ]
    for r in rows(result):
        if r["error"]:
            lines.append(f"| {r['name']} | error: {r['error']} |")
            continue
        star = " ★" if r["name"] in front_names else ""
        dci = r["d_mcc_ci"]
        cells = [f"{r['name']}{star}", str(r["quant"]), f"{r['acc']:.3f} [{r['acc_ci'][0]:.3f}, {r['acc_ci'][1]:.3f}]",
                 f"{r['mcc']:.3f} [{r['mcc_ci'][0]:.3f}, {r['mcc_ci'][1]:.3f}]",
                 "-" if r["d_mcc"] is None else f"{r['d_mcc']:+.3f} [{dci[0]:+.3f}, {dci[1]:+.3f}]", _f(r["agree"]),
                 _fmt_bytes(r["size"]), _f(r["size_ratio"], ".1f")]
        for t in threads:
            cells += [_f(r.get(f"p50_t{t}"), ".2f"), _f(r.get(f"speedup_t{t}"), ".1f")]
        cells += [_f(r.get(f"thr_t{threads[-1]}"), ".0f"), f"{_f(r.get('rss_b1'), '.0f')} / {_f(r['rss'], '.0f')}"]
        lines.append("| " + " | ".join(cells) + " |")
    if result.get("emulated"):
        lines += ["", f"Emulated device ({hm.get('machine')} under qemu-user): accuracy and agreement come from its outputs; "
                  "no latency, throughput or memory is shown (timings under emulation mean nothing).", ""]
    lines += ["", "★ = on the accuracy/latency Pareto front.", "", "![accuracy vs latency](accuracy_vs_latency.png)", "", "![size](size.png)", ""]
    lines += ["## Genomic validity", "",
              "Same test set for every model. RC-consistency: how often a sequence and its reverse complement get the same class. "
              "Sequencing error: accuracy after simulated substitutions/insertions/deletions (equally likely) at each per-base rate, fixed seed.", ""]
    rates = sorted({k for r in rows(result) for k in (r.get("err") or {})}, key=float)
    hdr = "| model | per-class recall | ECE | RC-consistency | " + " | ".join(f"acc @ {float(k) * 100:g}% err" for k in rates) + " |"
    lines += [hdr, "|---|---|---|---|" + "---|" * len(rates)]
    for r in rows(result):
        if r["error"] or "rc" not in r:
            continue
        rec = ", ".join(f"{x:.3f}" for x in r["recall"])
        lines.append(f"| {r['name']} | {rec} | {r['ece']:.3f} | {r['rc']:.3f} | " + " | ".join(f"{r['err'][k]:.3f}" for k in rates) + " |")
    dc = result.get("data_check")
    if dc and "warnings" in dc:
        lines += ["", "### Data check", ""]
        lines += [f"- {w}" for w in dc["warnings"]] or ["- no leakage or length warnings"]
    lines += ["", "## Methodology", "",
              f"- {m['process']}; {m['warmup_runs']} warm-up runs then {m['timed_runs']} timed runs at batch 1 (p50/p90/p99); "
              f"throughput at batch {m['throughput_batch']} (fixed-batch TFLite files run their own batch in a loop); threads {m['threads']}.",
              f"- Accuracy, F1, MCC, AUROC with {m['bootstrap_resamples']} bootstrap resamples; Δ vs the reference from paired resamples.",
              "- Peak RSS (VmHWM of the measuring process): after load + batch-1 runs, and after everything (incl. the batch throughput run); "
              "it includes the runtime's own import.",
              "- Tokenization time is separate from model time: "
              + ", ".join(f"{r['name']} {r['tok_ms']:.3f} ms/seq" for r in rows(result) if r.get("tok_ms") is not None) + ".",
              f"- Machine: {hm.get('cpu', hm['machine'])}{_cpu_detail(hm)}, {hm.get('cpu_count', '?')} cores, {hm['system']}, Python {hm['python']}"
              + (" (emulated)" if hm.get("emulated") else "") + ".",
              f"- {m['note']}", ""]
    vers = {}
    for mm in result["models"]:
        vers.update(mm.get("versions", {}))
    if vers:
        lines += ["Runtime versions: " + ", ".join(f"{k} {v}" for k, v in vers.items() if k not in ("providers",)), ""]
    return "\n".join(lines)


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
    t.add_row("file bytes", f"{rep['size_before']:,}", f"{rep['size_after']:,}", f"{rep['size_after'] / rep['size_before']:.3f}")
    t.add_row("layers", str(b["layers"]), str(a["layers"]), "")
    t.add_row("heads per layer", str(b["heads"]), str(a["heads"]), "")
    t.add_row("FFN per layer", str(b["ffn"]), str(a["ffn"]), "")
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
        t.add_row("accuracy torch -> export", f"{v['torch_accuracy']:.4f} -> {v['accuracy']:.4f} ({-v['accuracy_drop_pp']:+.2f} pp)")
    if side.get("kept_float"):
        t.add_row("kept in float", ", ".join(side["kept_float"]))
    if "weight_scales" in v:
        w = v["weight_scales"]
        if "per_tensor" in w:
            t.add_row("weight scales", f"{w['chosen']} (per-tensor {w['per_tensor']['bytes']:,} B, per-channel {w['per_channel']['bytes']:,} B)")
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
    t.add_row("teacher", "fp32", f"{tm['accuracy']:.3f}", "", f"{tm['mcc']:.3f}", "", f"{tm['size_bytes'] / 1024:.0f} KB", "1.0",
              f"{tm['p50_ms_t1']:.2f}" if tm.get("p50_ms_t1") else "-", "1.0")
    for m in summary["models"]:
        t.add_row(m["name"], str(m["quant"]), f"{m['accuracy']:.3f}", f"{m['accuracy_delta_pp']:+.2f}", f"{m['mcc']:.3f}",
                  f"{m['mcc_delta']:+.3f}", f"{m['size_bytes'] / 1024:.0f} KB", f"{m['size_ratio']:.1f}",
                  f"{m['p50_ms_t1']:.2f}" if m.get("p50_ms_t1") else "-", f"{m['latency_ratio_t1']:.1f}" if m.get("latency_ratio_t1") else "-")
    return t
