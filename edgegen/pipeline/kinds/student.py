"""``student``: a fresh smaller model shaped from the teacher (fields not given copy it), to be distilled."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from edgegen.pipeline.registry import SAFE_NAME, Stage, StageKind, key_of, register, stage_hash
from edgegen.student import StudentConfig


class StudentStep(StudentConfig):
    """A fresh smaller student (instead of, or besides, pruned ones): fields not given copy the teacher."""

    type: Literal["student"]
    name: str = Field(
        "student", pattern=SAFE_NAME, description="names the stage folder: letters, digits, '.', '_', '-'"
    )
    later_fields: ClassVar[dict[str, tuple]] = {"merge_tokens": (1, None), "device": ("auto",)}


@register
class Student(StageKind):
    Step, phase = StudentStep, 20

    @classmethod
    def check(cls, steps: list) -> None:
        names = [s.name for s in steps]
        if len(set(names)) < len(names):
            raise ValueError(f"student names must differ (got {names})")

    def expand(self, step, plan) -> None:
        st = plan.add(
            Stage(
                f"student-{step.name}",
                stage_hash("student", key_of(step), plan.teacher.key),
                "student",
                step,
                (plan.teacher,),
            )
        )
        plan.branches.append(st)  # untrained: usable only once distilled

    def run(self, ctx, stage, tmp) -> dict:
        from edgegen.checkpoint import load_model, save_model
        from edgegen.student import student_from_teacher

        t = load_model(ctx.teacher_dir)
        m = student_from_teacher(t.model, **stage.step.shape(), seed=ctx.recipe.seed)
        save_model(m, t.tokenizer, tmp / "model")
        return {"params": sum(x.numel() for x in m.parameters())}
