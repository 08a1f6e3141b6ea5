"""Side-by-side benchmark of models (torch dirs, .onnx, .tflite) on one labelled set.

Every model is measured in a fresh process (locally) or on the device (over
ssh), so latency and peak memory are not polluted by this harness, and accuracy
is computed from the target's own outputs. The first model (or ``baseline``) is
the reference for deltas and ratios.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgegen.bench_measure import display_name, local_measure, model_info, tokenize_sets
from edgegen.errors import EdgegenError, RemoteError, UsageError
from edgegen.machine import machine_info
from edgegen.standalone import THROUGHPUT_BATCHES, THROUGHPUT_PASS_S, THROUGHPUT_PASSES

log = logging.getLogger("edgegen")
SCHEMA = "edgegen-bench/1"


class BenchConfig(BaseModel):
    """What to measure. Unset fields come from the device profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threads: list[int] | None = None
    warmup: int | None = Field(None, ge=0)
    runs: int | None = Field(None, ge=5)
    batch: int | None = Field(None, ge=1)
    validity: bool = True
    error_rates: list[float] = Field(default_factory=lambda: [0.01, 0.05, 0.10])
    n_boot: int = Field(1000, ge=50)
    baseline: int = Field(0, ge=0, description="index of the reference model")
    max_samples: int | None = Field(None, ge=10, description="subsample the test set (stratified by seed) for speed")
    seed: int = 0
    timeout_s: int = Field(1800, ge=10)
    attack: Literal["ism"] | None = Field(None, description="the adversarial check of every model (attack.py)")
    attack_samples: int = Field(50, ge=1)
    attack_max_edits: int = Field(5, ge=1, le=20)


def bench(
    models: list[str | Path],
    data,
    device=None,
    cfg: BenchConfig = BenchConfig(),
    *,
    show_progress: bool = True,
    partial_out: str | Path | None = None,
    splits: dict | None = None,
) -> dict:
    """Benchmark ``models`` on the labelled ``data`` for ``device``.

    Args:
        models: model dirs, .onnx and .tflite files; ``models[cfg.baseline]`` is the reference.
        data: labelled CSV/TSV, a split folder (its test split) or a SequenceSet.
        device: a DeviceProfile, a profile name or YAML path (default: local).
        partial_out: when given, the JSON is rewritten there after each model, so partial results survive failures.
        splits: the data's splits already read (a recipe run): the data check (balance, leakage) runs on them.

    Returns:
        The result dict (schema ``edgegen-bench/1``, see docs in README).

    Example:
        >>> res = bench(["runs/teacher", "student.int8.tflite"], "data/promoter/test.csv")  # doctest: +SKIP
    """
    from edgegen.devices import DeviceProfile, load_device
    from edgegen.progress import progress

    prof = device if isinstance(device, DeviceProfile) else load_device(device)
    paths, infos = _models(models, cfg, prof)
    ds = _sample(data, cfg)
    sets = _input_sets(ds, cfg)
    eff, threads = _settings(prof, cfg)
    result = _header(prof, ds, data, paths, cfg, eff, threads)
    check = _data_check(data, splits)
    if check is not None:
        result["data_check"] = check
    remote = None
    if prof.is_remote:  # before the work folder exists: an unreachable device leaves nothing behind
        from edgegen.remote import SSHDevice

        remote = SSHDevice(prof)
        remote.check()
    work = Path(tempfile.mkdtemp(prefix="edgegen-bench-"))
    logits_all: list[dict | None] = []
    try:
        with progress(show_progress) as prog:
            task = prog.add_task("bench", total=len(paths) * len(threads), info="")
            for i, (p, inf) in enumerate(zip(paths, infos)):
                entry = {"model": str(p), "name": display_name(p)}
                entry.update({k: inf[k] for k in ("backend", "params", "macs", "size_bytes", "quant")})
                try:
                    runs = _measure_model(i, p, inf, sets, work, remote, prof, cfg, eff, threads, entry, prog, task)
                    logits_all.append(_record(entry, runs, threads, ds.labels, cfg, prof, result))
                except (EdgegenError, OSError, ValueError) as e:
                    if isinstance(e, RemoteError) and "cannot reach" in str(e):
                        raise
                    entry["error"] = str(e)
                    result["errors"].append(f"{p}: {e}")
                    logits_all.append(None)
                    log.error("%s: %s", p, e)
                result["models"].append(entry)
                if partial_out:
                    from edgegen.io import write_json

                    write_json(partial_out, result)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    _add_comparisons(result, ds.labels, logits_all, cfg, threads)
    if cfg.attack:
        from edgegen.attack import attack_models

        attack_models(result, ds, cfg)
    return result


