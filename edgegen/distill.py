"""Knowledge distillation from a teacher into a (pruned or smaller) student.

Loss = alpha * CE(labels) + beta * T^2 * KL(softmax(t/T) || softmax(s/T))
       + hidden_weight * MSE(proj(h_s), h_t) + attn_weight * KL(A_t || A_s)
with a layer map from student to teacher layers (MiniLM-style attention
transfer on head-averaged attention distributions, so head counts may differ).
Teacher logits are computed once per dataset when only logits are distilled.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from edgegen.data.readers import SequenceSet
from edgegen.distill_loop import run_distillation
from edgegen.errors import UsageError
from edgegen.fit import OptimConfig, resolve_device
from edgegen.inference import model_device

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
    augment: int = Field(
        0,
        ge=0,
        le=8,
        description="teacher-labelled copies of each training sequence with random "
        "substitutions, trained on the KD term only (more of the teacher's function for small training sets)",
    )
    mutation_rate: float = Field(0.05, gt=0, le=0.5, description="per-base substitution rate of the augmented copies")
    lr: float = Field(5e-4, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "DistillConfig":
        if self.alpha + self.beta + self.hidden_weight + self.attn_weight <= 0:
            raise ValueError("all loss weights are zero")
        return self


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
    if (
        student.config.vocab_size != teacher.config.vocab_size
        or student.config.num_classes != teacher.config.num_classes
    ):
        raise UsageError("student and teacher disagree on vocabulary or number of classes")
    teacher.eval()
    frozen = [(p, p.requires_grad) for p in teacher.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    home = model_device(teacher)
    try:
        teacher.to(resolve_device(cfg.device))  # teacher logits (cached or per batch) come from the training device
        return run_distillation(student, teacher, cfg, splits, tokenizer, show_progress, unlabeled_ids, teacher_logits)
    finally:
        teacher.to(home)
        for p, flag in frozen:
            p.requires_grad_(flag)


def distill_model(
    teacher_dir: str | Path,
    student: str | Path,
    data: str | Path,
    out: str | Path,
    cfg=None,
    *,
    unlabeled: str | Path | None = None,
    teacher_logits: str | Path | None = None,
    force: bool = False,
    show_progress: bool = True,
    splits: dict[str, SequenceSet] | None = None,
) -> dict:
    """Distil a teacher into ``student`` (a model dir, or a YAML of StudentConfig fields) and save it.

    ``unlabeled``: reads (FASTA/FASTQ/table, windowed as in predict) trained on the teacher's outputs alone.
    ``teacher_logits``: a teacher-logit store folder: used when it exists (checked against this teacher and these
    windows), else computed there first, so later runs never run the teacher on the training rows.
    ``splits``: ``data`` already read (a recipe run reads it once).
    """
    from edgegen import distributed
    from edgegen.checkpoint import load_model, save_model
    from edgegen.data.load import dataset_info, load_data
    from edgegen.distill_data import unlabeled_windows
    from edgegen.inference import evaluate_on_test
    from edgegen.io import check_output
    from edgegen.teacher_logits import teacher_logit_store

    check_output(out, force, kind="dir", inputs=(teacher_dir, student, data, unlabeled, teacher_logits))
    cfg = cfg or DistillConfig()
    distributed.init_from_env(cfg.device)
    t = load_model(teacher_dir)
    smodel = _student(student, t, cfg.seed)
    splits = splits if splits is not None else load_data(data)
    from edgegen.data.readers import check_fits_model

    check_fits_model(max(sp_.num_classes for sp_ in splits.values()), t.model.config.num_classes, data, "the teacher")
    unl = unlabeled_windows(t.tokenizer, unlabeled)
    store = None
    if teacher_logits is not None:  # opened, or filled now by the teacher, on the device training uses
        t.model.to(distributed.local_device(resolve_device(cfg.device)))
        opts = dict(data=data, unlabeled=unlabeled, show_progress=show_progress)
        store = teacher_logit_store(t, teacher_dir, splits, cfg, unl, teacher_logits, **opts)
    hist = distill(
        smodel, t.model, cfg, splits, t.tokenizer, show_progress=show_progress, unlabeled_ids=unl, teacher_logits=store
    )
    if store is not None:
        hist["teacher_logits"] = {"store": str(teacher_logits), "computed_now": bool(store.teacher_runs)}
    metrics = {}
    if "test" in splits:
        metrics = {
            "test": evaluate_on_test(smodel, t.tokenizer, splits),
            "teacher_test": evaluate_on_test(t.model, t.tokenizer, splits),
        }
    if distributed.is_main():
        save_model(
            smodel,
            t.tokenizer,
            out,
            metrics=metrics,
            dataset=dataset_info(splits, data),
            extra={
                "distill_config": cfg.model_dump(),
                "history": hist,
                "teacher": str(teacher_dir),
                "student_from": str(student) if Path(student).is_dir() else None,  # a pruned model, or a shape
                "unlabeled": None if unlabeled is None else str(unlabeled),
            },
            force=force,
        )
    distributed.barrier()
    return {"path": str(out), "history": hist, **metrics}


def _student(student: str | Path, teacher, seed: int):
    """The student to distil into: a model directory (a pruned teacher; the same tokenizer required), or a YAML of
    :class:`~edgegen.student.StudentConfig` fields for a fresh, smaller model."""
    from edgegen.checkpoint import load_model
    from edgegen.config_io import load_config
    from edgegen.student import StudentConfig, student_from_teacher

    sp = Path(student)
    if sp.is_dir():
        s = load_model(sp)
        if s.tokenizer.to_dict() != teacher.tokenizer.to_dict():
            raise UsageError("student and teacher use different tokenizers", path=sp)
        return s.model
    return student_from_teacher(teacher.model, **load_config(StudentConfig, sp).shape(), seed=seed)


def compute_teacher_logits(
    teacher_dir: str | Path,
    data: str | Path,
    out: str | Path,
    cfg=None,
    *,
    unlabeled: str | Path | None = None,
    force: bool = False,
    show_progress: bool = True,
) -> dict:
    """Write the teacher-logit store for distilling ``teacher_dir`` on ``data`` (+ ``unlabeled`` reads) with ``cfg``
    (its augmentation settings decide the rows); ``edgegen distill --teacher-logits OUT`` then reuses it."""
    from edgegen import distributed
    from edgegen.checkpoint import load_model
    from edgegen.data.load import load_data
    from edgegen.distill_data import unlabeled_windows
    from edgegen.fit import set_threads
    from edgegen.io import check_output
    from edgegen.teacher_logits import teacher_logit_store

    check_output(out, force, kind="dir", inputs=(teacher_dir, data, unlabeled))
    cfg = cfg or DistillConfig()
    distributed.init_from_env(cfg.device)
    set_threads(cfg.threads)
    t = load_model(teacher_dir)
    t.model.to(distributed.local_device(resolve_device(cfg.device)))
    splits = load_data(data)
    store = teacher_logit_store(
        t,
        teacher_dir,
        splits,
        cfg,
        unlabeled_windows(t.tokenizer, unlabeled),
        out,
        data=data,
        unlabeled=unlabeled,
        force=force,
        show_progress=show_progress,
    )
    return {
        "path": str(out),
        **{k: store.meta[k] for k in ("rows", "parts", "num_classes", "teacher_sha256", "ids_sha256")},
    }
