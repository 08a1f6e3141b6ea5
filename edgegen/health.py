"""A release's health check, run on the device before it becomes current (numpy + the model's runtime).

A deployable bundle carries ``acceptance.npz``: tokenized acceptance reads (``ids``), their reverse complements
(``rc_ids``), true labels when known (``labels``), and the logits the host computed for them with the same file
(``expected``). ``MANIFEST.json``'s ``acceptance`` records the budgets fixed at bundle time from the export's own
(``min_agreement``; ``max_drop`` or 1 pp for accuracy and reverse-complement consistency). The device recomputes
the outputs and checks: argmax agreement with the host, accuracy and RC consistency no more than the budget below the
host's, and (when the device profile sets one) the median batch-1 latency within its limit.
"""

from __future__ import annotations

import os
import time

import numpy as np

ACCEPTANCE = "acceptance.npz"
LATENCY_RUNS = 15


def rc_consistency(a: np.ndarray, b: np.ndarray) -> float:
    """The fraction of reads whose class is the same on both strands."""
    return float((a.argmax(1) == b.argmax(1)).mean())


def acceptance_record(logits: np.ndarray, rc_logits: np.ndarray, labels: np.ndarray | None, export_cfg: dict) -> dict:
    """What the host measured on the acceptance set, and the budgets the device must meet (``MANIFEST.json``)."""
    drop = float(export_cfg.get("max_drop") or 1.0) / 100
    rec = {
        "reads": int(len(logits)),
        "min_agreement": float(export_cfg.get("min_agreement") or 0.98),
        "host_rc_consistency": rc_consistency(logits, rc_logits),
        "budget": drop,
    }
    if labels is not None:
        rec["host_accuracy"] = float((logits.argmax(1) == labels).mean())
    return rec


def _bad_budgets(record: dict) -> list[str]:
    """The fields of an acceptance record (from a bundle's manifest) that are not finite numbers in [0, 1]."""
    keys = ["min_agreement", "host_rc_consistency", "budget"] + (["host_accuracy"] if "host_accuracy" in record else [])
    out = []
    for k in keys:
        v = record.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or not 0 <= v <= 1:
            out.append(k)
    return out


def check_release(folder: str, model: str, record: dict, *, max_p50_ms: float | None = None, open_runner=None) -> dict:
    """Run the acceptance set of the release in ``folder`` through ``model``; returns the results with ``ok`` and,
    when not ok, ``why`` (one line naming every budget missed)."""
    from edgegen.runtime import load_runner, run_batched

    bad = _bad_budgets(record)
    if bad:  # a NaN budget would make every comparison false, and the check pass without checking anything
        return {"ok": False, "why": f"the bundle's acceptance budgets are not numbers in [0, 1]: {', '.join(bad)}"}
    data = np.load(os.path.join(folder, ACCEPTANCE), allow_pickle=False)
    if not np.isfinite(data["expected"]).all():
        return {"ok": False, "why": "the bundle's recorded outputs (acceptance.npz) are not all finite"}
    runner = (open_runner or load_runner)(os.path.join(folder, model), threads=None)
    got, got_rc = run_batched(runner, data["ids"]), run_batched(runner, data["rc_ids"])
    res: dict = {"reads": int(len(got))}
    missed = []
    res["agreement"] = float((got.argmax(1) == data["expected"].argmax(1)).mean())
    if res["agreement"] < record["min_agreement"]:
        missed.append(f"agreement with the host {res['agreement']:.3f} < {record['min_agreement']:.3f}")
    res["rc_consistency"] = rc_consistency(got, got_rc)
    floor = record["host_rc_consistency"] - record["budget"]
    if res["rc_consistency"] < floor - 1e-9:
        missed.append(f"reverse-complement consistency {res['rc_consistency']:.3f} < {floor:.3f}")
    if "labels" in data.files and "host_accuracy" in record:
        res["accuracy"] = float((got.argmax(1) == data["labels"]).mean())
        floor = record["host_accuracy"] - record["budget"]
        if res["accuracy"] < floor - 1e-9:
            missed.append(f"accuracy {res['accuracy']:.3f} < {floor:.3f} (host {record['host_accuracy']:.3f})")
    if max_p50_ms is not None:
        one = data["ids"][:1]
        fixed = runner.input_spec.get("batch")
        if isinstance(fixed, int):
            one = np.repeat(one, fixed, axis=0)
        runner(one)
        ts = []
        for _ in range(LATENCY_RUNS):
            t0 = time.perf_counter()
            runner(one)
            ts.append((time.perf_counter() - t0) * 1000)
        res["p50_ms"] = float(np.median(ts))
        res["max_p50_ms"] = max_p50_ms
        if res["p50_ms"] > max_p50_ms:
            missed.append(f"p50 latency {res['p50_ms']:.2f} ms > {max_p50_ms:g} ms")
    res["ok"] = not missed
    if missed:
        res["why"] = "; ".join(missed)
    return res
