"""``export``: every final model (and the teacher with ``include_teacher``, or alone when nothing is compressed) in
each format x quant mode, accuracy-aware (``max_drop``) against the recipe's dev split."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from edgegen.export.config import ExportConfig
from edgegen.export.quant_modes import Quant
from edgegen.pipeline.registry import Stage, StageKind, StepModel, key_of, register, stage_hash

# bumped when exported graphs change (2: CLS-row-only last layer, additive mask; 3: TokenMerge as a sum of
# slices), so cached exports are redone
EXPORT_GRAPH_VERSION = 3


class ExportStep(StepModel):
    """Export every compressed model (and the teacher with ``include_teacher``) in each format x quant."""

    type: Literal["export"]
    formats: list[Literal["onnx", "tflite"]] = Field(default_factory=lambda: ["tflite", "onnx"], min_length=1)
    quant: list[Quant] = Field(default_factory=lambda: ["int8"], min_length=1)
    max_drop: float | None = Field(1.0, gt=0)
    include_teacher: bool = False
    calib_samples: int = Field(128, ge=1)
    per_channel: bool | None = Field(
        None,
        description="static int8 weight scales (ExportConfig.per_channel; None: TFLite "
        "int8 tries both and keeps per-tensor unless per-channel is better)",
    )
    later_fields: ClassVar[dict[str, tuple]] = {"per_channel": (None,)}

    @model_validator(mode="after")
    def _check(self) -> "ExportStep":
        for f in self.formats:
            for q in self.quant:
                ExportConfig(format=f, quant=q)  # raises on unsupported pairs
        return self


@register
class Export(StageKind):
    Step, phase = ExportStep, 40

    def expand(self, step, plan) -> None:
        srcs = plan.finals + ([plan.teacher] if step.include_teacher or not plan.finals else [])
        for src in srcs:
            for fmt in step.formats:
                for q in step.quant:
                    tag = f"{src.name}.{q}.{fmt}"
                    key = stage_hash(
                        "export", EXPORT_GRAPH_VERSION, key_of(step), fmt, q, src.key, plan.data_fingerprint
                    )
                    plan.exports.append(
                        plan.add(
                            Stage(f"export-{tag}", key, "export", step, (src,), {"format": fmt, "quant": q}, output=tag)
                        )
                    )

    def run(self, ctx, stage, tmp) -> dict:
        from edgegen.export import export_model

        e, splits = stage.step, ctx.splits()
        q = stage.params["quant"]
        cfg = ExportConfig(
            format=stage.params["format"],
            quant=q,
            max_drop=e.max_drop if q != "none" else None,
            calib_samples=e.calib_samples,
            per_channel=e.per_channel,
        )
        calib = splits["train"] if splits else None
        verify = splits.get("dev", splits.get("test")) if splits else None
        if verify is None or cfg.max_drop is None or calib is None:
            cfg = cfg.model_copy(update={"max_drop": None})
        out = tmp / stage.output
        side = export_model(ctx.path(stage.inputs[0]), out, cfg, calib=calib, verify=verify).sidecar
        _write_card(ctx, out, tmp / "MODEL_CARD.md")
        return {
            "verification": {k: v for k, v in side["verification"].items() if k != "search_log"},
            "kept_float": side.get("kept_float"),
        }


def _write_card(ctx, model, dest) -> None:
    """The export's model card (:mod:`edgegen.model_card`), with the run's data audit when it has one."""
    import json

    from edgegen.io import atomic_write_text
    from edgegen.model_card import render

    audit_file = ctx.run_dir / "audit" / "audit.json"
    audit = json.loads(audit_file.read_text()) if audit_file.is_file() else None
    atomic_write_text(dest, render(model, audit=audit))
