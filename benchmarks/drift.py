#!/usr/bin/env python3
"""Does the drift alarm of ``edgegen watch`` fire when it should, and only then?

For each data set: a small model trained from labels and exported to int8 ONNX; the reference profile from its dev
split (what a deployable bundle carries); then chunks of held-out test reads (in distribution) against chunks with
one injected shift each:

  gc          20% of A/T bases turned to G/C
  contaminant reads from another of the data sets
  errors10    10% simulated sequencing errors (substitutions, insertions, deletions)
  length      each read cut to 50-70% of its length
  prior20/80  the class prior moved to 20/80

    python benchmarks/drift.py --data ../shared/data/promoter_nontata_human ../shared/data/enhancer_human
    python benchmarks/drift.py --smoke     # synthetic data, a minute

Prints, per data set: the false alarm rate on in-distribution chunks (goal <= 5% at 500 reads), per shift the
share of chunks flagged and the chunk at which the first alarm came (goal: within 2), and the mean absolute error of
the label-free accuracy estimate against the true accuracy per in-distribution chunk (goal <= 3 pp). Writes
benchmarks/results/<date>-<machine>-drift.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def model_for(data, work: Path, epochs: int, rows: int):
    """A small char-level model trained from labels on (a sample of) the data, exported to int8 ONNX."""
    from edgegen.data.load import load_data
    from edgegen.export import ExportConfig, export
    from edgegen.runtime import load_runner
    from edgegen.train import TrainConfig, train_teacher

    splits = load_data(str(data))
    tr = splits["train"]
    idx = np.sort(np.random.default_rng(0).permutation(len(tr))[:rows])
    from edgegen.data.readers import SequenceSet

    small = dict(splits, train=SequenceSet([tr.sequences[i] for i in idx], np.asarray(tr.labels)[idx]))
    cfg = TrainConfig(
        tokenizer="kmer_nonoverlap",
        k=3,
        d_model=32,
        n_layers=2,
        n_heads=4,
        ffn_dim=64,
        epochs=epochs,
        lr=2e-3,
        allow_chance=True,
    )
    model_dir = work / "model"
    train_teacher(str(data), model_dir, cfg, show_progress=False, splits=small)
    onnx = export(model_dir, work / "m.int8.onnx", ExportConfig(format="onnx", quant="int8"), calib=splits["dev"])
    return load_runner(onnx), splits


def probs_of(runner, seqs):
    from edgegen.predict import PredictConfig, ReadClassifier

    clf = ReadClassifier(runner, PredictConfig(on_bad_record="skip", short="pad"))
    for i, s in enumerate(seqs):
        clf.add(str(i), s)
    return np.stack([p for *_, p in clf.flush()])


def shifted(name: str, seqs, labels, other, rng):
    from edgegen.validity import reverse_complement, sequencing_errors  # noqa: F401

    if name == "gc":
        return [
            "".join(("G" if rng.random() < 0.5 else "C") if c in "AT" and rng.random() < 0.2 else c for c in s)
            for s in seqs
        ], None
    if name == "contaminant":
        return list(rng.choice(other, len(seqs))), None
    if name == "errors10":
        return sequencing_errors(list(seqs), 0.10, seed=int(rng.integers(1 << 30))), labels
    if name == "length":
        out = []
        for s in seqs:
            n = max(10, int(len(s) * rng.uniform(0.5, 0.7)))
            start = int(rng.integers(0, len(s) - n + 1))
            out.append(s[start : start + n])
        return out, labels
    raise ValueError(name)


def chunk_of(seqs, labels, n, rng, prior=None):
    labels = np.asarray(labels)
    if prior is None:
        idx = rng.integers(0, len(seqs), n)
    else:  # two classes resampled to prior[0] / prior[1]
        n0 = int(round(n * prior[0]))
        idx = np.concatenate(
            [rng.choice(np.nonzero(labels == 0)[0], n0), rng.choice(np.nonzero(labels == 1)[0], n - n0)]
        )
    return [seqs[i] for i in idx], labels[idx]


def run_set(data, other_seqs, args, work: Path) -> dict:
    from edgegen.drift import check_chunk, reference_profile
    from edgegen.validity import reverse_complement

    t0 = time.perf_counter()
    runner, splits = model_for(data, work, args.epochs, args.train_rows)
    dev, test = splits["dev"], splits["test"]
    ref_idx = np.random.default_rng(0).permutation(len(dev))[: args.reference_reads]
    ref_seqs = [dev.sequences[i] for i in ref_idx]
    ref = reference_profile(
        ref_seqs,
        probs_of(runner, ref_seqs),
        probs_of(runner, [reverse_complement(s) for s in ref_seqs]),
        np.asarray(dev.labels)[ref_idx],
    )
    rng = np.random.default_rng(1)

    def check(seqs):
        p = probs_of(runner, seqs)
        rc = probs_of(runner, [reverse_complement(s) for s in seqs[:100]])
        res = check_chunk(ref, seqs, p, None)
        sub = check_chunk(ref, seqs[:100], p[:100], rc)
        if any("reverse complement" in r for r in sub["reasons"]):
            res["state"] = "drift"
        return res, p

    states, errs = [], []
    for _ in range(args.chunks):
        seqs, y = chunk_of(test.sequences, test.labels, args.chunk_reads, rng)
        res, p = check(seqs)
        states.append(res["state"])
        errs.append(abs(res["stats"]["estimated_accuracy"] - float((p.argmax(1) == y).mean())))
    out = {
        "data": str(data),
        "reference_reads": len(ref_seqs),
        "reference_accuracy": ref.get("accuracy"),
        "in_distribution": {
            "chunks": len(states),
            "false_alarm": states.count("drift") / len(states),
            "warn": states.count("warn") / len(states),
            "label_free_accuracy_mae_pp": 100 * float(np.mean(errs)),
        },
        "shifts": {},
    }
    shifts = ["gc", "contaminant", "errors10", "length"] + (["prior20/80"] if len(set(test.labels)) == 2 else [])
    for name in shifts:
        flags = []
        for _ in range(args.shift_chunks):
            if name == "prior20/80":
                seqs, _ = chunk_of(test.sequences, test.labels, args.chunk_reads, rng, prior=(0.2, 0.8))
            else:
                base, y = chunk_of(test.sequences, test.labels, args.chunk_reads, rng)
                seqs, _ = shifted(name, base, y, other_seqs, rng)
            flags.append(check(seqs)[0]["state"] == "drift")
        first = next((i + 1 for i, f in enumerate(flags) if f), None)
        out["shifts"][name] = {"detected": float(np.mean(flags)), "first_alarm_chunk": first}
    out["seconds"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="*", default=[])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--chunk-reads", type=int, default=500)
    ap.add_argument("--chunks", type=int, default=40)
    ap.add_argument("--shift-chunks", type=int, default=5)
    ap.add_argument("--reference-reads", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--train-rows", type=int, default=6000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from edgegen.data.load import load_data

    sets = args.data
    if args.smoke:
        sets = ["synthetic:promoter:1500:120", "synthetic:splice:1500:120"]
        args.chunks, args.shift_chunks, args.chunk_reads, args.epochs, args.reference_reads = 6, 2, 100, 2, 300
    if len(sets) < 2:
        ap.error("give at least two data sets (each is the other's contaminant), or --smoke")
    tests = {d: load_data(d)["test"].sequences for d in sets}
    results = []
    with tempfile.TemporaryDirectory(prefix="edgegen-drift-") as work:
        for i, d in enumerate(sets):
            other = tests[sets[(i + 1) % len(sets)]]
            r = run_set(d, other, args, Path(work) / str(i))
            results.append(r)
            ind = r["in_distribution"]
            print(
                f"{Path(d).name}: false alarms {ind['false_alarm']:.0%} of {ind['chunks']} chunks of "
                f"{args.chunk_reads} reads (warn {ind['warn']:.0%}); label-free accuracy MAE "
                f"{ind['label_free_accuracy_mae_pp']:.1f} pp; "
                + "; ".join(
                    f"{k} {v['detected']:.0%} (first at chunk {v['first_alarm_chunk']})" for k, v in r["shifts"].items()
                ),
                flush=True,
            )
    out = Path(
        args.out
        or ROOT / "benchmarks" / "results" / f"{time.strftime('%Y-%m-%d')}-{platform.node() or 'host'}-drift.json"
    )
    if args.smoke:
        out = Path(args.out or tempfile.mkdtemp()) / "drift-smoke.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"chunk_reads": args.chunk_reads, "results": results}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
