"""Export a native model to ONNX or TFLite, optionally quantized, and verify it.

``export(model_dir, ExportConfig)`` dispatches to :mod:`edgegen.export.onnx` or
:mod:`edgegen.export.tflite` (imported lazily), writes a sidecar
``<file>.json`` (inputs, tokenizer, quantization, calibration and source hashes,
verification results) and fails loudly when the file does not compute what
the PyTorch model computes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgegen.errors import ExportVerificationError, UsageError

log = logging.getLogger("edgegen")

Quant = Literal["none", "fp16", "dynamic", "int8", "int8-full", "16x8"]
SIDECAR_FORMAT = "edgegen-export/1"

# What each format supports, and what its "int8" default means (the fastest accurate CPU mode, see TOOLCHAIN.md).
SUPPORTED = {
    "onnx": {"none", "fp16", "dynamic", "int8", "int8-full"},
    "tflite": {"none", "fp16", "dynamic", "int8", "int8-full", "16x8"},
}
INT8_DEFAULT = {"onnx": "dynamic", "tflite": "pt2e-static"}


class ExportConfig(BaseModel):
    """Format, quantization and verification settings for :func:`export`.

    ``quant``: ``none`` (fp32), ``fp16`` (fp16 weights), ``dynamic`` (int8
    weights, activations quantized at run time), ``int8`` (the fastest accurate
    CPU int8: ORT dynamic for ONNX; PT2E static per-channel with float
    LayerNorm/softmax for TFLite), ``int8-full`` (static w8a8 everywhere, for
    int8-only accelerators), ``16x8`` (TFLite int16 activations / int8 weights).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["onnx", "tflite"] = "onnx"
    quant: Quant = "none"
    calibrator: Literal["minmax", "percentile", "entropy"] = "minmax"
    calib_samples: int = Field(128, ge=1)
    per_channel: bool | None = Field(
        None, description="static int8 weight scales: True one per output channel, False one per tensor (smaller: TFLite "
        "stores ~24 bytes of scales per channel, bias included); None: TFLite int8 exports both and keeps per-tensor "
        "unless per-channel is better on the verification set (see _pick_granularity), ONNX int8-full per-channel")
    batch_size: int | None = Field(None, ge=1, description="fixed batch (TFLite default 1); ONNX default: dynamic")
    opset: int = Field(18, ge=17)
    strip_names: bool = Field(True, description="drop internal tensor/node names (TFLite strip_strings; short ONNX names): "
                              "5-20% smaller files; graph inputs, outputs and signatures keep theirs")
    graph_rewrites: bool = Field(True, description="edgegen's exact graph rewrites (edgegen.model.export_mode): a CLS-pooled "
                                 "model's last layer computes only the CLS row; padding masked by an additive bias where "
                                 "attention stays float. False exports the plain graph (what a hand-written export gives)")
    fused_attention: bool = Field(False, description="ONNX, with graph_rewrites, for float attention (quant none/fp16/"
                                  "dynamic/int8): attention as ONNX Runtime's fused com.microsoft.MultiHeadAttention kernel (exact); "
                                  "the file then runs on ONNX Runtime only. Off by default: on a CPU 3-6% slower at batch 1 and "
                                  "0.94-1.5x the plain graph's batch-64 rate; on a CUDA GPU ~1.2x faster for 4096-nt inputs "
                                  "(benchmarks/fused_attention.py, README)")
    external_data: bool | None = Field(None, description="ONNX: the weights in FILE.onnx.data beside the file (True) or "
                                       "inside it (False); None: beside it only when they exceed ~1.8 GB (protobuf cannot "
                                       "write one file over 2 GiB: NT-v2 500M in float32)")
    max_drop: float | None = Field(None, gt=0, description="accuracy budget (percentage points) vs float, needs labelled calibration data")
    atol: float = Field(1e-4, gt=0, description="max abs logit difference allowed for float exports")
    min_agreement: float = Field(0.9, ge=0, le=1, description="argmax agreement with torch required of quantized exports")
    threads: int = Field(1, ge=1)
    verify_samples: int = Field(512, ge=1, description="sequences used to verify the export against torch")

    @model_validator(mode="after")
    def _check(self) -> "ExportConfig":
        if self.quant not in SUPPORTED[self.format]:
            raise ValueError(f"{self.format} export does not support quant={self.quant!r} (supported: {sorted(SUPPORTED[self.format])})")
        if self.external_data and self.format != "onnx":
            raise ValueError("external_data is an ONNX option (a TFLite file holds its weights itself)")
        return self


