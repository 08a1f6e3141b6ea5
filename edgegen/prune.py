"""Structured pruning on torch-pruning's dependency graph.

Removes whole attention heads (q/k/v/out together), FFN channels (fc1 out /
fc2 in) and, optionally, whole encoder layers. Pruning is physical: tensors
shrink, and the model's config is rewritten so the plain loader rebuilds it.
"""

from __future__ import annotations

import copy
import fnmatch
import logging
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgegen.errors import PruneError, UsageError
from edgegen.prune_layers import check_rebuild, drop_layers_, model_stats, sync_config

log = logging.getLogger("edgegen")


class PruneConfig(BaseModel):
    """What to remove and how to rank it.

    Give a target (``target_params`` or ``target_macs``: the fraction of the
    original to keep, in (0, 1)) or explicit ratios (``head_ratio``,
    ``ffn_ratio``: the fraction of heads / FFN channels to remove).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_params: float | None = Field(None, description="keep this fraction of parameters")
    target_macs: float | None = Field(None, description="keep this fraction of MACs (at the model's sequence length)")
    head_ratio: float | None = Field(None, description="fraction of heads to remove per layer")
    ffn_ratio: float | None = Field(None, description="fraction of FFN channels to remove per layer")
    prune_heads: bool = True
    prune_ffn: bool = True
    drop_layers: int = Field(0, ge=0, description="remove this many whole encoder layers (least residual change first)")
    criterion: Literal["l1", "l2", "taylor", "random"] = "l2"
    global_pruning: bool = False
    iterative_steps: int = Field(1, ge=1)
    ignored_layers: list[str] = Field(default_factory=list, description="module name patterns never pruned")
    calib_batches: int = Field(8, ge=1, description="batches for Taylor importance and layer ranking")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> "PruneConfig":
        for name in ("target_params", "target_macs", "head_ratio", "ffn_ratio"):
            v = getattr(self, name)
            if v is not None and not 0.0 < v < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {v}")
        if self.target_params is not None and self.target_macs is not None:
            raise ValueError("give target_params or target_macs, not both")
        has_target = self.target_params is not None or self.target_macs is not None
        if has_target and (self.head_ratio is not None or self.ffn_ratio is not None):
            raise ValueError("give a target or explicit ratios (head_ratio/ffn_ratio), not both")
        if not (self.prune_heads or self.prune_ffn) and has_target and not self.drop_layers:
            raise ValueError("nothing to prune: prune_heads and prune_ffn are both off")
        return self


def _importance(name: str):
    import torch_pruning as tp

    return {
        "l1": lambda: tp.importance.MagnitudeImportance(p=1),
        "l2": lambda: tp.importance.MagnitudeImportance(p=2),
        "taylor": lambda: tp.importance.TaylorImportance(),
        "random": lambda: tp.importance.RandomImportance(),
    }[name]()


def _resolve_ignored(model, patterns: list[str]) -> list:
    names = dict(model.named_modules())
    out = []
    for pat in patterns:
        hits = [m for n, m in names.items() if n and fnmatch.fnmatch(n, pat)]
        if not hits:
            raise UsageError(f"ignored_layers pattern {pat!r} matches no module (e.g. {', '.join(list(names)[1:6])})")
        out += hits
    return out


def _prune_once(model, example_inputs, head_ratio: float, ffn_ratio: float, cfg: PruneConfig) -> None:
    """One torch-pruning pass on ``model`` (in place) at the given per-layer ratios."""
    import torch_pruning as tp

    if head_ratio <= 0 and ffn_ratio <= 0:
        return
    ignored = _resolve_ignored(model, cfg.ignored_layers)
    # Keep d_model: ignore every layer whose *output* is the residual stream.
    ignored += [model.embed, model.classifier] + [b.attn.o for b in model.blocks] + [b.fc2 for b in model.blocks]
    if model.head_dense is not None:
        ignored.append(model.head_dense)
    if model.merge is not None:
        ignored.append(model.merge)
    num_heads, ratio_dict = {}, {}
    for b in model.blocks:
        a = b.attn
        if cfg.prune_heads and head_ratio > 0 and a.num_heads > 1:
            for lin in (a.q, a.k, a.v):
                num_heads[lin] = a.num_heads
            # q/k/v need a non-zero channel ratio or head pruning silently does nothing (TOOLCHAIN.md).
            ratio_dict[(a.q, a.k, a.v)] = head_ratio
        else:
            ignored += [a.q, a.k, a.v]
        if cfg.prune_ffn and ffn_ratio > 0 and b.fc1.out_features > 1:
            ratio_dict[b.fc1] = ffn_ratio
        else:
            ignored.append(b.fc1)
    unwrapped = [(model.pos, 2)] if model.pos is not None else []
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch-pruning warns about every unwrapped parameter
        pruner = _make_pruner(tp, model, example_inputs, cfg, ratio_dict, ignored, num_heads, head_ratio, unwrapped)
        heads_before = [_head_rows(b.attn) for b in model.blocks]
        pruner.step()
    for b, rows in zip(model.blocks, heads_before):
        _carry_alibi_slopes(b.attn, rows)
    sync_config(model)


def _head_rows(attn) -> list:
    """Each head's rows of the query projection (a copy): after pruning, they identify the surviving heads."""
    dh = attn.head_dim
    w = attn.q.weight.detach()
    return [w[h * dh : (h + 1) * dh].clone() for h in range(w.shape[0] // dh)]


def _carry_alibi_slopes(attn, rows_before: list) -> None:
    """Keep the ALiBi slopes of the heads that survived pruning, in their new order: slopes belong to heads
    and are never recomputed from the new head count (that would give the survivors other slopes)."""
    if getattr(attn, "alibi_slopes", None) is None or len(rows_before) == attn.q.out_features // attn.head_dim:
        return
    import torch

    kept = []
    for new in _head_rows(attn):
        match = [i for i, old in enumerate(rows_before) if old.shape == new.shape and torch.equal(old, new) and i not in kept]
        if not match:
            raise PruneError("cannot tell which attention heads survived pruning (query rows changed)")
        kept.append(match[0])
    attn.alibi_slopes = attn.alibi_slopes[kept].clone()


def _make_pruner(tp, model, example_inputs, cfg, ratio_dict, ignored, num_heads, head_ratio, unwrapped):
    return tp.pruner.MetaPruner(
        model,
        example_inputs,
        importance=_importance(cfg.criterion),
        global_pruning=cfg.global_pruning,
        pruning_ratio=0.0,
        pruning_ratio_dict=ratio_dict,
        ignored_layers=ignored,
        num_heads=num_heads,
        prune_num_heads=True,
        prune_head_dims=False,
        head_pruning_ratio=head_ratio if cfg.prune_heads else 0.0,
        unwrapped_parameters=unwrapped,
        # Fresh dicts: torch-pruning's defaults are shared mutable dicts that leak between pruners.
        in_channel_groups={},
        out_channel_groups={},
        channel_groups={},
        max_pruning_ratio=0.95,
    )


def _taylor_grads(model, calib) -> None:
    import torch
    import torch.nn.functional as F

    model.zero_grad(set_to_none=True)
    model.eval()
    for ids, y in calib:
        F.cross_entropy(model(torch.as_tensor(ids)), torch.as_tensor(y)).backward()


def _measure(model, cfg: PruneConfig, seq_len: int) -> int:
    from edgegen.model import count_params

    return count_params(model) if cfg.target_params is not None else model.config.macs(seq_len)


def prune(
    model,
    cfg: PruneConfig,
    example_inputs,
    *,
    calib: list | None = None,
    finetune: Callable | None = None,
):
    """Prune a :class:`GenomicTransformer` structurally; return the (new) pruned model.

    Args:
        model: the model to prune (not modified; a pruned copy is returned).
        cfg: targets, criterion and scope.
        example_inputs: (B, T) int32 token ids for graph tracing.
        calib: ``[(ids, labels), ...]`` batches; needed for ``taylor`` and ``drop_layers``.
        finetune: ``finetune(model) -> None`` called after each iterative step but the last.

    Returns:
        The pruned model, with ``model.config`` describing the new shapes and
        ``model.prune_report`` holding before/after statistics.

    Raises:
        UsageError: unreachable target, missing calibration data, bad ignore pattern.

    Example:
        >>> small = prune(teacher, PruneConfig(target_params=0.5), ids[:2])  # doctest: +SKIP
    """
    import torch

    torch.manual_seed(cfg.seed)
    if (cfg.criterion == "taylor" or cfg.drop_layers) and not calib:
        raise UsageError(f"{'taylor importance' if cfg.criterion == 'taylor' else 'drop_layers'} needs calibration data")
    example_inputs = torch.as_tensor(example_inputs)
    seq_len = example_inputs.shape[1]
    model = copy.deepcopy(model).eval()
    for p in model.parameters():
        p.requires_grad_(True)  # torch-pruning skips frozen parameters
    before = model_stats(model, seq_len)
    base = _measure(model, cfg, seq_len)
    dropped: list[int] = []
    if cfg.drop_layers:
        dropped = drop_layers_(model, cfg.drop_layers, calib)
    steps = cfg.iterative_steps
    target = cfg.target_params if cfg.target_params is not None else cfg.target_macs
    for s in range(1, steps + 1):
        if target is not None:
            goal = base * target ** (s / steps)  # geometric schedule towards the target
            model = _prune_to(model, cfg, example_inputs, goal, calib)
        else:
            hr = 1 - (1 - (cfg.head_ratio or 0.0)) ** (1 / steps)
            fr = 1 - (1 - (cfg.ffn_ratio or 0.0)) ** (1 / steps)
            if cfg.criterion == "taylor":
                _taylor_grads(model, calib)
            _prune_once(model, example_inputs, hr, fr, cfg)
        if finetune is not None and s < steps:
            finetune(model)
    model.zero_grad(set_to_none=True)
    check_rebuild(model)
    after = model_stats(model, seq_len)
    model.prune_report = {
        "config": cfg.model_dump(),
        "seq_len": seq_len,
        "before": before,
        "after": after,
        "dropped_layers": dropped,
        "params_ratio": after["params"] / before["params"],
        "macs_ratio": after["macs"] / before["macs"],
    }
    return model.eval()


def _prune_to(model, cfg: PruneConfig, example_inputs, goal: float, calib):
    """Find the smallest equal head/FFN ratio whose pruned copy meets ``goal`` (bisection on real prunes)."""
    if _measure(model, cfg, example_inputs.shape[1]) <= goal:
        return model
    def attempt(r: float):
        m = copy.deepcopy(model)
        if cfg.criterion == "taylor":
            _taylor_grads(m, calib)  # gradients are not deep-copied
        _prune_once(m, example_inputs, r if cfg.prune_heads else 0.0, r if cfg.prune_ffn else 0.0, cfg)
        return m, _measure(m, cfg, example_inputs.shape[1])

    # torch-pruning's result is not monotone in the ratio near the top (it may skip heads),
    # so scan coarsely for the first ratio that meets the goal, then refine below it.
    base = _measure(model, cfg, example_inputs.shape[1])
    smallest = base
    found = None
    for r in [x / 20 for x in range(1, 19)]:
        m, val = attempt(r)
        smallest = min(smallest, val)
        if val <= goal:
            found = (r, m)
            break
    if found is None:
        raise UsageError(
            f"target unreachable by pruning heads/FFN: at best {smallest / base:.2f} of the current size remains "
            "(embeddings, positions, norms and the head are kept); add drop_layers or distil a smaller student"
        )
    hi, best = found
    lo = hi - 0.05
    for _ in range(4):
        mid = (lo + hi) / 2
        m, val = attempt(mid)
        if val <= goal:
            best, hi = m, mid
        else:
            lo = mid
    return best
