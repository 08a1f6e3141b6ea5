"""Runner over ONNX Runtime. Imports numpy and onnxruntime only (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgegen.errors import BackendError, ModelFileError
from edgegen.runtime.sidecar import read_sidecar, tokenizer_from_sidecar


class OnnxRunner:
    backend = "onnxruntime"

    def __init__(self, path: str | Path, providers: list[str] | None = None, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendError("onnxruntime is not installed (pip install onnxruntime)") from None
        self.path = Path(path)
        self.sidecar = read_sidecar(self.path)
        self.tokenizer = tokenizer_from_sidecar(self.sidecar, self.path)
        self.num_classes = int(self.sidecar["num_classes"])
        self.providers = providers or ["CPUExecutionProvider"]
        self._ort = ort
        if any(p != "CPUExecutionProvider" for p in self.providers) and hasattr(ort, "preload_dlls"):
            # onnxruntime-gpu finds CUDA/cuDNN from pip's nvidia-* packages only when asked to
            try:
                ort.preload_dlls()
            except Exception:  # missing libraries: ORT falls back to the next provider and says so
                pass
        self._threads = threads
        self._open()

    def _open(self) -> None:
        so = self._ort.SessionOptions()
        so.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = (
            4  # fatal only: node-placement advice is not for end users, and errors come back as ours
        )
        if self._threads:
            so.intra_op_num_threads = self._threads
            so.inter_op_num_threads = 1
        try:
            # no external weights recorded in the sidecar: open the file's bytes, from which ONNX Runtime reads no
            # external data at all (an unrecorded .onnx.data beside it is never used unchecked)
            src = str(self.path) if self.sidecar.get("external_data") else self.path.read_bytes()
            self.session = self._ort.InferenceSession(src, so, providers=self.providers)
        except Exception as e:  # onnxruntime raises its own exception types
            msg = str(e).splitlines()[0][:300]
            raise ModelFileError(
                f"ONNX Runtime cannot load the model ({type(e).__name__}: {msg})", path=self.path
            ) from None
        inp = self.session.get_inputs()[0]
        want = self.sidecar["input"]["shape"][1]
        if inp.shape[1] != want:
            raise ModelFileError(
                f"model input length {inp.shape[1]} does not match its sidecar ({want})", path=self.path
            )
        out = self.session.get_outputs()[0].shape
        if len(out) != 2 or (isinstance(out[1], int) and out[1] != self.num_classes):
            raise ModelFileError(
                f"model outputs shape {list(out)}, but its sidecar says {self.num_classes} classes", path=self.path
            )
        self.input_name = inp.name
        self._input_shape = inp.shape

    @property
    def input_spec(self) -> dict:
        b = self._input_shape[0]
        return {
            "name": self.input_name,
            "shape": list(self._input_shape),
            "dtype": "int32",
            "batch": b if isinstance(b, int) else None,
        }

    def set_threads(self, n: int) -> None:
        self._threads = n
        self._open()

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(ids, dtype=np.int32)})[0]
        if out.ndim != 2 or out.shape[1] != self.num_classes:
            raise ModelFileError(
                f"model outputs shape {list(out.shape)}, but its sidecar says {self.num_classes} classes",
                path=self.path,
            )
        return out.astype(np.float32, copy=False)
