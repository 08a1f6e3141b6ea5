#!/usr/bin/env python3
"""Streaming prediction in constant memory: a synthetic FASTQ.gz of N reads through `edgegen predict`.

    python benchmarks/predict_stream.py --model runs/quickstart/export-distill-params50.int8.tflite/distill-params50.int8.tflite \
        --reads 100000 1000000

For each size it writes the FASTQ (with a few bad and empty records mixed in), runs `edgegen predict` in a
separate process, samples that process's VmHWM (peak resident memory of its own address space) and reports
reads/s, bases/s, peak RSS and the skipped counts. Constant memory = the peak does not grow with N.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_fastq(path: Path, n: int, length: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    alpha = np.frombuffer(b"ACGT", dtype=np.uint8)
    qual = "I" * length
    with gzip.open(path, "wt", compresslevel=1) as fh:
        for start in range(0, n, 10000):
            m = min(10000, n - start)
            lens = rng.integers(length // 2, length * 2, m)
            block = alpha[rng.integers(0, 4, (m, lens.max()))]
            for j in range(m):
                i = start + j
                s = block[j, : lens[j]].tobytes().decode()
                if i % 10000 == 9999:
                    s = s[:10] + "X" + s[11:]  # a bad letter: skipped and counted
                fh.write(f"@read{i}\n{s}\n+\n{(qual * 3)[: len(s)]}\n")


def vmhwm_mb(pid: int) -> float | None:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(model: str, fq: Path, out: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "edgegen.cli",
        "predict",
        model,
        "-i",
        str(fq),
        "-o",
        str(out),
        "--on-bad-record",
        "skip",
        "--force",
    ]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, samples = 0.0, []
    while p.poll() is None:
        v = vmhwm_mb(p.pid)
        if v:
            peak = max(peak, v)
            samples.append(v)
        time.sleep(0.25)
    err = p.stderr.read()
    if p.returncode != 0:
        raise SystemExit(f"predict failed: {err[-500:]}")
    dt = time.perf_counter() - t0
    return {
        "seconds": dt,
        "peak_rss_mb": peak,
        "rss_at_10pct_mb": samples[len(samples) // 10] if samples else None,
        "summary": err.strip().splitlines()[-1],
        "rows": sum(1 for _ in open(out)) - 1,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--reads", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--length", type=int, default=150)
    ap.add_argument("--work", default=str(ROOT / "benchmarks" / ".work" / "stream"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for n in args.reads:
        fq = work / f"reads_{n}.fastq.gz"
        if not fq.exists():
            t = time.perf_counter()
            write_fastq(fq, n, args.length)
            print(f"wrote {fq} ({fq.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s", flush=True)
        r = run(args.model, fq, work / f"preds_{n}.tsv")
        r.update(reads=n, fastq_mb=fq.stat().st_size / 1e6)
        results.append(r)
        print(
            f"{n:>9,} reads: {r['seconds']:.0f} s, peak RSS {r['peak_rss_mb']:.0f} MB (at 10% of the run: {r['rss_at_10pct_mb'] or 0:.0f} MB), "
            f"{r['rows']:,} rows; {r['summary']}",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
