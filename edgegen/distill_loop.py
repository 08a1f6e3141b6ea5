"""The distillation loop: one student trained on the teacher's logits (from memory or a store) and the labels, with
optional hidden-state and attention transfer through a layer map. :func:`edgegen.distill.distill` calls it."""

from __future__ import annotations

import numpy as np

from edgegen.distill_data import training_windows
from edgegen.errors import UsageError
from edgegen.fit import fit
from edgegen.inference import model_device, predict_logits


def default_layer_map(n_student: int, n_teacher: int) -> list[int]:
    """Uniform map: student layer i -> teacher output (i+1)*n_t/n_s (1-based hidden index, at least 1:
    a student deeper than its teacher maps several layers to one)."""
    return [max(1, round((i + 1) * n_teacher / n_student)) for i in range(n_student)]


def teacher_logits_for(teacher, ids: np.ndarray, batch_size: int) -> np.ndarray:
    """The teacher's logits for every row, computed in memory (under torchrun each rank runs its share)."""
    from edgegen import distributed

    mine = np.array_split(np.arange(len(ids)), distributed.world_size())[distributed.rank()]
    return distributed.gather_rows(predict_logits(teacher, ids[mine], batch_size), len(ids))


def run_distillation(student, teacher, cfg, splits, tokenizer, show_progress, unlabeled_ids, teacher_logits):
    import torch
    import torch.nn.functional as F

    tr, dev = splits["train"], splits.get("dev")
    tr_ids, tr_y, parts = training_windows(tokenizer, tr, cfg, unlabeled_ids)
    dev_ids = dev.encoded(tokenizer) if dev is not None else None
    need_feats = cfg.hidden_weight > 0 or cfg.attn_weight > 0
    lmap = _checked_layer_map(student, teacher, cfg, teacher_logits, len(tr_ids))
    device = model_device(teacher)  # distill() put it on cfg.device
    proj = None
    extra_params = []
    if cfg.hidden_weight > 0 and student.config.d_model != teacher.config.d_model:
        proj = torch.nn.ModuleList(torch.nn.Linear(student.config.d_model, teacher.config.d_model) for _ in lmap).to(
            device
        )
        extra_params = list(proj.parameters())
    cached = None
    if teacher_logits is not None:
        if isinstance(teacher_logits, np.ndarray):
            cached = torch.from_numpy(teacher_logits).to(device)
    elif cfg.cache_teacher and not need_feats:
        cached = torch.from_numpy(teacher_logits_for(teacher, tr_ids, cfg.eval_batch_size)).to(device)
    T = cfg.temperature

    def loss_fn(model, idx, ids, y):
        if need_feats:
            pooled, hs, att = model.features(ids, need_attn=cfg.attn_weight > 0)
            logits = model.head(pooled)
            with torch.no_grad():
                tp_, th, ta = teacher.features(ids, need_attn=cfg.attn_weight > 0)
                t_logits = teacher.head(tp_)
        else:
            logits = model(ids)
            if cached is not None:
                t_logits = cached[torch.as_tensor(np.asarray(idx), device=device)]
            elif teacher_logits is not None:  # a store: memory-mapped shards, read a batch at a time
                t_logits = torch.from_numpy(teacher_logits[idx]).to(device)
            else:
                with torch.no_grad():
                    t_logits = teacher(ids)
        lab = y >= 0
        loss = cfg.alpha * F.cross_entropy(logits[lab], y[lab]) if cfg.alpha and bool(lab.any()) else 0.0 * logits.sum()
        if cfg.beta:
            kd = F.kl_div(
                F.log_softmax(logits / T, -1), F.log_softmax(t_logits / T, -1), log_target=True, reduction="batchmean"
            )
            loss = loss + cfg.beta * T * T * kd
        if need_feats:
            loss = _plus_feature_terms(loss, cfg, lmap, proj, hs, th, att, ta)
        return loss

    params = list(student.parameters()) + extra_params
    hist = fit(
        student,
        tr_ids,
        tr_y,
        dev_ids,
        None if dev is None else dev.labels,
        cfg,
        loss_fn,
        params=params,
        show_progress=show_progress,
        description="distill",
    )
    hist["layer_map"] = lmap
    hist["augmented_sequences"] = parts.get("augmented", 0)
    hist["unlabeled_windows"] = parts.get("unlabeled", 0)
    return hist


def _checked_layer_map(student, teacher, cfg, teacher_logits, n_rows: int) -> list[int]:
    """The teacher layer each student layer learns from; UsageError when the request cannot be met (features
    under torchrun, a store for other windows, different token merging, a layer map out of range)."""
    from edgegen import distributed

    need_feats = cfg.hidden_weight > 0 or cfg.attn_weight > 0
    if need_feats and distributed.world_size() > 1:
        raise UsageError(
            "hidden/attention distillation runs in one process; under torchrun distil logits (hidden_weight 0, "
            "attn_weight 0)"
        )
    if teacher_logits is not None and (need_feats or len(teacher_logits) != n_rows):
        raise UsageError(
            "stored teacher logits serve logit distillation of the same training windows "
            f"({len(teacher_logits)} stored, {n_rows} "
            f"here{', hidden/attention terms asked' if need_feats else ''})"
        )
    if need_feats and student.config.merge_tokens != teacher.config.merge_tokens:
        raise UsageError(
            f"hidden/attention distillation needs the same rows in both models; the student merges "
            f"{student.config.merge_tokens} tokens, the teacher {teacher.config.merge_tokens} (use logit KD only)"
        )
    n_s, n_t = student.config.n_layers, teacher.config.n_layers
    lmap = cfg.layer_map or default_layer_map(n_s, n_t)
    if len(lmap) != n_s or any(not 1 <= j <= n_t for j in lmap):
        raise UsageError(
            f"layer_map must give a teacher layer in 1..{n_t} for each of {n_s} student layers, got {lmap}"
        )
    return lmap


def _plus_feature_terms(loss, cfg, lmap, proj, hs, th, att, ta):
    """``loss`` plus the hidden-state MSE and head-averaged attention KL terms, averaged over the mapped layers."""
    import torch.nn.functional as F

    if cfg.hidden_weight:
        for i, j in enumerate(lmap):
            h = hs[i + 1]
            if proj is not None:
                h = proj[i](h)
            loss = loss + cfg.hidden_weight * F.mse_loss(h, th[j]) / len(lmap)
    if cfg.attn_weight:
        for i, j in enumerate(lmap):
            a_s = att[i].mean(1).clamp_min(1e-9)  # (B, T, T), head-averaged
            a_t = ta[j - 1].mean(1).clamp_min(1e-9)
            kl = (a_t * (a_t.log() - a_s.log())).sum(-1).mean()
            loss = loss + cfg.attn_weight * kl / len(lmap)
    return loss
