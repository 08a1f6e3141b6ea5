"""One model of a bench: what it is (format, quantization, size, parameters, sidecar facts) and how it is measured on
this machine (in a fresh process, so latency and memory belong to the model alone). :func:`edgegen.bench.bench` runs
them side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edgegen.errors import BackendError, ModelFileError


def model_info(path: Path) -> dict:
    """Backend, tokenizer, params/MACs and size without loading a runtime."""
    from edgegen.dna_tokenizer import Tokenizer

    if "::" in str(path):  # torch model with post-hoc torch.ao dynamic int8
        base, quant = str(path).split("::", 1)
        info = model_info(Path(base))
        info["quant"] = f"torch.ao {quant}"
        import io

        import torch

        from edgegen.checkpoint import load_model
        from edgegen.inference import torch_dynamic_int8

        m = torch_dynamic_int8(load_model(base).model)
        buf = io.BytesIO()
        torch.save(m.state_dict(), buf)  # size of what such a user would ship (a pickled state dict)
        info["size_bytes"] = buf.tell()
        return info
    if path.is_dir():
        from edgegen.checkpoint import verify_model_dir

        man = verify_model_dir(path)
        tok = Tokenizer.load(path / "tokenizer.json")
        size = (path / "model.safetensors").stat().st_size
        return {
            "backend": "torch",
            "tokenizer": tok,
            "params": man.get("params"),
            "macs": man.get("macs"),
            "size_bytes": size,
            "num_classes": json.loads((path / "config.json").read_text())["num_classes"],
            "quant": "none (fp32)",
        }
    from edgegen.runtime.sidecar import model_bytes, read_sidecar

    if path.suffix not in (".onnx", ".tflite"):
        raise ModelFileError("unrecognised model (expected a model directory, .onnx or .tflite)", path=path)
    if not path.exists():
        raise ModelFileError("no such model file", path=path)
    side = read_sidecar(path)
    return {
        "backend": "onnxruntime" if path.suffix == ".onnx" else "tflite",
        "tokenizer": Tokenizer.from_dict(side["tokenizer"]),
        "params": side.get("params"),
        "macs": side.get("macs"),
        "size_bytes": model_bytes(path, side),
        "num_classes": side["num_classes"],
        "quant": side.get("quant"),
    }


def tokenize_sets(tok, sets: dict[str, list[str]]) -> tuple[dict[str, np.ndarray], float]:
    t0 = time.perf_counter()
    out = {k: tok.encode(v) for k, v in sets.items()}
    dt = time.perf_counter() - t0
    return out, dt / max(1, len(sets["test"]))


def local_measure(
    model: Path, inputs: Path, out: Path, threads: int, cfg_eff: dict, logits: bool, providers, timeout: int
) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "edgegen.inference",
        "measure",
        "--model",
        str(model),
        "--inputs",
        str(inputs),
        "--out",
        str(out),
        "--threads",
        str(threads),
        "--warmup",
        str(cfg_eff["warmup"]),
        "--runs",
        str(cfg_eff["runs"]),
        "--batch",
        str(cfg_eff["batch"]),
    ]
    if not logits:
        cmd.append("--no-logits")
    if providers and model.suffix == ".onnx":
        cmd += ["--providers", ",".join(providers)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BackendError(f"measuring timed out after {timeout} s", path=model) from None
    if r.returncode != 0:
        lines = [x for x in r.stderr.strip().splitlines() if x.strip()]
        raise BackendError(f"measurement failed: {lines[-1] if lines else 'no output'}", path=model)
    return json.loads(out.read_text())


def display_name(p: Path) -> str:
    """A model dir is named by its folder; a recipe's ``<stage>/model`` by its stage."""
    if "::" in str(p):
        base, q = str(p).split("::", 1)
        return display_name(Path(base)) + f" [{q}]"
    if p.is_file():
        return p.name
    return (p.parent.name if p.name == "model" and p.parent.name else p.name) + "/"