STATIC_ACTIVATIONS = {"int8-full", "16x8"}  # quant modes that quantize every activation, attention scores included


def graph_mode(cfg: ExportConfig) -> dict:
    """Options of :class:`edgegen.model.export_mode` for this export."""
    on = cfg.graph_rewrites
    float_attention = cfg.quant not in STATIC_ACTIVATIONS
    return {"cls_shortcut": on, "additive_mask": on and float_attention,
            "ort_attention": on and float_attention and cfg.fused_attention and cfg.format == "onnx"}


def _calib_ids(tok, calib, n: int, seed: int = 0):
    """(ids, labels|None) for calibration/verification from a SequenceSet or random tokens."""
    from edgegen.data.readers import SequenceSet

    if isinstance(calib, SequenceSet):
        rng = np.random.default_rng(seed)
        idx = rng.permutation(len(calib))[:n]
        sub = calib.subset(np.sort(idx))
        return tok.encode(sub.sequences), sub.labels
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("ACGT"), tok.max_len)) for _ in range(n)]
    return tok.encode(seqs), None


def export(
    model_dir: str | Path,
    out: str | Path,
    cfg: ExportConfig = ExportConfig(),
    *,
    calib=None,
    verify=None,
    force: bool = False,
) -> Path:
    """Export a model directory to ``out`` (.onnx or .tflite) and verify it.

    Args:
        model_dir: an edgegen model directory.
        out: the file to write; its sidecar goes to ``out + ".json"``.
        cfg: format and quantization.
        calib: a SequenceSet (or path) for calibration; random DNA if omitted
            (static int8 should always get real sequences).
        verify: a labelled SequenceSet (or path) for verification and
            ``max_drop``; defaults to ``calib``.

    Returns:
        The written file.

    Raises:
        ExportVerificationError: float export differs from torch by more than
            ``atol``, or int8 argmax agreement is below ``min_agreement``, or
            ``max_drop`` cannot be met.

    Example:
        >>> export("runs/student", "student.int8.tflite", ExportConfig(format="tflite", quant="int8"), calib="data/dev.csv")  # doctest: +SKIP
    """
    from edgegen.checkpoint import load_model
    from edgegen.data.readers import as_dataset
    from edgegen.io import check_output, commit, remove_quietly, sha256_file, temp_dir, write_json
    from edgegen.runtime.onnx_runner import data_file

    out = Path(out)
    want = ".onnx" if cfg.format == "onnx" else ".tflite"
    if out.suffix != want:
        raise UsageError(f"output for format {cfg.format} must end in {want}", path=out)
    check_output(out, force, kind="file")
    check_output(str(out) + ".json", force, kind="file")
    if cfg.format == "onnx":
        check_output(data_file(out), force, kind="file")
    lm = load_model(model_dir)
    calib_set = as_dataset(calib, split="dev") if calib is not None and not hasattr(calib, "sequences") else calib
    verify_set = as_dataset(verify) if verify is not None and not hasattr(verify, "sequences") else (verify or calib_set)
    if calib_set is None and cfg.quant in ("int8", "int8-full", "16x8"):
        log.warning("calibrating %s on random DNA: pass --calib with real sequences for a trustworthy int8 model", cfg.quant)
    cal_ids, _ = _calib_ids(lm.tokenizer, calib_set, cfg.calib_samples)
    ver_ids, ver_y = _calib_ids(lm.tokenizer, verify_set, cfg.verify_samples, seed=1)
    from edgegen.train import predict_logits

    ref = predict_logits(lm.model, ver_ids)
    # a private folder beside OUT (concurrent exports never share temp files) holding the file under its final
    # name: an ONNX file records its external data file's name inside it
    stage = temp_dir(out)
    tmp = stage / out.name
    tried = []  # (config, sidecar, verification, file) per weight-scale granularity
    try:
        if cfg.format == "onnx":
            from edgegen.export import onnx as backend
        else:
            from edgegen.export import tflite as backend
        if cfg.max_drop is not None and cfg.quant != "none" and ver_y is None:
            raise UsageError("--max-drop needs labelled data to measure accuracy (pass --calib/--verify with a labelled CSV or data folder)")
        from edgegen.runtime import load_runner, run_batched

        for per_channel in _granularities(cfg):
            c = cfg.model_copy(update={"per_channel": per_channel})
            t0 = time.perf_counter()
            if cfg.max_drop is not None and cfg.quant != "none":
                info = _accuracy_aware(backend, lm, tmp, c, cal_ids, ver_ids, ver_y, ref)
            else:
                info = backend.export(lm.model, lm.tokenizer, tmp, c, cal_ids)
            sidecar = _sidecar(lm, model_dir, c, info, cal_ids, calib_set, time.perf_counter() - t0)
            # Verify the file through the same runner users get (sidecar written next to the temp file).
            write_json(str(tmp) + ".json", sidecar)
            got = run_batched(load_runner(tmp, threads=cfg.threads), ver_ids)
            ver = verification(ref, got, ver_y)
            ver.update(info.get("search", {}))
            sidecar["verification"] = ver
            keep = tmp.with_name(f"{tmp.name}.{len(tried)}")
            tmp.replace(keep)
            tried.append((c, sidecar, ver, keep))
        c, sidecar, ver, chosen = _pick_granularity(tried)
        chosen.replace(tmp)
        for *_, f in tried:
            f.unlink(missing_ok=True)
        _judge(c, ver, out)
        sidecar["file_sha256"] = sha256_file(tmp)
        moves = [(tmp, out), (Path(str(tmp) + ".json"), Path(str(out) + ".json"))]
        if cfg.format == "onnx" and data_file(tmp).exists():
            sidecar["external_data"] = {"file": data_file(out).name, "sha256": sha256_file(data_file(tmp)), "bytes": data_file(tmp).stat().st_size}
            moves.insert(0, (data_file(tmp), data_file(out)))
        write_json(str(tmp) + ".json", sidecar)
        commit(moves, force)
        if cfg.format == "onnx" and "external_data" not in sidecar:
            remove_quietly(data_file(out))  # --force over an export that had one: no stale weights beside the new file
    finally:
        remove_quietly(stage)
    return out


