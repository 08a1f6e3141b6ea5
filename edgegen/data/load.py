"""Where a run's labelled data come from: a split folder, or a built-in synthetic task (``synthetic:...``)."""

from __future__ import annotations

from pathlib import Path

from edgegen.data.readers import SequenceSet, load_split_dir
from edgegen.errors import UsageError


def load_data(spec: str | Path) -> dict[str, SequenceSet]:
    """A split folder, or ``synthetic:<task>[:n[:length[:seed]]]`` for a built-in synthetic task."""
    s = str(spec)
    if s.startswith("synthetic:"):
        from edgegen.data.synthetic import make_task

        parts = s.split(":")[1:]
        task = parts[0] or "promoter"
        try:
            n = int(parts[1]) if len(parts) > 1 else 3000
            length = int(parts[2]) if len(parts) > 2 else 200
            seed = int(parts[3]) if len(parts) > 3 else 0
        except ValueError:
            raise UsageError(f"bad synthetic data spec {s!r} (synthetic:TASK[:N[:LENGTH[:SEED]]])") from None
        try:
            ds = make_task(task, n, length, seed)
        except ValueError as e:
            raise UsageError(str(e)) from None
        n_tr, n_dev = int(0.8 * n), int(0.1 * n)
        import numpy as np

        out = {
            "train": ds.subset(np.arange(0, n_tr)),
            "dev": ds.subset(np.arange(n_tr, n_tr + n_dev)),
            "test": ds.subset(np.arange(n_tr + n_dev, n)),
        }
        for k, v in out.items():
            v.path = f"{s}/{k}"
        return out
    return load_split_dir(spec)


def dataset_info(splits: dict[str, SequenceSet], spec: str | Path) -> dict:
    tr = splits["train"]
    return {
        "name": Path(str(spec)).name if not str(spec).startswith("synthetic:") else str(spec),
        "path": str(spec),
        "train_sha256": tr.fingerprint(),
        "n_train": len(tr),
    }
