"""What an export is asked for: :class:`ExportConfig` (format, quantization, calibration, verification) and the graph
mode it implies. Below both backends (:mod:`edgegen.export.onnx`, :mod:`edgegen.export.tflite`), which read it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgegen.export.quant_modes import Quant, quant_mode


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
        None,
        description="static int8 weight scales: True one per output channel, False one per tensor (smaller: TFLite "
        "stores ~24 bytes of scales per channel, bias included); None: TFLite int8 exports both and keeps per-tensor "
        "unless per-channel is better on the verification set (see verify.pick_granularity), or, for a model over "
        "verify.COMPARE_SCALES_MAX_PARAMS, converts once per-channel; ONNX int8-full per-channel",
    )
    batch_size: int | None = Field(None, ge=1, description="fixed batch (TFLite default 1); ONNX default: dynamic")
    opset: int = Field(18, ge=17)
    strip_names: bool = Field(
        True,
        description="drop internal tensor/node names (TFLite strip_strings; short ONNX names): "
        "5-20% smaller files; graph inputs, outputs and signatures keep theirs",
    )
    graph_rewrites: bool = Field(
        True,
        description="edgegen's exact graph rewrites (edgegen.export.modes.export_mode): a CLS-pooled "
        "model's last layer computes only the CLS row; padding masked by an additive bias where "
        "attention stays float. False exports the plain graph (what a hand-written export gives)",
    )
    fused_attention: bool = Field(
        False,
        description="ONNX, with graph_rewrites, for float attention (quant none/fp16/"
        "dynamic/int8): attention as ONNX Runtime's fused com.microsoft.MultiHeadAttention kernel (exact); "
        "the file then runs on ONNX Runtime only. Off by default: on a CPU 3-6% slower at batch 1 and "
        "0.94-1.5x the plain graph's batch-64 rate; on a CUDA GPU ~1.2x faster for 4096-nt inputs "
        "(benchmarks/fused_attention.py, README)",
    )
    external_data: bool | None = Field(
        None,
        description="ONNX: the weights in FILE.onnx.data beside the file (True) or "
        "inside it (False); None: beside it only when they exceed ~1.8 GB (protobuf cannot "
        "write one file over 2 GiB: NT-v2 500M in float32)",
    )
    max_drop: float | None = Field(
        None, gt=0, description="accuracy budget (percentage points) vs float, needs labelled calibration data"
    )
    atol: float = Field(1e-4, gt=0, description="max abs logit difference allowed for float exports")
    min_agreement: float = Field(
        0.9, ge=0, le=1, description="argmax agreement with torch required of quantized exports"
    )
    threads: int = Field(1, ge=1)
    verify_samples: int = Field(512, ge=1, description="sequences used to verify the export against torch")

    @model_validator(mode="after")
    def _check(self) -> "ExportConfig":
        quant_mode(self.format, self.quant)  # raises on unsupported pairs
        if self.external_data and self.format != "onnx":
            raise ValueError("external_data is an ONNX option (a TFLite file holds its weights itself)")
        return self


def graph_mode(cfg: ExportConfig) -> dict:
    """Options of :class:`edgegen.export.modes.export_mode` for this export."""
    on = cfg.graph_rewrites
    float_attention = not quant_mode(cfg.format, cfg.quant).static_activations
    return {
        "cls_shortcut": on,
        "additive_mask": on and float_attention,
        "ort_attention": on and float_attention and cfg.fused_attention and cfg.format == "onnx",
    }
