"""Hidden-width pruning (Minitron, NVIDIA 2024): remove the same residual-stream channels everywhere they appear —
token embedding, learned positions, token merge, every LayerNorm, the inputs of q/k/v and the feed-forward, the
outputs of attention and the feed-forward, the head's input — ranked by activation importance on calibration data
(each channel's mean |LayerNorm output| over real tokens, summed over every LayerNorm).

torch-pruning's dependency graph finds every tensor that shares the channels (one group, rooted at the token
embedding); the group is checked against the layers that must be in it before anything is removed. Head dimension,
rotary tables and ALiBi slopes are untouched. The LayerNorms keep their statistics over the original width
(``ModelConfig.norm_width``, :class:`edgegen.layers.WidthPrunedNorm`), so removing channels that were zero leaves the
model's outputs exactly as they were.
"""

from __future__ import annotations

import warnings

import numpy as np

from edgegen.errors import PruneError, UsageError


def norms(model) -> list:
    """Every LayerNorm over the residual stream, in order."""
    out = [model.embed_ln] if model.embed_ln is not None else []
    for b in model.blocks:
        out += [b.ln1, b.ln2]
    return out + ([model.final_ln] if model.final_ln is not None else [])


def channel_importance(model, calib) -> np.ndarray:
    """Each residual channel's summed mean |LayerNorm output| over the real (non-padding) tokens of ``calib``
    (``[(ids, labels), ...]``)."""
    import torch

    d = model.config.d_model
    total = torch.zeros(d, dtype=torch.float64)
    keep: list = []

    def hook(_mod, _inp, out):
        m = keep[0][..., None].to(out.dtype) if out.shape[1] == keep[0].shape[1] else torch.ones_like(out[..., :1])
        total.add_(((out.abs() * m).sum((0, 1)) / m.sum().clamp_min(1.0)).double())

    handles = [n.register_forward_hook(hook) for n in norms(model)]
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for ids, _ in calib:
                ids = torch.as_tensor(ids)
                keep[:] = [_row_mask(model, ids)]
                model(ids)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return total.numpy()


def _row_mask(model, ids):
    """(B, rows) True where an encoder row holds a real token (rows are merged tokens when the model merges)."""
    s, pad = model.config.merge_tokens, model.config.pad_id
    if s > 1:
        import torch

        ids = torch.cat([ids[:, :1], ids[:, 1::s]], 1)
    return ids != pad


def width_of(value: float | int, d: int) -> int:
    """``--hidden``: a fraction of ``d`` to keep (0 < x < 1) or a width (an integer 1..d)."""
    if isinstance(value, float) and 0 < value < 1:
        return max(1, int(round(value * d)))
    if float(value).is_integer() and 1 <= int(value) <= d:
        return int(value)
    raise UsageError(f"hidden width {value} is neither a fraction in (0, 1) nor a width from 1 to {d}")


def prune_width(model, keep: int, calib, example_inputs):
    """``model`` with its residual stream narrowed to ``keep`` channels (the least important removed), rebuilt from
    its new config by the plain constructor; and the removed channels' indices. ``model`` itself is consumed."""
    from edgegen.model import GenomicTransformer

    cfg = model.config
    d = cfg.d_model
    if not 1 <= keep <= d:
        raise UsageError(f"cannot keep {keep} of {d} hidden channels")
    if keep == d:
        return model, []
    if not calib:
        raise UsageError("hidden-width pruning ranks channels by their activations: it needs calibration data")
    if cfg.positions == "sinusoidal":
        raise UsageError(
            "hidden-width pruning cannot keep a sinusoidal position table (it is computed from the width); prune "
            "heads, feed-forward and layers, or distil a narrower student"
        )
    imp = channel_importance(model, calib)
    removed = sorted(int(i) for i in np.argsort(imp, kind="stable")[: d - keep])
    _prune_group(model, removed, example_inputs)
    new_cfg = cfg.model_copy(
        update={
            "d_model": keep,
            "norm_width": cfg.norm_width or d,
            "head_dim": cfg.head_dim,
            "head_width": (cfg.head_width or d) if cfg.head_hidden else None,
        }
    )
    fresh = GenomicTransformer(new_cfg)
    try:
        fresh.load_state_dict(model.state_dict())
    except RuntimeError as e:
        raise PruneError(
            f"the width-pruned model does not match its config: {str(e).splitlines()[-1].strip()}"
        ) from None
    return fresh.eval(), removed


def _prune_group(model, removed: list[int], example_inputs) -> None:
    import torch
    import torch_pruning as tp

    unwrapped = [(model.pos, 2)] if model.pos is not None else []
    if model.merge is not None:
        unwrapped += [(model.merge.weight, 1), (model.merge.bias, 0)]
    with warnings.catch_warnings(), torch.enable_grad():  # the graph is traced through autograd
        warnings.simplefilter("ignore")  # torch-pruning warns about every unwrapped parameter
        dg = tp.DependencyGraph().build_dependency(
            model, example_inputs=torch.as_tensor(example_inputs), unwrapped_parameters=unwrapped
        )
        group = dg.get_pruning_group(model.embed, tp.prune_embedding_out_channels, idxs=removed)
    found = {id(dep.target.module) for dep, _ in group}
    missing = [name for name, m in _must_share(model) if id(m) not in found]
    if missing:
        raise PruneError(f"torch-pruning's graph misses the hidden channels of {', '.join(missing[:4])}")
    group.prune()


def _must_share(model) -> list[tuple[str, object]]:
    """The layers that read or write the residual stream (their names, for the error)."""
    out = [("embed", model.embed)] + [(f"norm {i}", n) for i, n in enumerate(norms(model))]
    for i, b in enumerate(model.blocks):
        a = b.attn
        out += [(f"blocks.{i}.attn.{n}", getattr(a, n)) for n in ("q", "k", "v", "o")]
        out += [(f"blocks.{i}.{n}", getattr(b, n)) for n in ("fc1", "fc_up", "fc2") if getattr(b, n) is not None]
    head = model.head_dense if model.head_dense is not None else model.classifier
    return out + [("head", head)]
