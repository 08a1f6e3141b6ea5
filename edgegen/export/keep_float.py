"""The accuracy-aware search (``ExportConfig.max_drop``): keep the fewest modules in float until the quantized
file is within the budget of the float model's accuracy."""

from __future__ import annotations

from pathlib import Path

from edgegen.errors import UsageError
from edgegen.export.quant_modes import quant_mode
from edgegen.runtime import sidecar

EMBEDDINGS_UNIT = "embeddings"  # everything outside the blocks and the head: lookups, position adds, embedding norm
HEAD_UNITS = ("head_dense", "classifier")


def units(model) -> list[str]:
    """Modules that can be kept in float, in order: each encoder block, the head, then the embeddings.
    Together they cover the whole graph, so keeping every unit float gives the float model and the
    search can always meet a budget (on any CPU's int8 kernels)."""
    units = [f"blocks.{i}" for i in range(len(model.blocks))]
    if model.head_dense is not None:
        units.append("head_dense")
    return units + ["classifier", EMBEDDINGS_UNIT]


def in_unit(module_name: str, unit: str) -> bool:
    """Whether a module (``blocks.0.attn.q``; ``""`` for the top level) belongs to a keep-float unit."""
    if unit == EMBEDDINGS_UNIT:
        return not any(module_name == u or module_name.startswith(u + ".") for u in ("blocks",) + HEAD_UNITS)
    return module_name == unit or module_name.startswith(unit + ".")


def accuracy_aware(backend, lm, tmp: Path, cfg, cal_ids, ver_ids, ver_y, ref) -> dict:
    """Keep the fewest modules in float until accuracy is within ``cfg.max_drop`` pp of float.

    Per-module sensitivity: the accuracy recovered when that module alone stays
    float (NNCF accuracy-control style); modules are then added greedily, most
    sensitive first.
    """
    from edgegen.metrics import point_metrics
    from edgegen.runtime import load_runner, run_batched

    if not quant_mode(cfg.format, cfg.quant).keep_float:
        raise UsageError(f"--max-drop is not available for {cfg.format} quant={cfg.quant} (use quant int8)")
    base_acc = point_metrics(ver_y, ref)["accuracy"]
    trial = tmp.with_name(tmp.name + ".trial" + tmp.suffix)

    def acc_with(keep: list[str]) -> tuple[float, dict]:
        from edgegen.io import write_json

        info = backend.export(lm.model, lm.tokenizer, trial, cfg, cal_ids, keep_float=keep)
        write_json(str(trial) + ".json", trial_sidecar(lm, info, trial))
        got = run_batched(load_runner(trial, threads=cfg.threads), ver_ids)
        return point_metrics(ver_y, got)["accuracy"], info

    log_rows = []
    try:
        acc0, info = acc_with([])
        log_rows.append({"keep_float": [], "accuracy": acc0, "drop_pp": 100 * (base_acc - acc0)})
        keep: list[str] = []
        if 100 * (base_acc - acc0) > cfg.max_drop:
            sens = {}
            for u in units(lm.model):
                a, _ = acc_with([u])
                sens[u] = a - acc0
                log_rows.append(
                    {"keep_float": [u], "accuracy": a, "drop_pp": 100 * (base_acc - a), "sensitivity": a - acc0}
                )
            for u in sorted(sens, key=sens.get, reverse=True):
                keep.append(u)
                a, info = acc_with(keep)
                log_rows.append({"keep_float": list(keep), "accuracy": a, "drop_pp": 100 * (base_acc - a)})
                if 100 * (base_acc - a) <= cfg.max_drop:
                    break
        final = backend.export(lm.model, lm.tokenizer, tmp, cfg, cal_ids, keep_float=keep)
    finally:
        for p in (trial, Path(str(trial) + ".json")):
            if p.exists():
                p.unlink()
    final["kept_float"] = keep
    final["search"] = {
        "max_drop_pp": cfg.max_drop,
        "float_accuracy": base_acc,
        "search_log": log_rows,
        "kept_float_reason": "most accuracy recovered per module on the verification set"
        if keep
        else "int8 everywhere met the budget",
    }
    return final


def trial_sidecar(lm, info: dict, path: Path) -> dict:
    """The sidecar a trial file ``path`` needs to run (input, classes, tokenizer, and its sha256)."""
    d = sidecar.minimal(info["input_name"], info["input_shape"], lm.model.config.num_classes, lm.tokenizer.to_dict())
    return sidecar.seal(d, path)
