#!/usr/bin/env python3
"""Does an ONNX export over protobuf's 2 GiB limit work end to end? (NT-v2 500M in float32 is about 2 GB.)

Writes a random-weight NT-v2 500M checkpoint in the published layout (as benchmarks/foundation_scale.py does),
imports it with a short window, exports ONNX float (weights beyond ~1.8 GB go to FILE.onnx.data on their own)
and ONNX int8, each verified against torch, then loads both through edgegen's runner (as a user and a bundle
would) and records sizes, wall times and peak RSS:

    python benchmarks/onnx_over_2gb.py [--size nt_v2_500m] [--window 120]

Each stage runs in its own process (peak RSS its own). Writes benchmarks/results/<date>-<machine>-onnx-over-2gb.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from foundation_scale import SIZES, run_stage, write_checkpoint  # noqa: E402


def stage_import(work: Path, window: int) -> dict:
    from edgegen.checkpoint import load_model
    from edgegen.hf import import_hf

    import_hf(work / "checkpoint", work / "model", max_len=window)
    lm = load_model(work / "model")
    return {"params": sum(p.numel() for p in lm.model.parameters()), "seq_len": lm.tokenizer.seq_len}


def stage_export(work: Path, quant: str, verify_samples: int) -> dict:
    from edgegen.export import export
    from edgegen.export.config import ExportConfig

    path = work / f"model.{quant}.onnx"
    export(
        work / "model", path, ExportConfig(format="onnx", quant=quant, verify_samples=verify_samples, calib_samples=8)
    )
    side = json.loads(Path(str(path) + ".json").read_text())
    ext = side.get("external_data")
    return {
        "onnx_bytes": path.stat().st_size,
        "external_data_bytes": ext["bytes"] if ext else None,
        "verification": side["verification"],
    }


def stage_run(work: Path, quant: str) -> dict:
    import numpy as np

    from edgegen.runtime import load_runner

    t0 = time.monotonic()
    r = load_runner(work / f"model.{quant}.onnx", threads=int(os.environ.get("EDGEGEN_BENCH_THREADS", "2")))
    load_s = time.monotonic() - t0
    ids = r.tokenizer.encode(["ACGT" * 30] * 2)
    out = r(ids)
    return {"load_seconds": load_s, "output_shape": list(out.shape), "finite": bool(np.isfinite(out).all())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="nt_v2_500m")
    ap.add_argument(
        "--fixtures",
        type=Path,
        default=Path(os.environ.get("EDGEGEN_SHARED_FIXTURES", ROOT.parent / "shared" / "fixtures")) / "hf",
    )
    ap.add_argument(
        "--window", type=int, default=120, help="nucleotides per input (the file size does not depend on it)"
    )
    ap.add_argument("--verify-samples", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    work = args.work or ROOT / "benchmarks" / ".work" / f"onnx-over-2gb-{args.size}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ["EDGEGEN_BENCH_THREADS"] = str(args.threads)
    stages = {"write": run_stage("write", write_checkpoint, args.size, args.fixtures, work / "checkpoint", 2)}
    stages["import"] = run_stage("import", stage_import, work, args.window)
    shutil.rmtree(work / "checkpoint")  # 2 GB less on disk
    for quant in ("none", "int8"):
        stages[f"export-{quant}"] = run_stage(f"ex-{quant}", stage_export, work, quant, args.verify_samples)
        stages[f"run-{quant}"] = run_stage(f"run-{quant}", stage_run, work, quant)
    result = {
        "benchmark": "onnx_over_2gb",
        "size": args.size,
        "window_nt": args.window,
        "threads": args.threads,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d"),
        "stages": stages,
        "max_peak_rss_mb": max(s.get("peak_rss_mb", 0) for s in stages.values()),
    }
    out = (
        args.out or ROOT / "benchmarks" / "results" / f"{result['date']}-{platform.node() or 'host'}-onnx-over-2gb.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str))
    os.replace(tmp, out)
    for q in ("none", "int8"):
        e = stages[f"export-{q}"]["result"]
        print(
            f"onnx {q:5s}: {e['onnx_bytes'] / 1e6:8.1f} MB graph + {(e['external_data_bytes'] or 0) / 1e9:.2f} GB external, "
            f"max |diff| {e['verification']['max_abs_diff']:.2g}, agreement {e['verification']['argmax_agreement']:.3f}, "
            f"export {stages[f'export-{q}']['seconds'] / 60:.1f} min, peak {stages[f'export-{q}']['peak_rss_mb'] / 1024:.1f} GB"
        )
    print(f"wrote {out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
