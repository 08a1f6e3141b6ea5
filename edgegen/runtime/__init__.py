"""One Runner interface over torch, ONNX Runtime and the TFLite interpreter.

``load_runner(path)`` picks the backend from the path: ``.onnx`` -> ONNX Runtime,
``.tflite`` -> TFLite, a model directory -> torch (when the host passes
``open_dir=edgegen.inference.TorchRunner``). This package imports numpy and one
runtime only, never torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from edgegen.errors import ModelFileError


@runtime_checkable
class Runner(Protocol):
    """Load once, set threads, run (B, T) int32 token ids -> (B, C) float32 logits."""

    backend: str
    path: Path
    tokenizer: object
    num_classes: int

    @property
    def input_spec(self) -> dict: ...

    def set_threads(self, n: int) -> None: ...

    def __call__(self, ids: np.ndarray) -> np.ndarray: ...


def load_runner(path: str | Path, *, threads: int | None = None, open_dir=None, **kw) -> Runner:
    """Open a model for inference with the backend its path implies.

    Args:
        path: a ``.onnx`` or ``.tflite`` file (with its ``.json`` sidecar beside it), or a model directory when
            ``open_dir`` (``open_dir(path, quant=...)``) opens one: the host passes
            :class:`edgegen.inference.TorchRunner`; this layer never imports torch or the model code.
        threads: intra-op threads (default: the runtime's own default).

    Raises:
        ModelFileError: missing, corrupt or unrecognised model file.
    """
    spec = str(path)
    quant = None
    if "::" in spec:  # "MODEL_DIR::dynamic-int8": the torch model with torch.ao dynamic int8
        spec, quant = spec.split("::", 1)
    p = Path(spec)
    if not p.exists():
        raise ModelFileError("no such model file or directory", path=p)
    if p.is_dir():
        if open_dir is None:
            raise ModelFileError("a model directory runs in PyTorch; here only .onnx and .tflite files run", path=p)
        r = open_dir(p, quant=quant)
    elif p.suffix == ".onnx":
        from edgegen.runtime.onnx_runner import OnnxRunner

        r = OnnxRunner(p, **kw)
    elif p.suffix == ".tflite":
        from edgegen.runtime.tflite_runner import TFLiteRunner

        r = TFLiteRunner(p)
    else:
        raise ModelFileError("unrecognised model (expected a model directory, .onnx or .tflite)", path=p)
    if threads:
        r.set_threads(threads)
    return r


def safe_batch(seq_len: int, want: int, budget_bytes: int = 512 << 20, max_heads: int = 16) -> int:
    """Largest batch <= ``want`` whose attention maps (B x heads x T x T float32) fit ``budget_bytes``.

    Long inputs (thousands of tokens) otherwise exhaust memory: at 2 049 tokens one sequence's
    attention maps already take ~270 MB with 16 heads.
    """
    per_seq = 4 * max_heads * seq_len * seq_len
    return int(max(1, min(want, budget_bytes // max(per_seq, 1))))


def run_batched(runner: Runner, ids: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Run ``runner`` over many rows in batches (capped by :func:`safe_batch`); a fixed-batch runner gets its batch.

    Raises:
        ModelFileError: the model computes NaN or infinite logits (no metric, prediction or verification is ever
            made of them).
    """
    from edgegen.integrity import require_finite

    fixed = runner.input_spec.get("batch")
    bs = fixed if isinstance(fixed, int) else safe_batch(ids.shape[1] if ids.ndim == 2 else 1, batch_size)
    out = []
    for i in range(0, len(ids), bs):
        chunk = ids[i : i + bs]
        if isinstance(fixed, int) and len(chunk) < fixed:
            padded = np.repeat(chunk[-1:], fixed, axis=0)
            padded[: len(chunk)] = chunk
            out.append(runner(padded)[: len(chunk)])
        else:
            out.append(runner(chunk))
    logits = np.concatenate(out) if out else np.zeros((0, runner.num_classes), np.float32)
    require_finite(logits, "the model's logits (it computes them from its weights)", path=getattr(runner, "path", None))
    return logits
