#!/usr/bin/env python3
"""Does distillation still win when the label-trained student is trained to convergence?

compare.py gives the distilled student and the same-size student trained from labels the same short
budget (6 epochs). A short budget can flatter distillation: soft targets converge faster, and an
under-trained label baseline also makes the teacher look "clearly better" than a small model.
This script trains one student shape three ways at several epoch budgets (dev-set early stopping with
patience max(3, epochs // 5), best dev checkpoint kept, same lr):

  labels     cross-entropy on labels alone
  kd         edgegen's DistillConfig loss weights (alpha on labels, beta on the teacher's logits)
  kd-pure    the teacher's logits alone (alpha 0, beta 1)

and reports test MCC with paired-bootstrap 95% CIs of teacher - labels and of each distilled arm - labels.

    python benchmarks/kd_budget.py --data ../shared/data/splice_site_human \\
        --teacher benchmarks/.work/splice_site_human/run/teacher/model --epochs 6 20

Writes benchmarks/results/<date>-<machine>-kd-budget-<dataset>.json.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from kd_augment import load_setup, student_parser  # noqa: E402  (the same data, teacher and student arguments)


def main(argv=None) -> int:
    ap = student_parser(__doc__)
    ap.add_argument("--epochs", type=int, nargs="+", default=[6, 20])
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--arms", nargs="+", default=["labels", "kd", "kd-pure"], choices=["labels", "kd", "kd-pure"])
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    from edgegen.distill import DistillConfig, distill, student_from_teacher
    from edgegen.io import write_json
    from edgegen.metrics import paired_delta, point_metrics
    from edgegen.train import OptimConfig, fit, predict_logits

    su = load_setup(args)
    splits, tok, tr, dev, te, teacher = su.splits, su.tok, su.train, su.dev, su.test, su.teacher
    tr_ids, dev_ids, te_ids = su.train_ids, su.dev_ids, su.test_ids
    teacher_logits = predict_logits(teacher, te_ids)
    teacher_mcc = point_metrics(te.labels, teacher_logits)["mcc"]
    print(f"teacher MCC {teacher_mcc:.3f}", flush=True)
    runs = []
    for ep in args.epochs:
        opt = dict(epochs=ep, lr=args.lr, patience=max(3, ep // 5))
        logits, run = {}, {"epochs": ep, "patience": opt["patience"], "arms": {}, "deltas": {}}
        for arm in args.arms:
            t0 = time.time()
            s = student_from_teacher(teacher, d_model=args.d_model, n_layers=args.layers, n_heads=args.heads, seed=0)
            if arm == "labels":
                h = fit(s, tr_ids, tr.labels, dev_ids, dev.labels, OptimConfig(**opt), show_progress=False)
            else:
                h = distill(s, teacher, DistillConfig(**opt, **(dict(alpha=0.0, beta=1.0) if arm == "kd-pure" else {})),
                            splits, tok, show_progress=False)
            logits[arm] = predict_logits(s, te_ids)
            m = point_metrics(te.labels, logits[arm])
            run["arms"][arm] = {"accuracy": m["accuracy"], "mcc": m["mcc"], "best_epoch": h["best_epoch"], "steps": h["steps"],
                                "seconds": time.time() - t0}
            print(f"  {ep:3d} epochs  {arm:8s} MCC {m['mcc']:.3f}  acc {m['accuracy']:.3f}  best epoch {h['best_epoch']}  "
                  f"{time.time() - t0:.0f} s", flush=True)
        if "labels" in logits:
            pairs = [("teacher", teacher_logits)] + [(a, logits[a]) for a in args.arms if a != "labels"]
            for name, lg in pairs:
                d = paired_delta(te.labels, logits["labels"], lg, "mcc", n_boot=args.n_boot)
                run["deltas"][f"{name} - labels"] = d
                print(f"  {ep:3d} epochs  {name + ' - labels':18s} ΔMCC {d['delta']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]", flush=True)
        runs.append(run)
    name = Path(args.data).name
    out = Path(args.out) / f"{time.strftime('%Y-%m-%d')}-{platform.node() or 'machine'}-kd-budget-{name}.json"
    write_json(out, {"schema": "edgegen-kd-budget/1", "data": args.data, "teacher": args.teacher, "args": vars(args),
                     "teacher_mcc": teacher_mcc, "runs": runs})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
