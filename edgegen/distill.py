"""Knowledge distillation from a teacher into a (pruned or smaller) student.

Loss = alpha * CE(labels) + beta * T^2 * KL(softmax(t/T) || softmax(s/T))
       + hidden_weight * MSE(proj(h_s), h_t) + attn_weight * KL(A_t || A_s)
with a layer map from student to teacher layers (MiniLM-style attention
transfer on head-averaged attention distributions, so head counts may differ).
Teacher logits are computed once per dataset when only logits are distilled.
"""

from __future__ import annotations

import logging

import numpy as np
from pydantic import Field, model_validator

from edgegen.data.readers import SequenceSet
from edgegen.errors import UsageError
from edgegen.train import OptimConfig, encode, fit, model_device, predict_logits, resolve_device

log = logging.getLogger("edgegen")


class DistillConfig(OptimConfig):
    """Distillation loss weights and schedule (plus the shared optimisation settings)."""

    alpha: float = Field(0.5, ge=0, description="weight of cross-entropy on labels")
    beta: float = Field(0.5, ge=0, description="weight of the logit KD term")
    temperature: float = Field(2.0, gt=0)
    hidden_weight: float = Field(0.0, ge=0, description="weight of hidden-state matching")
    attn_weight: float = Field(0.0, ge=0, description="weight of attention-distribution transfer")
    layer_map: list[int] | None = Field(None, description="teacher layer (1-based output index) for each student layer")
    cache_teacher: bool = True
    augment: int = Field(0, ge=0, le=8, description="teacher-labelled copies of each training sequence with random "
                         "substitutions, trained on the KD term only (more of the teacher's function for small training sets)")
    mutation_rate: float = Field(0.05, gt=0, le=0.5, description="per-base substitution rate of the augmented copies")
    lr: float = Field(5e-4, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "DistillConfig":
        if self.alpha + self.beta + self.hidden_weight + self.attn_weight <= 0:
            raise ValueError("all loss weights are zero")
        return self


class StudentConfig(OptimConfig):
    """A fresh student's shape (fields not given are copied from the teacher)."""

    d_model: int | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    ffn_dim: int | None = None
    merge_tokens: int | None = Field(None, ge=1, le=16, description="merge this many adjacent tokens after embedding "
                                     "(see ModelConfig.merge_tokens): a shorter sequence for the student's encoder")

    def shape(self) -> dict:
        return {k: getattr(self, k) for k in ("d_model", "n_layers", "n_heads", "ffn_dim", "merge_tokens")}


def student_from_teacher(teacher, *, d_model=None, n_layers=None, n_heads=None, ffn_dim=None, merge_tokens=None, seed: int = 0):
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
    }
    if d % h:
        raise UsageError(f"student d_model {d} is not divisible by n_heads {h}")
    torch.manual_seed(seed)
    return GenomicTransformer(tc.model_copy(update=upd))


def default_layer_map(n_student: int, n_teacher: int) -> list[int]:
    """Uniform map: student layer i -> teacher output (i+1)*n_t/n_s (1-based hidden index, at least 1:
    a student deeper than its teacher maps several layers to one)."""
    return [max(1, round((i + 1) * n_teacher / n_student)) for i in range(n_student)]


def training_windows(tokenizer, train: SequenceSet, cfg: DistillConfig, unlabeled_ids: np.ndarray | None = None):
    """The rows distillation trains on, in order: the labelled training set, its augmented copies (no labels), then
    the unlabeled reads' windows (no labels; the KD term only). Returns ``(ids, labels with -1 for none, parts)``."""
    ids, y = encode(tokenizer, train), train.labels
    parts = {"train": len(ids)}
    if cfg.augment:
        if cfg.beta <= 0:
            raise UsageError("augment needs the KD term (beta > 0): augmented copies have no labels")
        aug = tokenizer.encode(substitution_copies(train.sequences, cfg.augment, cfg.mutation_rate, cfg.seed))
        ids, y = np.concatenate([ids, aug]), np.concatenate([y, np.full(len(aug), -1, dtype=y.dtype)])
        parts["augmented"] = len(aug)
    if unlabeled_ids is not None and len(unlabeled_ids):
        if cfg.beta <= 0:
            raise UsageError("unlabeled reads need the KD term (beta > 0): they have no labels")
        if unlabeled_ids.shape[1] != ids.shape[1]:
            raise UsageError(f"unlabeled windows have {unlabeled_ids.shape[1]} tokens, the training set {ids.shape[1]}")
        ids = np.concatenate([ids, unlabeled_ids])
        y = np.concatenate([y, np.full(len(unlabeled_ids), -1, dtype=y.dtype)])
        parts["unlabeled"] = len(unlabeled_ids)
    return ids, y, parts


