"""A shape search under a device budget (Minitron, NVIDIA 2024): enumerate shapes (depth × hidden width × heads ×
feed-forward) of a teacher, estimate each one's batch-1 latency and file size on the device profile's runtime from a
cost table, prune the teacher to the best few that fit, rank them by a short distillation, and keep the winner for
the full one.

The cost table is measured, never assumed: a handful of probe shapes (the teacher pruned to them) are exported as the
profile exports them and timed by :func:`edgegen.bench.bench` on the profile's machine — the device itself over ssh,
or this machine for ``local`` — and latency is fitted as ``a + b·MMACs + c·layers + d·layers·heads``, size as
``a + b·Mparams`` (:mod:`edgegen.shape_timing`). The chosen shape is then exported and measured again; the report says
where every number came from.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgegen.errors import UsageError
from edgegen.shape_timing import CostTable, pick_probes, time_models


class SearchConfig(BaseModel):
    """A budget (``target_latency_ms`` on ``device``, and/or ``target_size_mb``) and the grid searched under it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_latency_ms: float | None = Field(None, gt=0, allow_inf_nan=False, description="batch-1 p50 on the device")
    target_size_mb: float | None = Field(None, gt=0, allow_inf_nan=False, description="exported file, MB (10^6 B)")
    device: str = Field("local", description="device profile (name or YAML) whose runtime and machine time the shapes")
    threads: int = Field(1, ge=1, description="runtime threads the latency budget is for")
    depths: list[float] = Field(default_factory=lambda: [1.0, 0.75, 0.5, 0.25], description="fractions of layers")
    widths: list[float] = Field(default_factory=lambda: [1.0, 0.75, 0.5, 0.375, 0.25], description="of d_model")
    heads: list[float] = Field(default_factory=lambda: [1.0, 0.5], description="fractions of heads kept")
    ffn: list[float] = Field(default_factory=lambda: [1.0, 0.5, 0.25], description="fractions of FFN kept")
    probes: int = Field(6, ge=4, le=16, description="shapes measured to calibrate the cost table")
    candidates: int = Field(3, ge=1, le=12, description="shapes ranked by a short distillation")
    short_steps: int = Field(150, ge=1, description="optimiser steps of each candidate's short distillation")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    dev_samples: int = Field(1000, ge=50, description="dev rows each candidate is scored on (MCC)")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> "SearchConfig":
        if self.target_latency_ms is None and self.target_size_mb is None:
            raise ValueError("give target_latency_ms and/or target_size_mb")
        for name in ("depths", "widths", "heads", "ffn"):
            v = getattr(self, name)
            if not v or any(not 0 < x <= 1 for x in v):
                raise ValueError(f"{name} must be fractions in (0, 1], got {v}")
        return self


def shape_of(cfg) -> dict:
    """The shape a :class:`ModelConfig` describes (uniform heads/FFN as the grid makes them; the largest if not)."""
    n = cfg.n_layers
    return {
        "d_model": cfg.d_model,
        "n_layers": n,
        "heads": max((cfg.heads(i) for i in range(n)), default=cfg.n_heads),
        "ffn": max((cfg.ffn(i) for i in range(n)), default=cfg.ffn_dim),
    }


def config_for(base, shape: dict):
    """``base`` (a ModelConfig) reshaped: what pruning to ``shape`` gives (norm statistics over the old width)."""
    d = base.d_model
    return base.model_copy(
        update={
            "d_model": shape["d_model"],
            "n_layers": shape["n_layers"],
            "n_heads": shape["heads"],
            "ffn_dim": shape["ffn"],
            "layer_heads": None,
            "layer_ffn": None,
            "head_dim": base.head_dim,
            "norm_width": (base.norm_width or d) if shape["d_model"] < d else base.norm_width,
            "head_width": (base.head_width or d) if base.head_hidden else None,
        }
    )


def params_of(cfg) -> int:
    """Parameters of a model with config ``cfg``, built on the meta device (no memory)."""
    import torch

    from edgegen.model import GenomicTransformer

    with torch.device("meta"):
        return sum(p.numel() for p in GenomicTransformer(cfg).parameters())


def width_for(base, fraction: float) -> int:
    """The widest hidden width at which a model of config ``base`` keeps at most ``fraction`` of its parameters (what
    width-only pruning to that fraction keeps; bisection: parameters grow with the width)."""
    full, shape = params_of(base), shape_of(base)
    lo, hi = 1, base.d_model  # params(lo) <= goal is assumed; the answer is in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if params_of(config_for(base, shape | {"d_model": mid})) <= fraction * full:
            lo = mid
        else:
            hi = mid - 1
    return max(lo, 2)


