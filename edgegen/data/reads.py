"""Reads from FASTA/FASTQ (plain or gzipped, or standard input), streamed with dnaio (or, where it does not install,
:mod:`edgegen.data.fastx`) and checked record by record."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

from edgegen.data.readers import SequenceSet, find_split, read_labelled, require_file, validate_sequence
from edgegen.errors import DataError


@dataclass
class Read:
    id: str
    sequence: str


@dataclass
class ReadStats:
    total: int = 0
    bad: int = 0
    empty: int = 0
    bad_ids: list[str] = field(default_factory=list)


def iter_reads(
    path: str | Path,
    *,
    on_bad_record: Literal["fail", "skip"] = "fail",
    stats: ReadStats | None = None,
) -> Iterator[Read]:
    """Stream records from FASTA/FASTQ (plain or gzipped, ``-`` for stdin): with dnaio where it is installed, else
    with the standard-library reader :mod:`edgegen.data.fastx` (a device without dnaio's wheels).

    Sequences are upper-cased; ``N`` is kept. A record with another letter, or an
    empty record, fails (naming file and record) or is skipped and counted in
    ``stats``, by ``on_bad_record``.
    """
    stats = stats if stats is not None else ReadStats()
    name = "<stdin>" if str(path) == "-" else str(require_file(path))
    for n, (header, seq) in enumerate(_records(path, name), start=1):
        stats.total += 1
        rid = header.split()[0] if header.split() else f"record{n}"
        if not seq:
            stats.empty += 1
            if on_bad_record == "fail":
                raise DataError(f"record {n} ({rid!r}) is empty", path=name)
            continue
        try:
            s = validate_sequence(seq)
        except ValueError as e:
            stats.bad += 1
            if len(stats.bad_ids) < 100:
                stats.bad_ids.append(rid)
            if on_bad_record == "fail":
                raise DataError(f"record {n} ({rid!r}): {e}", path=name) from None
            continue
        yield Read(rid, s)


def _records(path, name: str) -> Iterator[tuple[str, str]]:
    """(header, sequence) pairs, every reading error a one-line DataError naming the file."""
    try:
        import dnaio
    except ImportError:
        dnaio = None
    from edgegen.data.fastx import FastxError, format_of, open_binary, records

    try:
        if dnaio is None:
            with open_binary(name) if str(path) != "-" else _stdin_binary() as fh:
                yield from records(fh, format_of(name))
            return
        with dnaio.open(_stdin_binary() if str(path) == "-" else name) as reader:
            for rec in reader:
                yield rec.name or "", rec.sequence
    except FastxError as e:
        what = str(e) if str(e).startswith("not FASTA") else f"malformed record: {e}"
        raise DataError(what, path=name, line=e.line) from None
    except (EOFError, zlib.error, OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read ({type(e).__name__}: {e}); truncated or corrupt file?", path=name) from None
    except Exception as e:  # dnaio's own format errors
        if dnaio is None or not isinstance(e, (dnaio.exceptions.UnknownFileFormat, dnaio.exceptions.FileFormatError)):
            raise
        if isinstance(e, dnaio.exceptions.UnknownFileFormat):
            raise DataError(f"not FASTA or FASTQ ({e})", path=name) from None
        line = getattr(e, "line", None)
        raise DataError(f"malformed record: {e}", path=name, line=None if line is None else line + 1) from None


def _stdin_binary():
    """Standard input as a binary stream, gunzipped when it starts with the gzip magic bytes."""
    import sys

    raw = sys.stdin.buffer
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return raw


def read_sequences(path: str | Path, **kw) -> SequenceSet:
    """Load a whole FASTA/FASTQ or labelled table into memory (tables keep labels)."""
    p = Path(path)
    name = p.name.lower()
    if any(name.endswith(e) for e in (".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        return read_labelled(p)
    reads = list(iter_reads(p, **kw))
    if not reads:
        raise DataError("no records", path=p)
    return SequenceSet([r.sequence for r in reads], None, [r.id for r in reads], str(p))


def as_dataset(path_or_set, *, split: str = "test") -> SequenceSet:
    """Accept a SequenceSet, a table/FASTA file, or a split folder (then use ``split``)."""
    if isinstance(path_or_set, SequenceSet):
        return path_or_set
    p = Path(path_or_set)
    if p.is_dir():
        f = find_split(p, split)
        if f is None:
            raise DataError(f"folder has no {split}.csv[.gz]", path=p)
        return read_labelled(f)
    if not p.exists():
        raise DataError("no such file", path=p)
    return read_sequences(p)
