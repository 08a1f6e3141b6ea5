"""Runner over a native edgegen model directory (PyTorch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class TorchRunner:
    backend = "torch"

    def __init__(self, path: str | Path, quant: str | None = None):
        from edgegen.checkpoint import load_model

        self.path = Path(path)
        self.loaded = load_model(self.path)
        self.model = self.loaded.model.eval()
        self.quant = quant
        if quant == "dynamic-int8":
            # what a user would do without edgegen: torch.ao dynamic int8 on the Linear layers
            import torch

            self.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)
        elif quant is not None:
            from edgegen.errors import UsageError

            raise UsageError(f"unknown torch quantization {quant!r} (dynamic-int8)")
        self.tokenizer = self.loaded.tokenizer
        self.num_classes = self.model.config.num_classes

    @property
    def input_spec(self) -> dict:
        return {"name": "input_ids", "shape": [None, self.tokenizer.seq_len], "dtype": "int32", "batch": None}

    def set_threads(self, n: int) -> None:
        import torch

        torch.set_num_threads(n)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model(torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int32))).float().numpy()
