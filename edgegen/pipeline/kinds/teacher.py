"""The teacher: trained from the recipe's data (``train``) or an existing model (``load``; ``hf: true`` imports a
Hugging Face checkpoint folder). Exactly one, the first step."""

from __future__ import annotations

from typing import ClassVar, Literal

from edgegen.pipeline.registry import Stage, StageKind, StepModel, key_of, register, stage_hash
from edgegen.pipeline.summary import brief
from edgegen.train import TrainConfig


class TrainStep(TrainConfig):
    """Train the teacher from the recipe's data."""

    type: Literal["train"]
    later_fields: ClassVar[dict[str, tuple]] = {
        "merge_tokens": (1, None),
        "device": ("auto",),
        "allow_chance": (False,),
    }

    def key_fields(self) -> dict:
        d = key_of(self)
        if d.get("k") is None:
            d["k"] = self.kmer_size()  # k became optional (default by tokenizer): keys keep the k actually used
        return d


class LoadStep(StepModel):
    """Use an existing native model directory (or a Hugging Face checkpoint dir with ``hf: true``) as the teacher."""

    type: Literal["load"]
    path: str
    hf: bool = False


class _Teacher(StageKind):
    phase, teacher = 0, True

    def expand(self, step, plan) -> None:
        inputs = ()
        if isinstance(step, LoadStep):  # the model loaded, by content: new files at the same path are a new teacher
            from edgegen.pipeline.engine import content_key

            inputs = (content_key(step.path),)
        key = stage_hash(
            "teacher",
            step.key_fields() if hasattr(step, "key_fields") else key_of(step),
            plan.data_fingerprint,
            plan.recipe.seed,
            *inputs,
        )
        plan.teacher = plan.add(Stage("teacher", key, "teacher", step))


@register
class Train(_Teacher):
    Step = TrainStep
    needs_data = "data is required to train a teacher (set it in the recipe or with --set data=PATH)"

    def run(self, ctx, stage, tmp) -> dict:
        from edgegen.train import train_teacher

        cfg = TrainConfig(**{k: v for k, v in stage.step.model_dump().items() if k != "type"})
        res = train_teacher(ctx.data, tmp / "model", cfg, show_progress=ctx.show_progress, splits=ctx.splits())
        return {"test": brief(res["test"])}


@register
class Load(_Teacher):
    Step = LoadStep

    def run(self, ctx, stage, tmp) -> dict:
        t = stage.step
        if t.hf:
            from edgegen.hf import import_hf

            import_hf(t.path, tmp / "model")
        else:
            from edgegen.checkpoint import load_model, save_model

            lm = load_model(t.path)
            save_model(
                lm.model,
                lm.tokenizer,
                tmp / "model",
                metrics=lm.manifest.get("metrics"),
                dataset=lm.manifest.get("dataset"),
            )
        return {"source": t.path}
