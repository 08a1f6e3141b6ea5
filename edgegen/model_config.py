"""``ModelConfig``: every shape of a :class:`~edgegen.model.GenomicTransformer` (updated after pruning, so the plain
loader rebuilds any pruned or imported model from it), and its MAC count."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    positions: Literal["learned", "sinusoidal", "rotary", "alibi", "none"] = Field(
        "learned",
        description="alibi: no position "
        "table; each head adds -slope * |i - j| to its attention scores (DNABERT-2), its slope stored per layer and "
        "head "
        "in the weights (buffer blocks.N.attn.alibi_slopes), so pruned heads keep their own",
    )
    position_offset: int = 0
    pooling: Literal["cls", "mean"] = "cls"
    norm: Literal["pre", "post"] = "pre"
    embed_norm: bool = False
    final_norm: bool = True
    emb_scale: float = 1.0
    head_hidden: bool = False
    activation: Literal["gelu", "gelu_tanh", "silu"] = "gelu"
    ffn_gated: bool = Field(
        False,
        description="gated feed-forward: fc2(act(fc1(x)) * fc_up(x)) (SwiGLU with silu, NT-v2; "
        "GEGLU with gelu, DNABERT-2); fc1 and fc_up are pruned as pairs",
    )
    ffn_in_bias: bool = Field(True, description="biases on fc1 (and fc_up)")
    ffn_out_bias: bool = Field(True, description="bias on fc2")
    layer_norm_eps: float = 1e-5
    norm_width: int | None = Field(
        None,
        gt=0,
        description="LayerNorm statistics over this many channels, the ones hidden-width pruning removed counted "
        "as zeros (None: d_model): the pruned model then computes what the original did wherever those were zero",
    )
    head_width: int | None = Field(
        None, gt=0, description="width of the head's hidden layer (head_hidden; None: d_model), kept by width pruning"
    )
    pad_id: int = 0
    rotary_base: float = 10000.0
    merge_tokens: int = Field(
        1,
        ge=1,
        le=16,
        description="after embedding, every `merge_tokens` adjacent token vectors "
        "(position 0, e.g. CLS, kept alone) are merged into one (TokenMerge) before positions are "
        "added: the encoder runs on that many times fewer rows",
    )

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
        if self.norm_width is not None and self.norm_width < self.d_model:
            raise ValueError(f"norm_width {self.norm_width} is below d_model {self.d_model}")
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
        hw = self.head_width or d
        total += (d * hw + hw * self.num_classes) if self.head_hidden else d * self.num_classes
        return total
