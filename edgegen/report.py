"""Bench output for people: a rich table, a Markdown report and PNG plots (matplotlib)."""

from __future__ import annotations

from pathlib import Path


def fmt_bytes(n: int | None) -> str:
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
            r.update(
                acc=met["accuracy"]["value"],
                acc_ci=met["accuracy"]["ci"],
                mcc=met["mcc"]["value"],
                mcc_ci=met["mcc"]["ci"],
                f1=met["f1"]["value"],
                auroc=met["auroc"]["value"],
                recall=met["per_class_recall"],
                ece=met["ece"],
            )
        vb = m.get("vs_baseline", {})
        r.update(
            agree=vb.get("argmax_agreement"),
            d_acc=(vb.get("accuracy_delta") or {}).get("delta"),
            d_mcc=(vb.get("mcc_delta") or {}).get("delta"),
            d_mcc_ci=(vb.get("mcc_delta") or {}).get("ci"),
            size=m.get("size_bytes"),
            size_ratio=vb.get("size_ratio"),
            params=m.get("params"),
            macs=m.get("macs"),
            rss=m.get("peak_rss_mb"),
            rss_b1=m.get("peak_rss_b1_mb"),
            load_s=m.get("load_s"),
            tok_ms=m.get("tokenize_ms_per_seq"),
        )
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


def fmt_num(x, spec=".3f", dash="-"):
    return dash if x is None else format(x, spec)


def write_report(result: dict, out_dir: str | Path) -> Path:
    """Markdown summary + accuracy-vs-latency (Pareto front marked) and size plots (:mod:`edgegen.plots`)."""
    from edgegen.io import atomic_write_text, write_json
    from edgegen.plots import accuracy_vs_latency, size_bars

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rs = [r for r in rows(result) if not r["error"]]
    t1 = str(result["methodology"]["threads"][0])
    front = accuracy_vs_latency(rs, t1, out / "accuracy_vs_latency.png")
    size_bars(rs, out / "size.png", fmt_bytes)
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
    """The bench report in Markdown: the models side by side, genomic validity, the data check, the methodology."""
    parts = [
        _models_section(result, front_names),
        _validity_section(result),
        attack_section(result),
        _methodology_section(result),
    ]
    return "\n".join(line for part in parts for line in part)


