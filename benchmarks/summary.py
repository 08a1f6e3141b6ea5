#!/usr/bin/env python3
"""One row per dataset from benchmarks/compare.py results: the issue's targets side by side.

python benchmarks/summary.py benchmarks/results/*-vm-*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(r: dict) -> str:
    t = r["targets"]
    teacher = r["bench"]["models"][0]["metrics"]
    dist = r.get("distilled_vs_label_trained") or {
        "half": {"distilled_minus_labels": r["distilled_vs_label_trained_student"]}
    }

    def ci(d):
        return f"{d['delta']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]" if d else "not measured"

    def kd(name):
        d = dist.get(name)
        if not d:
            return "not measured"
        return f"{ci(d.get('teacher_minus_labels'))}; {ci(d['distilled_minus_labels'])}"

    thr = (t.get("throughput") or {}).get("edgegen")
    if thr is None:  # runs before batch-64 TFLite copies: best edgegen int8 row (TFLite there loops batch-1 calls)
        ours = [
            m
            for m in r["bench"]["models"]
            if m["name"].startswith("distill")
            and m.get("peak_fraction") is not None
            and ("int8" in str(m["quant"]) or m["quant"] == "dynamic")
        ]
        if ours:
            m = max(ours, key=lambda m: m["peak_fraction"])
            thr = {"model": m["name"] + ", no batch-64 TFLite", "peak_fraction": m["peak_fraction"]}
    cells = [
        Path(r["data"]).name,
        f"{teacher['accuracy']['value']:.3f} / {teacher['mcc']['value']:.3f}",
        f"{r['teacher_minus_kmer4_lr_mcc']:+.3f}",
        f"{t['best_model']} ({t['accuracy_delta_pp']:+.2f} pp)",
        f"{t['speedup_vs_torch_fp32']:.1f}×",
        f"{t['speedup_vs_best_posthoc_int8']:.1f}× ({t['best_posthoc']})",
        f"{t['size_ratio_vs_teacher']:.1f}×",
        kd("half"),
        kd("quarter"),
        kd("half-m2"),
        f"{100 * thr['peak_fraction']:.0f}% ({thr['model']})" if thr else "not measured",
    ]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str]) -> int:
    files = [Path(a) for a in argv] or sorted((Path(__file__).parent / "results").glob("*-vm-*.json"))
    print(
        "| dataset | teacher acc / MCC | teacher − 4-mer LR, MCC | best edgegen int8 within 1 pp "
        "| ×faster than torch fp32 (goal 20) | × vs best post-hoc int8 (goal 4) | × smaller (goal 20) "
        "| half 2×d64, ΔMCC [95% CI]: teacher − label-trained; distilled − label-trained | quarter 2×d32, the same | half-m2 (2×d64, token pairs merged), the same "
        "| best edgegen int8 batch-64, % of int8 peak (goal 40) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for f in files:
        r = json.loads(f.read_text())
        if r.get("smoke") or not r.get("targets", {}).get("best_model"):
            continue
        print(row(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