def _models(models, cfg: BenchConfig, prof) -> tuple[list[Path], list[dict]]:
    """The model paths and what each one is; refused before any work when the device cannot run one."""
    paths = [Path(m) for m in models]
    if not paths:
        raise UsageError("give at least one model")
    if cfg.baseline >= len(paths):
        raise UsageError(f"baseline index {cfg.baseline} but only {len(paths)} models")
    infos = [model_info(p) for p in paths]
    for p, inf in zip(paths, infos):
        prof.require_runtime(inf["backend"], p)
    return paths, infos


def _sample(data, cfg: BenchConfig):
    """The labelled set every model is measured on (at most ``cfg.max_samples`` sequences, a seeded sample)."""
    from edgegen.data.readers import SequenceSet
    from edgegen.data.reads import as_dataset

    ds = as_dataset(data) if not isinstance(data, SequenceSet) else data
    if ds.labels is None:
        raise UsageError("bench needs labelled data (sequence,label)", path=ds.path)
    if cfg.max_samples and len(ds) > cfg.max_samples:
        idx = np.sort(np.random.default_rng(cfg.seed).permutation(len(ds))[: cfg.max_samples])
        ds = ds.subset(idx)
    return ds


def _input_sets(ds, cfg: BenchConfig) -> dict[str, list[str]]:
    """The test sequences, and (``cfg.validity``) their reverse complements and error-injected copies."""
    from edgegen.validity import validity_sets

    sets = {"test": ds.sequences}
    if cfg.validity:
        sets.update(validity_sets(ds.sequences, tuple(cfg.error_rates), seed=cfg.seed))
    return sets


def _settings(prof, cfg: BenchConfig) -> tuple[dict, list[int]]:
    """Warm-up, timed runs and batch (the config's, else the profile's) and the thread counts to time."""
    eff = {
        "warmup": cfg.warmup if cfg.warmup is not None else prof.bench.warmup,
        "runs": cfg.runs if cfg.runs is not None else prof.bench.runs,
        "batch": cfg.batch if cfg.batch is not None else prof.bench.batch,
    }
    threads = cfg.threads or prof.thread_counts()
    return eff, threads[:1] if prof.emulated else threads  # emulated: outputs only, one run per model


def _header(prof, ds, data, paths: list[Path], cfg: BenchConfig, eff: dict, threads: list[int]) -> dict:
    """The result's fixed part: where, on what data, how it is measured, and the reference model."""
    methodology = {
        "process": "fresh process per model and thread count"
        + (" on the device over ssh" if prof.is_remote else " on this machine"),
        "warmup_runs": eff["warmup"],
        "timed_runs": eff["runs"],
        "latency_batch": 1,
        "throughput_batch": eff["batch"],
        "throughput": f"median of {THROUGHPUT_PASSES} passes over {THROUGHPUT_BATCHES * eff['batch']} sequences "
        f"(fewer batches per pass, at least one, when a pass would take over {THROUGHPUT_PASS_S:g} s)",
        "threads": threads,
        "bootstrap_resamples": cfg.n_boot,
        "note": "Timings come from a shared machine: compare ratios within this run, not absolute values across runs.",
    }
    if prof.emulated:
        methodology["note"] = "Emulated device (qemu-user): accuracy and agreement from its outputs; no timings."
    result = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "device": prof.model_dump(),
        "host_machine": machine_info(),
        "data": {
            "path": str(getattr(ds, "path", data)),
            "n": len(ds),
            "class_counts": np.bincount(ds.labels).tolist(),
            "seq_len_nt": int(np.median([len(s) for s in ds.sequences])),
        },
        "methodology": methodology,
        "baseline": str(paths[cfg.baseline]),
        "baseline_name": display_name(paths[cfg.baseline]),
        "models": [],
        "errors": [],
    }
    if prof.emulated:
        result["emulated"] = True
    return result


def _data_check(data, splits: dict | None) -> dict | None:
    """Balance, lengths and train/test leakage of the data folder (advisory; None for a single table)."""
    from edgegen.data.checks import data_report
    from edgegen.data.readers import load_split_dir

    if splits is None and not (isinstance(data, (str, Path)) and Path(data).is_dir()):
        return None
    try:
        return data_report(splits if splits is not None else load_split_dir(data))
    except EdgegenError as e:  # the check is advisory
        return {"error": str(e)}


