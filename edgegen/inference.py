"""The one torch inference path: :func:`predict_logits` over token ids, and :class:`TorchRunner`, the Runner of a
native model directory. ``edgegen.runtime.load_runner(path, open_dir=TorchRunner)`` opens any model (directory,
``.onnx``, ``.tflite``); without ``open_dir`` it opens only the files. ``python -m edgegen.inference measure …`` is
:mod:`edgegen.runner_cli` able to measure model directories too (what a local bench runs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edgegen.data.readers import SequenceSet


def model_device(model):
    """The device of a model's first parameter (CPU for a model without parameters)."""
    import torch

    return next((p.device for p in model.parameters()), torch.device("cpu"))


def predict_logits(model, ids: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Run a torch model over (N, T) token ids in eval mode, on the model's device; return (N, C) float32 logits."""
    import torch

    from edgegen.runtime import safe_batch

    model.eval()
    out = []
    dev = model_device(model)
    batch_size = safe_batch(ids.shape[1], batch_size)
    with torch.inference_mode():
        for i in range(0, len(ids), batch_size):
            out.append(model(torch.from_numpy(ids[i : i + batch_size]).to(dev)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.num_classes), np.float32)


def torch_dynamic_int8(model):
    """``model`` with dynamic int8 Linear layers: the post-hoc baseline a user reaches for without edgegen (the bench's
    ``DIR::dynamic-int8`` row).

    Still ``torch.ao.quantization.quantize_dynamic``, deprecated in favour of torchao: torchao 0.18's CPU equivalent
    (``quantize_(m, Int8DynamicActivationInt8WeightConfig())``) is built for ``torch.compile``/GPUs and in eager mode
    ran a 256-wide MLP 7x slower than torch.ao here (0.85 vs 0.12 ms), a baseline that would flatter edgegen.
    """
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning, FutureWarning))
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class TorchRunner:
    """A native model directory as a Runner; ``quant="dynamic-int8"``: torch's dynamic int8 Linear layers (the
    post-hoc baseline a user would reach for without edgegen)."""

    backend = "torch"

    def __init__(self, path: str | Path, quant: str | None = None):
        from edgegen.checkpoint import load_model

        self.path = Path(path)
        self.loaded = load_model(self.path)
        self.model = self.loaded.model.eval()
        self.quant = quant
        if quant == "dynamic-int8":
            self.model = torch_dynamic_int8(self.model)
        elif quant is not None:
            from edgegen.errors import UsageError

            raise UsageError(f"unknown torch quantization {quant!r} (dynamic-int8)")
        self.tokenizer = self.loaded.tokenizer
        self.num_classes = self.loaded.model.config.num_classes

    @property
    def input_spec(self) -> dict:
        return {"name": "input_ids", "shape": [None, self.tokenizer.seq_len], "dtype": "int32", "batch": None}

    def set_threads(self, n: int) -> None:
        import torch

        torch.set_num_threads(n)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        return predict_logits(self.model, ids, batch_size=max(1, len(ids)))


def evaluate_on_test(model, tok, splits: dict[str, SequenceSet] | None) -> dict:
    """Classification report of ``model`` on the test split, or {} when there is none."""
    if not splits or "test" not in splits:
        return {}
    from edgegen.metrics import classification_report

    te = splits["test"]
    return classification_report(te.labels, predict_logits(model, te.encoded(tok)))


if __name__ == "__main__":
    from functools import partial

    from edgegen.runner_cli import main
    from edgegen.runtime import load_runner

    sys.exit(main(open_runner=partial(load_runner, open_dir=TorchRunner)))
