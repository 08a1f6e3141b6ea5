#!/usr/bin/env python3
"""Width or depth? A teacher in the NT-v2 layout (pre-LN, rotary, SwiGLU, a dense head; >= 5M parameters) trained from
labels on each set, pruned to 10% of its parameters three ways and each distilled with the same budget:

  today    heads + feed-forward + whole layers (PruneConfig(target_params=0.1, drop_layers=half the layers))
  width    hidden width only (the widest width at or under 10% of the parameters)
  search   the budgeted shape search (edgegen.shape_search): at or under today's int8 TFLite batch-1 latency and file
           size, timed on this machine; its chosen shape pruned fresh from the teacher (the search's own short
           distillation is not carried over, so every method gets the same budget)

then, for each method: test MCC with a bootstrap CI per seed, the paired bootstrap of its MCC minus today's (per seed,
and of the mean over seeds, resampling test rows), int8 TFLite p50 latency at batch 1 (1 thread) and file size.
The goal (issue 34): search beats today by a CI that excludes 0 on MCC, at equal or lower latency, on both sets.

    python benchmarks/width_vs_depth.py                       # both sets, 3 seeds (CPU: about an hour)
    python benchmarks/width_vs_depth.py --smoke               # a small teacher, a few minutes: the harness works

Resumable: every finished unit (teacher, logit store, pruned shape, distilled student) is kept under --work and
skipped when run again. Writes benchmarks/results/<date>-<machine>-width-vs-depth.json after every unit.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SETS = {"promoter_nontata_human": (None, None, None), "promoter_core_human": (12000, 1500, 3000)}
TEACHER = dict(d_model=256, n_layers=6, n_heads=8, ffn_dim=768)  # 5.1M parameters with 3-mer tokens
SMOKE_TEACHER = dict(d_model=64, n_layers=4, n_heads=4, ffn_dim=128)
METHODS = ("today", "width", "search")
TFLITE_PROFILE = "name: local-tflite\ndescription: this machine, TFLite int8\nruntimes: [tflite]\ntflite_quant: int8\n"


def nt_v2_teacher(tok, num_classes: int, shape: dict):
    from edgegen.model import GenomicTransformer, ModelConfig

    cfg = ModelConfig(
        vocab_size=tok.vocab_size, max_positions=tok.seq_len, num_classes=num_classes, positions="rotary",
        norm="pre", final_norm=True, ffn_gated=True, activation="silu", ffn_in_bias=False, ffn_out_bias=False,
        head_hidden=True, dropout=0.1, **shape,
    )  # fmt: skip
    return GenomicTransformer(cfg)


def train_teacher(data: Path, out: Path, shape: dict, epochs: int) -> dict:
    from edgegen.checkpoint import save_model
    from edgegen.data import load_split_dir
    from edgegen.inference import evaluate_on_test
    from edgegen.model import count_params
    from edgegen.train import TrainConfig, make_tokenizer, train

    if (out / "manifest.json").exists():
        return json.loads((out / "manifest.json").read_text())["metrics"]
    splits = load_split_dir(data)
    cfg = TrainConfig(tokenizer="kmer_nonoverlap", k=3, epochs=epochs, lr=5e-4, batch_size=64, patience=2)
    tok = make_tokenizer(cfg, splits["train"])
    k = int(max(s.labels.max() for s in splits.values())) + 1
    init = SimpleNamespace(model=nt_v2_teacher(tok, k, shape), tokenizer=tok)
    model, tok, hist = train(splits, cfg, init=init, show_progress=False)
    metrics = {"test": evaluate_on_test(model, tok, splits), "params": count_params(model), "history": hist}
    save_model(model, tok, out, metrics=metrics)
    return metrics


def prune_to(method: str, teacher: Path, data: Path, out: Path, work: Path, args) -> dict:
    """The pruned (not yet distilled) student of ``method``; its report."""
    from edgegen.checkpoint import load_model, save_model
    from edgegen.data import load_split_dir
    from edgegen.prune import PruneConfig, _example_and_calib, prune, prune_model

    if (out / "manifest.json").exists():
        return json.loads((out / "report.json").read_text())
    lm = load_model(teacher)
    if method == "today":  # half the layers dropped first, more when 10% is still out of reach
        from edgegen.errors import UsageError

        for drop in range(lm.model.config.n_layers // 2, lm.model.config.n_layers):
            try:
                rep = prune_model(teacher, out, PruneConfig(target_params=args.target, drop_layers=drop), data=data)
                break
            except UsageError:
                continue
        rep = {"params_ratio": rep["params_ratio"], "after": rep["after"], "dropped_layers": drop}
    elif method == "width":
        from edgegen.shape_search import width_for

        rep = prune_model(teacher, out, PruneConfig(hidden=width_for(lm.model.config, args.target)), data=data)
        rep = {"params_ratio": rep["params_ratio"], "after": rep["after"]}
    else:
        from edgegen.shape_search import SearchConfig, prune_config_for, search_shape

        today = json.loads((work / "measure.json").read_text())["today"]
        profile = work / "local-tflite.yaml"
        profile.write_text(TFLITE_PROFILE)
        scfg = SearchConfig(
            target_latency_ms=today["p50_ms"], target_size_mb=today["size_bytes"] / 1e6, device=str(profile),
            depths=[1.0, 0.67, 0.5, 0.33, 0.17], widths=[1.0, 0.75, 0.5, 0.375, 0.25, 0.125, 0.0625],
            heads=[1.0, 0.5, 0.25], ffn=[1.0, 0.5, 0.25, 0.125], probes=args.probes, candidates=args.candidates,
            short_steps=args.short_steps,
        )  # fmt: skip
        searched = search_shape(teacher, data, work / "search-choice", scfg, force=True, show_progress=False)
        splits = load_split_dir(data)
        ex, calib = _example_and_calib(lm.tokenizer, splits, 8)
        model = prune(lm.model, prune_config_for(lm.model.config, searched["chosen"]), ex, calib=calib)
        save_model(model, lm.tokenizer, out)
        from edgegen.prune_layers import model_stats

        after = model_stats(model, lm.tokenizer.seq_len)
        rep = {"params_ratio": after["params"] / model_stats(lm.model)["params"], "after": after, "search": searched}
    (out / "report.json").write_text(json.dumps(rep, indent=1))
    return rep


def distill_one(teacher: Path, student: Path, data: Path, store: Path, out: Path, seed: int, epochs: int) -> dict:
    from edgegen.checkpoint import load_model
    from edgegen.data import load_split_dir
    from edgegen.distill import DistillConfig, distill_model
    from edgegen.inference import predict_logits

    if not (out / "manifest.json").exists():
        cfg = DistillConfig(epochs=epochs, batch_size=64, lr=1e-3, seed=seed, patience=epochs)
        distill_model(teacher, student, data, out, cfg, teacher_logits=store, show_progress=False)
    lm = load_model(out)
    test = load_split_dir(data)["test"]
    logits = predict_logits(lm.model, test.encoded(lm.tokenizer))
    np.save(out / "test_logits.npy", logits)
    return {"test": lm.manifest["metrics"]["test"]["mcc"], "logits": logits, "y": test.labels}


def mean_delta_ci(y, a: list, b: list, n_boot: int = 1000, seed: int = 0) -> dict:
    """Bootstrap (test rows resampled, the same rows for every seed) of mean over seeds of MCC(b) - MCC(a)."""
    from edgegen.metrics import mcc

    rng = np.random.default_rng(seed)
    pa, pb = [x.argmax(1) for x in a], [x.argmax(1) for x in b]
    point = float(np.mean([mcc(y, q) - mcc(y, p) for p, q in zip(pa, pb)]))
    ds = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        ds.append(np.mean([mcc(y[i], q[i]) - mcc(y[i], p[i]) for p, q in zip(pa, pb)]))
    lo, hi = np.quantile(ds, [0.025, 0.975])
    return {"delta": round(point, 4), "ci": [round(float(lo), 4), round(float(hi), 4)], "seeds": len(a)}


def run_set(name: str, args, result: dict, save) -> None:
    from foundation_scale import subset_data

    from edgegen.data import load_split_dir
    from edgegen.devices import DeviceProfile
    from edgegen.distill import DistillConfig, compute_teacher_logits
    from edgegen.metrics import paired_delta
    from edgegen.shape_timing import time_models

    work = args.work / name
    data = work / "data"
    if not (data / "test.csv").exists():
        subset_data(args.data / name, data, *(SETS[name] if not args.smoke else (1500, 300, 600)))
    t0 = time.time()
    res = result["sets"].setdefault(name, {"methods": {}})
    res["teacher"] = train_teacher(
        data, work / "teacher", SMOKE_TEACHER if args.smoke else TEACHER, args.teacher_epochs
    )
    res["teacher_s"] = round(time.time() - t0, 1)
    save()
    store = work / "store"
    if not (store / "meta.json").exists():
        compute_teacher_logits(work / "teacher", data, store, DistillConfig(), show_progress=False)
    splits = load_split_dir(data)
    prof = DeviceProfile(name="local-tflite", runtimes=["tflite"], tflite_quant="int8")
    measure = json.loads((work / "measure.json").read_text()) if (work / "measure.json").exists() else {}
    for method in METHODS:
        m = res["methods"].setdefault(method, {})
        m.update(prune_to(method, work / "teacher", data, work / "shapes" / method, work, args))
        if method not in measure:  # latency and size belong to the shape: measured on the pruned model
            measure[method] = time_models([work / "shapes" / method], splits, prof, 1, work / "tflite")[0]
            (work / "measure.json").write_text(json.dumps(measure))
        m["tflite_int8"] = measure[method]
        m["seeds"] = []
        for seed in range(args.seeds):
            d = distill_one(work / "teacher", work / "shapes" / method, data, store,
                            work / "students" / f"{method}-s{seed}", seed, args.distill_epochs)  # fmt: skip
            m["seeds"].append({"seed": seed, "test_mcc": d["test"], "_logits": d["logits"], "_y": d["y"]})
        save()
    y = res["methods"]["today"]["seeds"][0]["_y"]
    for method in ("width", "search"):
        a = [s["_logits"] for s in res["methods"]["today"]["seeds"]]
        b = [s["_logits"] for s in res["methods"][method]["seeds"]]
        res["methods"][method]["vs_today"] = {
            "per_seed": [paired_delta(y, x, z, "mcc") for x, z in zip(a, b)],
            "mean_over_seeds": mean_delta_ci(y, a, b),
        }
    s, t = res["methods"]["search"], res["methods"]["today"]
    res["goal_met"] = bool(
        s["vs_today"]["mean_over_seeds"]["ci"][0] > 0 and s["tflite_int8"]["p50_ms"] <= t["tflite_int8"]["p50_ms"]
    )
    save()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--sets", nargs="+", default=list(SETS))
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "width_vs_depth")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--target", type=float, default=0.1)
    p.add_argument("--teacher-epochs", type=int, default=4)
    p.add_argument("--distill-epochs", type=int, default=3)
    p.add_argument("--probes", type=int, default=8)
    p.add_argument("--candidates", type=int, default=3)
    p.add_argument("--short-steps", type=int, default=100)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    import torch

    from edgegen.machine import machine_info

    torch.set_num_threads(2)
    tag = "smoke" if args.smoke else "vm"
    out = args.out or ROOT / "benchmarks" / "results" / f"{time.strftime('%Y-%m-%d')}-{tag}-width-vs-depth.json"
    if args.smoke:
        args.work = args.work.with_name(args.work.name + "-smoke")
        args.seeds, args.teacher_epochs, args.distill_epochs = min(args.seeds, 2), 2, 1
        args.probes, args.candidates, args.short_steps, args.target = 4, 2, 20, 0.3
    result = {"schema": "edgegen-width-vs-depth/1", "machine": machine_info(), "python": platform.python_version(),
              "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "sets": {}}  # fmt: skip

    def save():
        from edgegen.io import write_json

        def strip(x):
            if isinstance(x, dict):
                return {k: strip(v) for k, v in x.items() if not k.startswith("_")}
            return [strip(v) for v in x] if isinstance(x, list) else x

        write_json(out, strip(result))

    for name in args.sets:
        run_set(name, args, result, save)
        print(table(name, result["sets"][name]))
    print(f"wrote {out}")
    return 0


def table(name: str, res: dict) -> str:
    rows = [f"\n{name}: teacher test MCC {res['teacher']['test']['mcc']['value']:.3f}, {res['teacher']['params']:,} params",
            "| method | shape (layers x width, heads, FFN) | params | int8 TFLite p50 ms | size KB | test MCC per seed | vs today (mean, 95% CI) |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for method, m in res["methods"].items():
        a = m["after"]
        shape = f"{a['layers']} x {a['d_model']}, {max(a['heads'])}, {max(a['ffn'])}"
        mccs = ", ".join(f"{s['test_mcc']['value']:.3f}" for s in m["seeds"])
        vs = m.get("vs_today", {}).get("mean_over_seeds")
        vs_s = f"{vs['delta']:+.3f} [{vs['ci'][0]:+.3f}, {vs['ci'][1]:+.3f}]" if vs else "—"
        t = m["tflite_int8"]
        rows.append(f"| {method} | {shape} | {a['params']:,} ({m['params_ratio']:.3f}) | {t['p50_ms']:.3f} | "
                    f"{t['size_bytes'] / 1e3:.0f} | {mccs} | {vs_s} |")  # fmt: skip
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
