"""The native model: ``GenomicTransformer`` and its config.

Attention uses separate q/k/v/out ``nn.Linear`` layers and an explicit per-layer
head count so whole heads can be pruned (torch-pruning) and exported cleanly.
The config describes every shape; after pruning it is updated, and the plain
loader rebuilds the model from it.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn


class ModelConfig(BaseModel):
    """Every shape of a :class:`GenomicTransformer`.

    ``layer_heads`` / ``layer_ffn`` hold per-layer values after pruning; when
    omitted every layer has ``n_heads`` heads and ``ffn_dim`` FFN channels.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    vocab_size: int = Field(gt=0)
    max_positions: int = Field(gt=0, description="token positions, specials included")
    num_classes: int = Field(ge=2)
    d_model: int = Field(128, gt=0)
    n_layers: int = Field(4, ge=0)
    n_heads: int = Field(4, gt=0)
    head_dim: int | None = None
    ffn_dim: int = Field(512, gt=0)
    layer_heads: list[int] | None = None
    layer_ffn: list[int] | None = None
    dropout: float = Field(0.1, ge=0, lt=1)
    positions: Literal["learned", "sinusoidal", "rotary", "alibi", "none"] = Field("learned", description="alibi: no position "
        "table; each head adds -slope * |i - j| to its attention scores (DNABERT-2), its slope stored per layer and head "
        "in the weights (buffer blocks.N.attn.alibi_slopes), so pruned heads keep their own")
    position_offset: int = 0
    pooling: Literal["cls", "mean"] = "cls"
    norm: Literal["pre", "post"] = "pre"
    embed_norm: bool = False
    final_norm: bool = True
    emb_scale: float = 1.0
    head_hidden: bool = False
    activation: Literal["gelu", "gelu_tanh", "silu"] = "gelu"
    ffn_gated: bool = Field(False, description="gated feed-forward: fc2(act(fc1(x)) * fc_up(x)) (SwiGLU with silu, NT-v2; "
                            "GEGLU with gelu, DNABERT-2); fc1 and fc_up are pruned as pairs")
    ffn_in_bias: bool = Field(True, description="biases on fc1 (and fc_up)")
    ffn_out_bias: bool = Field(True, description="bias on fc2")
    layer_norm_eps: float = 1e-5
    pad_id: int = 0
    rotary_base: float = 10000.0
    merge_tokens: int = Field(1, ge=1, le=16, description="after embedding, every `merge_tokens` adjacent token vectors "
                              "(position 0, e.g. CLS, kept alone) are merged into one (TokenMerge) before positions are "
                              "added: the encoder runs on that many times fewer rows")

    @model_validator(mode="after")
    def _check(self) -> "ModelConfig":
        if self.head_dim is None:
            if self.d_model % self.n_heads:
                raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
            object.__setattr__(self, "head_dim", self.d_model // self.n_heads)
        for name in ("layer_heads", "layer_ffn"):
            v = getattr(self, name)
            if v is not None:
                if len(v) != self.n_layers:
                    raise ValueError(f"{name} has {len(v)} entries for {self.n_layers} layers")
                if any(x < 1 for x in v):
                    raise ValueError(f"{name} entries must be >= 1, got {v}")
        if self.positions == "rotary" and self.head_dim % 2:
            raise ValueError("rotary positions need an even head_dim")
        return self

    def heads(self, i: int) -> int:
        return self.layer_heads[i] if self.layer_heads is not None else self.n_heads

    def ffn(self, i: int) -> int:
        return self.layer_ffn[i] if self.layer_ffn is not None else self.ffn_dim

    def rows(self, seq_len: int) -> int:
        """Encoder rows for ``seq_len`` tokens: ``1 + ceil((seq_len - 1) / merge_tokens)`` when tokens are merged."""
        s = self.merge_tokens
        return seq_len if s == 1 else 1 + -(-(seq_len - 1) // s)

    def macs(self, seq_len: int | None = None, cls_only_last: bool = False) -> int:
        """Multiply-accumulates for one sequence of ``seq_len`` tokens (default: max_positions).

        ``cls_only_last``: the last layer computes only the CLS row (see :class:`export_mode`)."""
        d, dh = self.d_model, self.head_dim
        t = self.rows(seq_len or self.max_positions)
        total = (t - 1) * self.merge_tokens * d if self.merge_tokens > 1 else 0
        for i in range(self.n_layers):
            h, f = self.heads(i), self.ffn(i)
            tq = 1 if cls_only_last and self.pooling == "cls" and i == self.n_layers - 1 else t  # query rows
            total += 2 * t * d * h * dh + 2 * tq * d * h * dh  # k, v on every row; q, out on the query rows
            total += 2 * h * tq * t * dh  # scores and context
            total += (3 if self.ffn_gated else 2) * tq * d * f  # FFN (a gated one has two input projections)
        total += (d * d if self.head_hidden else 0) + d * self.num_classes
        return total


def _sinusoidal(n: int, d: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : d // 2]
    return pe


def alibi_slopes(n_heads: int) -> list[float]:
    """ALiBi's per-head slopes (Press et al.; MosaicML BERT / DNABERT-2): a geometric series from
    2^(-8/n) for a power-of-two head count; otherwise the nearest lower power of two's series followed
    by every other slope of the next power of two's."""

    def power_of_2(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        return power_of_2(n_heads)
    low = 2 ** math.floor(math.log2(n_heads))
    return power_of_2(low) + alibi_slopes(2 * low)[0::2][: n_heads - low]


def _rotary_tables(n: int, dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    freqs = torch.outer(torch.arange(n, dtype=torch.float32), inv)
    emb = torch.cat([freqs, freqs], dim=-1)  # (T, Dh), rotate-half layout (ESM / NT-v2)
    return emb.cos(), emb.sin()


def _rotate_half(x: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """[x1, x2] -> [-x2, x1], as one roll (chunk/cat would confuse torch-pruning's dependency graph)."""
    return torch.roll(x, x.shape[-1] // 2, dims=-1) * sign


class _OrtAttention(torch.autograd.Function):
    """softmax(QK^T / sqrt(dh) + padding) V on (B, S, H*dh) projections, exported by torch.onnx as ONNX Runtime's
    fused ``com.microsoft.MultiHeadAttention`` (one kernel instead of reshapes, transposes, two matmuls, the mask
    add and the softmax). ``keep``: (B, T) int32, 1 = a real token. Only the exporter runs ``forward``."""

    @staticmethod
    def forward(ctx, q, k, v, bias, keep, heads: int):
        b, s, inner = q.shape
        t, dh = k.shape[1], inner // heads
        q, k, v = q + bias[:inner], k + bias[inner : 2 * inner], v + bias[2 * inner :]
        qh = q.view(b, s, heads, dh).transpose(1, 2)
        kh = k.view(b, t, heads, dh).transpose(1, 2)
        vh = v.view(b, t, heads, dh).transpose(1, 2)
        scores = (qh * dh**-0.5) @ kh.transpose(-1, -2)
        scores = scores.masked_fill(keep[:, None, None, :] == 0, -1e9)
        return (scores.softmax(-1) @ vh).transpose(1, 2).reshape(b, s, inner)

    @staticmethod
    def symbolic(g, q, k, v, bias, keep, heads: int):
        out = g.op("com.microsoft::MultiHeadAttention", q, k, v, bias, keep, num_heads_i=heads)
        out.setType(q.type())  # (B, S, H*dh) float, as the query
        return out


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, head_dim: int, dropout: float, alibi: bool = False):
        super().__init__()
        inner = n_heads * head_dim
        self.num_heads = n_heads
        self.head_dim = head_dim
        self.q = nn.Linear(d_model, inner)
        self.k = nn.Linear(d_model, inner)
        self.v = nn.Linear(d_model, inner)
        self.o = nn.Linear(inner, d_model)
        if alibi:  # saved with the weights: a pruned layer keeps its surviving heads' slopes
            self.register_buffer("alibi_slopes", torch.tensor(alibi_slopes(n_heads)))
        else:
            self.alibi_slopes = None
        # Fused scaled_dot_product_attention is used when attention maps are not needed;
        # exporters switch it off (see edgegen.model.export_mode).
        self.fused = True
        self.ort_fused = False  # export_mode(ort_attention=True)

    def forward(self, x, keep, rope=None, need_attn: bool = False, first_only: bool = False, dist=None):
        """``first_only``: queries (and the output) for the first row only; keys and values for all.
        ``dist``: (B or 1, T, T) token distances |i - j|, for ALiBi."""
        b, t, _ = x.shape
        xq = x[:, :1] if first_only else x
        tq = xq.shape[1]
        heads = self.q.out_features // self.head_dim
        if self.alibi_slopes is not None:  # an exact additive bias: -slope * |i - j| per head
            bias = -self.alibi_slopes.to(x.dtype)[None, :, None, None] * dist[:, None, :tq]  # (B|1, H, Tq, T)
            keep = bias + (keep if keep.dtype.is_floating_point else (~keep).to(x.dtype) * -1e9)  # (B, H, Tq, T)
        if self.ort_fused and rope is None and not need_attn and heads > 0 and self.alibi_slopes is None:
            real = (keep[:, 0, 0] == 0) if keep.dtype.is_floating_point else keep[:, 0, 0]  # (B, T)
            bias = torch.zeros(3 * self.q.out_features)  # q/k/v keep their own biases (and layer names)
            ctx = _OrtAttention.apply(self.q(xq), self.k(x), self.v(x), bias, real.to(torch.int32), heads)
            return self.o(ctx), None
        # Head count comes from the tensor (view(b, t, -1, dh)) so a pruned layer needs no patching.
        q = self.q(xq).view(b, tq, -1, self.head_dim).transpose(1, 2)  # (B, H, Tq, Dh)
        k = self.k(x).view(b, t, -1, self.head_dim).transpose(1, 2)  # (B, H, T, Dh)
        v = self.v(x).view(b, t, -1, self.head_dim).transpose(1, 2)
        if rope is not None:
            cos, sin, sign = rope
            q = q * cos[:tq] + _rotate_half(q, sign) * sin[:tq]
            k = k * cos + _rotate_half(k, sign) * sin
        if self.fused and not need_attn:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (B, H, Tq, Dh)
            return self.o(ctx.transpose(1, 2).reshape(b, tq, -1)), None
        q = q * (self.head_dim**-0.5)
        scores = q @ k.transpose(-1, -2)  # (B, H, T, T)
        # keep: a bool mask, or (export_mode) an additive float bias: an Add is cheaper than a Where over (B, H, T, T)
        scores = scores + keep if keep.dtype.is_floating_point else scores.masked_fill(~keep, -1e9)
        attn = scores.softmax(-1)
        ctx = attn @ v  # (B, H, T, Dh); no dropout on attention maps (it dominated CPU training time)
        out = self.o(ctx.transpose(1, 2).reshape(b, tq, -1))
        return out, (attn if need_attn else None)


class TokenMerge(nn.Module):
    """``s`` adjacent token vectors -> one: a learned per-slot, per-channel weighting summed over the
    slots, plus a bias (a depthwise convolution with kernel = stride = s). s*d + d parameters, where a
    linear layer over the concatenation would cost s*d*d (on a 2 x d64 student, 8 KB of a 110 KB int8
    file); the embeddings can still put each slot's information in its own channels."""

    def __init__(self, s: int, d: int):
        super().__init__()
        # around 1 (the tokens summed), randomised so that the slots differ from the first step
        self.weight = nn.Parameter(1.0 + 0.5 * torch.randn(s, d))
        self.bias = nn.Parameter(torch.zeros(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, R, s, D) -> (B, R, D)"""
        # a sum of per-slot slices rather than ``(x * w).sum(2)``: the same numbers, but ONNX Runtime's
        # ReduceSum over that middle axis took 8% of a merged student's batch-64 time, 3.6x the slices'
        out = x[:, :, 0] * self.weight[0]
        for j in range(1, x.shape[2]):
            out = out + x[:, :, j] * self.weight[j]
        return out + self.bias


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, i: int):
        super().__init__()
        self.pre = cfg.norm == "pre"
        self.attn = Attention(cfg.d_model, cfg.heads(i), cfg.head_dim, cfg.dropout, alibi=cfg.positions == "alibi")
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.fc1 = nn.Linear(cfg.d_model, cfg.ffn(i), bias=cfg.ffn_in_bias)
        self.fc_up = nn.Linear(cfg.d_model, cfg.ffn(i), bias=cfg.ffn_in_bias) if cfg.ffn_gated else None
        self.fc2 = nn.Linear(cfg.ffn(i), cfg.d_model, bias=cfg.ffn_out_bias)
        self.activation = cfg.activation
        self.drop = nn.Dropout(cfg.dropout)

    def _act(self, x):
        if self.activation == "silu":
            return F.silu(x)
        return F.gelu(x, approximate="tanh" if self.activation == "gelu_tanh" else "none")

    def _ffn(self, x):
        h = self._act(self.fc1(x))  # (B, T, F)
        if self.fc_up is not None:
            h = h * self.fc_up(x)  # gated: act(gate) * up
        return self.fc2(self.drop(h))

    def forward(self, x, keep, rope=None, need_attn: bool = False, first_only: bool = False, dist=None):
        """``first_only``: return the first row only, (B, 1, D), computing no other row's output."""
        if self.pre:
            a, attn = self.attn(self.ln1(x), keep, rope, need_attn, first_only, dist)
            x = (x[:, :1] if first_only else x) + self.drop(a)
            x = x + self.drop(self._ffn(self.ln2(x)))
        else:  # post-LN (BERT)
            a, attn = self.attn(x, keep, rope, need_attn, first_only, dist)
            x = self.ln1((x[:, :1] if first_only else x) + self.drop(a))
            x = self.ln2(x + self.drop(self._ffn(x)))
        return x, attn


class GenomicTransformer(nn.Module):
    """Encoder-only transformer classifier over DNA token ids.

    Example:
        >>> cfg = ModelConfig(vocab_size=10, max_positions=33, num_classes=2, d_model=32, n_layers=2, n_heads=4, ffn_dim=64)
        >>> m = GenomicTransformer(cfg)
        >>> m(torch.zeros(3, 33, dtype=torch.int32)).shape
        torch.Size([3, 2])
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.vocab_size, d)
        if cfg.positions == "learned":
            self.pos = nn.Parameter(torch.zeros(1, cfg.rows(cfg.max_positions), d))
        else:
            self.pos = None
        if cfg.positions == "sinusoidal":
            self.register_buffer("pos_table", _sinusoidal(cfg.rows(cfg.max_positions), d)[None], persistent=False)
        if cfg.positions == "rotary":
            cos, sin = _rotary_tables(cfg.rows(cfg.max_positions), cfg.head_dim, cfg.rotary_base)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
            half = cfg.head_dim // 2
            self.register_buffer("rope_sign", torch.cat([-torch.ones(half), torch.ones(half)]), persistent=False)
        self.embed_ln = nn.LayerNorm(d, eps=cfg.layer_norm_eps) if cfg.embed_norm else None
        self.merge = TokenMerge(cfg.merge_tokens, d) if cfg.merge_tokens > 1 else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.final_ln = nn.LayerNorm(d, eps=cfg.layer_norm_eps) if cfg.final_norm else None
        self.head_dense = nn.Linear(d, d) if cfg.head_hidden else None
        self.classifier = nn.Linear(d, cfg.num_classes)
        self.apply(self._init)
        # exporters look positions up with a Gather on runtime ids (see export_mode) so that
        # quantizers treat the table like an embedding and store it as int8.
        self.gather_positions = False
        # graph options set by export_mode (both exact): CLS-row-only last layer, additive padding mask
        self.cls_only_last = False
        self.additive_mask = False
        self.int8_tables: nn.ModuleDict | None = None  # set by int8_embedding_tables (TFLite int8 export)
        if self.pos is not None:
            nn.init.normal_(self.pos, std=0.02)

    @staticmethod
    def _init(m: nn.Module) -> None:
        # std 0.02 for embeddings too: N(0,1) embeddings swamp the positions (see TOOLCHAIN.md).
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def features(self, ids: torch.Tensor, need_attn: bool = False):
        """Run the encoder. Returns (pooled (B, D), hidden states [(B, T, D)], attentions [(B, H, T, T)])."""
        cfg = self.config
        t = ids.shape[1]
        ids = ids.long()
        keep = (ids != cfg.pad_id)[:, None, None, :]  # (B, 1, 1, T)
        q8 = self.int8_tables
        x = self.embed(ids) if q8 is None else q8["embed"](ids)
        if cfg.emb_scale != 1.0:
            x = x * cfg.emb_scale
        rows = ids  # each encoder row's first token: positions and the padding mask below are per row
        if self.merge is not None:
            x = self._merge(x, keep)
            rows = torch.cat([ids[:, :1], ids[:, 1 :: cfg.merge_tokens]], 1)
            keep = (rows != cfg.pad_id)[:, None, None, :]  # a merged row is padding only if its first token is
            t = x.shape[1]
        off = cfg.position_offset
        if (q8 is not None and "pos" in q8) or (self.pos is not None and self.gather_positions):
            # position ids computed from the input, so that converters cannot fold the lookup into a float constant
            pid = (rows >= 0).long().cumsum(1) - 1 + off
            x = x + (q8["pos"](pid) if q8 is not None and "pos" in q8 else F.embedding(pid, self.pos[0]))
        elif self.pos is not None:
            x = x + self.pos[:, off : off + t]
        elif cfg.positions == "sinusoidal":
            x = x + self.pos_table[:, off : off + t]
        if self.embed_ln is not None:
            x = self.embed_ln(x)
        mask = (~keep).float() * -1e9 if self.additive_mask and not need_attn else keep
        x = self.drop(x)
        rope = (self.rope_cos[:t], self.rope_sin[:t], self.rope_sign) if cfg.positions == "rotary" else None
        dist = None
        if cfg.positions == "alibi":
            # exporters get positions computed from the input (as for learned tables): a converter would
            # otherwise fold the (T, T) distances into a float constant stored in the file
            pos = (rows >= 0).to(x.dtype).cumsum(1) - 1 if self.gather_positions else torch.arange(t, device=x.device, dtype=x.dtype)[None]
            dist = (pos[:, None, :] - pos[:, :, None]).abs()  # (B or 1, T, T)
        hidden, attns = [x], []
        # CLS pooling reads one row of the last layer: compute only that row (hidden[-1] is then (B, 1, D))
        short = self.cls_only_last and cfg.pooling == "cls" and not need_attn
        last = len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):
            x, a = blk(x, mask, rope, need_attn, first_only=short and i == last, dist=dist)
            hidden.append(x)
            attns.append(a)
        if self.final_ln is not None:
            x = self.final_ln(x)
            hidden[-1] = x
        if cfg.pooling == "cls":
            pooled = x[:, 0]
        else:
            m = keep[:, 0, 0, :, None].to(x.dtype)  # (B, T, 1)
            pooled = (x * m).sum(1) / m.sum(1).clamp_min(1.0)
        return pooled, hidden, attns

    def _merge(self, x: torch.Tensor, keep: torch.Tensor):
        """Rows 1.. merged ``merge_tokens`` at a time (zero-padded at the end), row 0 kept. Padding rows
        are zeroed first, so a row holding a sequence's last bases and padding does not depend on the PAD
        embedding."""
        s = self.config.merge_tokens
        b, t, d = x.shape
        body = x[:, 1:] * keep[:, 0, 0, 1:, None].to(x.dtype)
        pad = (-(t - 1)) % s
        if pad:
            body = F.pad(body, (0, 0, 0, pad))
        body = self.merge(body.reshape(b, (t - 1 + pad) // s, s, d))
        return torch.cat([x[:, :1], body], 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) int token ids -> (B, num_classes) float logits."""
        pooled, _, _ = self.features(ids)
        return self.head(pooled)

    def head(self, pooled: torch.Tensor) -> torch.Tensor:
        if self.head_dense is not None:
            pooled = torch.tanh(self.head_dense(self.drop(pooled)))
        return self.classifier(self.drop(pooled))


class export_mode:
    """Context manager for exporters, restored after: the explicit softmax(QK^T)V path instead of
    fused SDPA; learned positions looked up by a Gather on runtime position ids instead of a
    constant slice (ORT and PT2E quantize Gather/embedding tables to int8; a constant added to the
    activations would stay float in the file). Options, both exact:

    - ``cls_shortcut``: with CLS pooling the last layer computes only the CLS row the classifier
      reads (the other rows' queries, attention, FFN and norms are never used), e.g. 1.8x faster
      int8 for a 2-layer model on 200 tokens;
    - ``additive_mask``: padding masked by adding a (B, 1, 1, T) bias of 0/-1e9 to the scores
      instead of a Where over (B, H, T, T) (~12% of that model's int8 latency). Only for graphs whose
      attention scores stay float: a statically quantized Add would spend its int8 range on -1e9.
    - ``ort_attention`` (ONNX only): each layer's attention core as ONNX Runtime's fused
      ``com.microsoft.MultiHeadAttention`` (rotary layers keep the explicit path); the file then
      needs ONNX Runtime (``ExportConfig.fused_attention``).
    """

    def __init__(self, model: nn.Module, cls_shortcut: bool = False, additive_mask: bool = False,
                 ort_attention: bool = False):
        self.mods = [m for m in model.modules() if isinstance(m, Attention)]
        self.tops = [m for m in model.modules() if isinstance(m, GenomicTransformer)]
        self.cls_shortcut = cls_shortcut
        self.additive_mask = additive_mask
        self.ort_attention = ort_attention

    def __enter__(self):
        self.saved = [(m.fused, m.ort_fused) for m in self.mods]
        self.saved_top = [(m.gather_positions, m.cls_only_last, m.additive_mask) for m in self.tops]
        for m in self.mods:
            m.fused = False
            m.ort_fused = self.ort_attention
        for m in self.tops:
            m.gather_positions = True
            m.cls_only_last = self.cls_shortcut
            m.additive_mask = self.additive_mask
        return self

    def __exit__(self, *exc):
        for m, (f, o) in zip(self.mods, self.saved):
            m.fused, m.ort_fused = f, o
        for m, (g, c, a) in zip(self.tops, self.saved_top):
            m.gather_positions, m.cls_only_last, m.additive_mask = g, c, a



class Int8Table(nn.Module):
    """A lookup table stored as symmetric int8 with one float scale per row; rows are dequantized
    after the lookup. Quantizers should leave its multiply alone (the scale is not an activation)."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        w = w.detach().float()
        s = (w.abs().amax(1, keepdim=True) / 127).clamp_min(1e-12)
        self.register_buffer("q", torch.round(w / s).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", s)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.q[ids].float() * self.scale[ids]


class int8_embedding_tables:
    """Context manager: the token-embedding and additive position tables as weight-only int8
    (one scale per row), dequantized after the lookup, restored after.

    For converters that keep every constant feeding a lookup in float32 (litert-torch folds a
    PT2E-quantized embedding weight back to float): here the lookup itself reads int8 rows, so
    the file stores int8 tables. Rows change by at most half a quantization step (0.4% of the
    row's largest value).
    """

    def __init__(self, model: "GenomicTransformer"):
        self.model = model

    def __enter__(self):
        m = self.model
        tables = {"embed": Int8Table(m.embed.weight)}
        if m.pos is not None:
            tables["pos"] = Int8Table(m.pos[0])
        elif m.config.positions == "sinusoidal":
            tables["pos"] = Int8Table(m.pos_table[0])
        self.saved = m.int8_tables
        m.int8_tables = nn.ModuleDict(tables)
        return self

    def __exit__(self, *exc):
        self.model.int8_tables = self.saved  # the name exporters used before positions were gathered


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
