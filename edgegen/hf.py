"""Import Hugging Face genomic checkpoints from disk into the native GenomicTransformer.

Supported (exact weight mapping, logits match transformers to ~1e-6):
- ``bert`` (DNABERT-1 style; post-LN, learned absolute positions, overlapping k-mer vocab.txt):
  ``BertForSequenceClassification`` (pooler + classifier kept) and ``BertForMaskedLM``/``BertModel``
  (a new classification head, to fine-tune with ``edgegen train --init``).
- ``esm`` (Nucleotide-Transformer v1 style; pre-LN, absolute or rotary positions, non-overlapping
  k-mer vocab): ``EsmForSequenceClassification``, ``EsmForMaskedLM``/``EsmModel``.

Nothing is downloaded: a hub id instead of a folder is an error. Models that need
``trust_remote_code`` (e.g. Nucleotide-Transformer v2's custom GLU code) are refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edgegen.errors import ModelFileError, UsageError
from edgegen.hf_files import (
    Weights,
    load_state,
    read_config,
    read_vocab,
    shape_fields,
    shape_mismatch_message,
    tensor_names,
)

log = logging.getLogger("edgegen")

SUPPORTED = (
    "bert: BertForSequenceClassification, BertForMaskedLM, BertModel (DNABERT-1, k-mer vocab, absolute positions); "
    "esm: EsmForSequenceClassification, EsmForMaskedLM, EsmModel (Nucleotide-Transformer v1 style, absolute or rotary "
    "positions); "
    "Nucleotide Transformer v2 (modeling_esm with a SwiGLU feed-forward); DNABERT-2 (MosaicML BERT with ALiBi)"
)


def import_hf(
    src: str | Path, out: str | Path, *, max_len: int | None = None, num_classes: int | None = None, force: bool = False
) -> Path:
    """Convert a Hugging Face checkpoint folder to an edgegen model directory.

    Args:
        src: folder with ``config.json``, weights and ``vocab.txt``.
        out: edgegen model directory to write.
        max_len: nucleotide window (default: the longest the positions allow).
        num_classes: for checkpoints without a classification head (default 2).

    Raises:
        UsageError: a hub id, an unsupported architecture, or ``trust_remote_code`` models.
        ModelFileError: missing or unreadable files.

    Example:
        >>> import_hf("checkpoints/dnabert-3mer-promoter", "runs/dnabert")  # doctest: +SKIP
    """
    from pydantic import ValidationError

    from edgegen.errors import ConfigError

    try:
        return _import_hf(src, out, max_len=max_len, num_classes=num_classes, force=force)
    except ValidationError as e:  # config.json values the native model cannot take
        from edgegen.config_io import validation_message

        loc, msg = validation_message(e)
        raise ModelFileError(
            f"config.json describes an unsupported model ({loc}: {msg})", path=Path(src) / "config.json"
        ) from None
    except ConfigError as e:  # e.g. a vocabulary without the tokenizer's special tokens
        if e.path:
            raise
        raise ModelFileError(str(e), path=Path(src)) from None


def _import_hf(src: str | Path, out: str | Path, *, max_len: int | None, num_classes: int | None, force: bool) -> Path:
    from edgegen.io import check_output

    d = Path(src)
    check_output(out, force, kind="dir")
    cfg = read_config(d)
    from edgegen.foundation import detect

    family = detect(cfg, tensor_names(d))
    if family is not None:
        return _import_foundation(family, d, cfg, out, max_len=max_len, num_classes=num_classes, force=force)
    mt = cfg.get("model_type")
    remote = cfg.get("auto_map") or cfg.get("trust_remote_code")
    if remote or mt not in ("bert", "esm"):
        auto = cfg.get("auto_map") if isinstance(cfg.get("auto_map"), dict) else {}
        what = (
            f"model_type {mt!r}"
            if isinstance(mt, str) and mt
            else f"architecture {next(iter(auto.values()), 'unknown')!r}"
        )
        why = (
            " (its code is trust_remote_code; edgegen implements models natively and never runs remote code)"
            if remote
            else ""
        )
        raise UsageError(f"unsupported {what}{why}. Supported: {SUPPORTED}", path=d)
    if cfg.get("is_decoder") or cfg.get("add_cross_attention"):
        raise UsageError("decoder / cross-attention checkpoints are not supported", path=d)
    from edgegen import hf_classic

    mc, tok, m, has_head = hf_classic.convert(d, cfg, max_len=max_len, num_classes=num_classes)
    info = {"model_type": cfg.get("model_type"), "architectures": cfg.get("architectures") or []}
    return _build_and_save(d, mc, tok, m, has_head, out, force, info)


HEAD_PARAMS = ("head_dense.weight", "head_dense.bias", "classifier.weight", "classifier.bias")


def _build_and_save(d: Path, mc, tok, m: dict, has_head: bool, out, force: bool, info: dict) -> Path:
    """Load the mapped tensors into a fresh model (a missing head keeps its fresh initialisation), check
    nothing else is missing, and save an edgegen model directory."""
    from edgegen.checkpoint import check_tokenizer_fits, require_finite_weights, save_model
    from edgegen.model import GenomicTransformer

    require_finite_weights(m, d)
    check_tokenizer_fits(tok, mc.vocab_size, d)
    model = GenomicTransformer(mc)
    if not has_head:
        m.update({k: v for k, v in model.state_dict().items() if k in HEAD_PARAMS})
    try:
        missing, _ = model.load_state_dict(m, strict=False)
    except RuntimeError as e:
        raise ModelFileError(f"weights do not match config.json: {shape_mismatch_message(e)}", path=d) from None
    missing = [x for x in missing if not x.startswith(("rope_", "pos_table"))]
    if missing:
        raise ModelFileError(f"could not map {missing[:4]} from the checkpoint", path=d)
    model.eval()
    save_model(model, tok, out, extra={"imported_from": {"path": str(d), **info, "has_head": has_head}}, force=force)
    return Path(out)


def _import_foundation(family: str, d: Path, cfg: dict, out, *, max_len, num_classes, force) -> Path:
    """Nucleotide Transformer v2 or DNABERT-2 (see :mod:`edgegen.foundation`)."""
    from edgegen import foundation

    shapes = shape_fields(cfg, d / "config.json")
    state = Weights(load_state(d), d)
    if family == "nt_v2":
        mc, tok, m, has_head = foundation.nt_v2(
            d, cfg, state, shapes, read_vocab(d), max_len=max_len, num_classes=num_classes
        )
    else:
        mc, tok, m, has_head = foundation.dnabert2(d, cfg, state, shapes, max_len=max_len, num_classes=num_classes)
    state.refuse_unmapped(has_head, rotary=family == "nt_v2")
    return _build_and_save(
        d, mc, tok, m, has_head, out, force, {"family": family, "architectures": cfg.get("architectures") or []}
    )