def _models_section(result: dict, front_names) -> list[str]:
    m = result["methodology"]
    threads = [str(t) for t in m["threads"]]
    hm = result["host_machine"]
    lines = [
        f"# edgegen benchmark — {result['device']['name']}",
        "",
        f"Data: `{result['data']['path']}` ({result['data']['n']} sequences, class counts "
        f"{result['data']['class_counts']}, "
        f"~{result['data']['seq_len_nt']} nt). Reference model: "
        f"`{result.get('baseline_name', Path(result['baseline']).name)}`. Created {result['created']}.",
        "",
        "| model | quant | accuracy [95% CI] | MCC [95% CI] | ΔMCC vs ref [95% CI] | agreement | size | ×smaller | "
        + " | ".join(f"p50 ms {t}t | ×faster {t}t" for t in threads)
        + f" | seq/s {threads[-1]}t | peak RSS MB (batch 1 / all) |",
        "|---|---|---|---|---|---|---|---|" + "---|---|" * len(threads) + "---|---|",
    ]
    for r in rows(result):
        if r["error"]:
            lines.append(f"| {r['name']} | error: {r['error']} |")
            continue
        star = " ★" if r["name"] in front_names else ""
        dci = r["d_mcc_ci"]
        cells = [
            f"{r['name']}{star}",
            str(r["quant"]),
            f"{r['acc']:.3f} [{r['acc_ci'][0]:.3f}, {r['acc_ci'][1]:.3f}]",
            f"{r['mcc']:.3f} [{r['mcc_ci'][0]:.3f}, {r['mcc_ci'][1]:.3f}]",
            "-" if r["d_mcc"] is None else f"{r['d_mcc']:+.3f} [{dci[0]:+.3f}, {dci[1]:+.3f}]",
            fmt_num(r["agree"]),
            fmt_bytes(r["size"]),
            fmt_num(r["size_ratio"], ".1f"),
        ]
        for t in threads:
            cells += [fmt_num(r.get(f"p50_t{t}"), ".2f"), fmt_num(r.get(f"speedup_t{t}"), ".1f")]
        cells += [
            fmt_num(r.get(f"thr_t{threads[-1]}"), ".0f"),
            f"{fmt_num(r.get('rss_b1'), '.0f')} / {fmt_num(r['rss'], '.0f')}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if result.get("emulated"):
        lines += [
            "",
            f"Emulated device ({hm.get('machine')} under qemu-user): accuracy and agreement come from its outputs; "
            "no latency, throughput or memory is shown (timings under emulation mean nothing).",
            "",
        ]
    lines += [
        "",
        "★ = on the accuracy/latency Pareto front.",
        "",
        "![accuracy vs latency](accuracy_vs_latency.png)",
        "",
        "![size](size.png)",
        "",
    ]
    return lines


def _validity_section(result: dict) -> list[str]:
    lines: list[str] = []
    lines += [
        "## Genomic validity",
        "",
        "Same test set for every model. RC-consistency: how often a sequence and its reverse complement get the same "
        "class. "
        "Sequencing error: accuracy after simulated substitutions/insertions/deletions (equally likely) at each "
        "per-base rate, fixed seed.",
        "",
    ]
    rates = sorted({k for r in rows(result) for k in (r.get("err") or {})}, key=float)
    hdr = (
        "| model | per-class recall | ECE | RC-consistency | "
        + " | ".join(f"acc @ {float(k) * 100:g}% err" for k in rates)
        + " |"
    )
    lines += [hdr, "|---|---|---|---|" + "---|" * len(rates)]
    for r in rows(result):
        if r["error"] or "rc" not in r:
            continue
        rec = ", ".join(f"{x:.3f}" for x in r["recall"])
        lines.append(
            f"| {r['name']} | {rec} | {r['ece']:.3f} | {r['rc']:.3f} | "
            + " | ".join(f"{r['err'][k]:.3f}" for k in rates)
            + " |"
        )
    dc = result.get("data_check")
    if dc and "warnings" in dc:
        lines += ["", "### Data check", ""]
        lines += [f"- {w}" for w in dc["warnings"]] or ["- no leakage or length warnings"]
    return lines


def attack_section(result: dict) -> list[str]:
    """The adversarial check (``bench --attack ism``), when it ran: flips at k edits, per model."""
    done = [m for m in result["models"] if m.get("attack")]
    if not done:
        return []
    k = done[0]["attack"]["max_edits"]
    lines = [
        "## Adversarial check (greedy in-silico mutagenesis)",
        "",
        f"Correctly called test sequences (a sample, the same for every model); each step tries every single-base "
        f"substitution and keeps the one that lowers the true class's margin most. Share of calls flipped with at "
        f"most k substitutions, k = 1…{k}; lower is harder to fool.",
        "",
        "| model | n | " + " | ".join(f"k={i}" for i in range(1, k + 1)) + " | median edits (flipped) |",
        "|---|---|" + "---|" * (k + 1),
    ]
    for m in done:
        a = m["attack"]
        med = "-" if a["median_edits"] is None else f"{a['median_edits']:g}"
        lines.append(f"| {m['name']} | {a['n']} | " + " | ".join(f"{x:.0%}" for x in a["success_at_k"]) + f" | {med} |")
    return lines + [""]


def _methodology_section(result: dict) -> list[str]:
    m, hm = result["methodology"], result["host_machine"]
    lines: list[str] = []
    lines += [
        "",
        "## Methodology",
        "",
        f"- {m['process']}; {m['warmup_runs']} warm-up runs then {m['timed_runs']} timed runs at batch 1 "
        "(p50/p90/p99); "
        f"throughput at batch {m['throughput_batch']} (fixed-batch TFLite files run their own batch in a loop); "
        f"threads {m['threads']}.",
        f"- Accuracy, F1, MCC, AUROC with {m['bootstrap_resamples']} bootstrap resamples; Δ vs the reference from "
        "paired resamples.",
        "- Peak RSS (VmHWM of the measuring process): after load + batch-1 runs, and after everything (incl. the "
        "batch throughput run); "
        "it includes the runtime's own import.",
        "- Tokenization time is separate from model time: "
        + ", ".join(f"{r['name']} {r['tok_ms']:.3f} ms/seq" for r in rows(result) if r.get("tok_ms") is not None)
        + ".",
        f"- Machine: {hm.get('cpu', hm['machine'])}{_cpu_detail(hm)}, {hm.get('cpu_count', '?')} cores, "
        f"{hm['system']}, Python {hm['python']}" + (" (emulated)" if hm.get("emulated") else "") + ".",
        f"- {m['note']}",
        "",
    ]
    vers = {}
    for mm in result["models"]:
        vers.update(mm.get("versions", {}))
    if vers:
        lines += ["Runtime versions: " + ", ".join(f"{k} {v}" for k, v in vers.items() if k not in ("providers",)), ""]
    return lines
