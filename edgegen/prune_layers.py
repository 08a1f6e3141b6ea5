"""Pruning's model surgery: whole layers dropped, the config rewritten from the tensors' shapes, and the check that
the plain constructor rebuilds the pruned model (so a pruned model directory loads like any other)."""

from __future__ import annotations

from edgegen.errors import PruneError, UsageError


def model_stats(model, seq_len: int | None = None) -> dict:
    from edgegen.model import count_params

    cfg = model.config
    return {
        "params": count_params(model),
        "macs": cfg.macs(seq_len),
        "d_model": cfg.d_model,
        "layers": cfg.n_layers,
        "heads": [cfg.heads(i) for i in range(cfg.n_layers)],
        "ffn": [cfg.ffn(i) for i in range(cfg.n_layers)],
    }


def sync_config(model) -> None:
    """Rewrite ``model.config`` from the actual tensor shapes (after pruning)."""
    cfg = model.config
    dh = cfg.head_dim
    heads, ffn = [], []
    for blk in model.blocks:
        q = blk.attn.q.out_features
        if q % dh or blk.attn.k.out_features != q or blk.attn.v.out_features != q or blk.attn.o.in_features != q:
            raise PruneError(f"inconsistent attention shapes after pruning (q {q}, head_dim {dh})")
        blk.attn.num_heads = q // dh
        heads.append(q // dh)
        ffn.append(blk.fc1.out_features)
    n = len(model.blocks)
    uniform_h = len(set(heads)) == 1
    uniform_f = len(set(ffn)) == 1
    model.config = cfg.model_copy(
        update={
            "n_layers": n,
            "n_heads": heads[0] if heads else cfg.n_heads,
            "ffn_dim": ffn[0] if ffn else cfg.ffn_dim,
            "layer_heads": None if (uniform_h or not n) else heads,
            "layer_ffn": None if (uniform_f or not n) else ffn,
            "head_dim": dh,
        }
    )


def _layer_scores(model, calib) -> list[float]:
    """Relative residual change ||block(x) - x|| / ||x|| per block, averaged over calibration batches."""
    import torch

    scores = [0.0] * len(model.blocks)
    model.eval()
    with torch.inference_mode():
        for ids, _ in calib:
            _, hidden, _ = model.features(torch.as_tensor(ids))
            for i in range(len(model.blocks)):
                x, y = hidden[i], hidden[i + 1]
                scores[i] += float((y - x).norm() / x.norm().clamp_min(1e-9))
    return scores


def drop_layers_(model, n: int, calib) -> list[int]:
    """Remove the ``n`` blocks that change the residual stream least; return their indices."""
    import torch

    if n >= len(model.blocks):
        raise UsageError(f"cannot drop {n} of {len(model.blocks)} layers (at least one must remain)")
    scores = _layer_scores(model, calib)
    drop = sorted(sorted(range(len(scores)), key=scores.__getitem__)[:n])
    model.blocks = torch.nn.ModuleList(b for i, b in enumerate(model.blocks) if i not in drop)
    sync_config(model)
    return drop


def check_rebuild(model) -> None:
    """The pruned config must rebuild the same shapes with the plain constructor."""
    from edgegen.model import GenomicTransformer

    fresh = GenomicTransformer(model.config)
    a = {k: v.shape for k, v in model.state_dict().items()}
    b = {k: v.shape for k, v in fresh.state_dict().items()}
    if a != b:
        diff = [k for k in a if a.get(k) != b.get(k)][:3]
        raise PruneError(f"pruned model does not match its config at {diff}")
