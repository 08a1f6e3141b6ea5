"""One torch-pruning pass over heads and FFN channels: the dependency graph, the importance criterion, the layers
that must keep their width (everything writing the residual stream), and ALiBi slopes carried with their heads.
:func:`edgegen.prune.prune` calls it until the model reaches its target."""

from __future__ import annotations

import fnmatch

from edgegen.errors import PruneError, UsageError
from edgegen.prune_layers import sync_config


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


def prune_once(model, example_inputs, head_ratio: float, ffn_ratio: float, cfg) -> None:
    """One torch-pruning pass on ``model`` (in place) at the given per-layer ratios (``cfg``: a PruneConfig)."""
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
            # q/k/v need a non-zero channel ratio or head pruning silently does nothing (ARCHITECTURE.md, pruning).
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
        match = [
            i for i, old in enumerate(rows_before) if old.shape == new.shape and torch.equal(old, new) and i not in kept
        ]
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