def enumerate_shapes(base, scfg: SearchConfig, seq_len: int) -> list[dict]:
    """Every shape of the grid (distinct), with its params and MACs at ``seq_len`` tokens."""
    seen, out = set(), []
    for fd, fw, fh, ff in itertools.product(scfg.depths, scfg.widths, scfg.heads, scfg.ffn):
        s = {
            "n_layers": max(1, round(fd * base.n_layers)),
            "d_model": max(2, round(fw * base.d_model)),
            "heads": max(1, round(fh * base.n_heads)),
            "ffn": max(1, round(ff * base.ffn_dim)),
        }
        key = tuple(sorted(s.items()))
        if key in seen:
            continue
        seen.add(key)
        c = config_for(base, s)
        out.append(s | {"params": params_of(c), "macs": c.macs(seq_len)})
    return out


def prune_config_for(base, shape: dict):
    """The :class:`PruneConfig` that takes a model of config ``base`` to ``shape``."""
    from edgegen.prune import PruneConfig

    def removed(keep: int, full: int):
        return None if keep >= full else 1 - keep / full

    return PruneConfig(
        drop_layers=base.n_layers - shape["n_layers"],
        hidden=shape["d_model"] if shape["d_model"] < base.d_model else None,
        head_ratio=removed(shape["heads"], base.n_heads),
        ffn_ratio=removed(shape["ffn"], base.ffn_dim),
        prune_heads=shape["heads"] < base.n_heads,
        prune_ffn=shape["ffn"] < base.ffn_dim,
    )


def pick_candidates(shapes: list[dict], n: int) -> list[dict]:
    """The largest fitting shape (by parameters) of each depth, the ``n`` largest of those: the short distillations
    then compare depths against widths, as Minitron does, rather than near-copies of one shape."""
    best: dict[int, dict] = {}
    for s in shapes:
        b = best.get(s["n_layers"])
        if b is None or (s["params"], s["d_model"]) > (b["params"], b["d_model"]):
            best[s["n_layers"]] = s
    return sorted(best.values(), key=lambda s: -s["params"])[:n]


def fits(s: dict, scfg: SearchConfig, table: CostTable) -> bool:
    """The cost table puts shape ``s`` under every budget given."""
    ok = scfg.target_latency_ms is None or table.latency_ms(s) <= scfg.target_latency_ms
    return ok and (scfg.target_size_mb is None or table.size_mb(s) <= scfg.target_size_mb)


def budget_text(scfg: SearchConfig) -> str:
    parts = []
    if scfg.target_latency_ms is not None:
        parts.append(f"{scfg.target_latency_ms:g} ms at batch 1 on {scfg.device} ({scfg.threads} thread(s))")
    if scfg.target_size_mb is not None:
        parts.append(f"{scfg.target_size_mb:g} MB")
    return " and ".join(parts)


