#!/usr/bin/env python3
"""Does the pipeline hold at the size of a real foundation model?

Writes a random-weight checkpoint at a published size in the published layout (tensor names from the shared
tiny fixture of the same family, shapes from the size below, the fixture's own tokenizer files), then runs
edgegen's library functions on it, each stage in its own process so its peak RSS is its own:

  write     the checkpoint (model.safetensors + config.json + tokenizer files)
  import    edgegen.hf.import_hf with a 1 kb window
  prune     edgegen.prune.prune_model to 10% of the parameters (--target), 5 whole layers dropped first (heads and gated feed-forward pairs)
  distill   edgegen.distill.distill_model, one epoch on 1,000 training sequences of a real dataset, on the teacher's
            logits alone (cached; a random teacher knows nothing of the labels)
  export    edgegen.export.export: TFLite float, TFLite int8, ONNX float, ONNX int8, each verified against torch
  bench     edgegen.bench.bench on the test subset, the float teacher as the reference (agreement, latency)

    python benchmarks/foundation_scale.py --size nt_v2_100m --data ../shared/data/splice_site_human
    python benchmarks/foundation_scale.py --size dnabert2_117m

The weights are random (no hub, no network): accuracy numbers say nothing about biology; time, memory, sizes and
agreement with the float teacher are what this measures. Writes
benchmarks/results/<date>-<machine>-foundation-<size>.json (and prints a Markdown row for the README).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Published sizes (the hub configs of InstaDeepAI/nucleotide-transformer-v2-100m-multi-species and
# zhihan1996/DNABERT-2-117M): family, hidden, layers, heads, intermediate, vocab.
SIZES = {
    "nt_v2_100m": ("nt_v2", 512, 22, 16, 2048, 4107),
    "dnabert2_117m": ("dnabert2", 768, 12, 12, 3072, 4096),
    # float32 about 2 GB: its ONNX file needs external data (benchmarks/onnx_over_2gb.py)
    "nt_v2_500m": ("nt_v2", 1024, 29, 16, 4096, 4107),
    # for the smoke test (tests/test_benchmarks_smoke.py): three heads, not a power of two
    "nt_v2_smoke": ("nt_v2", 48, 2, 3, 64, 4107),
    "dnabert2_smoke": ("dnabert2", 48, 2, 3, 64, 4096),
}
# Whole layers dropped before heads and channels are pruned: torch-pruning's ratio scan stops at 0.9, and with
# fewer layers dropped 10% is out of reach (NT-v2 100M: 11% at best with none dropped; DNABERT-2 117M: 13% of
# what remains with 3 dropped).
DROP_LAYERS = {"nt_v2_100m": 5, "dnabert2_117m": 5}
FIXTURE = {"nt_v2": "nt_v2_tiny_cls", "dnabert2": "dnabert2_tiny_cls"}
WINDOW_NT = 1000


def _shape(name: str, h: int, layers: int, heads: int, inter: int, vocab: int, classes: int, n_pos: int) -> list[int]:
    """The published tensor shape for ``name`` at this size (names come from the fixture; a weight name without a
    rule is an error, so a changed layout is noticed, not silently mis-sized)."""
    rules = [
        (r"word_embeddings\.weight$", [vocab, h]),
        (r"position_embeddings\.weight$", [n_pos, h]),
        (r"token_type_embeddings\.weight$", [2, h]),
        (r"rotary_embeddings\.inv_freq$", [h // heads // 2]),
        (r"contact_head\.regression\.weight$", [1, layers * heads]),
        (r"contact_head\.regression\.bias$", [1]),
        (r"Wqkv\.weight$", [3 * h, h]),
        (r"Wqkv\.bias$", [3 * h]),
        (r"(intermediate\.dense|gated_layers)\.weight$", [2 * inter, h]),
        (r"(layer\.\d+\.output\.dense|mlp\.wo)\.weight$", [h, inter]),
        (r"(out_proj|^classifier)\.weight$", [classes, h]),
        (r"(out_proj|^classifier)\.bias$", [classes]),
        (r"(LayerNorm|layernorm|layer_norm_after)\.weight$", [h]),
        (r"(query|key|value|attention\.output\.dense|pooler\.dense|classifier\.dense)\.weight$", [h, h]),
        (r"\.bias$", [h]),
    ]
    for pat, shape in rules:
        if re.search(pat, name):
            return shape
    raise SystemExit(f"foundation_scale: no shape rule for tensor {name!r}")


def write_checkpoint(size: str, fixtures: Path, out: Path, classes: int, seed: int = 0) -> dict:
    """A random-weight checkpoint of ``size`` in the layout of the family's fixture."""
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import save_file

    family, h, layers, heads, inter, vocab = SIZES[size]
    src = fixtures / FIXTURE[family]
    cfg = json.loads((src / "config.json").read_text())
    n_layers_fixture = int(cfg["num_hidden_layers"])
    n_pos = int(cfg.get("max_position_embeddings", 512))
    cfg.update(
        hidden_size=h,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=inter,
        vocab_size=vocab,
        num_labels=classes,
        id2label={str(i): f"LABEL_{i}" for i in range(classes)},
        label2id={f"LABEL_{i}": i for i in range(classes)},
    )
    with safe_open(str(src / "model.safetensors"), "np") as f:
        names = list(f.keys())
    per_layer = sorted({re.sub(r"\.layer\.0\.", ".layer.{i}.", n) for n in names if ".layer.0." in n})
    other = [n for n in names if not re.search(r"\.layer\.\d+\.", n)]
    assert len([n for n in names if re.search(r"\.layer\.\d+\.", n)]) == len(per_layer) * n_layers_fixture
    rng = np.random.default_rng(seed)
    tensors = {}
    for n in other + [p.format(i=i) for i in range(layers) for p in per_layer]:
        shape = _shape(n, h, layers, heads, inter, vocab, classes, n_pos)
        if n.endswith("inv_freq"):
            t = 1.0 / (10000 ** (np.arange(0, h // heads, 2, dtype=np.float32) / (h // heads)))
        elif re.search(r"(LayerNorm|layernorm|layer_norm_after)\.weight$", n):
            t = np.ones(shape, np.float32)
        elif n.endswith(".bias"):
            t = np.zeros(shape, np.float32)
        else:
            t = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
        tensors[n] = t
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    for f in src.iterdir():
        if f.name not in ("config.json", "model.safetensors", "golden.json"):
            shutil.copy(f, out / f.name)
    return {"params": int(sum(t.size for t in tensors.values())), "bytes": (out / "model.safetensors").stat().st_size}


def subset_data(data: Path, out: Path, n_train: int, n_dev: int, n_test: int, seed: int = 0) -> int:
    """``n_*`` sequences per split of a real dataset (shuffled with ``seed``); returns the number of classes."""
    import numpy as np

    from edgegen.data import load_split_dir

    splits = load_split_dir(data)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    k = 0
    for name, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        s = splits[name]
        idx = rng.permutation(len(s.sequences))[:n]
        rows = ["sequence,label"] + [f"{s.sequences[i]},{int(s.labels[i])}" for i in idx]
        (out / f"{name}.csv").write_text("\n".join(rows) + "\n")
        k = max(k, int(max(s.labels)) + 1)
    return k


# ---- stages (each runs in a fresh process; see _in_child) -------------------------------------------------------


def stage_import(work: Path) -> dict:
    from edgegen.hf import import_hf

    import_hf(work / "checkpoint", work / "teacher", max_len=WINDOW_NT)
    from edgegen.checkpoint import load_model

    lm = load_model(work / "teacher")
    return {"params": sum(p.numel() for p in lm.model.parameters()), "seq_len": lm.tokenizer.seq_len}


def _prune_summary(rep: dict, model_dir: Path) -> dict:
    return {
        "params_before": rep["before"]["params"],
        "params_after": rep["after"]["params"],
        "params_ratio": rep["params_ratio"],
        "macs_ratio": rep["macs_ratio"],
        "config_after": _shape_of(model_dir),
    }


def stage_prune(work: Path, target: float, drop_layers: int) -> dict:
    from edgegen.prune import PruneConfig, prune_model

    rep = prune_model(
        work / "teacher",
        work / "pruned",
        PruneConfig(target_params=target, drop_layers=drop_layers),
        data=work / "data",
    )
    return _prune_summary(rep, work / "pruned")


def stage_distill(work: Path) -> dict:
    from edgegen.distill import DistillConfig, distill_model

    res = distill_model(
        work / "teacher",
        work / "pruned",
        work / "data",
        work / "student",
        DistillConfig(epochs=1, alpha=0.0, beta=1.0, cache_teacher=True),
        show_progress=False,
    )
    t = res.get("teacher_test") or {}
    # a random teacher may predict one class for everything: then agreement with it is trivial
    return {
        "student_test": res.get("test"),
        "teacher_test": t,
        "history": res.get("history"),
        "teacher_classes_predicted": sum(r > 0 for r in t.get("per_class_recall", [])),
    }


def stage_prune_width(work: Path, target: float) -> dict:
    """Hidden width only (edgegen.prune_width), to the same fraction of the parameters."""
    from edgegen.checkpoint import load_model
    from edgegen.prune import PruneConfig, prune_model
    from edgegen.shape_search import width_for

    width = width_for(load_model(work / "teacher").model.config, target)
    rep = prune_model(work / "teacher", work / "pruned-width", PruneConfig(hidden=width), data=work / "data")
    return _prune_summary(rep, work / "pruned-width")


def stage_width_export(work: Path) -> dict:
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    out = {}
    for fmt in ("tflite", "onnx"):
        t0 = time.monotonic()
        path = work / f"width.int8.{fmt}"
        export(work / "pruned-width", path, ExportConfig(format=fmt, quant="int8"), calib=work / "data" / "dev.csv")
        out[f"{fmt}-int8"] = {"seconds": time.monotonic() - t0, "bytes": path.stat().st_size}
    return out


def stage_width_bench(work: Path, threads: int) -> dict:
    from edgegen.bench import BenchConfig, bench

    cfg = BenchConfig(threads=[threads], warmup=2, runs=10, max_samples=100, n_boot=100, validity=False)
    models = [work / "width.int8.tflite", work / "width.int8.onnx"]
    res = bench(models, work / "data" / "test.csv", cfg=cfg, show_progress=False)
    rows = []
    for m in res["models"]:
        t = m.get("timing", {}).get(str(threads)) or {}
        rows.append(
            {
                "model": m.get("name"),
                "bytes": m.get("size_bytes"),
                "error": m.get("error"),
                "latency_b1_ms": (t.get("latency_b1") or {}).get("p50_ms"),
                "peak_rss_mb": m.get("peak_rss_mb"),
            }
        )
    return {"models": rows}


EXPORTS = [("tflite", "none"), ("tflite", "int8"), ("onnx", "none"), ("onnx", "int8")]


def stage_export(work: Path) -> dict:
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    out = {}
    for fmt, quant in EXPORTS:
        t0 = time.monotonic()
        path = work / f"student.{quant}.{fmt}"
        export(work / "student", path, ExportConfig(format=fmt, quant=quant), calib=work / "data" / "dev.csv")
        out[f"{fmt}-{quant}"] = {"seconds": time.monotonic() - t0, "bytes": path.stat().st_size}
    return out


def stage_bench(work: Path, threads: int) -> dict:
    from edgegen.bench import BenchConfig, bench

    cfg = BenchConfig(threads=[threads], warmup=2, runs=10, max_samples=200, n_boot=200, validity=False)

    models = [work / "teacher", work / "student"] + [work / f"student.{q}.{f}" for f, q in EXPORTS]
    res = bench(models, work / "data" / "test.csv", cfg=cfg, show_progress=False)
    rows = []
    for m in res["models"]:
        t = m.get("timing", {}).get(str(threads)) or m.get("timing", {}).get(threads) or {}
        vs = m.get("vs_baseline", {})
        rows.append(
            {
                "model": m.get("name"),
                "bytes": m.get("size_bytes"),
                "error": m.get("error"),
                "latency_b1_ms": (t.get("latency_b1") or {}).get("p50_ms"),
                "throughput_seq_s": (t.get("throughput") or {}).get("seq_per_s"),
                "peak_rss_mb": m.get("peak_rss_mb"),
                "agreement_with_teacher": vs.get("argmax_agreement"),
            }
        )
    return {"models": rows, "config": cfg.model_dump()}


def _shape_of(model_dir: Path) -> dict:
    cfg = json.loads((model_dir / "config.json").read_text())
    keys = ("d_model", "n_layers", "n_heads", "ffn_dim", "heads_per_layer", "ffn_per_layer")
    return {k: cfg[k] for k in keys if k in cfg}


def _in_child(q, fn, args):
    import torch

    torch.set_num_threads(q_threads := int(os.environ.get("EDGEGEN_BENCH_THREADS", "2")))
    t0 = time.monotonic()
    try:
        res = fn(*args)
        q.put(
            {
                "ok": True,
                "result": res,
                "seconds": time.monotonic() - t0,
                "peak_rss_mb": max(
                    resource.getrusage(w).ru_maxrss for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                )
                / 1024,
                "threads": q_threads,
            }
        )
    except BaseException as e:  # reported, then the parent stops
        q.put({"ok": False, "error": f"{type(e).__name__}: {e}", "seconds": time.monotonic() - t0})


def run_stage(name: str, fn, *args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_in_child, args=(q, fn, args))
    p.start()
    res = q.get()
    p.join()
    print(
        f"{name:8s} {res['seconds']:7.1f} s  peak RSS {res.get('peak_rss_mb', 0):7.0f} MB  "
        f"{'ok' if res['ok'] else res['error']}",
        flush=True,
    )
    if not res["ok"]:
        raise SystemExit(f"foundation_scale: stage {name} failed: {res['error']}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), required=True)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "splice_site_human")
    ap.add_argument(
        "--fixtures",
        type=Path,
        default=Path(os.environ.get("EDGEGEN_SHARED_FIXTURES", ROOT.parent / "shared" / "fixtures")) / "hf",
    )
    ap.add_argument(
        "--work", type=Path, default=None, help="working folder (default benchmarks/.work/foundation-SIZE; replaced)"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-eval", type=int, default=500, help="test sequences (dev: 200, or this if fewer)")
    ap.add_argument("--target", type=float, default=0.10, help="fraction of the parameters to keep")
    ap.add_argument("--drop-layers", type=int, default=None, help="whole layers removed first (default: DROP_LAYERS)")
    ap.add_argument(
        "--width",
        choices=("also", "only", "none"),
        default="also",
        help="also (or only) prune the hidden width to the same --target, export int8 and time it (not distilled)",
    )
    ap.add_argument(
        "--no-distill",
        action="store_true",
        help="export and bench the pruned model as it is (latency and size do not depend on the distillation)",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    from edgegen.machine import machine_info

    if args.drop_layers is None:
        args.drop_layers = DROP_LAYERS.get(args.size, 0)
    work = args.work or ROOT / "benchmarks" / ".work" / f"foundation-{args.size}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ["EDGEGEN_BENCH_THREADS"] = str(args.threads)

    classes = subset_data(args.data, work / "data", args.n_train, min(200, args.n_eval), args.n_eval)
    stages = {}
    t_all = time.monotonic()
    stages["write"] = run_stage("write", write_checkpoint, args.size, args.fixtures, work / "checkpoint", classes)
    stages["import"] = run_stage("import", stage_import, work)
    if args.width != "only":
        stages["prune"] = run_stage("prune", stage_prune, work, args.target, args.drop_layers)
        if args.no_distill:
            shutil.copytree(work / "pruned", work / "student")
        else:
            stages["distill"] = run_stage("distill", stage_distill, work)
        stages["export"] = run_stage("export", stage_export, work)
        stages["bench"] = run_stage("bench", stage_bench, work, args.threads)
    if args.width != "none":
        stages["prune-width"] = run_stage("prune-width", stage_prune_width, work, args.target)
        stages["width-export"] = run_stage("width-export", stage_width_export, work)
        stages["width-bench"] = run_stage("width-bench", stage_width_bench, work, args.threads)
    total = time.monotonic() - t_all
    if args.width == "only":
        return _write_width_only(args, stages, total)
    without_distill = total - stages.get("distill", {}).get("seconds", 0.0)
    ex = stages["export"]["result"]
    result = {
        "benchmark": "foundation_scale",
        "size": args.size,
        "shape": dict(zip(("family", "hidden", "layers", "heads", "intermediate", "vocab"), SIZES[args.size])),
        "data": str(args.data),
        "window_nt": WINDOW_NT,
        "n_train": args.n_train,
        "target_params": args.target,
        "drop_layers": args.drop_layers,
        "threads": args.threads,
        "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d"),
        "stages": stages,
        "total_seconds": total,
        "seconds_without_distill": without_distill,
        "int8_tflite_vs_float": ex["tflite-int8"]["bytes"] / ex["tflite-none"]["bytes"],
        "int8_onnx_vs_float": ex["onnx-int8"]["bytes"] / ex["onnx-none"]["bytes"],
        "max_peak_rss_mb": max(s.get("peak_rss_mb", 0) for s in stages.values()),
    }
    out = (
        args.out
        or ROOT / "benchmarks" / "results" / f"{result['date']}-{platform.node() or 'host'}-foundation-{args.size}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str))
    os.replace(tmp, out)
    st = {k: v["seconds"] / 60 for k, v in stages.items()}
    print(
        f"| {args.size} | {stages['write']['result']['params'] / 1e6:.0f} M → {stages['prune']['result']['params_after'] / 1e6:.1f} M | "
        + " | ".join(f"{st[k]:.1f}" if k in st else "—" for k in ("import", "prune", "distill", "export", "bench"))
        + f" | {without_distill / 60:.1f} | {result['max_peak_rss_mb'] / 1024:.1f} GB | {100 * result['int8_tflite_vs_float']:.0f}% |"
    )
    print(f"wrote {out}")
    return 0


def _write_width_only(args, stages: dict, total: float) -> int:
    from edgegen.machine import machine_info

    w = stages["prune-width"]["result"]
    result = {
        "benchmark": "foundation_scale",
        "mode": "width only",
        "size": args.size,
        "shape": dict(zip(("family", "hidden", "layers", "heads", "intermediate", "vocab"), SIZES[args.size])),
        "data": str(args.data),
        "window_nt": WINDOW_NT,
        "target_params": args.target,
        "threads": args.threads,
        "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d"),
        "stages": stages,
        "total_seconds": total,
        "max_peak_rss_mb": max(s.get("peak_rss_mb", 0) for s in stages.values()),
    }
    out = (
        args.out
        or ROOT
        / "benchmarks"
        / "results"
        / f"{result['date']}-{platform.node() or 'host'}-foundation-{args.size}-width.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str))
    os.replace(tmp, out)
    lat = {m["model"]: m["latency_b1_ms"] for m in stages["width-bench"]["result"]["models"]}
    print(f"| {args.size} width | {w['params_before'] / 1e6:.1f} M → {w['params_after'] / 1e6:.1f} M ({w['config_after']}) | "
          f"prune {stages['prune-width']['seconds'] / 60:.1f} min | export {stages['width-export']['seconds'] / 60:.1f} min | "
          f"int8 latency {lat} |")  # fmt: skip
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
