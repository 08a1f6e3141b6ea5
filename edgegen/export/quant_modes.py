"""What each quantization mode means, per format: one table, read by the config check, the backends, the sidecar
and verification (the measurements behind the ``int8`` choices: README, "int8: which mode is the default")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuantMode:
    impl: str  # what produces the file
    calibrates: bool  # reads calibration sequences (the sidecar records the method)
    static_activations: bool  # every activation quantized, attention scores included (no additive -1e9 mask then)
    keep_float: bool  # the accuracy-aware search (max_drop) can keep modules in float
    verify: str  # "atol": max |logit diff| vs torch within ExportConfig.atol; "agreement": argmax agreement

    @property
    def float(self) -> bool:
        return self.verify == "atol"


QUANT_MODES: dict[tuple[str, str], QuantMode] = {
    ("onnx", "none"): QuantMode("torch.onnx.export fp32", False, False, False, "atol"),
    ("onnx", "fp16"): QuantMode("onnxruntime float16 conversion", False, False, False, "agreement"),
    ("onnx", "dynamic"): QuantMode("onnxruntime quantize_dynamic", False, False, True, "agreement"),
    # the fastest accurate ONNX CPU int8 is ORT dynamic quantization: no calibration
    ("onnx", "int8"): QuantMode("onnxruntime quantize_dynamic", False, False, True, "agreement"),
    ("onnx", "int8-full"): QuantMode("onnxruntime quantize_static QDQ", True, True, True, "agreement"),
    ("tflite", "none"): QuantMode("litert-torch fp32", False, False, False, "atol"),
    ("tflite", "fp16"): QuantMode("ai-edge-quantizer fp16", False, False, False, "agreement"),
    ("tflite", "dynamic"): QuantMode("ai-edge-quantizer dynamic", False, False, False, "agreement"),
    # PT2E static int8 with float LayerNorm/softmax: attention scores stay float
    ("tflite", "int8"): QuantMode("litert-torch PT2E static int8", True, False, True, "agreement"),
    ("tflite", "int8-full"): QuantMode("ai-edge-quantizer static w8a8", True, True, False, "agreement"),
    ("tflite", "16x8"): QuantMode("ai-edge-quantizer static a16w8", True, True, False, "agreement"),
}


def supported(fmt: str) -> list[str]:
    return sorted(q for f, q in QUANT_MODES if f == fmt)


def quant_mode(fmt: str, quant: str) -> QuantMode:
    """The mode of ``fmt`` x ``quant``; ValueError naming what the format supports."""
    try:
        return QUANT_MODES[(fmt, quant)]
    except KeyError:
        raise ValueError(f"{fmt} export does not support quant={quant!r} (supported: {supported(fmt)})") from None
