"""``prune``: structured pruning of the teacher, one branch per target in ``targets`` (a sweep), or one branch found
by a budgeted shape search (``search``: :class:`edgegen.shape_search.SearchConfig`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edgegen.pipeline.registry import Stage, StageKind, key_of, register, stage_hash
from edgegen.prune import PruneConfig
from edgegen.shape_search import SearchConfig


class PruneStep(PruneConfig):
    """Prune the teacher; ``targets`` makes a sweep (one branch per fraction of ``metric`` kept). Every other field
    is :class:`edgegen.prune.PruneConfig`'s, passed on to each branch."""

    type: Literal["prune"]
    targets: list[float] = Field(default_factory=lambda: [0.5], min_length=1)
    metric: Literal["params", "macs"] = "params"
    search: SearchConfig | None = Field(
        None, description="instead of targets: the shape that fits a latency/size budget on a device, found by search"
    )

    @model_validator(mode="after")
    def _check_sweep(self) -> "PruneStep":
        if self.search is not None:
            given = sorted(self.model_fields_set - {"type", "search"})
            if given:
                raise ValueError(f"search chooses the shape itself: give search alone, not {', '.join(given)}")
            return self
        for name in ("target_params", "target_macs", "head_ratio", "ffn_ratio"):
            if getattr(self, name) is not None:
                raise ValueError(f"{name} is set per branch from targets and metric; give targets instead")
        seen: dict[int, float] = {}
        for t in self.targets:
            if not 0 < t < 1:
                raise ValueError(f"targets must be in (0, 1), got {t}")
            pct = int(round(t * 100))
            if pct in seen:  # one stage folder per whole percent: two targets there would overwrite each other
                raise ValueError(
                    f"targets {seen[pct]} and {t} are both {pct}% (stage prune-{self.metric}{pct}); give "
                    "targets that differ by at least one percent"
                )
            seen[pct] = t
        return self

    def config(self, target: float) -> PruneConfig:
        key = "target_params" if self.metric == "params" else "target_macs"
        return PruneConfig(**self.model_dump(exclude={"type", "targets", "metric", "search"}) | {key: target})


@register
class Prune(StageKind):
    Step, phase, once = PruneStep, 10, True

    def expand(self, step, plan) -> None:
        if step.search is not None:
            key = stage_hash("prune-search", step.search.model_dump(), plan.teacher.key, plan.data_fingerprint)
            st = plan.add(Stage("prune-search", key, "prune", step, (plan.teacher,), {"search": step.search}))
            plan.branches.append(st)
            plan.finals.append(st)
            return
        for tgt in step.targets:
            cfg = step.config(tgt)
            key = stage_hash("prune", key_of(cfg), plan.teacher.key, plan.data_fingerprint)
            st = plan.add(
                Stage(
                    f"prune-{step.metric}{int(round(tgt * 100))}", key, "prune", step, (plan.teacher,), {"config": cfg}
                )
            )
            plan.branches.append(st)
            plan.finals.append(st)  # usable as it is when nothing distils it

    def run(self, ctx, stage, tmp) -> dict:
        from edgegen.prune import prune_model

        if "search" in stage.params:
            from edgegen.shape_search import search_shape

            search = stage.params["search"]
            rep = search_shape(
                ctx.teacher_dir, ctx.data, tmp / "model", search, splits=ctx.splits(), show_progress=ctx.show_progress
            )
            return {"budget": rep["budget"], "chosen": rep["chosen"], "cost_table": rep["cost_table"]["measured_on"]}

        rep = prune_model(ctx.teacher_dir, tmp / "model", stage.params["config"], data=ctx.data, splits=ctx.splits())
        return {"params_ratio": rep["params_ratio"], "macs_ratio": rep["macs_ratio"], "after": rep["after"]}
