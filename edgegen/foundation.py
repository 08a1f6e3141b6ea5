"""Genomic foundation models whose published code is ``trust_remote_code``, implemented natively.

- **Nucleotide Transformer v2** (InstaDeepAI ``modeling_esm.py``): ESM with rotary positions, pre-LN, a SwiGLU
  feed-forward (``intermediate.dense`` holds the gate then the up projection; biases only with
  ``add_bias_fnn``), the final ``emb_layer_norm_after``; 6-mers with single bases around ``N`` and at the end,
  ``<cls>`` first and no ``<eos>``. Recognised by ``auto_map`` to ``modeling_esm`` plus ``add_bias_fnn`` or a
  feed-forward twice ``intermediate_size`` wide.
- **DNABERT-2** (MosaicML BERT ``bert_layers.py``): ALiBi (no position table), fused ``Wqkv``, post-LN, a GEGLU
  feed-forward (``gated_layers``: gate then up, no bias) and a pooler; BPE from ``tokenizer.json`` through the
  ``tokenizers`` library, ``[CLS] ... [SEP]``. Recognised by ``alibi_starting_size`` or ``Wqkv`` weights.

The published code never runs: configs and weights are read and mapped exactly onto
:class:`edgegen.model.GenomicTransformer` (``inv_freq`` buffers, ``contact_head`` and LM heads are ignored).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from edgegen.errors import ModelFileError, UsageError

log = logging.getLogger("edgegen")

FAMILIES = ("nt_v2", "dnabert2")


def detect(cfg: dict, state_names: list[str]) -> str | None:
    """``nt_v2``, ``dnabert2`` or None, from config.json and the checkpoint's tensor names."""
    auto = json.dumps(cfg.get("auto_map") or {})
    if "alibi_starting_size" in cfg or any(".attention.self.Wqkv." in n for n in state_names):
        return "dnabert2"
    gated = any(n.endswith("intermediate.dense.weight") for n in state_names) and "add_bias_fnn" in cfg
    if "modeling_esm" in auto and (gated or "add_bias_fnn" in cfg):
        return "nt_v2"
    return None


def _head_and_classes(cfg: dict, s, head_keys: tuple[str, ...], num_classes: int | None, d: Path) -> tuple[bool, int]:
    archs = cfg.get("architectures") or []
    has_head = any(a.endswith("ForSequenceClassification") for a in archs) and all(k in s for k in head_keys)
    if has_head:
        return True, cfg.get("num_labels") or len(cfg.get("id2label") or {}) or 2
    n = num_classes or 2
    log.warning(
        "%s has no classification head (masked-LM/base model): a new %d-class head is initialised; "
        "fine-tune it with 'edgegen train --init'",
        d,
        n,
    )
    return False, n


def _split_rows(w, parts: int, d: Path, name: str):
    if w.shape[0] % parts:
        raise ModelFileError(f"{name} has {w.shape[0]} rows, not a multiple of {parts}", path=d)
    return w.chunk(parts, 0)


