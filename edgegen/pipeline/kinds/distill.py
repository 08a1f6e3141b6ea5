"""``distill``: knowledge distillation from the teacher into every branch (pruned models and fresh students).

With ``unlabeled`` reads the KD term also trains on the teacher's outputs for them. The teacher's logits are
computed once per run into ``RUN_DIR/teacher-logits-<key>/`` and shared by every branch."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from edgegen.distill import DistillConfig
from edgegen.pipeline.registry import Stage, StageKind, key_of, register, stage_hash
from edgegen.pipeline.summary import brief


class DistillStep(DistillConfig):
    """Distil the teacher into every pruned branch and student (``unlabeled``: reads for the KD term; the teacher's
    logits are computed once into the run's ``teacher-logits`` store and shared by every branch)."""

    type: Literal["distill"]
    unlabeled: str | None = Field(
        None, description="FASTA/FASTQ/table of unlabeled reads for the KD term (a path, as data is)"
    )
    later_fields: ClassVar[dict[str, tuple]] = {
        "device": ("auto",),
        "augment": (0,),
        "mutation_rate": (0.05,),
        "unlabeled": (None,),
    }


def _reads_key(step) -> tuple:
    """The unlabeled reads by content (nothing when there are none, so keys made before the field are unchanged)."""
    from edgegen.pipeline.engine import content_key

    return (content_key(step.unlabeled),) if step.unlabeled else ()


@register
class Distill(StageKind):
    Step, phase, once = DistillStep, 30, True
    needs_data = "data is required for distillation"

    def expand(self, step, plan) -> None:
        if not plan.branches:
            from edgegen.errors import ConfigError

            raise ConfigError(
                "the distill step has nothing to distil: add a prune or student step before it, or remove it"
            )
        finals = []
        reads = _reads_key(step)
        for b in plan.branches:
            key = stage_hash("distill", key_of(step), b.key, plan.teacher.key, plan.data_fingerprint, *reads)
            finals.append(
                plan.add(Stage(f"distill-{b.name.split('-', 1)[1]}", key, "distill", step, (b, plan.teacher)))
            )
        plan.finals = finals

    def run(self, ctx, stage, tmp) -> dict:
        from edgegen.distill import distill_model

        d, (src, teacher) = stage.step, stage.inputs
        cfg = DistillConfig(**{k: v for k, v in d.model_dump().items() if k not in ("type", "unlabeled")})
        store = None
        if cfg.cache_teacher and not (cfg.hidden_weight or cfg.attn_weight):
            key = stage_hash(teacher.key, cfg.augment, cfg.mutation_rate, cfg.seed, *_reads_key(d))
            store = ctx.run_dir / f"teacher-logits-{key[:12]}"
        res = distill_model(
            ctx.path(teacher),
            ctx.path(src),
            ctx.data,
            tmp / "model",
            cfg,
            unlabeled=d.unlabeled,
            teacher_logits=store,
            show_progress=ctx.show_progress,
            splits=ctx.splits(),
        )
        return {"test": brief(res.get("test")), "teacher_test": brief(res.get("teacher_test"))}
