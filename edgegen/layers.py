"""The encoder's building blocks: position tables, attention (separate q/k/v/out ``nn.Linear`` layers and an explicit
per-layer head count, so whole heads can be pruned and exported cleanly), token merging and the encoder block."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgegen.model_config import ModelConfig


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
        # exporters switch it off (see edgegen.export.modes.export_mode).
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


class WidthPrunedNorm(nn.LayerNorm):
    """A LayerNorm whose channels hidden-width pruning narrowed: its statistics are still over ``norm_width``
    channels, the removed ones counted as zeros, so it computes what the original did wherever they were zero."""

    def __init__(self, d: int, norm_width: int, eps: float):
        super().__init__(d, eps=eps)
        self.norm_width = norm_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1]
        y = F.layer_norm(F.pad(x, (0, self.norm_width - d)), (self.norm_width,), eps=self.eps)[..., :d]
        return y * self.weight + self.bias


def layer_norm(cfg: ModelConfig) -> nn.LayerNorm:
    """The encoder's LayerNorm over ``d_model`` channels (statistics over ``norm_width`` after width pruning)."""
    if cfg.norm_width is None or cfg.norm_width == cfg.d_model:
        return nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
    return WidthPrunedNorm(cfg.d_model, cfg.norm_width, cfg.layer_norm_eps)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, i: int):
        super().__init__()
        self.pre = cfg.norm == "pre"
        self.attn = Attention(cfg.d_model, cfg.heads(i), cfg.head_dim, cfg.dropout, alibi=cfg.positions == "alibi")
        self.ln1, self.ln2 = layer_norm(cfg), layer_norm(cfg)
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
