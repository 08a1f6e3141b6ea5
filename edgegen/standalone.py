"""Measure one model in this process: the code that runs on a device.

Needs numpy and one runtime only (edgegen's numpy-only modules travel in the
bundle). Reads pre-tokenized inputs from an ``.npz`` (one array per named set),
writes logits for each set plus timing and memory to a JSON file.

    python runner.py measure --model model.tflite --inputs inputs.npz --out result.json --threads 1

On the host, ``python -m edgegen.inference measure …`` runs the same with model directories (torch) opened too.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time

import numpy as np

SCHEMA = "edgegen-measure/1"
LABELS_KEY = "labels"  # inputs.npz: optional true classes of the first set, never fed to the model
MANIFEST = "MANIFEST.json"


def check_bundle(folder: str) -> dict:
    """:func:`edgegen.bundle_check.verify_bundle` (what a bundle's runner.py checks on the device before anything is
    imported), as a ModelFileError naming the file; returns the manifest."""
    from edgegen.bundle_check import BundleError, verify_bundle
    from edgegen.errors import ModelFileError

    try:
        return verify_bundle(str(folder))
    except BundleError as e:
        raise ModelFileError(e.reason, path=e.path) from None


def verify_bundle(model: str) -> None:
    """Inside a bundle (``MANIFEST.json`` beside the model), check every file of it: :func:`check_bundle`."""
    folder = os.path.dirname(os.path.abspath(model))
    if os.path.exists(os.path.join(folder, MANIFEST)):
        check_bundle(folder)


def _rss_mb() -> float:
    """Peak resident memory of this process's own address space.

    Linux: VmHWM from /proc/self/status. (ru_maxrss is not used there: across
    fork+exec it keeps the parent's high-water mark, so a child of a big
    process reports the parent's peak.)
    """
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    # ru_maxrss is KiB on Linux, bytes on macOS
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


def _versions(backend: str, runner) -> dict:
    v = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "system": platform.system(),
    }
    try:
        if backend == "onnxruntime":
            import onnxruntime

            v["onnxruntime"] = onnxruntime.__version__
            v["providers"] = runner.session.get_providers()
        elif backend == "tflite":
            v["tflite_package"] = runner.package
            mod = sys.modules.get(runner.package)
            v[runner.package] = getattr(mod, "__version__", "unknown")
        elif backend == "torch":
            import torch

            v["torch"] = torch.__version__
    except Exception:  # versions are informative only
        pass
    return v


THROUGHPUT_PASSES = 5  # batch throughput: the median of this many passes
THROUGHPUT_BATCHES = 4  # of up to this many batches each
THROUGHPUT_PASS_S = 2.0  # fewer batches per pass when the warm-up batch shows a pass would take longer than this


def batches_per_pass(batch_seconds: float) -> int:
    """Batches in one throughput pass: THROUGHPUT_BATCHES, or fewer (at least one) when one batch is so slow that a
    pass would exceed THROUGHPUT_PASS_S. A 100M-parameter teacher's 64-sequence batch takes ~15 s on 2 cores: a
    median of five one-batch passes measures it as well as of five four-batch ones, in a quarter of the time."""
    if batch_seconds <= 0:
        return THROUGHPUT_BATCHES
    return int(min(THROUGHPUT_BATCHES, max(1, -(-THROUGHPUT_PASS_S // batch_seconds))))


def load_inputs(path: str) -> dict:
    """The token arrays of an ``inputs.npz``, read whole and checked: integer ``(sequences, tokens)`` arrays (and
    optional integer labels); an empty, truncated or foreign file is one DataError naming it."""
    import zipfile

    from edgegen.errors import DataError

    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise DataError("no such inputs file", path=path) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise DataError(
            f"not a readable .npz of token arrays (empty or truncated? {type(e).__name__}: "
            f"{' '.join(str(e).split())[:120]})",
            path=path,
        ) from None
    if not any(k != LABELS_KEY for k in data):
        raise DataError("holds no token arrays", path=path)
    for name, a in data.items():
        want = 1 if name == LABELS_KEY else 2
        if a.ndim != want or a.dtype.kind not in "iu" or (a.size and a.min() < 0):
            raise DataError(
                f"array {name!r} is {a.dtype} {a.shape}; expected non-negative integer "
                f"{'(sequences,)' if want == 1 else '(sequences, tokens)'}",
                path=path,
            )
    return data


def _percentiles(ts: list[float]) -> dict:
    a = np.asarray(ts) * 1000.0
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
        "runs": len(a),
    }


def measure(
    model: str,
    inputs: str,
    *,
    threads: int | None = None,
    warmup: int = 10,
    runs: int = 100,
    batch: int = 64,
    logits: bool = True,
    providers: list[str] | None = None,
    latency: bool = True,
    open_runner=None,
) -> dict:
    """Load ``model`` (with ``open_runner``, default :func:`edgegen.runtime.load_runner`), compute logits for every
    array in ``inputs``, time batch-1 latency and batch throughput."""
    from edgegen.runtime import load_runner, run_batched

    open_runner = open_runner or load_runner

    verify_bundle(model)
    t0 = time.perf_counter()
    kw = {"providers": providers} if providers and str(model).endswith(".onnx") else {}
    runner = open_runner(model, threads=threads, **kw)
    load_s = time.perf_counter() - t0
    rss_after_load = _rss_mb()
    data = load_inputs(inputs)
    sets = [n for n in data if n != LABELS_KEY]  # every array but the labels is a set of token rows
    out: dict = {
        "schema": SCHEMA,
        "model": str(model),
        "backend": runner.backend,
        "threads": threads,
        "load_s": load_s,
        "rss_after_load_mb": rss_after_load,
        "input_spec": runner.input_spec,
    }
    first = data[sets[0]]
    fixed = runner.input_spec.get("batch")
    if latency:  # batch 1 first, so peak_rss_b1_mb is what a device streaming reads one by one holds
        out["latency_b1"] = _batch1_latency(runner, first, fixed, warmup, runs)
        out["peak_rss_b1_mb"] = _rss_mb()
    if logits:
        out["logits"] = {}
        t_inf = 0.0
        for name in sets:
            t1 = time.perf_counter()
            out["logits"][name] = run_batched(runner, data[name], batch).tolist()
            t_inf += time.perf_counter() - t1
        out["logits_seconds"] = t_inf
        if LABELS_KEY in data and len(data[LABELS_KEY]) == len(first):
            pred = np.asarray(out["logits"][sets[0]]).argmax(1)
            out["accuracy"] = {"set": sets[0], "value": float((pred == data[LABELS_KEY]).mean()), "n": len(pred)}
    if latency:
        out["throughput"] = _throughput(runner, first, fixed, batch)
    out["peak_rss_mb"] = _rss_mb()
    out["versions"] = _versions(runner.backend, runner)
    return out


def _batch1_latency(runner, first: np.ndarray, fixed, warmup: int, runs: int) -> dict:
    """Percentiles of ``runs`` timed calls on one row (a fixed-batch model gets the row repeated)."""
    one = first[:1] if not isinstance(fixed, int) else np.repeat(first[:1], fixed, axis=0)
    for _ in range(warmup):
        runner(one)
    ts = []
    for _ in range(runs):
        t1 = time.perf_counter()
        runner(one)
        ts.append(time.perf_counter() - t1)
    out = _percentiles(ts)
    if isinstance(fixed, int):
        out["batch"] = fixed
    return out


def _throughput(runner, first: np.ndarray, fixed, batch: int) -> dict:
    """Sequences per second: the median of THROUGHPUT_PASSES passes, each sized by a warm-up batch's time."""
    from edgegen.runtime import run_batched

    t1 = time.perf_counter()
    run_batched(runner, np.resize(first, (max(batch, 1), first.shape[1])), batch)
    n = max(batch, 1) * batches_per_pass(time.perf_counter() - t1)
    rows = np.resize(first, (n, first.shape[1]))
    rates = []
    for _ in range(THROUGHPUT_PASSES):  # a median of passes, not one time on a shared machine
        t1 = time.perf_counter()
        run_batched(runner, rows, batch)
        rates.append(n / (time.perf_counter() - t1))
    return {
        "batch": batch if not isinstance(fixed, int) else fixed,
        "seq_per_s": float(np.median(rates)),
        "sequences": n,
        "passes": len(rates),
        "seq_per_s_min": min(rates),
        "seq_per_s_max": max(rates),
    }
