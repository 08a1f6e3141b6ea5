"""The rows a distillation trains on, in order: the labelled training set, its mutated copies (``augment``), then every
window of the unlabeled reads (windowed as ``edgegen predict`` does). A teacher-logit store holds the teacher's logits
for exactly these rows (:mod:`edgegen.teacher_logits`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from edgegen.errors import DataError, UsageError

if TYPE_CHECKING:
    from edgegen.data.readers import SequenceSet


ENCODE_CHUNK = 4096  # windows tokenized at a time when streaming reads


def read_windows(path: str | Path, window: int, stride: int | None = None) -> Iterator[str]:
    """Every window of every read in ``path`` (FASTA/FASTQ, plain or gzipped, or a sequence table; streamed),
    windowed as ``edgegen predict`` does: reads longer than ``window`` in windows of half a window's step, the
    last ending at the read's end; shorter reads whole (padded by the tokenizer)."""
    from edgegen.data.reads import ReadStats
    from edgegen.predict import PredictConfig, _records, windows

    step = stride or max(1, window // 2)
    for _, seq in _records(path, PredictConfig(), ReadStats()):
        yield from windows(seq, window, step)


def encode_windows(tok, path: str | Path, stride: int | None = None) -> np.ndarray:
    """Token ids ``(N, T)`` of every window of the reads in ``path`` (tokenized a chunk at a time)."""
    chunks, buf = [], []
    for w in read_windows(path, tok.max_len, stride):
        buf.append(w)
        if len(buf) == ENCODE_CHUNK:
            chunks.append(tok.encode(buf))
            buf = []
    if buf:
        chunks.append(tok.encode(buf))
    if not chunks:
        raise DataError("no reads to distil on", path=path)
    return np.concatenate(chunks)


def training_windows(tokenizer, train: SequenceSet, cfg, unlabeled_ids: np.ndarray | None = None):
    """The rows distillation trains on, in order: the labelled training set, its augmented copies (no labels), then
    the unlabeled reads' windows (no labels; the KD term only); ``cfg`` is the DistillConfig. Returns
    ``(ids, labels with -1 for none, parts)``."""
    ids, y = train.encoded(tokenizer), train.labels
    parts = {"train": len(ids)}
    if cfg.augment:
        if cfg.beta <= 0:
            raise UsageError("augment needs the KD term (beta > 0): augmented copies have no labels")
        aug = tokenizer.encode(substitution_copies(train.sequences, cfg.augment, cfg.mutation_rate, cfg.seed))
        ids, y = np.concatenate([ids, aug]), np.concatenate([y, np.full(len(aug), -1, dtype=y.dtype)])
        parts["augmented"] = len(aug)
    if unlabeled_ids is not None and len(unlabeled_ids):
        if cfg.beta <= 0:
            raise UsageError("unlabeled reads need the KD term (beta > 0): they have no labels")
        if unlabeled_ids.shape[1] != ids.shape[1]:
            raise UsageError(f"unlabeled windows have {unlabeled_ids.shape[1]} tokens, the training set {ids.shape[1]}")
        ids = np.concatenate([ids, unlabeled_ids])
        y = np.concatenate([y, np.full(len(unlabeled_ids), -1, dtype=y.dtype)])
        parts["unlabeled"] = len(unlabeled_ids)
    return ids, y, parts


def substitution_copies(seqs: list[str], copies: int, rate: float, seed: int = 0) -> list[str]:
    """``copies`` versions of each sequence with each base substituted (by a different base) with probability
    ``rate``."""
    rng = np.random.default_rng(seed)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    index = np.zeros(256, dtype=np.int64)  # byte -> 0..3; N (and anything else) counts as A, so it becomes C, G or T
    index[bases] = np.arange(4)
    out = []
    for _ in range(copies):
        for s in seqs:
            a = np.frombuffer(s.encode("ascii"), dtype=np.uint8).copy()
            hit = rng.random(len(a)) < rate
            a[hit] = bases[(index[a[hit]] + rng.integers(1, 4, int(hit.sum()))) % 4]
            out.append(a.tobytes().decode("ascii"))
    return out


def unlabeled_windows(tok, unlabeled) -> np.ndarray | None:
    """Token ids of every window of the unlabeled reads at ``unlabeled`` (None when there are none)."""
    if unlabeled is None:
        return None
    from edgegen.data.readers import check_usage_path

    return encode_windows(tok, check_usage_path(unlabeled, "unlabeled reads"))
