"""ONNX export (torch.onnx, fixed sequence axis, dynamic batch) and ONNX Runtime quantization."""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from edgegen.export.quant_modes import quant_mode
from edgegen.runtime.sidecar import data_file

log = logging.getLogger("edgegen")

# protobuf cannot write one message over 2 GiB: above this many bytes of weights an ONNX file keeps them in
# FILE.onnx.data (ONNX external data), leaving room for the graph itself
EXTERNAL_DATA_BYTES = 1_800_000_000


def external_data_files(path: str | Path) -> set[str]:
    """The external-data file names an ONNX file's initializers point to (read without loading any weights)."""
    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and onnx's own
        from edgegen.errors import ModelFileError

        raise ModelFileError(f"not a readable ONNX file ({type(e).__name__})", path=path) from None
    return {e.value for t in m.graph.initializer for e in t.external_data if e.key == "location"}


def weight_bytes(m) -> int:
    """Bytes of an in-memory ONNX model's initializers."""
    return sum(t.ByteSize() for t in m.graph.initializer)


def save(m, path: Path, external: bool | None = None) -> None:
    """Write an in-memory ONNX model to ``path``; its weights go to :func:`data_file` when ``external`` (None:
    when they exceed :data:`EXTERNAL_DATA_BYTES`). The file is written under its final name (the data file's
    name is recorded inside it), so ``path`` belongs in a private staging folder until committed."""
    import onnx

    if external is None:
        external = weight_bytes(m) > EXTERNAL_DATA_BYTES
    data = data_file(path)
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    if external:
        onnx.save_model(
            m,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data.name,
            size_threshold=1024,
        )
    else:
        onnx.save_model(m, str(path))


def export_fp32(model, tok, path: Path, opset: int, batch: int | None, mode: dict | None = None) -> None:
    """Plain ``torch.onnx.export``: input ``input_ids`` (B, T) int32 with T fixed to the tokenizer's length
    (``mode``: options of :class:`edgegen.export.modes.export_mode`)."""
    import torch

    from edgegen.export.modes import export_mode

    ex = torch.zeros(batch or 2, tok.seq_len, dtype=torch.int32)
    ex[:, 0] = tok.cls_id
    dyn = None if batch else {"input_ids": {0: "batch"}, "logits": {0: "batch"}}
    with export_mode(model, **(mode or {})), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (ex,),
            str(path),
            input_names=["input_ids"],
            output_names=["logits"],
            dynamic_axes=dyn,
            opset_version=opset,
            dynamo=False,
        )


class _Reader:
    def __init__(self, ids: np.ndarray, batch: int = 1):
        self.rows = [ids[i : i + batch] for i in range(0, len(ids), batch)]
        self.i = 0

    def get_next(self):
        if self.i >= len(self.rows):
            return None
        self.i += 1
        return {"input_ids": self.rows[self.i - 1]}

    def rewind(self):
        self.i = 0


def _nodes_under(onnx_path: Path, units: list[str]) -> list[str]:
    """ONNX node names exported from the given keep-float units (the TorchScript exporter names nodes
    after their module path, ``/blocks.0/attn/q/MatMul``; top-level ops have no module part)."""
    import onnx

    from edgegen.export.keep_float import in_unit

    if not units:
        return []
    m = onnx.load(str(onnx_path))

    def module_of(node_name: str) -> str:
        parts = node_name.strip("/").split("/")
        return ".".join(parts[:-1])  # the last part is the op

    names = [n for n in m.graph.node if any(in_unit(module_of(n.name), u) for u in units)]
    # quantize_dynamic rewrites a Gemm as a MatMul named NAME_MatMul before it consults the exclusions
    return [n.name for n in names] + [f"{n.name}_MatMul" for n in names if n.op_type == "Gemm"]


def export(model, tok, path: Path, cfg, cal_ids: np.ndarray, keep_float: list[str] = (), **_) -> dict:
    batch = cfg.batch_size
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # onnxruntime.quantization logs advice on the root logger
    try:
        return _export(model, tok, path, cfg, cal_ids, keep_float, batch)
    finally:
        quiet.setLevel(level)


