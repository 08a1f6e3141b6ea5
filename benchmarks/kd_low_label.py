#!/usr/bin/env python3
"""Does distillation pay where the teacher knows more than the labels teach? Few labels, many unlabeled reads.

Per dataset: a teacher trained on all training labels (edgegen's defaults); then students given only 10% of the
training labels, of two sizes (half: the teacher's width, half its layers; quarter: half its width), two arms each:

  labels       trained from those labels alone (``edgegen train``, dev-set early stopping)
  kd+unlab     distilled (``edgegen distill``) on those labels plus the other 90% of the training sequences as
               unlabeled reads (their labels unused), through one teacher-logit store shared by every student

each for several seeds, to convergence (up to --epochs, dev-set early stopping). Reports test MCC, the paired
bootstrap 95% CI of kd+unlab − labels per seed, and the share of the teacher − labels gap closed; then the wall
time of one distillation with 1 and 2 processes (torchrun, gloo, CPU).

    python benchmarks/kd_low_label.py --data ../shared/data/promoter_nontata_human [--seeds 0 1 2]
    python benchmarks/kd_low_label.py --all

Writes benchmarks/results/<date>-<machine>-kd-low-label.json and prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATASETS = ["promoter_nontata_human", "promoter_core_human", "enhancer_human", "splice_site_human"]


def split_low_label(data: Path, out: Path, fraction: float, seed: int = 0) -> tuple[Path, Path, int]:
    """``out/labelled``: ``fraction`` of the training rows (dev and test as they are); ``out/unlabeled.fa``: the rest,
    labels dropped. Returns (labelled folder, unlabeled FASTA, rows kept)."""
    from edgegen.data import load_split_dir

    splits = load_split_dir(data)
    tr = splits["train"]
    idx = np.random.default_rng(seed).permutation(len(tr))
    k = max(2, int(round(fraction * len(tr))))
    lab = out / "labelled"
    lab.mkdir(parents=True, exist_ok=True)
    (lab / "train.csv").write_text(
        "sequence,label\n" + "".join(f"{tr.sequences[i]},{int(tr.labels[i])}\n" for i in idx[:k])
    )
    for name in ("dev", "test"):
        s = splits[name]
        (lab / f"{name}.csv").write_text(
            "sequence,label\n" + "".join(f"{q},{int(y)}\n" for q, y in zip(s.sequences, s.labels))
        )
    fa = out / "unlabeled.fa"
    fa.write_text("".join(f">u{i}\n{tr.sequences[i]}\n" for i in idx[k:]))
    return lab, fa, k


def test_logits(model_dir: Path, data: Path) -> tuple[np.ndarray, np.ndarray]:
    from edgegen.checkpoint import load_model
    from edgegen.data.load import load_data
    from edgegen.inference import predict_logits
    from edgegen.train import encode

    lm = load_model(model_dir)
    te = load_data(data)["test"]
    return te.labels, predict_logits(lm.model, encode(lm.tokenizer, te))


def student_shapes(teacher_dir: Path) -> dict[str, dict]:
    cfg = json.loads((teacher_dir / "config.json").read_text())
    d, n, h, f = cfg["d_model"], cfg["n_layers"], cfg["n_heads"], cfg["ffn_dim"]
    return {
        "half": {"d_model": d, "n_layers": max(1, n // 2), "n_heads": h, "ffn_dim": f},
        "quarter": {"d_model": d // 2, "n_layers": n, "n_heads": max(1, h // 2), "ffn_dim": f // 2},
    }


def run_dataset(
    name: str,
    data: Path,
    work: Path,
    seeds: list[int],
    epochs: int,
    fraction: float,
    teacher_epochs: int | None = None,
    sizes: tuple[str, ...] = ("half", "quarter"),
) -> dict:
    from edgegen.distill import DistillConfig, distill_model
    from edgegen.metrics import paired_delta, point_metrics
    from edgegen.train import TrainConfig, train_teacher

    work.mkdir(parents=True, exist_ok=True)
    teacher = work / "teacher"
    t0 = time.monotonic()
    if not (teacher / "manifest.json").exists():
        tc = TrainConfig() if teacher_epochs is None else TrainConfig(epochs=teacher_epochs, allow_chance=True)
        train_teacher(data, teacher, tc, show_progress=False, force=True)
    teacher_s = time.monotonic() - t0
    lab, unl, k = split_low_label(data, work / "low", fraction)
    y, t_logits = test_logits(teacher, lab)
    teacher_mcc = point_metrics(y, t_logits)["mcc"]
    rows = []
    store = work / "teacher-logits"
    for size, shape in student_shapes(teacher).items():
        if size not in sizes:
            continue
        for seed in seeds:
            a_dir, b_dir = work / f"{size}-labels-s{seed}", work / f"{size}-kd-s{seed}"
            ta = time.monotonic()
            train_teacher(
                lab,
                a_dir,
                TrainConfig(**shape, epochs=epochs, seed=seed, allow_chance=True),
                show_progress=False,
                force=True,
            )
            ta = time.monotonic() - ta
            yaml = work / f"{size}.yaml"
            yaml.write_text("".join(f"{key}: {v}\n" for key, v in shape.items()))
            tb = time.monotonic()
            res = distill_model(
                teacher,
                yaml,
                lab,
                b_dir,
                DistillConfig(epochs=epochs, seed=seed),
                unlabeled=unl,
                teacher_logits=store,
                show_progress=False,
                force=True,
            )
            tb = time.monotonic() - tb
            _, la = test_logits(a_dir, lab)
            _, lb = test_logits(b_dir, lab)
            d = paired_delta(y, la, lb, "mcc", n_boot=1000, seed=seed)
            a_mcc, b_mcc = point_metrics(y, la)["mcc"], point_metrics(y, lb)["mcc"]
            gap = teacher_mcc - a_mcc
            rows.append(
                {
                    "size": size,
                    "seed": seed,
                    "labels_mcc": a_mcc,
                    "kd_unlabeled_mcc": b_mcc,
                    "delta": d["delta"],
                    "ci": d["ci"],
                    "gap_closed": (b_mcc - a_mcc) / gap if gap > 0 else None,
                    "labels_seconds": ta,
                    "kd_seconds": tb,
                    "store_computed_now": res["history"].get("teacher_logits", {}).get("computed_now"),
                    "unlabeled_windows": res["history"]["unlabeled_windows"],
                }
            )
            print(
                f"{name} {size} seed {seed}: labels {a_mcc:.3f}  kd+unlab {b_mcc:.3f}  Δ {d['delta']:+.3f} "
                f"[{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]  teacher {teacher_mcc:.3f}",
                flush=True,
            )
    wins = all(r["ci"][0] > 0 for r in rows)
    closed = [r["gap_closed"] for r in rows if r["gap_closed"] is not None]
    return {
        "dataset": name,
        "labelled_rows": k,
        "teacher_mcc": teacher_mcc,
        "teacher_seconds": teacher_s,
        "rows": rows,
        "kd_wins_every_seed": wins,
        "median_gap_closed": float(np.median(closed)) if closed else None,
    }


def torchrun_scaling(teacher: Path, lab: Path, unl: Path, work: Path, epochs: int) -> dict:
    """Wall time of one distillation with 1 and 2 processes (CPU, gloo), the teacher-logit store already made."""
    exe = shutil.which("edgegen") or str(Path(sys.executable).with_name("edgegen"))
    yaml = work / "half.yaml"
    out = {}
    for n in (1, 2):
        dst = work / f"scaling-{n}"
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(n),
            exe,
            "distill",
            "--teacher",
            str(teacher),
            "--student",
            str(yaml),
            "--data",
            str(lab),
            "--unlabeled",
            str(unl),
            "--teacher-logits",
            str(work / "teacher-logits"),
            "--out",
            str(dst),
            "--epochs",
            str(epochs),
            "--threads",
            str(max(1, 2 // n)),
            "--force",
        ]
        t0 = time.monotonic()
        r = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(max(1, 2 // n))}
        )
        out[f"processes_{n}"] = {
            "seconds": time.monotonic() - t0,
            "rc": r.returncode,
            "test_mcc": json.loads((dst / "manifest.json").read_text())["metrics"]["test"]["mcc"]["value"]
            if r.returncode == 0
            else None,
        }
    out["speedup_2_vs_1"] = out["processes_1"]["seconds"] / out["processes_2"]["seconds"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, action="append", help="a dataset folder (repeatable)")
    ap.add_argument("--all", action="store_true", help="the four shared sets")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=30, help="upper bound; dev-set early stopping decides")
    ap.add_argument("--fraction", type=float, default=0.10, help="share of the training labels the students get")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work" / "kd-low-label")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument(
        "--sizes", nargs="+", default=["half", "quarter"], choices=["half", "quarter"], help="student sizes to run"
    )
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 leaves a core free on a 2-core machine)")
    ap.add_argument("--smoke", action="store_true", help="seconds, not hours: 2-epoch teacher and students, one seed")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.smoke:
        args.seeds, args.epochs = [0], 2
    import torch

    torch.set_num_threads(args.threads)
    shared = Path(os.environ.get("EDGEGEN_SHARED_DATA", ROOT.parent / "shared" / "data"))
    datas = [shared / d for d in DATASETS] if args.all else (args.data or [shared / DATASETS[0]])
    results = []
    for d in datas:
        results.append(
            run_dataset(
                d.name,
                d,
                args.work / d.name,
                args.seeds,
                args.epochs,
                args.fraction,
                2 if args.smoke else None,
                tuple(args.sizes),
            )
        )
    scaling = None
    if not args.no_scaling:
        w = args.work / datas[0].name
        scaling = torchrun_scaling(w / "teacher", w / "low" / "labelled", w / "low" / "unlabeled.fa", w, args.epochs)
        print(
            f"torchrun scaling: 1 process {scaling['processes_1']['seconds']:.0f} s, 2 processes "
            f"{scaling['processes_2']['seconds']:.0f} s ({scaling['speedup_2_vs_1']:.2f}x)"
        )
    res = {
        "benchmark": "kd_low_label",
        "smoke": args.smoke,
        "date": time.strftime("%Y-%m-%d"),
        "fraction": args.fraction,
        "seeds": args.seeds,
        "sizes": args.sizes,
        "threads": args.threads,
        "epochs_max": args.epochs,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "datasets": results,
        "torchrun_scaling": scaling,
        "goal": {"sets_where_kd_wins_every_seed": sum(r["kd_wins_every_seed"] for r in results), "of": len(results)},
    }
    out = args.out or ROOT / "benchmarks" / "results" / f"{res['date']}-{platform.node() or 'host'}-kd-low-label.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(res, indent=2, default=str))
    os.replace(tmp, out)
    print(
        "| dataset | student | labels-only MCC | distilled + unlabeled MCC | Δ (95% CI), per seed | teacher | gap closed |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        for size in args.sizes:
            rs = [x for x in r["rows"] if x["size"] == size]
            cis = "; ".join(f"{x['delta']:+.3f} [{x['ci'][0]:+.3f}, {x['ci'][1]:+.3f}]" for x in rs)
            gc = [x["gap_closed"] for x in rs if x["gap_closed"] is not None]
            print(
                f"| {r['dataset']} | {size} | {np.mean([x['labels_mcc'] for x in rs]):.3f} | {np.mean([x['kd_unlabeled_mcc'] for x in rs]):.3f} "
                f"| {cis} | {r['teacher_mcc']:.3f} | {np.median(gc) * 100:.0f}% |"
                if gc
                else "| — |"
            )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
