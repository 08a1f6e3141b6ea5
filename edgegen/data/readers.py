"""Readers for labelled tables (CSV/TSV, optionally gzipped) and data split folders (reads: :mod:`edgegen.data.reads`).

Every problem is raised as :class:`edgegen.errors.DataError` naming the file
and the line or record.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgegen.errors import DataError, UsageError

log = logging.getLogger("edgegen")

_INVALID = re.compile(r"[^ACGTN]")
SPLITS = ("train", "dev", "test")


def validate_sequence(seq: str) -> str:
    """Upper-case ``seq`` and return it; raise ValueError naming the first non-ACGTN letter."""
    s = seq.strip().upper()
    m = _INVALID.search(s)
    if m:
        raise ValueError(f"invalid character {m.group()!r} at position {m.start() + 1} (allowed: A, C, G, T, N)")
    return s


@dataclass
class SequenceSet:
    """A list of DNA sequences with optional integer labels and record ids."""

    sequences: list[str]
    labels: np.ndarray | None = None
    ids: list[str] | None = None
    path: str | None = None
    meta: dict = field(default_factory=dict)
    _encoded: dict = field(default_factory=dict, repr=False, compare=False)  # tokenizer fingerprint -> ids

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def num_classes(self) -> int:
        if self.labels is None or len(self.labels) == 0:
            return 0
        return int(self.labels.max()) + 1

    def subset(self, idx) -> "SequenceSet":
        idx = np.asarray(idx)
        return SequenceSet(
            [self.sequences[i] for i in idx],
            None if self.labels is None else self.labels[idx],
            None if self.ids is None else [self.ids[i] for i in idx],
            self.path,
            dict(self.meta),
        )

    def encoded(self, tok, rows=None) -> np.ndarray:
        """The token ids of these sequences under ``tok`` (every tokenization of a set goes through here).

        The whole set's ids are remembered per tokenizer (by content), so stages sharing this set and a tokenizer
        tokenize it once; do not write into the returned array. ``rows``: only those rows, taken from the remembered
        ids when there are some, else tokenized on their own (a calibration sample never tokenizes a whole set).

        Raises:
            DataError: a letter the tokenizer cannot encode, naming the set's file.
        """
        key = tok.fingerprint()
        ids = self._encoded.get(key)
        if ids is None and rows is not None:
            return self.subset(rows).encoded(tok)
        if ids is None:
            try:
                ids = self._encoded[key] = tok.encode(self.sequences)
            except ValueError as e:  # readers validate already; this guards hand-built sets
                raise DataError(str(e), path=self.path) from None
        return ids if rows is None else ids[np.asarray(rows)]

    def fingerprint(self) -> str:
        """sha256 over sequences and labels: identifies the data a model saw."""
        import hashlib

        h = hashlib.sha256()
        for s in self.sequences:
            h.update(s.encode())
            h.update(b"\n")
        if self.labels is not None:
            h.update(np.asarray(self.labels, dtype=np.int64).tobytes())
        return h.hexdigest()


def _open_text(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def require_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataError("no such file", path=p)
    if p.is_dir():
        raise DataError("is a directory, expected a file", path=p)
    return p


MAX_LABEL = 1 << 20  # class indices beyond this are a column of something else (ids, counts), not classes


def read_labelled(
    path: str | Path,
    *,
    num_classes: int | None = None,
    min_len: int = 1,
    labelled: bool = True,
) -> SequenceSet:
    """Read a ``sequence,label`` table (CSV or TSV, optionally gzipped); with ``labelled=False`` (reads to classify or
    distil on) only the ``sequence`` column is needed and labels are not read.

    Args:
        path: the file; the delimiter is sniffed from the header line.
        num_classes: when given, labels outside ``0..num_classes-1`` are errors.
        min_len: shortest sequence accepted.

    Returns:
        A :class:`SequenceSet` with int64 labels.

    Raises:
        DataError: missing file, empty file, missing column, invalid letter,
            non-integer or unknown label, too-short sequence.

    Example:
        >>> ds = read_labelled("data/promoter/train.csv")  # doctest: +SKIP
    """
    p = require_file(path)
    seqs: list[str] = []
    labels: list[int] = []
    try:
        with _open_text(p) as fh:
            header = fh.readline().lstrip("\ufeff")  # a UTF-8 byte-order mark (Excel's CSV export)
            if not header.strip():
                raise DataError("file is empty (expected a header 'sequence,label')", path=p)
            delim = "\t" if header.count("\t") > header.count(",") else ","
            cols = [c.strip().lower() for c in next(csv.reader([header.strip()], delimiter=delim), [])]
            for want in ("sequence", "label") if labelled else ("sequence",):
                if want not in cols:
                    raise DataError(f"missing column {want!r} (header has {cols})", path=p, line=1)
                if cols.count(want) > 1:
                    raise DataError(f"column {want!r} appears {cols.count(want)} times in the header", path=p, line=1)
            si, li = cols.index("sequence"), cols.index("label") if labelled else cols.index("sequence")
            for lineno, row in enumerate(csv.reader(fh, delimiter=delim), start=2):
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) <= max(si, li):
                    raise DataError(f"expected {len(cols)} fields, found {len(row)}", path=p, line=lineno)
                try:
                    s = validate_sequence(row[si])
                except ValueError as e:
                    raise DataError(str(e), path=p, line=lineno) from None
                if len(s) < min_len:
                    raise DataError(
                        f"sequence of length {len(s)} is shorter than the minimum {min_len}", path=p, line=lineno
                    )
                seqs.append(s)
                if not labelled:
                    continue
                raw = row[li].strip()
                try:
                    lab = int(raw)
                except ValueError:
                    raise DataError(f"label {raw!r} is not an integer class index", path=p, line=lineno) from None
                if lab >= MAX_LABEL:
                    raise DataError(
                        f"label {raw} is not a class index (expected 0..K-1, K at most {MAX_LABEL:,})",
                        path=p,
                        line=lineno,
                    )
                if lab < 0 or (num_classes is not None and lab >= num_classes):
                    bound = f"0..{num_classes - 1}" if num_classes else ">= 0"
                    raise DataError(f"unknown label {lab} (expected {bound})", path=p, line=lineno)
                labels.append(lab)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as e:
        if isinstance(e, FileNotFoundError):
            raise DataError("no such file", path=p) from None
        raise DataError(f"cannot read ({type(e).__name__}: {e})", path=p) from None
    if not seqs:
        raise DataError("no records (file has a header but no rows)", path=p)
    ds = SequenceSet(seqs, np.asarray(labels, dtype=np.int64) if labelled else None, None, str(p))
    return ds


def find_split(data_dir: str | Path, split: str) -> Path | None:
    d = Path(data_dir)
    for ext in (".csv", ".csv.gz", ".tsv", ".tsv.gz"):
        if (d / f"{split}{ext}").exists():
            return d / f"{split}{ext}"
    return None


def load_split_dir(data_dir: str | Path, splits=SPLITS, *, required=("train",)) -> dict[str, SequenceSet]:
    """Load ``train/dev/test`` tables from a folder (any missing optional split is skipped)."""
    d = Path(data_dir)
    if not d.exists():
        raise DataError("no such data folder", path=d)
    if not d.is_dir():
        raise DataError("expected a folder holding train/dev/test CSVs", path=d)
    out: dict[str, SequenceSet] = {}
    for split in splits:
        f = find_split(d, split)
        if f is None:
            if split in required:
                raise DataError(f"no {split}.csv[.gz] or {split}.tsv[.gz] in this folder", path=d)
            continue
        out[split] = read_labelled(f)
    k = check_labels(out)
    for s in out.values():
        s.meta["num_classes"] = k
    return out


def check_labels(splits: dict[str, SequenceSet]) -> int:
    """Labels must be the class indices ``0..K-1`` and the training split must hold every class.

    Returns:
        K, the number of classes.

    Raises:
        DataError: naming the split file: a class missing from training (e.g. labels ``{1, 2}``: no 0),
            or a label in dev/test that training never has.
    """
    train = splits.get("train")
    k = max(s.num_classes for s in splits.values())
    if train is None or train.labels is None:
        return k
    seen = set(np.unique(train.labels).tolist())
    if len(seen) < 2:
        raise DataError(
            f"the training split has a single class ({sorted(seen)}); a classifier needs at least two", path=train.path
        )
    missing = sorted(set(range(k)) - seen)
    for name, ds in splits.items():
        if name == "train" or ds.labels is None:
            continue
        extra = sorted(set(np.unique(ds.labels).tolist()) - seen)
        if extra:
            raise DataError(
                f"label {extra[0]} never occurs in the training split {Path(train.path or 'train').name} "
                f"(training labels: {sorted(seen)}); labels must be class indices 0..K-1 present in training",
                path=ds.path,
            )
    if missing:
        raise DataError(
            f"labels must be class indices 0..{k - 1}, but training has no class {missing[0]} "
            f"(labels seen: {sorted(seen)}); renumber the classes from 0",
            path=train.path,
        )
    return k


def check_fits_model(n_classes: int, model_classes: int, path, what: str = "the model") -> None:
    """Labels ``0..n_classes-1`` must be classes the model has (a 3-class set on a 2-class model is an error)."""
    if n_classes > model_classes:
        raise DataError(f"labels go up to {n_classes - 1} but {what} has {model_classes} classes", path=path)


def check_usage_path(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} not found", path=p)
    return p
