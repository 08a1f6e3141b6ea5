"""``edgegen audit DATA``: can a model trained on this data set be trusted? Shortcut features
(:mod:`edgegen.audit_shortcuts`), leakage between splits (:mod:`edgegen.audit_leakage`), class balance, and a k-mer
baseline for context; a verdict ``pass | warn | fail`` with its reasons, as JSON and Markdown.

The verdict: ``fail`` when a trivial feature alone separates the classes with AUROC > 0.7, when a sequence of a
later split (or its reverse complement) is in an earlier one, or when more than 5% of a split's sequences have a
near-copy in an earlier split; ``warn`` for AUROC > 0.6, duplicates within a split, any near-copies, or a class
under 10% of a split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

EXIT_CODES = {"pass": 0, "warn": 3, "fail": 4}
MAX_ROWS = 20000  # shortcut features on at most this many training sequences (a random sample)
SEVERITY = {"pass": 0, "warn": 1, "fail": 2}


def audit_data(data, *, near_method: str = "auto", seed: int = 0) -> dict:
    """Audit a labelled split folder (or a {split: SequenceSet} dict); returns the report dict (``verdict``,
    ``reasons``, ``shortcuts``, ``leakage``, ``balance``, ``baseline``)."""
    from edgegen.audit_leakage import duplicates, near_duplicates
    from edgegen.audit_shortcuts import shortcut_scores
    from edgegen.data import load_split_dir
    from edgegen.errors import DataError

    splits = data if isinstance(data, dict) else load_split_dir(data)
    for name, ss in splits.items():
        if ss.labels is None:
            raise DataError(f"the {name} split has no labels: an audit needs labelled data", path=ss.path)
    tr = splits["train"]
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.permutation(len(tr))[:MAX_ROWS])
    shortcuts = shortcut_scores([tr.sequences[i] for i in idx], np.asarray(tr.labels)[idx])
    rep = {
        "schema": "edgegen-audit/1",
        "data": str(data) if not isinstance(data, dict) else None,
        "splits": {n: len(ss) for n, ss in splits.items()},
        "shortcuts": {"rows": len(idx), "features": shortcuts},
        "leakage": {"duplicates": duplicates(splits), "near": near_duplicates(splits, method=near_method, seed=seed)},
        "balance": balance(splits),
    }
    ev = splits.get("test") or splits.get("dev")
    if ev is not None:
        from edgegen.baseline import kmer_baseline

        rep["baseline"] = kmer_baseline(tr, ev)
    rep["verdict"], rep["reasons"] = verdict(rep)
    return rep


def balance(splits: dict) -> dict:
    """Class counts per split; mean length and GC content per class (training split)."""
    from edgegen.audit_shortcuts import features

    out = {"counts": {n: np.bincount(np.asarray(ss.labels)).tolist() for n, ss in splits.items()}}
    tr = splits["train"]
    names, X = features(tr.sequences[:MAX_ROWS])
    y = np.asarray(tr.labels)[:MAX_ROWS]
    out["by_class"] = {
        int(c): {"length": float(X[y == c, 0].mean()), "gc": float(X[y == c, names.index("GC content")].mean())}
        for c in np.unique(y)
    }
    return out


def verdict(rep: dict) -> tuple[str, list[str]]:
    reasons: list[tuple[str, str]] = []
    worst = rep["shortcuts"]["features"][0]
    if worst["grade"] != "pass":
        bad = [f for f in rep["shortcuts"]["features"] if f["grade"] == worst["grade"]]
        names = ", ".join(f"{f['feature']} ({f['auroc']:.2f})" for f in bad[:5]) + (" …" if len(bad) > 5 else "")
        reasons.append((worst["grade"], f"{len(bad)} trivial feature(s) alone separate the classes: {names}"))
    dup = rep["leakage"]["duplicates"]
    for pair, d in dup["across"].items():
        if d["exact"] or d["reverse_complement"]:
            later = pair.split("-")[1]
            reasons.append(
                (
                    "fail",
                    f"{d['exact']} {later} sequences are in {pair.split('-')[0]}, and "
                    f"{d['reverse_complement']} more as their reverse complement",
                )
            )
    for split, d in dup["within"].items():
        if d["exact"] or d["reverse_complement"]:
            reasons.append(
                (
                    "warn",
                    f"{split} repeats {d['exact']} sequences ({d['reverse_complement']} more as reverse complements)",
                )
            )
    near = rep["leakage"]["near"]
    for pair, d in near["pairs"].items():
        if d["near"]:
            g = "fail" if d["rate"] > 0.05 else "warn"
            reasons.append(
                (
                    g,
                    f"{d['rate']:.1%} of {pair.split('-')[1]} has a near-copy in {pair.split('-')[0]} "
                    f"({near['method']})",
                )
            )
    for split, counts in rep["balance"]["counts"].items():
        if counts and min(counts) < 0.1 * sum(counts):
            reasons.append(("warn", f"{split}: the smallest class is {min(counts)} of {sum(counts)}"))
    level = max((g for g, _ in reasons), key=SEVERITY.get, default="pass")
    return level, [f"{g}: {text}" for g, text in sorted(reasons, key=lambda r: -SEVERITY[r[0]])]


def markdown(rep: dict) -> str:
    """The audit as a Markdown section (what a model card and the README quote)."""
    lines = [f"## Data audit: **{rep['verdict']}**", ""]
    lines += [f"- {r}" for r in rep["reasons"]] or ["- no finding"]
    lines += ["", "| feature | AUROC alone | grade |", "|---|---|---|"]
    lines += [f"| {f['feature']} | {f['auroc']:.3f} | {f['grade']} |" for f in rep["shortcuts"]["features"][:8]]
    if "baseline" in rep:
        b = rep["baseline"]
        lines += [
            "",
            f"Context: a {b['model']} reaches MCC {b['mcc']:.3f} (accuracy {b['accuracy']:.3f}) on "
            f"{b['n']} held-out sequences.",
        ]
    d = rep["leakage"]["duplicates"]["across"]
    near = rep["leakage"]["near"]
    lines += ["", "| splits | exact copies | reverse complements | near-copies |", "|---|---|---|---|"]
    for pair, x in d.items():
        n = near["pairs"].get(pair, {})
        lines.append(
            f"| {pair} | {x['exact']} | {x['reverse_complement']} | {n.get('near', '-')} of "
            f"{n.get('checked', '-')} ({near['method']}) |"
        )
    lines += ["", "Class counts: " + "; ".join(f"{s} {c}" for s, c in rep["balance"]["counts"].items()), ""]
    return "\n".join(lines)


def write_audit(rep: dict, out: str | Path, *, force: bool = False) -> Path:
    """``out/audit.json`` and ``out/audit.md``, written atomically (never over existing ones without ``force``)."""
    from edgegen.io import atomic_write_text, check_output, write_json

    out = Path(out)
    for name in ("audit.json", "audit.md"):
        check_output(out / name, force, kind="file")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "audit.json", rep)
    atomic_write_text(out / "audit.md", markdown(rep))
    return out
