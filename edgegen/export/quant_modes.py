"""What each quantization mode means, per format: one table, read by the config check, the backends, the sidecar
and verification (the measurements behind the ``int8`` choices: README, "int8: which mode is the default")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class QuantMode:
    impl: str  # what produces the file
    step: str  # the backend function that makes it (each backend's STEPS table)
    calibrates: bool  # reads calibration sequences (the sidecar records the method)
    static_activations: bool  # every activation quantized, attention scores included (no additive -1e9 mask then)
    keep_float: bool  # the accuracy-aware search (max_drop) can keep modules in float
    verify: str  # "atol": max |logit diff| vs torch within ExportConfig.atol; "agreement": argmax agreement
    # static int8 weight scales (ExportConfig.per_channel): "" none to choose; "per-channel" by default;
    # "compare": per-tensor and per-channel both tried, per-tensor kept unless per-channel is better (verify.py)
    weight_scales: str = ""
    recipe: str = ""  # the ai-edge-quantizer recipe (a function of ai_edge_quantizer.recipe; "fp16": float casting)

    @property
    def float(self) -> bool:
        return self.verify == "atol"


QUANT_MODES: dict[tuple[str, str], QuantMode] = {
    ("onnx", "none"): QuantMode("torch.onnx.export fp32", "fp32", False, False, False, "atol"),
    ("onnx", "fp16"): QuantMode("onnxruntime float16 conversion", "fp16", False, False, False, "agreement"),
    ("onnx", "dynamic"): QuantMode("onnxruntime quantize_dynamic", "dynamic", False, False, True, "agreement"),
    # the fastest accurate ONNX CPU int8 is ORT dynamic quantization: no calibration
    ("onnx", "int8"): QuantMode("onnxruntime quantize_dynamic", "dynamic", False, False, True, "agreement"),
    ("onnx", "int8-full"): QuantMode(
        "onnxruntime quantize_static QDQ", "static_qdq", True, True, True, "agreement", weight_scales="per-channel"
    ),
    ("tflite", "none"): QuantMode("litert-torch fp32", "fp32", False, False, False, "atol"),
    ("tflite", "fp16"): QuantMode(
        "ai-edge-quantizer fp16", "quantizer", False, False, False, "agreement", recipe="fp16"
    ),
    ("tflite", "dynamic"): QuantMode(
        "ai-edge-quantizer dynamic", "quantizer", False, False, False, "agreement", recipe="dynamic_wi8_afp32"
    ),
    # PT2E static int8 with float LayerNorm/softmax: attention scores stay float
    ("tflite", "int8"): QuantMode(
        "litert-torch PT2E static int8", "pt2e_int8", True, False, True, "agreement", weight_scales="compare"
    ),
    ("tflite", "int8-full"): QuantMode(
        "ai-edge-quantizer static w8a8", "quantizer", True, True, False, "agreement", recipe="static_wi8_ai8"
    ),
    ("tflite", "16x8"): QuantMode(
        "ai-edge-quantizer static a16w8", "quantizer", True, True, False, "agreement", recipe="static_wi8_ai16"
    ),
}

# the names, for typed configs (ExportConfig, device profiles, recipes): written once, in the table above
Quant = Literal[tuple(dict.fromkeys(q for _, q in QUANT_MODES))]
OnnxQuant = Literal[tuple(q for f, q in QUANT_MODES if f == "onnx")]
TfliteQuant = Literal[tuple(q for f, q in QUANT_MODES if f == "tflite")]


def supported(fmt: str) -> list[str]:
    return sorted(q for f, q in QUANT_MODES if f == fmt)


def quant_mode(fmt: str, quant: str) -> QuantMode:
    """The mode of ``fmt`` x ``quant``; ValueError naming what the format supports."""
    try:
        return QUANT_MODES[(fmt, quant)]
    except KeyError:
        raise ValueError(f"{fmt} export does not support quant={quant!r} (supported: {supported(fmt)})") from None
