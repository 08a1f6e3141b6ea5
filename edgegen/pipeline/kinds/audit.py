"""``audit``: the recipe's data audited before anything trains (:mod:`edgegen.audit`); ``block`` stops the run at a
verdict that bad (``fail`` by default, ``warn`` to be stricter, ``never`` to only record it)."""

from __future__ import annotations

from typing import Literal

from edgegen.pipeline.registry import Stage, StageKind, StepModel, register, stage_hash


class AuditStep(StepModel):
    """Audit the data (shortcut features, leakage, balance); ``block`` stops the run at that verdict or worse."""

    type: Literal["audit"]
    block: Literal["fail", "warn", "never"] = "fail"
    near: Literal["auto", "mmseqs2", "minhash"] = "auto"


@register
class Audit(StageKind):
    Step, phase, once = AuditStep, -10, True
    needs_data = "an audit step needs the recipe's data"

    def expand(self, step, plan) -> None:
        plan.add(
            Stage(
                "audit",
                stage_hash("audit", step.model_dump(), plan.data_fingerprint),
                "audit",
                step,
                (),
                output="audit.json",
            )
        )

    def run(self, ctx, stage, tmp) -> dict:
        from edgegen.audit import SEVERITY, audit_data, write_audit
        from edgegen.errors import DataError

        rep = audit_data(ctx.splits(), near_method=stage.step.near)
        rep["data"] = ctx.data
        write_audit(rep, tmp, force=True)
        block = stage.step.block
        if block != "never" and SEVERITY[rep["verdict"]] >= SEVERITY[block]:
            first = rep["reasons"][0] if rep["reasons"] else rep["verdict"]
            raise DataError(
                f"the data audit says {rep['verdict']} ({first}); the run stops here (audit step "
                f"block: {block}; 'edgegen audit DATA' shows every finding, block: never records only)",
                path=ctx.data,
            )
        return {"verdict": rep["verdict"], "reasons": rep["reasons"]}