PER_TENSOR_SLACK = 0.005  # per-tensor is kept unless per-channel agrees (or scores) better by more than this


def _pick_granularity(tried: list) -> tuple:
    """The smaller per-tensor file unless per-channel scales measurably help on the verification set
    (argmax agreement with torch, accuracy when labelled, no more modules kept float)."""
    if len(tried) == 1:
        return tried[0]
    pt, pc = tried
    vt, vc = pt[2], pc[2]
    better = vc["argmax_agreement"] - vt["argmax_agreement"] > PER_TENSOR_SLACK
    if "accuracy" in vt:
        better = better or vc["accuracy"] - vt["accuracy"] > PER_TENSOR_SLACK
    better = better or len(pc[1]["kept_float"]) < len(pt[1]["kept_float"])
    win = pc if better else pt
    win[2]["weight_scales"] = {
        "chosen": "per-channel" if win is pc else "per-tensor",
        "per_tensor": {k: vt.get(k) for k in ("argmax_agreement", "accuracy")} | {"bytes": pt[3].stat().st_size},
        "per_channel": {k: vc.get(k) for k in ("argmax_agreement", "accuracy")} | {"bytes": pc[3].stat().st_size},
        "rule": f"per-tensor unless per-channel is better by > {100 * PER_TENSOR_SLACK:.1f} pp agreement or accuracy",
    }
    return win


def _granularities(cfg: ExportConfig) -> list[bool | None]:
    """Weight-scale granularities to try, in order (see ExportConfig.per_channel)."""
    uses = (cfg.format, cfg.quant) in (("tflite", "int8"), ("onnx", "int8-full"))
    if not uses:
        return [None]
    if cfg.per_channel is not None:
        return [cfg.per_channel]
    return [False, True] if cfg.format == "tflite" else [True]


def _sidecar(lm, model_dir, cfg: ExportConfig, info: dict, cal_ids, calib_set, seconds: float) -> dict:
    return {
        "format": SIDECAR_FORMAT,
        "model_format": cfg.format,
        "quant": cfg.quant,
        "quant_impl": info.get("impl"),
        "input": {"name": info["input_name"], "shape": info["input_shape"], "dtype": "int32"},
        "output": {"name": info["output_name"], "shape": [info["input_shape"][0], lm.model.config.num_classes], "dtype": "float32"},
        "num_classes": lm.model.config.num_classes,
        "params": sum(p.numel() for p in lm.model.parameters()),
        "macs": lm.model.config.macs(lm.tokenizer.seq_len, cls_only_last=graph_mode(cfg)["cls_shortcut"]),
        "graph": graph_mode(cfg),
        "tokenizer": lm.tokenizer.to_dict(),
        "source_model": {"path": str(model_dir), "sha256": lm.manifest["files"]["model.safetensors"]},
        "calibration": {
            "source": getattr(calib_set, "path", None) or "random DNA",
            "samples": int(len(cal_ids)),
            "sha256": hashlib.sha256(cal_ids.tobytes()).hexdigest(),
            "method": cfg.calibrator if cfg.quant in ("int8", "int8-full", "16x8") else None,
        },
        "config": cfg.model_dump(),
        "export_seconds": seconds,
        "kept_float": info.get("kept_float", []),
    }


