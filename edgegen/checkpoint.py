"""The edgegen model directory.

``config.json`` (shapes), ``model.safetensors`` (weights), ``tokenizer.json`` and
``manifest.json`` (edgegen/torch versions, dataset name and hash, metrics and the
sha256 of every other file). Loading never unpickles and verifies every hash.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.dna_tokenizer import Tokenizer
from edgegen.errors import ModelFileError
from edgegen.io import atomic_write_text, sha256_file, staging_dir, usual_permissions, write_json

FILES = ("config.json", "model.safetensors", "tokenizer.json")
FORMAT = "edgegen-model/1"


@dataclass
class LoadedModel:
    """A model with its tokenizer and manifest, as read from a model directory."""

    model: Any  # GenomicTransformer
    tokenizer: Tokenizer
    manifest: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def config(self):
        return self.model.config


def save_model(
    model,
    tokenizer: Tokenizer,
    out_dir: str | Path,
    *,
    metrics: dict | None = None,
    dataset: dict | None = None,
    extra: dict | None = None,
    force: bool = False,
) -> Path:
    """Write a model directory atomically (nothing at ``out_dir`` is touched on failure).

    Args:
        model: a :class:`edgegen.model.GenomicTransformer`.
        tokenizer: the tokenizer the model was trained with.
        out_dir: destination folder; must not exist unless ``force``.
        metrics: evaluation results to record in the manifest.
        dataset: ``{"name": ..., "sha256": ...}`` of the training data.
        extra: any other provenance (e.g. pruning or distillation settings).

    Returns:
        The directory path.
    """
    import safetensors.torch
    import torch

    import edgegen

    out_dir = Path(out_dir)
    with staging_dir(out_dir, force=force) as tmp:
        atomic_write_text(tmp / "config.json", model.config.model_dump_json(indent=2) + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        safetensors.torch.save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        usual_permissions(tmp / "model.safetensors")
        tokenizer.save(tmp / "tokenizer.json")
        manifest = {
            "format": FORMAT,
            "edgegen_version": edgegen.__version__,
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "params": sum(p.numel() for p in model.parameters()),
            "macs": model.config.macs(tokenizer.seq_len),
            "seq_len": tokenizer.seq_len,
            "dataset": dataset or {},
            "metrics": metrics or {},
            **(extra or {}),
            "files": {name: sha256_file(tmp / name) for name in FILES},
        }
        write_json(tmp / "manifest.json", manifest)
    return out_dir


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError("missing (not an edgegen model directory?)", path=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"not valid JSON ({e.__class__.__name__}: {e})", path=path) from None


def verify_model_dir(path: str | Path) -> dict:
    """Check every file's sha256 against the manifest; return the manifest."""
    d = Path(path)
    if not d.exists():
        raise ModelFileError("no such model directory", path=d)
    if not d.is_dir():
        raise ModelFileError("expected a model directory (config.json, model.safetensors, tokenizer.json)", path=d)
    manifest = _read_json(d / "manifest.json")
    if manifest.get("format") != FORMAT:
        raise ModelFileError(
            f"unknown model format {manifest.get('format')!r} (expected {FORMAT})", path=d / "manifest.json"
        )
    for name in FILES:
        f = d / name
        if not f.exists():
            raise ModelFileError("missing from the model directory", path=f)
        want = manifest.get("files", {}).get(name)
        got = sha256_file(f)
        if want != got:
            raise ModelFileError(
                f"sha256 mismatch (manifest {str(want)[:12]}…, file {got[:12]}…): the file was truncated or edited",
                path=f,
            )
    return manifest


def require_finite_weights(state: dict, path: str | Path) -> None:
    """Refuse a state dict with a NaN or infinite value in any floating-point tensor, naming the tensor."""
    import torch

    for name, t in state.items():
        if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ModelFileError(
                f"weight {name} holds NaN or infinite values: refusing a model that cannot compute finite outputs",
                path=path,
            )


def check_tokenizer_fits(tok: Tokenizer, vocab_size: int, path: str | Path) -> None:
    """Refuse a tokenizer that would fail or index outside the model's embedding at prediction time: every id of its
    vocabulary must lie in ``0..vocab_size-1``, and a BPE tokenizer must encode probe DNA (random ACGT at full window,
    all N, a short read) into such ids without raising."""
    import numpy as np

    if tok.vocab_size > vocab_size:
        top = max(tok.vocab, key=tok.vocab.get)
        raise ModelFileError(
            f"tokenizer has ids up to {tok.vocab_size - 1} ({top!r}), but the model's embedding has only "
            f"{vocab_size} rows (vocab_size in config.json and the tokenizer disagree)",
            path=path,
        )
    specials = {
        t: tok.vocab.get(t) for t in (tok.pad_token, tok.unk_token, tok.cls_token, tok.sep_token, tok.mask_token)
    }
    for t, i in specials.items():
        if i is not None and not 0 <= i < vocab_size:
            raise ModelFileError(
                f"tokenizer gives {t} the id {i}, outside the model's {vocab_size} embedding rows", path=path
            )
    if tok.kind != "bpe":  # k-mer and single-base ids come from the vocabulary, checked above
        return
    rng = np.random.default_rng(0)  # a BPE model (a tokenizer.json from outside) can fail in its own library's ways
    probe = [
        "".join(rng.choice(list("ACGT"), tok.max_len)),
        "N" * tok.max_len,
        "ACGTNACGT"[: max(1, min(9, tok.max_len))],
    ]
    try:
        ids = np.asarray(tok.encode(probe))
    except Exception as e:  # a foreign tokenizer (BPE JSON, vocab) can fail in its own library's ways
        raise ModelFileError(
            f"tokenizer cannot encode DNA ({type(e).__name__}: {' '.join(str(e).split())[:160]})", path=path
        ) from None
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = int(ids.min()) if ids.min() < 0 else int(ids.max())
        raise ModelFileError(
            f"tokenizer gives token id {bad} for DNA, outside the model's {vocab_size} embedding rows "
            "(vocab_size in config.json and the tokenizer disagree)",
            path=path,
        )


def load_model(path: str | Path, *, verify: bool = True) -> LoadedModel:
    """Load a model directory written by :func:`save_model` (safetensors only, no pickle).

    Raises:
        ModelFileError: missing files, hash mismatch, corrupt weights or shapes
            that disagree with ``config.json``.
    """
    import safetensors.torch
    from pydantic import ValidationError

    from edgegen.model import GenomicTransformer, ModelConfig

    d = Path(path)
    manifest = verify_model_dir(d) if verify else _read_json(d / "manifest.json")
    try:
        cfg = ModelConfig.model_validate(_read_json(d / "config.json"))
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ModelFileError(f"invalid config: {loc}: {first['msg']}", path=d / "config.json") from None
    tok = Tokenizer.load(d / "tokenizer.json")
    check_tokenizer_fits(tok, cfg.vocab_size, d / "tokenizer.json")
    try:
        state = safetensors.torch.load_file(str(d / "model.safetensors"))
    except Exception as e:  # safetensors raises its own SafetensorError / OSError
        raise ModelFileError(f"cannot read weights ({type(e).__name__}: {e})", path=d / "model.safetensors") from None
    require_finite_weights(state, d / "model.safetensors")
    model = GenomicTransformer(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        msg = str(e).splitlines()
        raise ModelFileError(
            f"weights do not match config.json: {' '.join(m.strip() for m in msg[:3])}", path=d
        ) from None
    model.eval()
    return LoadedModel(model, tok, manifest, d)