def nt_v2(d: Path, cfg: dict, s, shapes: tuple, vocab: dict[str, int], *, max_len: int | None, num_classes: int | None):
    """(ModelConfig, Tokenizer, state dict, has_head) for a Nucleotide Transformer v2 checkpoint."""
    from edgegen.dna_tokenizer import Tokenizer
    from edgegen.hf_files import kmer_size as _kmer_size
    from edgegen.model import ModelConfig

    H, L, nh, F, n_vocab = shapes
    if cfg.get("position_embedding_type", "rotary") != "rotary":
        raise UsageError(
            f"NT-v2 with position_embedding_type {cfg.get('position_embedding_type')!r} is not supported (rotary)",
            path=d,
        )
    bias = bool(cfg.get("add_bias_fnn", True))
    k = _kmer_size(vocab)
    specials = dict(pad_token="<pad>", unk_token="<unk>", cls_token="<cls>", sep_token="<eos>", mask_token="<mask>")
    max_tokens = min(int(cfg.get("max_position_embeddings", 2050)) - 2, 1000)
    tok = Tokenizer(
        kind="kmer_nonoverlap",
        k=k,
        max_len=max_len or max_tokens * k,
        add_cls=True,
        add_sep=False,
        vocab=vocab,
        n_singles=True,
        **specials,
    )
    has_head, n_cls = _head_and_classes(
        cfg, s, ("classifier.dense.weight", "classifier.out_proj.weight"), num_classes, d
    )
    scale = 1.0 - 0.15 * 0.8 if cfg.get("token_dropout") else 1.0  # ESM's token-dropout rescaling, no masked tokens
    mc = ModelConfig(
        vocab_size=n_vocab,
        max_positions=tok.seq_len,
        num_classes=n_cls,
        d_model=H,
        n_layers=L,
        n_heads=nh,
        ffn_dim=F,
        dropout=0.0,
        positions="rotary",
        norm="pre",
        embed_norm=bool(cfg.get("emb_layer_norm_before")),
        final_norm=True,
        emb_scale=scale,
        head_hidden=True,
        activation="silu",
        ffn_gated=True,
        ffn_in_bias=bias,
        ffn_out_bias=bias,
        layer_norm_eps=cfg.get("layer_norm_eps", 1e-12),
        pad_id=tok.pad_id,
    )
    return mc, tok, _nt_v2_weights(s, mc, bias, has_head, d), has_head


def _nt_v2_weights(s, mc, bias: bool, has_head: bool, d: Path) -> dict:
    """NT-v2's (ESM-style) tensors under edgegen's names; the gated FFN's fused input matrix split in two."""
    p = "esm." if any(n.startswith("esm.") for n in s) else ""
    m = {
        "embed.weight": s[f"{p}embeddings.word_embeddings.weight"],
        "final_ln.weight": s[f"{p}encoder.emb_layer_norm_after.weight"],
        "final_ln.bias": s[f"{p}encoder.emb_layer_norm_after.bias"],
    }
    if mc.embed_norm:
        m["embed_ln.weight"], m["embed_ln.bias"] = (
            s[f"{p}embeddings.layer_norm.weight"],
            s[f"{p}embeddings.layer_norm.bias"],
        )
    for i in range(mc.n_layers):
        e = f"{p}encoder.layer.{i}."
        for ours, theirs in (
            ("attn.q", "attention.self.query"),
            ("attn.k", "attention.self.key"),
            ("attn.v", "attention.self.value"),
            ("attn.o", "attention.output.dense"),
            ("ln1", "attention.LayerNorm"),
            ("ln2", "LayerNorm"),
        ):
            m[f"blocks.{i}.{ours}.weight"], m[f"blocks.{i}.{ours}.bias"] = (
                s[e + theirs + ".weight"],
                s[e + theirs + ".bias"],
            )
        gate, up = _split_rows(s[e + "intermediate.dense.weight"], 2, d, e + "intermediate.dense.weight")
        m[f"blocks.{i}.fc1.weight"], m[f"blocks.{i}.fc_up.weight"] = gate, up
        m[f"blocks.{i}.fc2.weight"] = s[e + "output.dense.weight"]
        if bias:
            gb, ub = _split_rows(s[e + "intermediate.dense.bias"], 2, d, e + "intermediate.dense.bias")
            m[f"blocks.{i}.fc1.bias"], m[f"blocks.{i}.fc_up.bias"] = gb, ub
            m[f"blocks.{i}.fc2.bias"] = s[e + "output.dense.bias"]
    if has_head:
        m.update(
            {
                "head_dense.weight": s["classifier.dense.weight"],
                "head_dense.bias": s["classifier.dense.bias"],
                "classifier.weight": s["classifier.out_proj.weight"],
                "classifier.bias": s["classifier.out_proj.bias"],
            }
        )
    return m


