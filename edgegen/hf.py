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
import re
from pathlib import Path

from edgegen.errors import ModelFileError, UsageError
from edgegen.hf_files import (
    Weights,
    kmer_size,
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
    "esm: EsmForSequenceClassification, EsmForMaskedLM, EsmModel (Nucleotide-Transformer v1 style, absolute or rotary positions); "
    "Nucleotide Transformer v2 (modeling_esm with a SwiGLU feed-forward); DNABERT-2 (MosaicML BERT with ALiBi)"
)


def _strip_prefix(state: dict, prefixes: tuple[str, ...]) -> dict:
    """Drop the model prefix and normalise legacy LayerNorm names (gamma/beta -> weight/bias)."""
    out = {}
    for k, v in state.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p):]
                break
        if "LayerNorm" in k or "layer_norm" in k:
            k = re.sub(r"\.gamma$", ".weight", k)
            k = re.sub(r"\.beta$", ".bias", k)
        out[k] = v
    return out


def _map_layers(s: dict, n_layers: int, *, ln1: str, ln2: str) -> dict:
    """Encoder-layer weights of BERT/ESM onto native blocks; only the LayerNorm names differ."""
    pairs = {"attn.q": "attention.self.query", "attn.k": "attention.self.key", "attn.v": "attention.self.value",
             "attn.o": "attention.output.dense", "ln1": ln1, "fc1": "intermediate.dense", "fc2": "output.dense", "ln2": ln2}
    out = {}
    for i in range(n_layers):
        for ours, theirs in pairs.items():
            for w in ("weight", "bias"):
                key = f"encoder.layer.{i}.{theirs}.{w}"
                if key not in s:
                    raise ModelFileError(f"checkpoint lacks {key}")
                out[f"blocks.{i}.{ours}.{w}"] = s[key]
    return out


def import_hf(src: str | Path, out: str | Path, *, max_len: int | None = None, num_classes: int | None = None, force: bool = False) -> Path:
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
        raise ModelFileError(f"config.json describes an unsupported model ({loc}: {msg})", path=Path(src) / "config.json") from None
    except ConfigError as e:  # e.g. a vocabulary without the tokenizer's special tokens
        if e.path:
            raise
        raise ModelFileError(str(e), path=Path(src)) from None