def teacher_logits_for(teacher, ids: np.ndarray, batch_size: int) -> np.ndarray:
    """The teacher's logits for every row, computed in memory (under torchrun each rank runs its share)."""
    from edgegen import distributed

    mine = np.array_split(np.arange(len(ids)), distributed.world_size())[distributed.rank()]
    return distributed.gather_rows(predict_logits(teacher, ids[mine], batch_size), len(ids))


def distill(
    student,
    teacher,
    cfg: DistillConfig,
    splits: dict[str, SequenceSet],
    tokenizer,
    *,
    show_progress: bool = True,
    unlabeled_ids: np.ndarray | None = None,
    teacher_logits=None,
) -> dict:
    """Distil ``teacher`` into ``student`` in place (best dev epoch kept).

    Args:
        student: a pruned teacher copy or a fresh smaller model (same tokenizer).
        teacher: the original model (frozen, eval mode).
        cfg: loss weights, temperature, layer map and optimisation.
        splits: ``train`` and (for early stopping) ``dev`` sets.
        tokenizer: the tokenizer both models use.
        unlabeled_ids: token ids of unlabeled windows, trained on the KD term only.
        teacher_logits: the teacher's logits for every row of :func:`training_windows` (an array or a
            :class:`~edgegen.teacher_logits.LogitStore`); the teacher then never runs on the training rows.

    Returns:
        The training history.

    Example:
        >>> hist = distill(pruned, teacher, DistillConfig(epochs=3), splits, tok)  # doctest: +SKIP
    """
    if student.config.vocab_size != teacher.config.vocab_size or student.config.num_classes != teacher.config.num_classes:
        raise UsageError("student and teacher disagree on vocabulary or number of classes")
    teacher.eval()
    frozen = [(p, p.requires_grad) for p in teacher.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    home = model_device(teacher)
    try:
        teacher.to(resolve_device(cfg.device))  # teacher logits (cached or per batch) come from the training device
        return _distill(student, teacher, cfg, splits, tokenizer, show_progress, unlabeled_ids, teacher_logits)
    finally:
        teacher.to(home)
        for p, flag in frozen:
            p.requires_grad_(flag)


def _distill(student, teacher, cfg, splits, tokenizer, show_progress, unlabeled_ids, teacher_logits):
    import torch
    import torch.nn.functional as F

    from edgegen import distributed

    tr, dev = splits["train"], splits.get("dev")
    tr_ids, tr_y, parts = training_windows(tokenizer, tr, cfg, unlabeled_ids)
    dev_ids = encode(tokenizer, dev) if dev is not None else None
    need_feats = cfg.hidden_weight > 0 or cfg.attn_weight > 0
    if need_feats and distributed.world_size() > 1:
        raise UsageError("hidden/attention distillation runs in one process; under torchrun distil logits (hidden_weight 0, attn_weight 0)")
    if teacher_logits is not None and (need_feats or len(teacher_logits) != len(tr_ids)):
        raise UsageError("stored teacher logits serve logit distillation of the same training windows "
                         f"({len(teacher_logits)} stored, {len(tr_ids)} here{', hidden/attention terms asked' if need_feats else ''})")
    if need_feats and student.config.merge_tokens != teacher.config.merge_tokens:
        raise UsageError(f"hidden/attention distillation needs the same rows in both models; the student merges "
                         f"{student.config.merge_tokens} tokens, the teacher {teacher.config.merge_tokens} (use logit KD only)")
    n_s, n_t = student.config.n_layers, teacher.config.n_layers
    lmap = cfg.layer_map or default_layer_map(n_s, n_t)
    if len(lmap) != n_s or any(not 1 <= j <= n_t for j in lmap):
        raise UsageError(f"layer_map must give a teacher layer in 1..{n_t} for each of {n_s} student layers, got {lmap}")
    device = model_device(teacher)  # distill() put it on cfg.device
    proj = None
    extra_params = []
    if cfg.hidden_weight > 0 and student.config.d_model != teacher.config.d_model:
        proj = torch.nn.ModuleList(torch.nn.Linear(student.config.d_model, teacher.config.d_model) for _ in lmap).to(device)
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
            kd = F.kl_div(F.log_softmax(logits / T, -1), F.log_softmax(t_logits / T, -1), log_target=True, reduction="batchmean")
            loss = loss + cfg.beta * T * T * kd
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


def substitution_copies(seqs: list[str], copies: int, rate: float, seed: int = 0) -> list[str]:
    """``copies`` versions of each sequence with each base substituted (by a different base) with probability ``rate``."""
    rng = np.random.default_rng(seed)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    index = np.zeros(256, dtype=np.int64)  # byte -> 0..3; N (and anything else) counts as A, so it becomes C, G or T
    index[bases] = np.arange(4)
    out = []
    for _ in range(copies):
        for s in seqs:
            a = np.frombuffer(s.encode("ascii"), dtype=np.uint8).copy()
            hit = rng.random(len(a)) < rate
            a[hit] = bases[(index[a[hit]] + rng.integers(1, 4, int(hit.sum()))) % 4]
            out.append(a.tobytes().decode("ascii"))
    return out
