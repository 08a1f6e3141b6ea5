"""Runner over the TFLite interpreter: ``ai_edge_litert`` or, as on many
Raspberry Pi images, ``tflite_runtime``. Imports numpy and the interpreter only
(no torch). Quantized outputs are dequantized with the tensor's scale/zero-point."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgegen.errors import BackendError, ModelFileError
from edgegen.runtime.sidecar import read_sidecar, tokenizer_from_sidecar


def interpreter_class():
    """The TFLite Interpreter class from whichever package is installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite_runtime"
    except ImportError:
        raise BackendError(
            "no TFLite interpreter: pip install ai-edge-litert (or tflite-runtime, which needs numpy<2)"
        ) from None


class _quiet_fd2:
    """Silence file descriptor 2 (C++ logging); Python exceptions still propagate."""

    def __enter__(self):
        import os
        import sys

        sys.stderr.flush()
        self.saved = os.dup(2)
        self.null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self.null, 2)

    def __exit__(self, *exc):
        import os

        os.dup2(self.saved, 2)
        os.close(self.saved)
        os.close(self.null)


class TFLiteRunner:
    backend = "tflite"

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        self.sidecar = read_sidecar(self.path)
        self.tokenizer = tokenizer_from_sidecar(self.sidecar, self.path)
        self.num_classes = int(self.sidecar["num_classes"])
        self._cls, self.package = interpreter_class()
        self._threads = threads
        self._open()

    def _open(self) -> None:
        try:
            kw = {"num_threads": self._threads} if self._threads else {}
            with _quiet_fd2():  # the C++ runtime announces its XNNPACK delegate on stderr at every load
                self.interp = self._cls(model_path=str(self.path), **kw)
                self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            msg = str(e).splitlines()[0][:300]
            raise ModelFileError(f"TFLite cannot load the model ({msg})", path=self.path) from None
        self._in = self.interp.get_input_details()[0]
        self._out = self.interp.get_output_details()[0]
        want = self.sidecar["input"]["shape"]
        if list(self._in["shape"]) != list(want):
            raise ModelFileError(
                f"model input shape {list(self._in['shape'])} does not match its sidecar ({want})", path=self.path
            )
        out = [int(x) for x in self._out["shape"]]
        if len(out) != 2 or out[1] != self.num_classes:
            raise ModelFileError(
                f"model outputs shape {out}, but its sidecar says {self.num_classes} classes", path=self.path
            )
        self._scale, self._zp = self._out.get("quantization", (0.0, 0))

    @property
    def input_spec(self) -> dict:
        shape = [int(x) for x in self._in["shape"]]
        return {"name": self._in["name"], "shape": shape, "dtype": "int32", "batch": shape[0]}

    def set_threads(self, n: int) -> None:
        self._threads = n
        self._open()

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        self.interp.set_tensor(self._in["index"], np.ascontiguousarray(ids, dtype=self._in["dtype"]))
        self.interp.invoke()
        out = self.interp.get_tensor(self._out["index"])
        if out.ndim != 2 or out.shape[1] != self.num_classes:
            raise ModelFileError(
                f"model outputs shape {list(out.shape)}, but its sidecar says {self.num_classes} classes",
                path=self.path,
            )
        if self._scale:
            return ((out.astype(np.float32) - self._zp) * self._scale).astype(np.float32)
        return out.astype(np.float32, copy=True)