def dnabert2(d: Path, cfg: dict, s, shapes: tuple, *, max_len: int | None, num_classes: int | None):
    """(ModelConfig, Tokenizer, state dict, has_head) for a DNABERT-2 checkpoint."""
    import torch

    from edgegen.dna_tokenizer import Tokenizer
    from edgegen.model import ModelConfig, alibi_slopes

    H, L, nh, F, n_vocab = shapes
    from edgegen.hf_files import read_json_object

    bpe = read_json_object(d, "tokenizer.json", "DNABERT-2's BPE vocabulary is needed to tokenize DNA")
    max_tokens = min(int(cfg.get("alibi_starting_size", 512)), 512)
    tok = Tokenizer(
        kind="bpe",
        max_len=max_len or 3 * (max_tokens - 2),
        add_cls=True,
        add_sep=True,
        bpe=bpe,
        max_tokens=max_tokens if max_len is None else None,
    )
    act = cfg.get("hidden_act", "gelu")
    if act not in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
        raise UsageError(f"activation {act!r} is not supported (gelu only)", path=d)
    has_head, n_cls = _head_and_classes(cfg, s, ("classifier.weight",), num_classes, d)
    mc = ModelConfig(
        vocab_size=n_vocab,
        max_positions=tok.seq_len,
        num_classes=n_cls,
        d_model=H,
        n_layers=L,
        n_heads=nh,
        ffn_dim=F,
        dropout=0.0,
        positions="alibi",
        norm="post",
        embed_norm=True,
        final_norm=False,
        head_hidden=True,
        activation="gelu" if act == "gelu" else "gelu_tanh",
        ffn_gated=True,
        ffn_in_bias=False,
        ffn_out_bias=True,
        layer_norm_eps=cfg.get("layer_norm_eps", 1e-12),
        pad_id=tok.pad_id,
    )
    p = "bert." if any(n.startswith("bert.") for n in s) else ""
    tt = s.get(f"{p}embeddings.token_type_embeddings.weight")
    word = s[f"{p}embeddings.word_embeddings.weight"]
    m = {
        "embed.weight": word + (tt[0] if tt is not None else 0),  # token type 0 is constant: folded into the table
        "embed_ln.weight": s[f"{p}embeddings.LayerNorm.weight"],
        "embed_ln.bias": s[f"{p}embeddings.LayerNorm.bias"],
    }
    slopes = torch.tensor(alibi_slopes(nh))
    for i in range(L):
        e = f"{p}encoder.layer.{i}."
        for w in ("weight", "bias"):
            q, k_, v = _split_rows(s[e + f"attention.self.Wqkv.{w}"], 3, d, e + "attention.self.Wqkv")
            m[f"blocks.{i}.attn.q.{w}"], m[f"blocks.{i}.attn.k.{w}"], m[f"blocks.{i}.attn.v.{w}"] = q, k_, v
            m[f"blocks.{i}.attn.o.{w}"] = s[e + f"attention.output.dense.{w}"]
            m[f"blocks.{i}.ln1.{w}"] = s[e + f"attention.output.LayerNorm.{w}"]
            m[f"blocks.{i}.ln2.{w}"] = s[e + f"mlp.layernorm.{w}"]
            m[f"blocks.{i}.fc2.{w}"] = s[e + f"mlp.wo.{w}"]
        gate, up = _split_rows(s[e + "mlp.gated_layers.weight"], 2, d, e + "mlp.gated_layers.weight")
        m[f"blocks.{i}.fc1.weight"], m[f"blocks.{i}.fc_up.weight"] = gate, up
        m[f"blocks.{i}.attn.alibi_slopes"] = slopes.clone()
    if has_head:
        if f"{p}pooler.dense.weight" not in s:
            raise ModelFileError(f"checkpoint lacks {p}pooler.dense.weight", path=d)
        m.update(
            {
                "head_dense.weight": s[f"{p}pooler.dense.weight"],
                "head_dense.bias": s[f"{p}pooler.dense.bias"],
                "classifier.weight": s["classifier.weight"],
                "classifier.bias": s["classifier.bias"],
            }
        )
    return mc, tok, m, has_head
