#!/usr/bin/env python3
"""Where an exported ONNX model spends its time, by operator type (ONNX Runtime's own profiler).

    python benchmarks/op_profile.py MODEL.onnx [--batch 64] [--threads 2] [--runs 20]

Runs the model on random valid token ids at a fixed batch and prints each operator type's share of
kernel time, grouped as int8 matrix multiplies (the only part that runs at the VNNI int8 rate), float
matrix multiplies (attention's QK^T and AV), data movement, normalisation/softmax/activations and
other elementwise work. This is what bounds a model's batch-64 GMAC/s as a fraction of the int8 peak
(see benchmarks/gemm_ceiling.py for what the int8 multiplies alone reach).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GROUPS = {
    "int8 matmul": {
        "MatMulInteger",
        "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul",
        "QLinearMatMul",
        "QGemm",
        "ConvInteger",
    },
    "float matmul": {"MatMul", "FusedMatMul", "Gemm", "FusedGemm"},
    "data movement": {
        "Transpose",
        "Reshape",
        "Concat",
        "Gather",
        "Slice",
        "Squeeze",
        "Unsqueeze",
        "Expand",
        "Split",
        "Cast",
    },
    "norm/softmax/act": {
        "LayerNormalization",
        "SkipLayerNormalization",
        "Softmax",
        "Gelu",
        "FastGelu",
        "BiasGelu",
        "Erf",
        "Tanh",
    },
    "quantize": {"DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear"},
}


def group_of(op: str) -> str:
    return next((g for g, ops in GROUPS.items() if op in ops), "other elementwise")


def profile(model: Path, batch: int, threads: int, runs: int) -> dict:
    import onnxruntime as ort

    from edgegen.runtime.sidecar import read_sidecar

    side = read_sidecar(model)
    seq_len = int(side["input"]["shape"][1])
    with tempfile.TemporaryDirectory(prefix="edgegen-prof-") as tmp:
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.enable_profiling, so.profile_file_prefix = True, str(Path(tmp) / "ort")
        sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        dtype = np.int64 if "int64" in inp.type else np.int32
        x = (
            np.random.default_rng(0).integers(5, 5 + 64, (batch, seq_len)).astype(dtype)
        )  # ordinary k-mer ids, no padding
        for _ in range(runs):
            sess.run(None, {inp.name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    by_op: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
    total = sum(by_op.values()) or 1
    by_group: collections.Counter = collections.Counter()
    for op, us in by_op.items():
        by_group[group_of(op)] += us
    return {
        "model": str(model),
        "batch": batch,
        "threads": threads,
        "runs": runs,
        "seq_len": seq_len,
        "ms_per_batch": total / runs / 1e3,
        "op_share": {op: us / total for op, us in by_op.most_common()},
        "group_share": {g: us / total for g, us in by_group.most_common()},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args(argv)
    r = profile(args.model, args.batch, args.threads, args.runs)
    print(
        f"{r['model']}: batch {r['batch']}, {r['threads']} threads, {r['ms_per_batch']:.2f} ms of kernel time per batch"
    )
    for g, share in r["group_share"].items():
        print(f"  {g:18s} {100 * share:5.1f}%")
    print("  by operator: " + ", ".join(f"{op} {100 * s:.1f}%" for op, s in list(r["op_share"].items())[:10]))
    if args.json:
        from edgegen.io import write_json

        write_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