def search_shape(
    teacher_dir: str | Path,
    data,
    out: str | Path,
    scfg: SearchConfig,
    *,
    splits: dict | None = None,
    force: bool = False,
    show_progress: bool = True,
) -> dict:
    """Search ``teacher_dir``'s shapes under ``scfg``'s budget (see the module); save the winner, pruned and briefly
    distilled, to ``out`` (a model directory, ready for the full distillation); return the report."""
    from edgegen.checkpoint import load_model, save_model
    from edgegen.data.load import load_data
    from edgegen.devices import load_device
    from edgegen.distill_loop import teacher_logits_for
    from edgegen.io import check_output
    from edgegen.progress import progress
    from edgegen.prune import _example_and_calib
    from edgegen.shape_timing import where

    check_output(out, force, kind="dir", inputs=(teacher_dir, data))
    splits = splits if splits is not None else load_data(data)
    if "train" not in splits:
        raise UsageError("the shape search distils its candidates: the data needs a train split", path=data)
    prof = load_device(scfg.device)
    lm = load_model(teacher_dir)
    base, tok = lm.model.config, lm.tokenizer
    shapes = enumerate_shapes(base, scfg, tok.seq_len)
    example, calib = _example_and_calib(tok, splits, 4, seed=scfg.seed)
    work = Path(tempfile.mkdtemp(prefix="edgegen-search-"))
    try:
        with progress(show_progress) as prog:
            task = prog.add_task("shape search", total=scfg.probes + scfg.candidates + 1, info="cost table")
            probes = pick_probes(shapes, scfg.probes)
            dirs = [_pruned_dir(lm, s, example, calib, work / f"probe{i}") for i, s in enumerate(probes)]
            timed = time_models(dirs, splits, prof, scfg.threads, work)
            table = CostTable([s | t for s, t in zip(probes, timed)], where(prof, scfg.threads))
            prog.update(task, advance=scfg.probes, info="short distillations")
            feasible = [s for s in shapes if fits(s, scfg, table)]
            if not feasible:
                low = min(shapes, key=table.latency_ms)
                raise UsageError(
                    f"no shape of the grid fits {budget_text(scfg)}: the smallest is estimated at "
                    f"{table.latency_ms(low):.3g} ms and {table.size_mb(low):.3g} MB; add smaller fractions"
                )
            short = _short_data(splits, scfg)  # the same rows, and the teacher's logits on them once, for all
            t_logits = teacher_logits_for(lm.model, short["train"].encoded(tok), 256)
            cands = pick_candidates(feasible, scfg.candidates)
            scored = [_short_distil(lm, s, example, calib, short, t_logits, scfg) for s in cands]
            prog.update(task, advance=scfg.candidates, info="checking the choice")
            scored.sort(key=lambda c: -c["dev_mcc"])
            chosen, model = _confirm(scored, lm, splits, prof, scfg, work)
            prog.update(task, advance=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = _report(scfg, base, shapes, table, scored, chosen)
    save_model(model, tok, out, dataset=lm.manifest.get("dataset"), force=force,
               extra={"shape_search": report, "parent": lm.manifest["files"]})  # fmt: skip
    return report


def _pruned_dir(lm, shape: dict, example, calib, out: Path) -> Path:
    from edgegen.checkpoint import save_model
    from edgegen.prune import prune

    save_model(prune(lm.model, prune_config_for(lm.model.config, shape), example, calib=calib), lm.tokenizer, out)
    return out


def _short_data(splits, scfg: SearchConfig) -> dict:
    """The rows every candidate's short distillation trains on (``short_steps`` batches) and is scored on."""
    rng = np.random.default_rng(scfg.seed)
    train, dev = splits["train"], splits.get("dev") or splits["train"]
    return {
        "train": train.subset(np.sort(rng.permutation(len(train))[: scfg.short_steps * scfg.batch_size])),
        "dev": dev.subset(np.sort(rng.permutation(len(dev))[: scfg.dev_samples])),
    }


def _short_distil(lm, shape: dict, example, calib, short: dict, t_logits, scfg: SearchConfig) -> dict:
    """Prune the teacher to ``shape``, distil it for ``short_steps`` steps, score it on dev (MCC)."""
    from edgegen.distill import DistillConfig, distill
    from edgegen.inference import predict_logits
    from edgegen.metrics import mcc
    from edgegen.prune import prune

    model = prune(lm.model, prune_config_for(lm.model.config, shape), example, calib=calib)
    cfg = DistillConfig(max_steps=scfg.short_steps, epochs=1000, patience=1000, batch_size=scfg.batch_size,
                        lr=scfg.lr, seed=scfg.seed)  # fmt: skip
    distill(model, lm.model, cfg, short, lm.tokenizer, show_progress=False, teacher_logits=t_logits)
    dv = short["dev"]
    score = mcc(dv.labels, predict_logits(model, dv.encoded(lm.tokenizer)).argmax(1))
    return shape | {"dev_mcc": round(float(score), 4), "model": model}


def _confirm(scored: list[dict], lm, splits, prof, scfg: SearchConfig, work: Path):
    """Export and measure the candidates best first; the first that meets the budget is the choice."""
    from edgegen.checkpoint import save_model

    for i, c in enumerate(scored):
        d = save_model(c["model"], lm.tokenizer, work / f"candidate{i}")
        t = time_models([d], splits, prof, scfg.threads, work)[0]
        c.update(measured_ms=t["p50_ms"], measured_size_mb=None if t["size_bytes"] is None else t["size_bytes"] / 1e6)
        lat_ok = scfg.target_latency_ms is None or (t["p50_ms"] is not None and t["p50_ms"] <= scfg.target_latency_ms)
        size_ok = scfg.target_size_mb is None or c["measured_size_mb"] <= scfg.target_size_mb
        c["meets_budget"] = bool(lat_ok and size_ok)
        if c["meets_budget"]:
            return c, c["model"]
    best = scored[0]
    raise UsageError(
        f"no candidate met {budget_text(scfg)} when measured (the best scored measured "
        f"{best.get('measured_ms')} ms, {best.get('measured_size_mb')} MB); lower the budget's margin or the grid"
    )


def _report(scfg: SearchConfig, base, shapes: list[dict], table: CostTable, scored: list[dict], chosen: dict) -> dict:
    def clean(c: dict) -> dict:
        return {k: v for k, v in c.items() if k != "model"} | {
            "estimated_ms": round(table.latency_ms(c), 4),
            "estimated_size_mb": round(table.size_mb(c), 4),
        }

    return {
        "config": scfg.model_dump(),
        "budget": budget_text(scfg),
        "teacher_shape": shape_of(base),
        "grid_shapes": len(shapes),
        "fitting_shapes": sum(fits(s, scfg, table) for s in shapes),
        "cost_table": table.report(),
        "candidates": [clean(c) for c in scored],
        "chosen": clean(chosen),
    }
