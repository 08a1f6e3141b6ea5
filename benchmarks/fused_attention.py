#!/usr/bin/env python3
"""Plain attention graph vs ONNX Runtime's fused MultiHeadAttention kernel, A/B in one process.

``ExportConfig.fused_attention`` (``edgegen export --fused-attention``) exports each layer's attention
core as one ``com.microsoft.MultiHeadAttention`` node instead of reshapes, transposes, two matmuls, the
mask add and the softmax. This script exports a model both ways (fp32 and int8) and times them in
alternating rounds with edgegen's ONNX runner: batch-1 p50 at 1 thread and batch-64 time at 2 threads,
each a median within a round; the fused/plain ratio is taken per round, so that the machine's slow and
fast phases hit both files alike, and reported as median and range over rounds.

    python benchmarks/fused_attention.py --model benchmarks/.work/splice_site_human/run/distill-params50/model
    python benchmarks/fused_attention.py --smoke      # CI: a random tiny model, seconds

Writes benchmarks/results/<date>-<machine>-fused-attention-<name>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gemm_ceiling import timed  # noqa: E402  (median seconds of timed runs after warm-up)


def smoke_model(dirpath: Path) -> Path:
    import torch

    from edgegen.checkpoint import save_model
    from edgegen.dna_tokenizer import Tokenizer
    from edgegen.model import GenomicTransformer, ModelConfig

    tok = Tokenizer(kind="kmer_nonoverlap", k=3, max_len=120)
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=tok.vocab_size,
        max_positions=tok.seq_len,
        num_classes=2,
        d_model=32,
        n_layers=2,
        n_heads=4,
        ffn_dim=64,
    )
    return save_model(GenomicTransformer(cfg).eval(), tok, dirpath / "smoke")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="an edgegen model directory")
    ap.add_argument(
        "--smoke", action="store_true", help="a random tiny model and few runs: checks the script runs (CI)"
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--b1-runs", type=int, default=200)
    ap.add_argument("--b64-runs", type=int, default=15)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    if not args.model and not args.smoke:
        ap.error("give --model DIR or --smoke")
    if args.smoke:
        args.rounds, args.b1_runs, args.b64_runs = 2, 5, 2

    from edgegen.export import export
    from edgegen.export.config import ExportConfig
    from edgegen.io import write_json
    from edgegen.runtime.onnx_runner import OnnxRunner

    rng = np.random.default_rng(0)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="edgegen-mha-") as tmp:
        tmp = Path(tmp)
        model = Path(args.model) if args.model else smoke_model(tmp)
        files = {}
        for quant in ("none", "int8"):
            for fused in (False, True):
                name = f"{'int8' if quant == 'int8' else 'fp32'} {'fused' if fused else 'plain'}"
                files[name] = export(
                    model,
                    tmp / f"{quant}.{int(fused)}.onnx",
                    ExportConfig(
                        format="onnx",
                        quant=quant,
                        fused_attention=fused,
                        # an untrained smoke model's logits are near ties: int8 argmax
                        # agreement is noise there, and differs between CPUs
                        min_agreement=0.0 if args.smoke else 0.9,
                    ),
                )
        b1 = {k: OnnxRunner(p, threads=1) for k, p in files.items()}
        b64 = {k: OnnxRunner(p, threads=2) for k, p in files.items()}
        seq_len = next(iter(b1.values())).tokenizer.seq_len
        ids = rng.integers(5, 69, size=(64, seq_len)).astype(np.int32)
        ids[:, 0] = next(iter(b1.values())).tokenizer.cls_id
        for k in files:
            rows[k] = {"file_bytes": files[k].stat().st_size, "b1_p50_ms": [], "b64_ms": []}
        for r in range(args.rounds):
            for k in files:  # alternating: every round times every file
                rows[k]["b1_p50_ms"].append(1e3 * timed(lambda: b1[k](ids[:1]), args.b1_runs))
                rows[k]["b64_ms"].append(1e3 * timed(lambda: b64[k](ids), args.b64_runs))
            print(f"round {r + 1}: " + ", ".join(f"{k} b64 {rows[k]['b64_ms'][-1]:.1f} ms" for k in files), flush=True)
    lines = [
        f"{model} ({seq_len} tokens), {args.rounds} alternating rounds; per-round medians of {args.b1_runs} batch-1 runs "
        f"(1 thread) and {args.b64_runs} batch-64 runs (2 threads). Ratio: plain time / fused time per round (>1: fused faster).",
        "",
        "| file | batch-1 p50 ms | batch-64 ms | batch-1 speed-up vs plain | batch-64 speed-up vs plain |",
        "|---|---|---|---|---|",
    ]
    for k, row in rows.items():
        plain = rows[k.replace("fused", "plain")]
        for key, col in (("b1", "b1_p50_ms"), ("b64", "b64_ms")):
            ratios = [b / m for b, m in zip(plain[col], row[col])]
            row[f"{key}_speedup"] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
        cell = lambda s: f"{s['median']:.2f}x ({s['min']:.2f}-{s['max']:.2f})"
        lines.append(
            f"| {k} | {statistics.median(row['b1_p50_ms']):.3f} | {statistics.median(row['b64_ms']):.1f} | "
            f"{cell(row['b1_speedup'])} | {cell(row['b64_speedup'])} |"
        )
    print("\n".join(lines))
    tag = "smoke" if args.smoke else Path(model).parent.name
    out = Path(args.out) / f"{time.strftime('%Y-%m-%d')}-{platform.node() or 'machine'}-fused-attention-{tag}.json"
    write_json(
        out,
        {
            "schema": "edgegen-fused-attention/1",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": str(model),
            "seq_len": seq_len,
            "args": vars(args),
            "rows": rows,
            "markdown": lines,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
