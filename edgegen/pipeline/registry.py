"""The stage registry: every recipe step type is one :class:`StageKind`, registered by its module.

A kind owns four things, so adding one touches one file (see ``ARCHITECTURE.md``):

* ``Step``: its pydantic config (``type: Literal["name"]``, ``extra="forbid"``), validated from the recipe's YAML;
* ``expand(step, plan)``: the stages it adds to the plan (a sweep adds several), reading what earlier phases put on
  the :class:`Plan` board (the teacher, branches, final models, exports);
* a cache key per stage, from :func:`key_of` over its own config (``Step.later_fields`` lists fields added after the
  kind existed, left out of the key while at their default, so that runs cached before them are still reused);
* ``run(ctx, stage, tmp)``: build the stage's output in ``tmp`` and return what goes in its ``stage.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # a name that becomes one folder: no '/', no '..'


class StepModel(BaseModel):
    """Base of a step config: strict (unknown fields are errors), immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    later_fields: ClassVar[dict[str, tuple]] = {}


def key_of(step: BaseModel) -> dict:
    """The step's fields as they enter a cache key: those in ``later_fields`` drop out while at their defaults."""
    later = getattr(type(step), "later_fields", {})
    return {k: v for k, v in step.model_dump().items() if not (k in later and v in later[k])}


def stage_hash(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


@dataclass(eq=False)
class Stage:
    """One node of the plan: a folder ``RUN_DIR/<name>/`` built by ``kind`` from ``step`` and its ``inputs``."""

    name: str
    key: str
    kind: str  # the stage.json ``kind``: teacher, prune, student, distill, export, bench (or a registered kind)
    step: BaseModel | None = None
    inputs: tuple["Stage", ...] = ()
    params: dict = field(default_factory=dict)  # kind-specific choices of a sweep (a prune target, a format x quant)
    output: str = "model"  # the path inside the stage folder later stages read


class Plan:
    """The board the kinds write while the plan is built, in phase order; then the ordered list of stages."""

    def __init__(self, recipe, data_fingerprint: str):
        self.recipe, self.data_fingerprint = recipe, data_fingerprint
        self.stages: list[Stage] = []
        self.teacher: Stage | None = None
        self.branches: list[Stage] = []  # models to be distilled (pruned and fresh students)
        self.finals: list[Stage] = []  # the usable compressed models (distilled, or pruned when nothing distils)
        self.exports: list[Stage] = []

    def add(self, stage: Stage) -> Stage:
        self.stages.append(stage)
        return stage

    def __iter__(self):
        return iter(self.stages)


class StageKind:
    """One recipe step type. Subclass, set ``Step`` and ``phase``, implement :meth:`expand` and :meth:`run`,
    decorate with :func:`register`."""

    Step: ClassVar[type[BaseModel]]
    phase: ClassVar[int]  # plan order: teacher 0, prune 10, student 20, distill 30, export 40, bench 50
    teacher: ClassVar[bool] = False  # exactly one teacher step, the first
    once: ClassVar[bool] = False  # at most one step of this type
    needs_data: ClassVar[str | None] = None  # the error when the recipe has no data

    @classmethod
    def check(cls, steps: list) -> None:
        """Checks across all of a recipe's steps of this type (ValueError to refuse the recipe)."""

    @classmethod
    def type_name(cls) -> str:
        return cls.Step.model_fields["type"].annotation.__args__[0]

    def expand(self, step: BaseModel, plan: Plan) -> None:
        raise NotImplementedError

    def run(self, ctx, stage: Stage, tmp) -> dict | None:
        raise NotImplementedError


_KINDS: dict[str, type[StageKind]] = {}


def register(cls: type[StageKind]) -> type[StageKind]:
    """Class decorator: make ``cls`` a recipe step type (its ``Step``'s ``type``)."""
    _KINDS[cls.type_name()] = cls
    return cls


def kinds() -> dict[str, type[StageKind]]:
    """Every registered kind by step type (the built-in ones first)."""
    import edgegen.pipeline.kinds  # noqa: F401  registers the built-in kinds

    return dict(_KINDS)


def kind_of(step_type: str) -> StageKind:
    return kinds()[step_type]()
