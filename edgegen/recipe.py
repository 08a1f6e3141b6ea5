"""Recipes: the whole pipeline as data.

A recipe is YAML: ``data``, ``out`` and a list of ``steps``, each ``{type: <registered step>, ...params}`` validated
by pydantic against its stage kind's config (unknown keys are errors). ``edgegen run`` plans and executes them
(:mod:`edgegen.pipeline`): teacher (train or load) -> prune (a sweep of targets) / students -> distill -> export
(formats x quant modes) -> bench -> report, each stage cached by the hash of its config and inputs.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgegen.errors import ConfigError
from edgegen.pipeline.engine import data_fingerprint, dry_run, plan, run_recipe  # noqa: F401  (the recipe API)
from edgegen.pipeline.registry import kinds

log = logging.getLogger("edgegen")
__all__ = ["Recipe", "load_recipe", "plan", "dry_run", "run_recipe", "data_fingerprint"]


class StepError(ValueError):
    """A step that does not validate: ``where`` (``steps.N`` or ``steps.N.field``) and what is wrong."""

    def __init__(self, where: str, msg: str):
        super().__init__(f"{where}: {msg}")
        self.where, self.msg = where, msg


def parse_step(s: Any, i: int) -> BaseModel:
    """Step ``i`` of a recipe validated by its kind's config (a config object is kept as it is): the one place a
    step is checked, for YAML recipes (:func:`load_recipe`) and Python ones (``Recipe(steps=[...])``) alike.

    Raises:
        StepError: naming the step and field.
    """
    from edgegen.config_io import validation_message

    if isinstance(s, BaseModel):
        return s
    if not isinstance(s, dict):
        raise StepError(f"steps.{i}", f"a step must be a mapping with a type, got {type(s).__name__}")
    known = kinds()
    if s.get("type") not in known:
        raise StepError(f"steps.{i}.type", f"unknown step type {s.get('type')!r} (known: {', '.join(known)})")
    try:
        return known[s["type"]].Step.model_validate(s)
    except ValidationError as e:
        loc, msg = validation_message(e)
        raise StepError(f"steps.{i}" if loc == "(root)" else f"steps.{i}.{loc}", msg) from None


class Recipe(BaseModel):
    """A whole pipeline. ``data``: a split folder or ``synthetic:TASK[:N[:LEN]]``; ``out``: the run directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "recipe"
    data: str | None = None
    out: str = "runs/recipe"
    seed: int = 0
    steps: list[Any] = Field(min_length=1)

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, v):
        if not isinstance(v, list):
            return v
        return [parse_step(s, i) for i, s in enumerate(v)]  # a StepError is a ValueError: pydantic reports it

    @model_validator(mode="after")
    def _check(self) -> "Recipe":
        known = kinds()
        types = [s.type for s in self.steps]
        teachers = [t for t in types if known[t].teacher]
        if len(teachers) != 1:
            raise ValueError("steps need exactly one teacher step (type: train or type: load)")
        first = next(t for t in types if known[t].phase >= 0)  # steps about the data alone (audit) may come before
        if not known[first].teacher:
            raise ValueError("the first step must be the teacher (type: train or type: load; an audit may precede it)")
        for t, kind in known.items():
            mine = self.steps_of(t)
            if kind.once and len(mine) > 1:
                raise ValueError(f"at most one {t} step")
            if mine:
                kind.check(mine)
        for t in dict.fromkeys(types):
            if known[t].needs_data and not self.data:
                raise ValueError(known[t].needs_data)
        return self

    def step(self, kind: str):
        return next((s for s in self.steps if s.type == kind), None)

    def steps_of(self, kind: str) -> list:
        return [s for s in self.steps if s.type == kind]


def _set_dotted(d: dict, key: str, value: Any) -> None:
    """Set ``d[a][b][0][c] = value`` for the key ``a.b.0.c`` (list items by index).

    Raises:
        ConfigError: an empty part, a non-integer or out-of-range index, or a part below a plain value.
    """
    parts = key.split(".")
    if not key or any(not p.strip() for p in parts):
        raise ConfigError(f"--set {key!r}: malformed key (expected dotted names, e.g. steps.0.epochs)")
    cur: Any = d
    for depth, p in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(cur, list):
            try:
                i = int(p)
            except ValueError:
                raise ConfigError(f"--set {key}: {where!r} must be a list index (0..{len(cur) - 1})") from None
            if not 0 <= i < len(cur):
                where_ = ".".join(parts[:depth])
                what = (
                    f"no step {i} (recipe has {len(cur)})"
                    if where_ == "steps"
                    else f"no item {i} at {where_} (it has {len(cur)})"
                )
                raise ConfigError(f"--set {key}: {what}")
            if last:
                cur[i] = value
            else:
                cur = cur[i]
        elif isinstance(cur, dict):
            if last:
                cur[p] = value
            else:
                cur = cur.setdefault(p, {})
        else:
            raise ConfigError(
                f"--set {key}: {'.'.join(parts[:depth])!r} is a plain value ({cur!r}), not a mapping or list"
            )


def load_recipe(path: str | Path | None = None, overrides: list[str] | None = None, raw: dict | None = None) -> Recipe:
    """Read and validate a recipe; ``overrides`` are ``key=value`` (dotted keys, YAML values), e.g. ``data=../x``,
    ``steps.0.epochs=2``.

    Raises:
        ConfigError: naming the file, line and field of the first problem.
    """
    import yaml

    from edgegen.config_io import read_yaml, validation_message

    if raw is None:
        data, lines = read_yaml(path)
    else:
        data, lines = copy.deepcopy(dict(raw)), {}
    for ov in overrides or []:
        if "=" not in ov:
            raise ConfigError(f"--set expects key=value, got {ov!r}")
        k, v = ov.split("=", 1)
        try:
            value = yaml.safe_load(v) if v.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(
                f"--set {k.strip()}: value {v!r} is not valid YAML ({' '.join(str(e).split())[:120]})"
            ) from None
        _set_dotted(data, k.strip(), value)
    set_by = {ov.split("=", 1)[0].strip(): ov for ov in overrides or []}

    def where_from(loc: str, line_key: str) -> tuple[str, int | None]:
        """An error's origin: a --set that wrote that field (then no recipe line is to blame), else the recipe line."""
        for k, ov in set_by.items():
            if loc == k or loc.startswith(k + ".") or k.startswith(loc + "."):
                return f" (from --set {ov})", None
        return "", lines.get(line_key)

    steps = data.get("steps")
    if isinstance(steps, list):  # each step by its own kind's config, so errors name steps.N.field
        data["steps"] = steps = list(steps)
        for i, s in enumerate(steps):
            try:
                steps[i] = parse_step(s, i)
            except StepError as e:
                origin, line = where_from(e.where, "steps")
                raise ConfigError(f"{e.where}: {e.msg}{origin}", path=path, line=line) from None
    try:
        r = Recipe.model_validate(data)
    except ValidationError as e:
        loc, msg = validation_message(e)
        where = "" if loc == "(root)" else f"{loc}: "
        origin, line = where_from(loc, loc.split(".")[0])
        raise ConfigError(f"{where}{msg}{origin}", path=path, line=line) from None
    if r.data and not r.data.startswith("synthetic:") and not Path(r.data).exists():
        raise ConfigError(f"data: no such folder {r.data!r}", path=path, line=lines.get("data"))
    lp = r.step("load")
    if lp is not None and not Path(lp.path).exists():
        raise ConfigError(f"steps.0.path: no such model {lp.path!r}", path=path, line=lines.get("steps"))
    return r
