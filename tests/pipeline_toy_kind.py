"""A toy stage kind, all in this one file: it proves that a new step type needs no edit of the engine.

``count_params`` writes, for every final model of the plan (the teacher when nothing is compressed), a JSON file with
its parameter count.
"""

from __future__ import annotations

from typing import Literal

from edgegen.pipeline import Stage, StageKind, StepModel, register
from edgegen.pipeline.registry import key_of, stage_hash


class CountParamsStep(StepModel):
    type: Literal["count_params"]
    label: str = "params"


@register
class CountParams(StageKind):
    Step, phase, once = CountParamsStep, 45, True

    def expand(self, step, plan) -> None:
        models = plan.finals or [plan.teacher]
        plan.add(
            Stage(
                "count-params",
                stage_hash("count_params", key_of(step), [m.key for m in models]),
                "count_params",
                step,
                tuple(models),
                output="counts.json",
            )
        )

    def run(self, ctx, stage, tmp) -> dict:
        from edgegen.checkpoint import load_model
        from edgegen.io import write_json

        counts = {m.name: sum(p.numel() for p in load_model(ctx.path(m)).model.parameters()) for m in stage.inputs}
        write_json(tmp / stage.output, {stage.step.label: counts})
        return {"models": len(counts)}
