"""Time model shapes where they will run: each model directory exported as the device profile exports (its first
non-torch runtime and that runtime's quant mode) and measured by :func:`edgegen.bench.bench` on the profile's machine
(the device over ssh, or this one), batch 1, in fresh processes. :mod:`edgegen.shape_search` fits its cost table on
these numbers (:class:`CostTable`) and checks its choice with them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgegen.errors import UsageError


def export_choice(prof) -> tuple[str, str]:
    """(format, quant) the profile's first non-torch runtime runs: ``("tflite", prof.tflite_quant)`` or onnx."""
    for rt in prof.runtimes:
        if rt == "tflite":
            return "tflite", prof.tflite_quant
        if rt == "onnxruntime":
            return "onnx", prof.onnx_quant
    raise UsageError(f"device profile {prof.name!r} lists no ONNX Runtime or TFLite runtime to time shapes on")


def time_models(model_dirs: list[Path], splits: dict, prof, threads: int, work: Path, runs: int = 30) -> list[dict]:
    """``[{"p50_ms", "size_bytes"}]`` for each model directory (``p50_ms`` None with ``error`` when it failed)."""
    from edgegen.bench import BenchConfig, bench
    from edgegen.export import ExportConfig, export_model

    fmt, quant = export_choice(prof)
    work.mkdir(parents=True, exist_ok=True)
    calib = splits.get("dev") or splits.get("train")
    files = []
    for d in model_dirs:
        f = work / f"{Path(d).name}.{quant}.{fmt}"
        export_model(d, f, ExportConfig(format=fmt, quant=quant), calib=calib, force=True)
        files.append(f)
    data = splits.get("test") or calib
    cfg = BenchConfig(threads=[threads], runs=runs, warmup=5, batch=4, max_samples=24, n_boot=50, validity=False)
    res = bench(files, data, prof, cfg, show_progress=False)
    out = []
    for m in res["models"]:
        t = (m.get("timing") or {}).get(str(threads), {}).get("latency_b1")
        out.append(
            {
                "p50_ms": round(t["p50_ms"], 4) if t else None,
                "size_bytes": m.get("size_bytes"),
                "format": f"{fmt} {quant}",
                **({"error": m["error"]} if "error" in m else {}),
            }
        )
    return out


def where(prof, threads: int) -> dict:
    """Where the timings come from, for the report."""
    from edgegen.machine import machine_info

    fmt, quant = export_choice(prof)
    on = f"the device {prof.name} over ssh" if prof.is_remote else f"this machine ({prof.name} profile)"
    return {
        "measured_on": on,
        "runtime": f"{fmt} {quant}",
        "threads": threads,
        "emulated": prof.emulated,
        "machine": None if prof.is_remote else machine_info(),
    }


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with coefficients kept >= 0 (a negative one is dropped and the rest refitted)."""
    active = list(range(x.shape[1]))
    while True:
        coef, *_ = np.linalg.lstsq(x[:, active], y, rcond=None)
        if (coef >= 0).all() or len(active) == 1:
            full = np.zeros(x.shape[1])
            full[active] = np.maximum(coef, 0)
            return full
        active.pop(int(np.argmin(coef)))


def latency_features(s: dict) -> list[float]:
    """What batch-1 latency is fitted on: a constant, million MACs, layers, and layers x heads (each head is its own
    slice of work in the graph: on CPU runtimes a head costs more than its MACs)."""
    return [1.0, s["macs"] / 1e6, s["n_layers"], s["n_layers"] * s["heads"]]


class CostTable:
    """Latency ``a + b·MMACs + c·layers + d·layers·heads`` and size ``a + b·Mparams``, fitted on measured probes."""

    def __init__(self, probes: list[dict], where: dict):
        self.probes, self.where = probes, where
        lat = [p for p in probes if p.get("p50_ms") is not None]
        if len(lat) < 2:
            raise UsageError(f"the cost table needs at least 2 measured probes, got {len(lat)}")
        self.lat = _fit(np.array([latency_features(p) for p in lat]), np.array([p["p50_ms"] for p in lat]))
        xs = np.array([[1.0, p["params"] / 1e6] for p in lat])
        self.size = _fit(xs, np.array([p["size_bytes"] / 1e6 for p in lat]))

    def latency_ms(self, s: dict) -> float:
        return float(self.lat @ latency_features(s))

    def size_mb(self, s: dict) -> float:
        return float(self.size @ [1.0, s["params"] / 1e6])

    def report(self) -> dict:
        fitted = [{**p, "fitted_ms": round(self.latency_ms(p), 4)} for p in self.probes]
        return {
            "method": "measured probes, least squares: latency = a + b*MMACs + c*layers; size = a + b*Mparams",
            "latency_coef": self.lat.round(6).tolist(),
            "size_coef": self.size.round(6).tolist(),
            "probes": fitted,
        } | self.where


def pick_probes(shapes: list[dict], n: int) -> list[dict]:
    """``n`` shapes that spread over what latency is fitted on: the smallest and largest by MACs first, then each
    time the shape farthest from those already picked (features scaled to [0, 1]), so the fit sees layers, heads
    and MACs vary apart from one another."""
    order = sorted(shapes, key=lambda s: s["macs"])
    x = np.array([latency_features(s)[1:] for s in order], dtype=float)
    x = (x - x.min(0)) / np.maximum(x.max(0) - x.min(0), 1e-12)
    picked = [0, len(order) - 1] if len(order) > 1 else [0]
    while len(picked) < min(n, len(order)):
        d = np.min(np.linalg.norm(x[:, None, :] - x[None, picked, :], axis=2), axis=1)
        picked.append(int(np.argmax(d)))
    return [order[i] for i in sorted(picked)]
