"""A fresh student: a smaller GenomicTransformer with the teacher's tokenizer-facing shapes (what ``distill --student
S.yaml`` and a recipe's ``student`` step start from)."""

from __future__ import annotations

from pydantic import Field

from edgegen.errors import UsageError
from edgegen.fit import OptimConfig


class StudentConfig(OptimConfig):
    """A fresh student's shape (fields not given are copied from the teacher)."""

    d_model: int | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    ffn_dim: int | None = None
    merge_tokens: int | None = Field(
        None,
        ge=1,
        le=16,
        description="merge this many adjacent tokens after embedding "
        "(see ModelConfig.merge_tokens): a shorter sequence for the student's encoder",
    )

    def shape(self) -> dict:
        return {k: getattr(self, k) for k in ("d_model", "n_layers", "n_heads", "ffn_dim", "merge_tokens")}


def student_from_teacher(
    teacher, *, d_model=None, n_layers=None, n_heads=None, ffn_dim=None, merge_tokens=None, seed: int = 0
):
    """A fresh, smaller :class:`GenomicTransformer` with the teacher's tokenizer-facing shapes."""
    import torch

    from edgegen.model import GenomicTransformer

    tc = teacher.config
    d = d_model or tc.d_model
    h = n_heads or max(1, tc.n_heads if d % tc.n_heads == 0 else 1)
    upd = {
        "d_model": d,
        "n_layers": n_layers or tc.n_layers,
        "n_heads": h,
        "head_dim": d // h,
        "ffn_dim": ffn_dim or max(8, tc.ffn(0) * d // tc.d_model),
        "layer_heads": None,
        "layer_ffn": None,
        "merge_tokens": merge_tokens or tc.merge_tokens,
        "norm_width": None,  # a fresh model: plain LayerNorms, and a head as wide as itself
        "head_width": None,
    }
    if d % h:
        raise UsageError(f"student d_model {d} is not divisible by n_heads {h}")
    torch.manual_seed(seed)
    return GenomicTransformer(tc.model_copy(update=upd))
