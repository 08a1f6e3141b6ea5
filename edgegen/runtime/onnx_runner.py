"""Runner over ONNX Runtime. Imports numpy and onnxruntime only (no torch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgegen.errors import BackendError, ModelFileError
from edgegen.io import sha256_file


def data_file(path: str | Path) -> Path:
    """Where an ONNX file's external weights live: ``FILE.onnx.data`` beside it (the name ONNX Runtime's
    quantizers give it too)."""
    return Path(str(path) + ".data")


def model_files(path: str | Path, sidecar: dict | None = None) -> list[Path]:
    """The files an exported model is made of: the model itself, then its external data file when its sidecar
    records one (the sidecar is not included)."""
    path = Path(path)
    d = read_sidecar(path, check_file=False) if sidecar is None else sidecar
    ext = d.get("external_data")
    return [path] + ([path.parent / ext["file"]] if isinstance(ext, dict) and "file" in ext else [])


def model_bytes(path: str | Path, sidecar: dict | None = None) -> int:
    """Bytes on disk of an exported model, external weights included."""
    return sum(p.stat().st_size for p in model_files(path, sidecar))


def read_sidecar(path: Path, *, check_file: bool = True) -> dict:
    """Read and check ``PATH.json``, the sidecar ``edgegen export`` writes beside a model file.

    Checks its fields and, when it records one (every finished export does), the model file's sha256:
    a model replaced or corrupted after export is refused instead of run under another model's sidecar.

    Raises:
        ModelFileError: a missing, unreadable, incomplete or mismatched sidecar.
    """
    side = Path(str(path) + ".json")
    if not side.is_file():
        raise ModelFileError(f"missing sidecar {side.name} (written by 'edgegen export' beside the model)", path=path)
    try:
        d = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"sidecar is not valid JSON ({e})", path=side) from None
    if not isinstance(d, dict) or d.get("format") != "edgegen-export/1":
        raise ModelFileError(f"unknown sidecar format {d.get('format') if isinstance(d, dict) else type(d).__name__!r}", path=side)
    shape = (d.get("input") or {}).get("shape") if isinstance(d.get("input"), dict) else None
    if not (isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0):
        raise ModelFileError("sidecar field input.shape is missing or not [batch, tokens]", path=side)
    if not (isinstance(d.get("num_classes"), int) and d["num_classes"] >= 2):
        raise ModelFileError("sidecar field num_classes is missing or below 2", path=side)
    if not isinstance(d.get("tokenizer"), dict):
        raise ModelFileError("sidecar field tokenizer is missing or not an object", path=side)
    want = d.get("file_sha256")
    if want is not None and not (isinstance(want, str) and len(want) == 64):
        raise ModelFileError("sidecar field file_sha256 is not a sha256 hex digest", path=side)
    ext = d.get("external_data")
    if ext is not None and not (isinstance(ext, dict) and isinstance(ext.get("file"), str) and "/" not in ext["file"]
                                and ext["file"] not in ("", ".", "..") and isinstance(ext.get("sha256"), str)):
        raise ModelFileError("sidecar field external_data is not {file, sha256} naming a file beside the model", path=side)
    if check_file and want:
        got = sha256_file(Path(path))
        if got != want:
            raise ModelFileError(f"does not match its sidecar (sha256 {got[:12]}..., sidecar says {want[:12]}...): "
                                 "the file was replaced or corrupted after export; export it again", path=path)
    if check_file and ext:
        data = Path(path).parent / ext["file"]
        if not data.is_file():
            raise ModelFileError(f"missing {ext['file']}, the model's external weights (keep it beside the model)", path=path)
        if sha256_file(data) != ext["sha256"]:
            raise ModelFileError("does not match its model's sidecar (sha256): the weights were replaced or corrupted after "
                                 "export; export it again", path=data)
    return d


def tokenizer_from_sidecar(d: dict, path: Path | None = None):
    from edgegen.tokenizers import Tokenizer

    try:
        return Tokenizer.from_dict(d["tokenizer"])
    except ModelFileError:
        raise
    except Exception as e:  # a sidecar edited by hand: name it, one line
        raise ModelFileError(f"sidecar tokenizer is invalid ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})",
                             path=None if path is None else Path(str(path) + ".json")) from None


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
        so.log_severity_level = 3  # errors only: node-placement advice is not for end users
        if self._threads:
            so.intra_op_num_threads = self._threads
            so.inter_op_num_threads = 1
        try:
            self.session = self._ort.InferenceSession(str(self.path), so, providers=self.providers)
        except Exception as e:  # onnxruntime raises its own exception types
            msg = str(e).splitlines()[0][:300]
            raise ModelFileError(f"ONNX Runtime cannot load the model ({type(e).__name__}: {msg})", path=self.path) from None
        inp = self.session.get_inputs()[0]
        want = self.sidecar["input"]["shape"][1]
        if inp.shape[1] != want:
            raise ModelFileError(f"model input length {inp.shape[1]} does not match its sidecar ({want})", path=self.path)
        self.input_name = inp.name
        self._input_shape = inp.shape

    @property
    def input_spec(self) -> dict:
        b = self._input_shape[0]
        return {"name": self.input_name, "shape": list(self._input_shape), "dtype": "int32", "batch": b if isinstance(b, int) else None}

    def set_threads(self, n: int) -> None:
        self._threads = n
        self._open()

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(ids, dtype=np.int32)})[0]
        return out.astype(np.float32, copy=False)
