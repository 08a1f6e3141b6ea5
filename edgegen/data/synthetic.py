"""Deterministic synthetic DNA tasks for demos and unit tests.

``promoter``: class 1 carries a TATA box ~30 bp upstream of an Inr motif at the
window centre and a GC-rich upstream region; class 0 is background with, at
some rate, one of the two motifs alone (decoys), so that no single k-mer
solves the task and position matters.

``splice``: acceptor (1) has a polypyrimidine tract then ``AG`` at the centre,
donor (2) has ``GT`` + ``AAGT``-like consensus after the centre, decoys (0) have
``AG``/``GT`` at the centre without the context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from edgegen.data.readers import SequenceSet

Task = Literal["promoter", "splice"]
_ALPHA = np.array(list("ACGT"))


def _background(rng: np.random.Generator, n: int, length: int, gc: float) -> np.ndarray:
    p = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
    return rng.choice(4, size=(n, length), p=p).astype(np.uint8)


def _plant(arr: np.ndarray, row: int, pos: int, motif: str, rng: np.random.Generator, mut: float) -> None:
    m = np.array(["ACGT".index(c) for c in motif], dtype=np.uint8)
    flip = rng.random(len(m)) < mut
    m[flip] = rng.integers(0, 4, flip.sum())
    arr[row, pos : pos + len(m)] = m


def make_task(
    task: Task = "promoter", n: int = 2000, length: int = 200, seed: int = 0, noise: float = 0.1
) -> SequenceSet:
    """Generate ``n`` labelled sequences of one ``length`` (same length in every class)."""
    if length < 80:
        raise ValueError(f"synthetic tasks need length >= 80, got {length}")
    rng = np.random.default_rng(seed)
    centre = length // 2
    if task == "promoter":
        labels = rng.integers(0, 2, n)
        arr = _background(rng, n, length, 0.42)
        for i in range(n):
            jitter = int(rng.integers(-3, 4))
            if labels[i] == 1:
                a, b = max(0, centre - int(0.4 * length)), max(0, centre - 35)
                if b > a:
                    arr[i, a:b] = _background(rng, 1, b - a, 0.62)[0]
                if rng.random() > noise:
                    _plant(arr, i, centre - 31 + jitter, "TATAAAA", rng, 0.1)
                if rng.random() > noise:
                    _plant(arr, i, centre + jitter, "TCAGTCT", rng, 0.1)
            else:
                r = rng.random()
                if r < 0.3:
                    _plant(arr, i, int(rng.integers(0, length - 7)), "TATAAAA", rng, 0.1)
                elif r < 0.6:
                    _plant(arr, i, int(rng.integers(0, length - 7)), "TCAGTCT", rng, 0.1)
    elif task == "splice":
        labels = rng.integers(0, 3, n)
        arr = _background(rng, n, length, 0.45)
        for i in range(n):
            if labels[i] == 1:
                tract = rng.choice([1, 3], size=18, p=[0.4, 0.6]).astype(np.uint8)
                arr[i, centre - 20 : centre - 2] = tract
                _plant(arr, i, centre - 2, "CAG", rng, 0.0)
                _plant(arr, i, centre + 1, "G", rng, noise)
            elif labels[i] == 2:
                _plant(arr, i, centre - 3, "AGGTAAGT", rng, noise)
            else:
                _plant(arr, i, centre - 2, "AG" if rng.random() < 0.5 else "GT", rng, 0.0)
                if rng.random() < 0.3:
                    arr[i, centre - 20 : centre - 2] = rng.choice([1, 3], size=18).astype(np.uint8)
    else:
        raise ValueError(f"unknown synthetic task {task!r} (promoter, splice)")
    seqs = ["".join(_ALPHA[row]) for row in arr]
    return SequenceSet(seqs, labels.astype(np.int64), None, f"synthetic:{task}:{seed}", {"synthetic": task})


def write_task_dir(out: str | Path, task: Task = "promoter", n: int = 3000, length: int = 200, seed: int = 0) -> Path:
    """Write ``train/dev/test.csv`` (80/10/10) of a synthetic task into ``out``."""
    from edgegen.io import atomic_write_text

    out = Path(out)
    ds = make_task(task, n, length, seed)
    n_tr, n_dev = int(0.8 * n), int(0.1 * n)
    bounds = {"train": (0, n_tr), "dev": (n_tr, n_tr + n_dev), "test": (n_tr + n_dev, n)}
    for split, (a, b) in bounds.items():
        rows = ["sequence,label"] + [f"{s},{int(y)}" for s, y in zip(ds.sequences[a:b], ds.labels[a:b])]
        atomic_write_text(out / f"{split}.csv", "\n".join(rows) + "\n")
    return out
