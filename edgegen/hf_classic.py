"""Hugging Face checkpoints whose architecture ``transformers`` itself implements, mapped onto the native model:
``bert`` (DNABERT-1: post-LN, learned absolute positions, overlapping k-mer ``vocab.txt``) and ``esm`` (Nucleotide
Transformer v1: pre-LN, absolute or rotary positions, non-overlapping k-mers). Every tensor of the checkpoint is mapped
or ignored by name (:meth:`edgegen.hf_files.Weights.refuse_unmapped`). NT-v2 and DNABERT-2 are
:mod:`edgegen.foundation`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from edgegen.errors import ModelFileError, UsageError
from edgegen.hf_files import Weights, kmer_size, load_state, read_vocab, shape_fields

log = logging.getLogger("edgegen")


def _strip_prefix(state: dict, prefixes: tuple[str, ...]) -> dict:
    """Drop the model prefix and normalise legacy LayerNorm names (gamma/beta -> weight/bias)."""
    out = {}
    for k, v in state.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p) :]
                break
        if "LayerNorm" in k or "layer_norm" in k:
            k = re.sub(r"\.gamma$", ".weight", k)
            k = re.sub(r"\.beta$", ".bias", k)
        out[k] = v
    return out


def _map_layers(s: dict, n_layers: int, *, ln1: str, ln2: str) -> dict:
    """Encoder-layer weights of BERT/ESM onto native blocks; only the LayerNorm names differ."""
    pairs = {
        "attn.q": "attention.self.query",
        "attn.k": "attention.self.key",
        "attn.v": "attention.self.value",
        "attn.o": "attention.output.dense",
        "ln1": ln1,
        "fc1": "intermediate.dense",
        "fc2": "output.dense",
        "ln2": ln2,
    }
    out = {}
    for i in range(n_layers):
        for ours, theirs in pairs.items():
            for w in ("weight", "bias"):
                key = f"encoder.layer.{i}.{theirs}.{w}"
                if key not in s:
                    raise ModelFileError(f"checkpoint lacks {key}")
                out[f"blocks.{i}.{ours}.{w}"] = s[key]
    return out


def convert(d: Path, cfg: dict, *, max_len: int | None, num_classes: int | None):
    """(ModelConfig, Tokenizer, mapped state dict, has_head) for a ``bert`` or ``esm`` checkpoint folder ``d``."""
    mt = cfg.get("model_type")
    archs = cfg.get("architectures") or []
    act = cfg.get("hidden_act", "gelu")
    if act not in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
        raise UsageError(f"activation {act!r} is not supported (gelu only)", path=d)
    vocab = read_vocab(d)
    k = kmer_size(vocab)
    H, L, nh, ffn, n_vocab = shape_fields(cfg, d / "config.json")
    state = Weights(load_state(d), d)
    has_head = any(a.endswith("ForSequenceClassification") for a in archs) and any(
        k_.startswith("classifier.") for k_ in state
    )
    n_cls = cfg.get("num_labels") or len(cfg.get("id2label", {})) or 2
    if not has_head:
        n_cls = num_classes or 2
        log.warning(
            "%s has no classification head (masked-LM/base model): a new %d-class head is initialised; "
            "fine-tune it with 'edgegen train --init'",
            d,
            n_cls,
        )
    pad_id = cfg.get("pad_token_id", 0) or 0
    common = dict(
        vocab_size=n_vocab,
        num_classes=n_cls,
        d_model=H,
        n_layers=L,
        n_heads=nh,
        ffn_dim=ffn,
        dropout=0.0,
        pooling="cls",
        layer_norm_eps=cfg.get("layer_norm_eps", 1e-12),
        pad_id=pad_id,
        activation="gelu" if act == "gelu" else "gelu_tanh",
        head_hidden=True,
    )
    mapping = _bert if mt == "bert" else _esm
    mc, tok, s, m, head_src = mapping(d, cfg, state, vocab, k, L, common, max_len)
    if has_head:
        for ours, theirs in head_src.items():
            m[ours] = s[theirs]
    s.refuse_unmapped(has_head, rotary=mt == "esm" and cfg.get("position_embedding_type", "absolute") == "rotary")
    return mc, tok, m, has_head


def _bert(d: Path, cfg: dict, state, vocab: dict, k: int, L: int, common: dict, max_len: int | None):
    """BERT (DNABERT-1): (ModelConfig, Tokenizer, the prefix-free weights, the mapped state dict, head sources)."""
    from edgegen.dna_tokenizer import Tokenizer
    from edgegen.model import ModelConfig

    max_pos = cfg.get("max_position_embeddings", 512)
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise UsageError("only absolute position embeddings are supported for BERT", path=d)
    tok = Tokenizer(
        kind="kmer",
        k=k,
        max_len=max_len or (max_pos - 2 + k - 1),
        add_cls=True,
        add_sep=True,
        vocab=vocab,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    if tok.seq_len > max_pos:
        raise UsageError(f"max_len {tok.max_len} gives {tok.seq_len} tokens, more than the model's {max_pos} positions")
    mc = ModelConfig(
        **common, max_positions=max_pos, positions="learned", norm="post", embed_norm=True, final_norm=False
    )
    s = Weights(_strip_prefix(state, ("bert.",)), d)
    m = {
        "embed.weight": s["embeddings.word_embeddings.weight"],
        # token type 0 is constant for single sequences: fold it into the positions
        "pos": (s["embeddings.position_embeddings.weight"] + s["embeddings.token_type_embeddings.weight"][0])[None],
        "embed_ln.weight": s["embeddings.LayerNorm.weight"],
        "embed_ln.bias": s["embeddings.LayerNorm.bias"],
    }
    m.update(_map_layers(s, L, ln1="attention.output.LayerNorm", ln2="output.LayerNorm"))  # post-LN
    pool = ("pooler.dense.weight", "pooler.dense.bias")
    head_src = {
        "head_dense.weight": pool[0],
        "head_dense.bias": pool[1],
        "classifier.weight": "classifier.weight",
        "classifier.bias": "classifier.bias",
    }
    return mc, tok, s, m, head_src


def _esm(d: Path, cfg: dict, state, vocab: dict, k: int, L: int, common: dict, max_len: int | None):
    """ESM (Nucleotide Transformer v1): the same as :func:`_bert` returns."""
    from edgegen.dna_tokenizer import Tokenizer
    from edgegen.model import ModelConfig

    max_pos = cfg.get("max_position_embeddings", 512)
    pad_id = cfg.get("pad_token_id", 0) or 0
    pet = cfg.get("position_embedding_type", "absolute")
    if pet not in ("absolute", "rotary"):
        raise UsageError(f"position_embedding_type {pet!r} is not supported", path=d)
    if cfg.get("emb_layer_norm_before"):
        raise UsageError("emb_layer_norm_before=True is not supported yet", path=d)
    specials = dict(pad_token="<pad>", unk_token="<unk>", cls_token="<cls>", sep_token="<eos>", mask_token="<mask>")
    usable = max_pos - (pad_id + 1) if pet == "absolute" else 100_000
    default_len = min(usable - 1, 1000) * k
    tok = Tokenizer(
        kind="kmer_nonoverlap",
        k=k,
        max_len=max_len or default_len,
        add_cls=True,
        add_sep=False,
        vocab=vocab,
        **specials,
    )
    if pet == "absolute" and tok.seq_len > usable:
        raise UsageError(f"max_len {tok.max_len} gives {tok.seq_len} tokens, more than the model's {usable} positions")
    scale = 1.0 - 0.15 * 0.8 if cfg.get("token_dropout") else 1.0  # ESM's token-dropout rescaling, no masked tokens
    if pet == "absolute":
        mc = ModelConfig(
            **common,
            max_positions=max_pos - (pad_id + 1),
            positions="learned",
            position_offset=0,
            norm="pre",
            embed_norm=False,
            final_norm=True,
            emb_scale=scale,
        )
    else:
        mc = ModelConfig(
            **common,
            max_positions=tok.seq_len,
            positions="rotary",
            norm="pre",
            embed_norm=False,
            final_norm=True,
            emb_scale=scale,
        )
    s = Weights(_strip_prefix(state, ("esm.",)), d)
    m = {
        "embed.weight": s["embeddings.word_embeddings.weight"],
        "final_ln.weight": s["encoder.emb_layer_norm_after.weight"],
        "final_ln.bias": s["encoder.emb_layer_norm_after.bias"],
    }
    if pet == "absolute":
        # ESM numbers positions from padding_idx + 1: drop the rows before it
        m["pos"] = s["embeddings.position_embeddings.weight"][pad_id + 1 :][None]
    m.update(_map_layers(s, L, ln1="attention.LayerNorm", ln2="LayerNorm"))  # pre-LN
    head_src = {
        "head_dense.weight": "classifier.dense.weight",
        "head_dense.bias": "classifier.dense.bias",
        "classifier.weight": "classifier.out_proj.weight",
        "classifier.bias": "classifier.out_proj.bias",
    }
    return mc, tok, s, m, head_src
