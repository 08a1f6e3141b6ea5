"""``status.html``: what a field user reads during a run, with no server and no network (it reloads itself), and
``status.json``, the same numbers for tools. Device-side (standard library)."""

from __future__ import annotations

import html
import time

STATE_WORDS = {
    "ok": "The reads look like the ones the model was checked on.",
    "warn": "The reads differ a little from the ones the model was checked on; keep an eye on it.",
    "drift": "The reads differ from the ones the model was checked on: its calls may be wrong. Check the sample.",
    None: "Not enough reads yet to compare with the reference.",
}
COLOURS = {"ok": "#1a7f37", "warn": "#9a6700", "drift": "#cf222e", None: "#57606a"}


def summarise(w) -> dict:
    """The numbers of a :class:`edgegen.watch.Watch` so far."""
    files = w.ckpt["files"]
    done = [e for e in files.values() if e.get("status") == "done"]
    reads = sum(e["reads"] for e in done)
    k = w.runner.num_classes
    barcodes: dict[str, list[int]] = {}
    for e in done:
        c = barcodes.setdefault(e["barcode"], [0] * k)
        for i, x in enumerate(e.get("counts", [])):
            c[i] += x
    busy = w.ckpt.get("busy_s", 0.0)
    stamps = [e["mtime_ns"] / 1e9 for e in done if e["reads"]]
    span = (max(stamps) - min(stamps)) if len(stamps) > 1 else 0.0
    keep = {
        "classified_reads_per_s": reads / busy if busy else None,
        "arriving_reads_per_s": reads / span if span else None,
    }
    if keep["classified_reads_per_s"] and keep["arriving_reads_per_s"]:
        keep["keeping_up"] = keep["classified_reads_per_s"] >= keep["arriving_reads_per_s"]
    last = w.drift_last
    return {
        "schema": "edgegen-watch/1",
        "updated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "run_dir": w.run_dir,
        "model_version": w.version,
        "model_sha256": w.sha,
        "files_done": len(done),
        "files_bad": {rel: e["why"] for rel, e in files.items() if e.get("status") == "bad"},
        "reads": reads,
        "barcodes": barcodes,
        "keep_up": keep,
        "drift": {"state": last["state"], "reasons": last["reasons"], "chunk": last["chunk"]} if last else None,
        "stopped": w.stop_reason,
    }


def render_html(s: dict) -> str:
    e = html.escape
    state = (s["drift"] or {}).get("state")
    reasons = "".join(f"<li>{e(r)}</li>" for r in (s["drift"] or {}).get("reasons", []))
    k = max((len(c) for c in s["barcodes"].values()), default=0)
    head = "".join(f"<th>class {i}</th>" for i in range(k))
    rows = "".join(
        f"<tr><td>{e(b)}</td>" + "".join(f"<td class=n>{x}</td>" for x in c) + f"<td class=n>{sum(c)}</td></tr>"
        for b, c in sorted(s["barcodes"].items())
    )
    ku = s["keep_up"]
    fmt = lambda x: "–" if x is None else f"{x:,.1f}"  # noqa: E731
    keeping = {True: "yes", False: "no, falling behind", None: "not measured yet"}[ku.get("keeping_up")]
    refresh = "" if s["stopped"] else '<meta http-equiv="refresh" content="5">'
    bad = "".join(f"<li>{e(f)}: {e(w)}</li>" for f, w in s["files_bad"].items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{refresh}<title>edgegen watch: {s["reads"]} reads</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}td,th{{padding:.3em .8em;border-bottom:1px solid #ddd}}
.n{{text-align:right}}.state{{color:#fff;background:{COLOURS[state]};padding:.5em 1em;border-radius:.3em}}</style>
</head><body>
<h1>Live classification</h1>
<p id="reads"><b>{s["reads"]:,}</b> reads classified from {s["files_done"]} files (updated {e(s["updated"])}).</p>
<p class="state" id="drift-state" data-state="{e(str(state))}">{e(STATE_WORDS[state])}</p>
<ul id="drift-reasons">{reasons}</ul>
<h2>Reads per barcode and class</h2>
<table id="counts"><tr><th>barcode</th>{head}<th>total</th></tr>{rows}</table>
<h2>Keeping up</h2>
<p id="keep-up">Classified {fmt(ku["classified_reads_per_s"])} reads/s;
arriving {fmt(ku["arriving_reads_per_s"])} reads/s; keeping up: {keeping}.</p>
{f"<h2>Files that could not be read</h2><ul>{bad}</ul>" if bad else ""}
<p>Model version {e(str(s["model_version"]))}, sha256 <code>{e(str(s["model_sha256"])[:16])}</code>.
{e("Stopped: " + s["stopped"]) if s["stopped"] else "Watching " + e(s["run_dir"])}</p>
</body></html>
"""