def _measure_model(i, p, inf, sets, work, remote, prof, cfg, eff, threads, entry, prog, task) -> dict:
    """Every thread count's measurement of model ``p`` (here in fresh processes, or on the device): {threads: run}."""
    arrays, tok_s = tokenize_sets(inf["tokenizer"], sets)
    entry["tokenize_ms_per_seq"] = 1000 * tok_s
    inp = work / f"inputs_{i}.npz"
    np.savez(inp, **arrays)
    runs = {}
    if remote is not None:
        from edgegen.bundle import write_bundle

        rdir = remote.push(write_bundle(p, work / f"bundle_{i}", inputs=arrays), f"m{i}_{p.stem}")
    for j, t in enumerate(threads):
        prog.update(task, info=f"{p.name} threads={t}")
        out = work / f"r_{i}_{t}.json"
        if remote is not None:
            args = ["--threads", str(t), "--warmup", str(eff["warmup"]), "--runs", str(eff["runs"])]
            args += ["--batch", str(eff["batch"])] + (["--no-logits"] if j else [])
            args += ["--no-latency"] if prof.emulated else []
            args += ["--providers", ",".join(prof.onnx_providers)] if p.suffix == ".onnx" else []
            runs[t] = remote.measure(rdir, p.name, args, out)
        else:
            runs[t] = local_measure(p, inp, out, t, eff, j == 0, prof.onnx_providers, cfg.timeout_s)
        prog.advance(task)
    return runs


def _record(entry: dict, runs: dict, threads: list[int], y, cfg: BenchConfig, prof, result: dict) -> dict:
    """Metrics, validity, memory and timings of one model into ``entry``; returns its logits per input set."""
    from edgegen.metrics import classification_report
    from edgegen.validity import validity_report

    first = runs[threads[0]]
    lg = {k: np.asarray(v, dtype=np.float32) for k, v in first["logits"].items()}
    entry["metrics"] = classification_report(y, lg["test"], n_boot=cfg.n_boot, seed=cfg.seed)
    if cfg.validity:
        entry["validity"] = validity_report(y, lg)
    entry.update(load_s=first["load_s"], peak_rss_mb=first["peak_rss_mb"], peak_rss_b1_mb=first.get("peak_rss_b1_mb"))
    entry["versions"] = first.get("versions", {})
    entry["timing"] = {
        str(t): {"latency_b1": r["latency_b1"], "throughput": r["throughput"]}
        for t, r in runs.items()
        if "latency_b1" in r
    }
    if prof.is_remote:  # where the model ran: the device's own report
        v = entry["versions"]
        result["host_machine"] = {
            "machine": v.get("machine"),
            "system": v.get("system"),
            "python": v.get("python"),
            "emulated": prof.emulated,
        }
        result.setdefault("harness_machine", machine_info())
    if prof.emulated:  # memory under qemu is the emulator's: no claims either
        entry.update(emulated=True, peak_rss_mb=None, peak_rss_b1_mb=None, load_s=None)
    return lg


def _add_comparisons(result: dict, y, logits_all: list, cfg: BenchConfig, threads: list[int]) -> None:
    from edgegen.metrics import paired_delta

    b = cfg.baseline
    ref = logits_all[b] if b < len(logits_all) else None
    base = result["models"][b] if b < len(result["models"]) else None
    for m, lg in zip(result["models"], logits_all):
        if lg is None or ref is None or "error" in (base or {}):
            continue
        m["vs_baseline"] = {
            "argmax_agreement": float((lg["test"].argmax(1) == ref["test"].argmax(1)).mean()),
            "accuracy_delta": paired_delta(y, ref["test"], lg["test"], "accuracy", n_boot=cfg.n_boot, seed=cfg.seed),
            "mcc_delta": paired_delta(y, ref["test"], lg["test"], "mcc", n_boot=cfg.n_boot, seed=cfg.seed),
            "size_ratio": base["size_bytes"] / m["size_bytes"],
        }
        for t in m.get("timing", {}):
            if t in base.get("timing", {}):
                m["vs_baseline"][f"speedup_b1_t{t}"] = (
                    base["timing"][t]["latency_b1"]["p50_ms"] / m["timing"][t]["latency_b1"]["p50_ms"]
                )
                m["vs_baseline"][f"throughput_ratio_t{t}"] = (
                    m["timing"][t]["throughput"]["seq_per_s"] / base["timing"][t]["throughput"]["seq_per_s"]
                )
        if m.get("peak_rss_mb") and base.get("peak_rss_mb"):
            m["vs_baseline"]["rss_ratio"] = base["peak_rss_mb"] / m["peak_rss_mb"]