def _import_hf(src: str | Path, out: str | Path, *, max_len: int | None, num_classes: int | None, force: bool) -> Path:
    from edgegen.io import check_output
    from edgegen.model import ModelConfig
    from edgegen.tokenizers import Tokenizer

    d = Path(src)
    check_output(out, force, kind="dir")
    cfg = read_config(d)
    from edgegen.foundation import detect

    family = detect(cfg, tensor_names(d))
    if family is not None:
        return _import_foundation(family, d, cfg, out, max_len=max_len, num_classes=num_classes, force=force)
    mt = cfg.get("model_type")
    archs = cfg.get("architectures") or []
    remote = cfg.get("auto_map") or cfg.get("trust_remote_code")
    if remote or mt not in ("bert", "esm"):
        auto = cfg.get("auto_map") if isinstance(cfg.get("auto_map"), dict) else {}
        what = f"model_type {mt!r}" if isinstance(mt, str) and mt else f"architecture {next(iter(auto.values()), 'unknown')!r}"
        why = " (its code is trust_remote_code; edgegen implements models natively and never runs remote code)" if remote else ""
        raise UsageError(f"unsupported {what}{why}. Supported: {SUPPORTED}", path=d)
    if cfg.get("is_decoder") or cfg.get("add_cross_attention"):
        raise UsageError("decoder / cross-attention checkpoints are not supported", path=d)
    act = cfg.get("hidden_act", "gelu")
    if act not in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
        raise UsageError(f"activation {act!r} is not supported (gelu only)", path=d)
    vocab = read_vocab(d)
    k = kmer_size(vocab)
    H, L, nh, ffn, n_vocab = shape_fields(cfg, d / "config.json")
    state = Weights(load_state(d), d)
    has_head = any(a.endswith("ForSequenceClassification") for a in archs) and any(k_.startswith("classifier.") for k_ in state)
    n_cls = cfg.get("num_labels") or len(cfg.get("id2label", {})) or 2
    if not has_head:
        n_cls = num_classes or 2
        log.warning("%s has no classification head (masked-LM/base model): a new %d-class head is initialised; "
                    "fine-tune it with 'edgegen train --init'", d, n_cls)
    pad_id = cfg.get("pad_token_id", 0) or 0
    max_pos = cfg.get("max_position_embeddings", 512)
    common = dict(vocab_size=n_vocab, num_classes=n_cls, d_model=H, n_layers=L, n_heads=nh, ffn_dim=ffn,
                  dropout=0.0, pooling="cls", layer_norm_eps=cfg.get("layer_norm_eps", 1e-12), pad_id=pad_id,
                  activation="gelu" if act == "gelu" else "gelu_tanh", head_hidden=True)
    if mt == "bert":
        if cfg.get("position_embedding_type", "absolute") != "absolute":
            raise UsageError("only absolute position embeddings are supported for BERT", path=d)
        tok = Tokenizer(kind="kmer", k=k, max_len=max_len or (max_pos - 2 + k - 1), add_cls=True, add_sep=True,
                        vocab=vocab, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
        if tok.seq_len > max_pos:
            raise UsageError(f"max_len {tok.max_len} gives {tok.seq_len} tokens, more than the model's {max_pos} positions")
        mc = ModelConfig(**common, max_positions=max_pos, positions="learned", norm="post", embed_norm=True, final_norm=False)
        s = Weights(_strip_prefix(state, ("bert.",)), d)
        m = {"embed.weight": s["embeddings.word_embeddings.weight"],
             # token type 0 is constant for single sequences: fold it into the positions
             "pos": (s["embeddings.position_embeddings.weight"] + s["embeddings.token_type_embeddings.weight"][0])[None],
             "embed_ln.weight": s["embeddings.LayerNorm.weight"], "embed_ln.bias": s["embeddings.LayerNorm.bias"]}
        m.update(_map_layers(s, L, ln1="attention.output.LayerNorm", ln2="output.LayerNorm"))  # post-LN
        pool = ("pooler.dense.weight", "pooler.dense.bias")
        head_src = {"head_dense.weight": pool[0], "head_dense.bias": pool[1], "classifier.weight": "classifier.weight", "classifier.bias": "classifier.bias"}
    else:  # esm
        pet = cfg.get("position_embedding_type", "absolute")
        if pet not in ("absolute", "rotary"):
            raise UsageError(f"position_embedding_type {pet!r} is not supported", path=d)
        if cfg.get("emb_layer_norm_before"):
            raise UsageError("emb_layer_norm_before=True is not supported yet", path=d)
        specials = dict(pad_token="<pad>", unk_token="<unk>", cls_token="<cls>", sep_token="<eos>", mask_token="<mask>")
        usable = max_pos - (pad_id + 1) if pet == "absolute" else 100_000
        default_len = min(usable - 1, 1000) * k
        tok = Tokenizer(kind="kmer_nonoverlap", k=k, max_len=max_len or default_len, add_cls=True, add_sep=False, vocab=vocab, **specials)
        if pet == "absolute" and tok.seq_len > usable:
            raise UsageError(f"max_len {tok.max_len} gives {tok.seq_len} tokens, more than the model's {usable} positions")
        scale = 1.0 - 0.15 * 0.8 if cfg.get("token_dropout") else 1.0  # ESM's token-dropout rescaling, no masked tokens
        if pet == "absolute":
            mc = ModelConfig(**common, max_positions=max_pos - (pad_id + 1), positions="learned", position_offset=0, norm="pre",
                             embed_norm=False, final_norm=True, emb_scale=scale)
        else:
            mc = ModelConfig(**common, max_positions=tok.seq_len, positions="rotary", norm="pre", embed_norm=False, final_norm=True,
                             emb_scale=scale)
        s = Weights(_strip_prefix(state, ("esm.",)), d)
        m = {"embed.weight": s["embeddings.word_embeddings.weight"],
             "final_ln.weight": s["encoder.emb_layer_norm_after.weight"], "final_ln.bias": s["encoder.emb_layer_norm_after.bias"]}
        if pet == "absolute":
            # ESM numbers positions from padding_idx + 1: drop the rows before it
            m["pos"] = s["embeddings.position_embeddings.weight"][pad_id + 1:][None]
        m.update(_map_layers(s, L, ln1="attention.LayerNorm", ln2="LayerNorm"))  # pre-LN
        head_src = {"head_dense.weight": "classifier.dense.weight", "head_dense.bias": "classifier.dense.bias",
                    "classifier.weight": "classifier.out_proj.weight", "classifier.bias": "classifier.out_proj.bias"}
    if has_head:
        for ours, theirs in head_src.items():
            m[ours] = s[theirs]
    s.refuse_unmapped(has_head, rotary=mt == "esm" and cfg.get("position_embedding_type", "absolute") == "rotary")
    return _build_and_save(d, mc, tok, m, has_head, out, force, {"model_type": mt, "architectures": archs})


HEAD_PARAMS = ("head_dense.weight", "head_dense.bias", "classifier.weight", "classifier.bias")


def _build_and_save(d: Path, mc, tok, m: dict, has_head: bool, out, force: bool, info: dict) -> Path:
    """Load the mapped tensors into a fresh model (a missing head keeps its fresh initialisation), check
    nothing else is missing, and save an edgegen model directory."""
    from edgegen.checkpoint import save_model
    from edgegen.model import GenomicTransformer

    from edgegen.checkpoint import check_tokenizer_fits, require_finite_weights

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
        mc, tok, m, has_head = foundation.nt_v2(d, cfg, state, shapes, read_vocab(d), max_len=max_len, num_classes=num_classes)
    else:
        mc, tok, m, has_head = foundation.dnabert2(d, cfg, state, shapes, max_len=max_len, num_classes=num_classes)
    state.refuse_unmapped(has_head, rotary=family == "nt_v2")
    return _build_and_save(d, mc, tok, m, has_head, out, force, {"family": family, "architectures": cfg.get("architectures") or []})
