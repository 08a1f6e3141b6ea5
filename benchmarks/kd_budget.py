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

With `--teacher-shape D_MODEL LAYERS HEADS FFN --teacher-epochs N` it first trains that teacher from labels
(compare.py's 3-mer tokens, lr and early stopping, patience max(3, N // 5)) and saves it to `--teacher`: a larger,
converged teacher, to ask whether distillation wins once the teacher is clearly better than the small model.
Training runs on a CUDA GPU when torch sees one (OptimConfig.device "auto").

The bootstrap intervals cover the test set's sampling, not training noise: `--seeds 0 1 2` trains every arm once per
seed (student initialisation and batch order) and reports each arm's MCC and each delta across seeds.

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


def train_teacher_first(args) -> dict:
    """Train the ``--teacher-shape`` teacher (compare.py's tokens and lr) and save it to ``--teacher``."""
    from compare import TEACHER_STEP

    from edgegen.train import TrainConfig, train_teacher

    d, layers, heads, ffn = args.teacher_shape
    ep = args.teacher_epochs
    cfg = TrainConfig(
        tokenizer=TEACHER_STEP["tokenizer"],
        k=TEACHER_STEP["k"],
        d_model=d,
        n_layers=layers,
        n_heads=heads,
        ffn_dim=ffn,
        epochs=ep,
        lr=args.lr,
        patience=max(3, ep // 5),
        allow_chance=True,
    )  # measured and reported (teacher_mcc), not refused: this is a benchmark
    t0 = time.time()
    res = train_teacher(args.data, args.teacher, cfg, show_progress=False)
    h = res["history"]
    print(
        f"teacher {d}x{layers} trained: best epoch {h['best_epoch']} of {len(h['epochs'])}, {time.time() - t0:.0f} s on {h['device']}",
        flush=True,
    )
    return {
        "config": cfg.model_dump(),
        "best_epoch": h["best_epoch"],
        "epochs_run": len(h["epochs"]),
        "device": h["device"],
        "seconds": time.time() - t0,
        "dev_mcc": [e.get("dev_mcc") for e in h["epochs"]],
    }


def seed_spread(runs: list[dict]) -> dict:
    """Per epoch budget: each arm's test MCC and each delta across seeds (mean, sd, min, max; for deltas, in how
    many seeds the bootstrap CI lay wholly above zero)."""
    import numpy as np

    out: dict = {}
    for ep in sorted({r["epochs"] for r in runs}):
        rs = [r for r in runs if r["epochs"] == ep]
        vals = {f"{a} MCC": [r["arms"][a]["mcc"] for r in rs] for a in rs[0]["arms"]}
        vals.update({k: [r["deltas"][k]["delta"] for r in rs] for k in rs[0]["deltas"]})
        out[ep] = {}
        for k, v in vals.items():
            a = np.asarray(v, dtype=float)
            out[ep][k] = {
                "mean": float(a.mean()),
                "sd": float(a.std(ddof=1)),
                "min": float(a.min()),
                "max": float(a.max()),
                "n": len(a),
            }
            if k in rs[0]["deltas"]:
                out[ep][k]["ci_above_zero"] = sum(r["deltas"][k]["ci"][0] > 0 for r in rs)
    return out


def main(argv=None) -> int:
    ap = student_parser(__doc__)
    ap.add_argument("--epochs", type=int, nargs="+", default=[6, 20])
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--arms", nargs="+", default=["labels", "kd", "kd-pure"], choices=["labels", "kd", "kd-pure"])
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument(
        "--teacher-shape",
        type=int,
        nargs=4,
        metavar=("D_MODEL", "LAYERS", "HEADS", "FFN"),
        help="train this teacher first and save it to --teacher (which must not exist)",
    )
    ap.add_argument("--teacher-epochs", type=int, default=30)
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="students' initialisation and batch-order seeds: "
        "each seed trains every arm again, and the spread across seeds is reported (the bootstrap CIs "
        "cover the test set's sampling only, not training noise)",
    )
    args = ap.parse_args(argv)
    teacher_run = train_teacher_first(args) if args.teacher_shape else None

    from edgegen.distill import DistillConfig, distill
    from edgegen.fit import OptimConfig, fit, resolve_device
    from edgegen.inference import predict_logits
    from edgegen.io import write_json
    from edgegen.metrics import paired_delta, point_metrics
    from edgegen.student import student_from_teacher

    su = load_setup(args)
    splits, tok, tr, dev, te, teacher = su.splits, su.tok, su.train, su.dev, su.test, su.teacher
    teacher.to(resolve_device("auto"))  # its test logits (and distillation's) on the training device
    tr_ids, dev_ids, te_ids = su.train_ids, su.dev_ids, su.test_ids
    teacher_logits = predict_logits(teacher, te_ids)
    teacher_mcc = point_metrics(te.labels, teacher_logits)["mcc"]
    print(f"teacher MCC {teacher_mcc:.3f}", flush=True)
    runs = []
    for seed, ep in ((sd, e) for sd in args.seeds for e in args.epochs):
        opt = dict(epochs=ep, lr=args.lr, patience=max(3, ep // 5), seed=seed)
        logits, run = {}, {"epochs": ep, "seed": seed, "patience": opt["patience"], "arms": {}, "deltas": {}}
        for arm in args.arms:
            t0 = time.time()
            s = student_from_teacher(teacher, d_model=args.d_model, n_layers=args.layers, n_heads=args.heads, seed=seed)
            if arm == "labels":
                h = fit(s, tr_ids, tr.labels, dev_ids, dev.labels, OptimConfig(**opt), show_progress=False)
            else:
                h = distill(
                    s,
                    teacher,
                    DistillConfig(**opt, **(dict(alpha=0.0, beta=1.0) if arm == "kd-pure" else {})),
                    splits,
                    tok,
                    show_progress=False,
                )
            logits[arm] = predict_logits(s, te_ids)
            m = point_metrics(te.labels, logits[arm])
            run["arms"][arm] = {
                "accuracy": m["accuracy"],
                "mcc": m["mcc"],
                "best_epoch": h["best_epoch"],
                "steps": h["steps"],
                "seconds": time.time() - t0,
            }
            print(
                f"  seed {seed}  {ep:3d} epochs  {arm:8s} MCC {m['mcc']:.3f}  acc {m['accuracy']:.3f}  best epoch {h['best_epoch']}  "
                f"{time.time() - t0:.0f} s",
                flush=True,
            )
        if "labels" in logits:
            pairs = [("teacher", teacher_logits)] + [(a, logits[a]) for a in args.arms if a != "labels"]
            for name, lg in pairs:
                d = paired_delta(te.labels, logits["labels"], lg, "mcc", n_boot=args.n_boot)
                run["deltas"][f"{name} - labels"] = d
                print(
                    f"  seed {seed}  {ep:3d} epochs  {name + ' - labels':18s} ΔMCC {d['delta']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]",
                    flush=True,
                )
        runs.append(run)
    spread = seed_spread(runs) if len(args.seeds) > 1 else None
    for ep, sp in (spread or {}).items():
        for k, v in sp.items():
            print(
                f"  {len(args.seeds)} seeds  {ep:3d} epochs  {k:18s} mean {v['mean']:+.3f}  sd {v['sd']:.3f}  "
                f"[{v['min']:+.3f}, {v['max']:+.3f}]"
                + (f"  CI above 0 in {v['ci_above_zero']} of {v['n']}" if "ci_above_zero" in v else "")
            )
    name = Path(args.data).name
    out = Path(args.out) / f"{time.strftime('%Y-%m-%d')}-{platform.node() or 'machine'}-kd-budget-{name}.json"
    write_json(
        out,
        {
            "schema": "edgegen-kd-budget/1",
            "data": args.data,
            "teacher": args.teacher,
            "args": vars(args),
            "teacher_mcc": teacher_mcc,
            "teacher_training": teacher_run,
            "runs": runs,
            "across_seeds": spread,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
