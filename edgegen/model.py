"""The native model: ``GenomicTransformer`` and its config.

Attention uses separate q/k/v/out ``nn.Linear`` layers and an explicit per-layer
head count so whole heads can be pruned (torch-pruning) and exported cleanly.
The config describes every shape; after pruning it is updated, and the plain
loader rebuilds the model from it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgegen.layers import (  # noqa: F401  (alibi_slopes: API)
    Block,
    TokenMerge,
    _rotary_tables,
    _sinusoidal,
    alibi_slopes,
    layer_norm,
)
from edgegen.model_config import ModelConfig  # noqa: F401  (the model's config lives beside it)


class GenomicTransformer(nn.Module):
    """Encoder-only transformer classifier over DNA token ids.

    Example:
        >>> cfg = ModelConfig(vocab_size=10, max_positions=33, num_classes=2, d_model=32, n_layers=2, n_heads=4,
        ...                   ffn_dim=64)
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
        self.embed_ln = layer_norm(cfg) if cfg.embed_norm else None
        self.merge = TokenMerge(cfg.merge_tokens, d) if cfg.merge_tokens > 1 else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.final_ln = layer_norm(cfg) if cfg.final_norm else None
        hw = cfg.head_width or d
        self.head_dense = nn.Linear(d, hw) if cfg.head_hidden else None
        self.classifier = nn.Linear(hw if cfg.head_hidden else d, cfg.num_classes)
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
        # std 0.02 for embeddings too: N(0,1) embeddings swamp the learned positions.
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
            pos = (
                (rows >= 0).to(x.dtype).cumsum(1) - 1
                if self.gather_positions
                else torch.arange(t, device=x.device, dtype=x.dtype)[None]
            )
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


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
