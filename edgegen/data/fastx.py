"""FASTA/FASTQ records with the standard library alone: what :func:`edgegen.data.reads.iter_reads` uses where dnaio
does not install (it publishes no arm64 wheels), so a bundle's ``runner.py predict`` reads FASTA/FASTQ on every
device. Same records as dnaio on well-formed files (tests compare them); a malformed file is a ``FastxError``
naming its line.
"""

from __future__ import annotations

import gzip
from typing import BinaryIO, Iterator


class FastxError(ValueError):
    """A malformed FASTA/FASTQ file; ``line`` is 1-based (None when unknown)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def open_binary(path: str) -> BinaryIO:
    """The file as bytes, gunzipped when it starts with the gzip magic bytes."""
    fh = open(path, "rb")
    if fh.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb")
    return fh


FASTQ_SUFFIXES = (".fastq", ".fq")
FASTA_SUFFIXES = (".fasta", ".fa", ".fna", ".fas", ".fsa", ".ffn")


def format_of(name: str) -> str | None:
    """``fasta`` / ``fastq`` from a file name's suffix (``.gz`` aside), as dnaio decides; None: from the content."""
    base = name.lower()[:-3] if name.lower().endswith(".gz") else name.lower()
    if base.endswith(FASTQ_SUFFIXES):
        return "fastq"
    if base.endswith(FASTA_SUFFIXES):
        return "fasta"
    return None


def records(stream: BinaryIO, fmt: str | None = None) -> Iterator[tuple[str, str]]:
    """(header, sequence) of each FASTA record (sequence lines joined; blank lines skipped) or 4-line FASTQ record
    (no blank line anywhere). ``fmt`` (from the file name) decides the format, else the file's first byte does —
    as dnaio decides."""
    lines = ((i, raw.rstrip(b"\r\n")) for i, raw in enumerate(stream, 1))
    first = next(lines, None)
    if first is None:
        return  # an empty file has no records
    n, head = first
    if fmt is None:
        fmt = "fasta" if head.startswith(b">") else "fastq" if head.startswith(b"@") else None
        if fmt is None:
            raise FastxError(f"not FASTA or FASTQ (the file starts with {head[:1]!r}, not '>' or '@')", n)
    if fmt == "fasta":
        if not head.strip():
            nxt = next(((i, b) for i, b in lines if b.strip()), None)
            if nxt is None:
                return
            n, head = nxt
        if not head.startswith(b">"):
            raise FastxError("a FASTA record must start with '>'", n)
        yield from _fasta(n, head, lines)
    else:
        yield from _fastq(n, head, lines)


def _text(b: bytes, n: int) -> str:
    try:
        return b.decode("ascii")
    except UnicodeDecodeError:
        raise FastxError("a non-ASCII byte", n) from None


def _fasta(n: int, header: bytes, lines) -> Iterator[tuple[str, str]]:
    name, seq = _text(header[1:], n), []
    for i, line in lines:
        if line.startswith(b">"):
            yield name, "".join(seq)
            name, seq = _text(line[1:], i), []
        elif line.strip():
            seq.append(_text(line.strip(), i))
    yield name, "".join(seq)


def _fastq(n: int, header: bytes, lines) -> Iterator[tuple[str, str]]:
    while True:
        if not header.startswith(b"@"):
            raise FastxError("a FASTQ record must start with '@'", n)
        rest = [next(lines, None) for _ in range(3)]
        if rest[-1] is None:
            raise FastxError("the file ends inside a FASTQ record", n)
        (_, seq), (i_plus, plus), (i_qual, qual) = rest
        if not plus.startswith(b"+"):
            raise FastxError("the third line of a FASTQ record must start with '+'", i_plus)
        if len(qual) != len(seq):
            raise FastxError(f"{len(seq)} bases but {len(qual)} quality values", i_qual)
        yield _text(header[1:], n), _text(seq, n + 1)
        nxt = next(lines, None)
        if nxt is None:
            return
        n, header = nxt
