"""``bench``: the teacher, every final model and every export measured side by side on the test split; the
report (tables, plots) goes in the stage folder and the run's ``report/``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from edgegen.errors import UsageError
from edgegen.pipeline.registry import Stage, StageKind, StepModel, key_of, register, stage_hash


class BenchStep(StepModel):
    type: Literal["bench"]
    device: str = "local"
    runs: int | None = Field(None, ge=5)
    warmup: int | None = Field(None, ge=0)
    threads: list[int] | None = None
    max_samples: int | None = Field(None, ge=10)
    validity: bool = True
    attack: Literal["ism"] | None = None
    later_fields: ClassVar[dict[str, tuple]] = {"attack": (None,)}


@register
class Bench(StageKind):
    Step, phase, once = BenchStep, 50, True

    def expand(self, step, plan) -> None:
        models = [plan.teacher] + plan.finals + plan.exports
        plan.add(
            Stage(
                "bench",
                stage_hash("bench", key_of(step), [m.key for m in models], plan.data_fingerprint),
                "bench",
                step,
                tuple(models),
                output="bench.json",
            )
        )

    def run(self, ctx, stage, tmp) -> dict:
        from edgegen.bench import BenchConfig, bench
        from edgegen.report import write_report

        b, splits = stage.step, ctx.splits()
        if not splits or "test" not in splits:
            raise UsageError("bench needs a test split in the recipe's data")
        models = [ctx.path(m) for m in stage.inputs]
        res = bench(
            models,
            splits["test"],
            b.device,
            BenchConfig(
                runs=b.runs,
                warmup=b.warmup,
                threads=b.threads,
                max_samples=b.max_samples,
                validity=b.validity,
                attack=b.attack,
            ),
            show_progress=ctx.show_progress,
            splits=splits if ctx.data and not ctx.data.startswith("synthetic:") else None,
        )
        write_report(res, tmp)
        return {"models": len(models), "errors": res["errors"]}