def _export(model, tok, path, cfg, cal_ids, keep_float, batch) -> dict:
    import onnx

    from edgegen.export.config import graph_mode

    info = {"input_name": "input_ids", "output_name": "logits", "input_shape": [batch, tok.seq_len]}
    # over 2 GiB of float weights, every intermediate file keeps them apart too (torch.onnx.export does so itself)
    big = sum(p.numel() * p.element_size() for p in model.parameters()) > EXTERNAL_DATA_BYTES
    work = Path(tempfile.mkdtemp(prefix="edgegen-onnx-"))
    try:
        f32 = work / "fp32.onnx"
        export_fp32(model, tok, f32, cfg.opset, batch, graph_mode(cfg))
        step = quant_mode("onnx", cfg.quant).step
        if step != "fp32":
            info["kept_float"] = list(keep_float)
        info["impl"] = STEPS[step](f32, path, work, cfg, cal_ids, keep_float, big)
        # one rewrite: short names, and the weights inside or beside the file as asked
        m = onnx.load(str(f32 if step == "fp32" else path))
        save(compact(m) if cfg.strip_names else m, path, cfg.external_data)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return info


def _as_float32(f32, path, work, cfg, cal_ids, keep_float, big) -> str:
    return "torch.onnx.export fp32"


def _dynamic_int8(f32, path, work, cfg, cal_ids, keep_float, big) -> str:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(f32),
        str(path),
        weight_type=QuantType.QInt8,
        per_channel=False,
        use_external_data_format=big,
        nodes_to_exclude=_nodes_under(f32, list(keep_float)),
    )
    return "onnxruntime quantize_dynamic (int8 weights, dynamic int8 activations for MatMul)"


def _static_qdq_int8(f32, path, work, cfg, cal_ids, keep_float, big) -> str:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = work / "pre.onnx"
    quant_pre_process(str(f32), str(pre), skip_symbolic_shape=True, save_as_external_data=big)
    method = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[cfg.calibrator]
    quantize_static(
        str(pre),
        str(path),
        _Reader(cal_ids, 1),
        quant_format=QuantFormat.QDQ,
        per_channel=cfg.per_channel,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=method,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        nodes_to_exclude=_nodes_under(pre, list(keep_float)),
        use_external_data_format=big,
    )
    return f"onnxruntime quantize_static QDQ per-channel, {cfg.calibrator} calibration"


def _float16(f32, path, work, cfg, cal_ids, keep_float, big) -> str:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(
        convert_float_to_float16(onnx.load(str(f32)), keep_io_types=True),
        str(path),
        save_as_external_data=big,
        location=data_file(path).name,
    )
    return "onnxruntime.transformers float16 (float32 inputs/outputs kept)"


# what makes each mode's file (quant_modes.QUANT_MODES names the step)
STEPS = {"fp32": _as_float32, "dynamic": _dynamic_int8, "static_qdq": _static_qdq_int8, "fp16": _float16}


def compact(m):
    """Drop what ONNX Runtime does not need from an in-memory model: the quantizers' inferred shapes of every
    intermediate (``value_info``, ~10 KB on a 2-layer model) and long internal names
    (``/blocks.0/attn/q/MatMul_quant`` becomes ``t17``; nodes lose theirs). Graph inputs and outputs keep their
    names. Returns ``m``."""
    import onnx

    g = m.graph
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in g.node for a in n.attribute):
        return m  # subgraphs refer to outer names: leave such a graph as exported
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    names: dict[str, str] = {}

    def short(x: str) -> str:
        if not x or x in keep:
            return x
        return names.setdefault(x, f"t{len(names)}")

    del g.value_info[:]
    for t in g.initializer:
        t.name = short(t.name)
    for n in g.node:
        n.name = ""
        n.input[:] = [short(x) for x in n.input]
        n.output[:] = [short(x) for x in n.output]
    return m