EMBEDDINGS_UNIT = "embeddings"  # everything outside the blocks and the head: lookups, position adds, embedding norm
HEAD_UNITS = ("head_dense", "classifier")


def _units(model) -> list[str]:
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


def _accuracy_aware(backend, lm, tmp: Path, cfg: ExportConfig, cal_ids, ver_ids, ver_y, ref) -> dict:
    """Keep the fewest modules in float until accuracy is within ``cfg.max_drop`` pp of float.

    Per-module sensitivity: the accuracy recovered when that module alone stays
    float (NNCF accuracy-control style); modules are then added greedily, most
    sensitive first.
    """
    from edgegen.metrics import point_metrics
    from edgegen.runtime import load_runner, run_batched

    if not getattr(backend, "SUPPORTS_KEEP_FLOAT", {}).get(cfg.quant, False):
        raise UsageError(f"--max-drop is not available for {cfg.format} quant={cfg.quant} (use quant int8)")
    base_acc = point_metrics(ver_y, ref)["accuracy"]
    trial = tmp.with_name(tmp.name + ".trial" + tmp.suffix)

    def acc_with(keep: list[str]) -> tuple[float, dict]:
        from edgegen.io import write_json

        info = backend.export(lm.model, lm.tokenizer, trial, cfg, cal_ids, keep_float=keep)
        write_json(str(trial) + ".json", _mini_sidecar(lm, cfg, info))
        got = run_batched(load_runner(trial, threads=cfg.threads), ver_ids)
        return point_metrics(ver_y, got)["accuracy"], info

    log_rows = []
    try:
        acc0, info = acc_with([])
        log_rows.append({"keep_float": [], "accuracy": acc0, "drop_pp": 100 * (base_acc - acc0)})
        keep: list[str] = []
        if 100 * (base_acc - acc0) > cfg.max_drop:
            sens = {}
            for u in _units(lm.model):
                a, _ = acc_with([u])
                sens[u] = a - acc0
                log_rows.append({"keep_float": [u], "accuracy": a, "drop_pp": 100 * (base_acc - a), "sensitivity": a - acc0})
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
    final["search"] = {"max_drop_pp": cfg.max_drop, "float_accuracy": base_acc, "search_log": log_rows,
                       "kept_float_reason": "most accuracy recovered per module on the verification set" if keep else "int8 everywhere met the budget"}
    return final


def _mini_sidecar(lm, cfg, info) -> dict:
    return {
        "format": SIDECAR_FORMAT,
        "input": {"name": info["input_name"], "shape": info["input_shape"], "dtype": "int32"},
        "num_classes": lm.model.config.num_classes,
        "tokenizer": lm.tokenizer.to_dict(),
    }


def verification(ref: np.ndarray, got: np.ndarray, y=None) -> dict:
    from edgegen.metrics import point_metrics

    v = {
        "n": int(len(ref)),
        "max_abs_diff": float(np.abs(ref - got).max()),
        "argmax_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
    }
    if y is not None:
        a, b = point_metrics(y, ref), point_metrics(y, got)
        v.update(torch_accuracy=a["accuracy"], accuracy=b["accuracy"], accuracy_drop_pp=100 * (a["accuracy"] - b["accuracy"]))
    return v


def _judge(cfg: ExportConfig, ver: dict, out: Path) -> None:
    if cfg.quant == "none":
        if ver["max_abs_diff"] > cfg.atol:
            raise ExportVerificationError(
                f"fp32 {cfg.format} logits differ from torch by {ver['max_abs_diff']:.3g} (> atol {cfg.atol:g}); nothing written",
                path=out,
            )
    elif ver["argmax_agreement"] < cfg.min_agreement:
        raise ExportVerificationError(
            f"{cfg.quant} {cfg.format} agrees with torch on only {100 * ver['argmax_agreement']:.1f}% of predictions "
            f"(< {100 * cfg.min_agreement:.0f}%); nothing written",
            path=out,
        )
    if cfg.max_drop is not None and "accuracy_drop_pp" in ver and ver["accuracy_drop_pp"] > cfg.max_drop:
        raise ExportVerificationError(
            f"accuracy drop {ver['accuracy_drop_pp']:.2f} pp exceeds --max-drop {cfg.max_drop}; nothing written", path=out
        )
