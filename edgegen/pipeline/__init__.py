"""One pipeline engine: a recipe's steps expand, through the stage registry, into a plan of cached stages.

``registry`` (stage kinds, the plan board, cache keys) · ``kinds/`` (one module per built-in step type) ·
``context`` (what a run's stages share: data read once) · ``engine`` (plan, run, resume) · ``summary``.
The recipe schema and ``--set`` overrides are in :mod:`edgegen.recipe`.
"""

from edgegen.pipeline.registry import Plan, Stage, StageKind, StepModel, kinds, register

__all__ = ["Plan", "Stage", "StageKind", "StepModel", "kinds", "register"]
