"""Judging an export against the torch model it came from: logit differences, argmax agreement, accuracy, and
the choice between per-tensor and per-channel weight scales."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgegen.errors import ExportVerificationError
from edgegen.export.quant_modes import quant_mode

PER_TENSOR_SLACK = 0.005  # per-tensor is kept unless per-channel agrees (or scores) better by more than this
# Above this size TFLite int8 is converted once, per-channel: per-tensor's saving (24 bytes per output channel) is
# a few percent of the weights, and a second PT2E conversion of a 10M-parameter student costs minutes.
COMPARE_SCALES_MAX_PARAMS = 2_000_000


def pick_granularity(tried: list) -> tuple:
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


def granularities(cfg, params: int = 0) -> list[bool | None]:
    """Weight-scale granularities to try, in order (see ExportConfig.per_channel), for a model of ``params``."""
    scales = quant_mode(cfg.format, cfg.quant).weight_scales
    if not scales:
        return [None]
    if cfg.per_channel is not None:
        return [cfg.per_channel]
    return [False, True] if scales == "compare" and size_rule(cfg, params) is None else [True]


def size_rule(cfg, params: int) -> dict | None:
    """What the sidecar records when the model's size alone chose per-channel scales (None when it did not)."""
    if (
        quant_mode(cfg.format, cfg.quant).weight_scales != "compare"
        or cfg.per_channel is not None
        or params <= COMPARE_SCALES_MAX_PARAMS
    ):
        return None
    return {
        "chosen": "per-channel",
        "rule": f"one conversion above {COMPARE_SCALES_MAX_PARAMS / 1e6:g} M parameters "
        f"({params / 1e6:.1f} M): per-channel, whose scales weigh little next to the weights",
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
        v.update(
            torch_accuracy=a["accuracy"], accuracy=b["accuracy"], accuracy_drop_pp=100 * (a["accuracy"] - b["accuracy"])
        )
    return v


def judge(cfg, ver: dict, out: Path) -> None:
    if quant_mode(cfg.format, cfg.quant).float:
        if ver["max_abs_diff"] > cfg.atol:
            raise ExportVerificationError(
                f"fp32 {cfg.format} logits differ from torch by {ver['max_abs_diff']:.3g} (> atol {cfg.atol:g}); "
                "nothing written",
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
            f"accuracy drop {ver['accuracy_drop_pp']:.2f} pp exceeds --max-drop {cfg.max_drop}; nothing written",
            path=out,
        )
