"""The sidecar: ``FILE.json`` beside every exported model (its input, tokenizer, quantization, calibration,
verification, and the sha256 of the file and of its external weights). This module owns the format: it builds the
dict :func:`edgegen.export.export` writes and reads it back, checked, for every runner (device-side: no torch)."""

from __future__ import annotations

from pathlib import Path

from edgegen.errors import ModelFileError
from edgegen.integrity import SHA256
from edgegen.io import read_json, sha256_file

FORMAT = "edgegen-export/1"


def minimal(input_name: str, input_shape: list, num_classes: int, tokenizer: dict) -> dict:
    """The fields a runner needs to open a model (what a trial file of the accuracy search gets)."""
    return {
        "format": FORMAT,
        "input": {"name": input_name, "shape": input_shape, "dtype": "int32"},
        "num_classes": num_classes,
        "tokenizer": tokenizer,
    }


def build(
    *,
    model_format: str,
    quant: str,
    impl: str | None,
    input_name: str,
    input_shape: list,
    output_name: str,
    num_classes: int,
    params: int,
    macs: int,
    graph: dict,
    tokenizer: dict,
    source_model: dict,
    calibration: dict,
    config: dict,
    seconds: float,
    kept_float: list,
) -> dict:
    """A finished export's sidecar (``verification``, ``file_sha256`` and ``external_data`` are added once known)."""
    return minimal(input_name, input_shape, num_classes, tokenizer) | {
        "model_format": model_format,
        "quant": quant,
        "quant_impl": impl,
        "output": {"name": output_name, "shape": [input_shape[0], num_classes], "dtype": "float32"},
        "params": params,
        "macs": macs,
        "graph": graph,
        "source_model": source_model,
        "calibration": calibration,
        "config": config,
        "export_seconds": seconds,
        "kept_float": kept_float,
    }


def seal(d: dict, path: str | Path) -> dict:
    """Record the sha256 of the model file (and of its external weights, when there are any) in sidecar ``d``: what
    :func:`read_sidecar` requires before a runner opens the file."""
    d["file_sha256"] = sha256_file(path)
    if data_file(path).exists():
        data = data_file(path)
        d["external_data"] = {"file": data.name, "sha256": sha256_file(data), "bytes": data.stat().st_size}
    return d


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

    Checks its fields and (``check_file``) the model file's sha256, which it must record, and its external weights'
    when it names any: a model replaced or corrupted after export is refused instead of run under another model's
    sidecar. (An ONNX file whose sidecar names no external weights is opened from its bytes, so it cannot read any.)

    Raises:
        ModelFileError: a missing, unreadable, incomplete or mismatched sidecar.
    """
    side = Path(str(path) + ".json")
    d = read_json(
        side, missing=f"missing sidecar {side.name} (written by 'edgegen export' beside the model)", where=path
    )
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ModelFileError(
            f"unknown sidecar format {d.get('format') if isinstance(d, dict) else type(d).__name__!r}", path=side
        )
    shape = (d.get("input") or {}).get("shape") if isinstance(d.get("input"), dict) else None
    if not (isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0):
        raise ModelFileError("sidecar field input.shape is missing or not [batch, tokens]", path=side)
    if not (isinstance(d.get("num_classes"), int) and d["num_classes"] >= 2):
        raise ModelFileError("sidecar field num_classes is missing or below 2", path=side)
    if not isinstance(d.get("tokenizer"), dict):
        raise ModelFileError("sidecar field tokenizer is missing or not an object", path=side)
    want = d.get("file_sha256")
    if (want is not None or check_file) and not (isinstance(want, str) and SHA256.fullmatch(want)):
        raise ModelFileError(
            "sidecar field file_sha256 is missing or not a sha256 hex digest (every export records the "
            "model file's sha256; export it again)",
            path=side,
        )
    ext = d.get("external_data")
    if ext is not None and not (
        isinstance(ext, dict)
        and isinstance(ext.get("file"), str)
        and "/" not in ext["file"]
        and ext["file"] not in ("", ".", "..")
        and isinstance(ext.get("sha256"), str)
    ):
        raise ModelFileError(
            "sidecar field external_data is not {file, sha256} naming a file beside the model", path=side
        )
    if check_file:
        got = sha256_file(Path(path))
        if got != want:
            raise ModelFileError(
                f"does not match its sidecar (sha256 {got[:12]}..., sidecar says {want[:12]}...): "
                "the file was replaced or corrupted after export; export it again",
                path=path,
            )
    if check_file and ext:
        data = Path(path).parent / ext["file"]
        if not data.is_file():
            raise ModelFileError(
                f"missing {ext['file']}, the model's external weights (keep it beside the model)", path=path
            )
        if sha256_file(data) != ext["sha256"]:
            raise ModelFileError(
                "does not match its model's sidecar (sha256): the weights were replaced or corrupted after "
                "export; export it again",
                path=data,
            )
    return d


def tokenizer_from_sidecar(d: dict, path: Path | None = None):
    """The sidecar's tokenizer, which must give exactly the model's input length (``input.shape[1]`` tokens)."""
    from edgegen.dna_tokenizer import Tokenizer

    side = None if path is None else Path(str(path) + ".json")
    try:
        tok = Tokenizer.from_dict(d["tokenizer"])
    except ModelFileError:
        raise
    except Exception as e:  # a sidecar edited by hand: name it, one line
        raise ModelFileError(
            f"sidecar tokenizer is invalid ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})",
            path=side,
        ) from None
    want = d["input"]["shape"][1]
    if tok.seq_len != want:
        raise ModelFileError(f"sidecar tokenizer gives {tok.seq_len} tokens, the model takes {want}", path=side)
    return tok
