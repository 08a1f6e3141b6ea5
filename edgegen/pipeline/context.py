"""What every stage of a run shares: the recipe, the run folder, the plan, and the data, read once."""

from __future__ import annotations

from pathlib import Path

from edgegen.pipeline.registry import Plan, Stage


class RunContext:
    """Passed to every :meth:`StageKind.run`. ``splits()`` reads the recipe's data on first use and hands every later
    stage the same :class:`SequenceSet` objects, which also remember their tokenization (``SequenceSet.encoded``)."""

    def __init__(self, recipe, run_dir: Path, plan: Plan, *, show_progress: bool = True):
        self.recipe, self.run_dir, self.plan, self.show_progress = recipe, Path(run_dir), plan, show_progress
        self._splits = None

    @property
    def data(self) -> str | None:
        """The recipe's data spec (a folder or ``synthetic:…``), as recorded in model manifests."""
        return self.recipe.data

    def splits(self) -> dict | None:
        if self._splits is None and self.recipe.data:
            from edgegen.data.load import load_data

            self._splits = load_data(self.recipe.data)
        return self._splits

    def path(self, stage: Stage) -> Path:
        """What ``stage`` produced: its model directory or exported file."""
        return self.run_dir / stage.name / stage.output

    @property
    def teacher_dir(self) -> Path:
        return self.path(self.plan.teacher)
