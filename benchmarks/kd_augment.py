#!/usr/bin/env python3
"""Where does a distilled student's gain come from? Four arms, one student shape, same epochs and lr:

  labels            trained from labels alone (compare.py's bar)
  labels+mutants    plus `--augment` mutated copies of each training sequence that inherit its label
  kd                distilled (edgegen's default DistillConfig)
  kd+mutants        distilled, plus the mutated copies labelled by the teacher only (DistillConfig.augment)

    python benchmarks/kd_augment.py --data ../shared/data/promoter_nontata_human \\
        --teacher benchmarks/.work/promoter_nontata_human/run/teacher/model

MCC on the test set with paired-bootstrap 95% CIs of each arm minus `labels` and minus `labels+mutants`
(the fair control for kd+mutants: same sequences, same number of steps). Writes
benchmarks/results/<date>-<machine>-kd-augment-<dataset>.json.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def student_parser(doc: str) -> argparse.ArgumentParser:
    """Arguments shared by the student experiments (this script and kd_budget.py): data, teacher, student shape."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a folder with train/dev/test CSVs (or synthetic:...)")
    ap.add_argument("--teacher", required=True, help="a trained edgegen model directory")
    ap.add_argument("--d-model", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    return ap


def load_setup(args) -> SimpleNamespace:
    """The splits, the teacher, its tokenizer and the encoded train/dev/test ids (2 torch threads)."""
    import torch

    from edgegen.checkpoint import load_model
    from edgegen.data.load import load_data

    torch.set_num_threads(2)
    splits = load_data(args.data)
    t = load_model(args.teacher)
    tok = t.tokenizer
    return SimpleNamespace(
        splits=splits,
        teacher=t.model,
        tok=tok,
        train=splits["train"],
        dev=splits["dev"],
        test=splits["test"],
        **{f"{k}_ids": tok.encode(splits[k].sequences) for k in ("train", "dev", "test")},
    )


def main(argv=None) -> int:
    ap = student_parser(__doc__)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--augment", type=int, default=2)
    ap.add_argument("--mutation-rate", type=float, default=0.05)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    from edgegen.distill import DistillConfig, distill
    from edgegen.distill_data import substitution_copies
    from edgegen.fit import OptimConfig, fit
    from edgegen.inference import predict_logits
    from edgegen.io import write_json
    from edgegen.metrics import paired_delta, point_metrics
    from edgegen.student import student_from_teacher

    su = load_setup(args)
    splits, tok, tr, dev, te = su.splits, su.tok, su.train, su.dev, su.test
    tr_ids, dev_ids, te_ids = su.train_ids, su.dev_ids, su.test_ids
    opt = dict(epochs=args.epochs, lr=1e-3)

    def student():
        return student_from_teacher(su.teacher, d_model=args.d_model, n_layers=args.layers, n_heads=args.heads, seed=0)

    arms, info = {}, {}
    for name in ("labels", "labels+mutants", "kd", "kd+mutants"):
        t0 = time.time()
        s = student()
        if name.startswith("labels"):
            ids, y = tr_ids, tr.labels
            if name == "labels+mutants":
                ids = np.concatenate(
                    [ids, tok.encode(substitution_copies(tr.sequences, args.augment, args.mutation_rate, seed=0))]
                )
                y = np.concatenate([y] * (args.augment + 1))
            h = fit(s, ids, y, dev_ids, dev.labels, OptimConfig(**opt), show_progress=False)
        else:
            cfg = DistillConfig(
                **opt, augment=args.augment if name == "kd+mutants" else 0, mutation_rate=args.mutation_rate
            )
            h = distill(s, su.teacher, cfg, splits, tok, show_progress=False)
        arms[name] = predict_logits(s, te_ids)
        info[name] = {
            "steps": h["steps"],
            "best_epoch": h["best_epoch"],
            "seconds": time.time() - t0,
            **{k: v for k, v in point_metrics(te.labels, arms[name]).items() if k in ("accuracy", "mcc")},
        }
        print(
            f"  {name:15s} MCC {info[name]['mcc']:.3f}  acc {info[name]['accuracy']:.3f}  steps {h['steps']}  "
            f"{info[name]['seconds']:.0f} s",
            flush=True,
        )
    teacher_logits = predict_logits(su.teacher, te_ids)
    deltas = {
        f"{a} - {b}": paired_delta(te.labels, arms[b], arms[a], "mcc", n_boot=args.n_boot)
        for a, b in (
            ("kd", "labels"),
            ("kd+mutants", "labels"),
            ("labels+mutants", "labels"),
            ("kd+mutants", "labels+mutants"),
        )
    }
    deltas["teacher - labels"] = paired_delta(te.labels, arms["labels"], teacher_logits, "mcc", n_boot=args.n_boot)
    for k, d in deltas.items():
        print(f"  {k:28s} ΔMCC {d['delta']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]")
    name = Path(args.data).name
    out = Path(args.out) / f"{time.strftime('%Y-%m-%d')}-{platform.node() or 'machine'}-kd-augment-{name}.json"
    write_json(
        out,
        {
            "schema": "edgegen-kd-augment/1",
            "data": args.data,
            "teacher": args.teacher,
            "args": vars(args),
            "teacher_mcc": point_metrics(te.labels, teacher_logits)["mcc"],
            "arms": info,
            "deltas": deltas,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
