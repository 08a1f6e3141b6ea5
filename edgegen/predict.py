"""Classify reads as they stream in: FASTA/FASTQ (plain/gzip/stdin) or a sequence table.

Needs numpy, one runtime and dnaio (for FASTA/FASTQ) only, so it also runs from a
device bundle. Reads longer than the model's window are scored with sliding
windows; shorter ones are padded or skipped; bad records are skipped or fail.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from edgegen.errors import DataError, UsageError


@dataclass(frozen=True)
class PredictConfig:
    """How reads become model inputs and how window scores are combined.

    Args:
        stride: window step in nucleotides for long reads (default: half the window).
        aggregate: ``mean`` of window probabilities, or ``max`` (per-class maximum, renormalised).
        short: ``pad`` reads shorter than the window, or ``skip`` them (counted).
        min_len: reads shorter than this are always skipped (counted).
        on_bad_record: ``skip`` (counted, ids kept) or ``fail`` on non-ACGTN letters / empty records.
        rc_average: average the probabilities of each read and its reverse complement.
    """

    batch_size: int = 64
    stride: int | None = None
    aggregate: Literal["mean", "max"] = "mean"
    short: Literal["pad", "skip"] = "pad"
    min_len: int = 1
    on_bad_record: Literal["skip", "fail"] = "fail"
    rc_average: bool = False
    threads: int | None = None

    def __post_init__(self):
        if self.batch_size < 1:
            raise UsageError("batch_size must be >= 1")
        if self.stride is not None and self.stride < 1:
            raise UsageError("stride must be >= 1")
        if (
            self.aggregate not in ("mean", "max")
            or self.short not in ("pad", "skip")
            or self.on_bad_record not in ("skip", "fail")
        ):
            raise UsageError("aggregate must be mean|max, short pad|skip, on_bad_record skip|fail")


def windows(seq: str, size: int, stride: int) -> list[str]:
    """Windows of ``size`` covering ``seq``; the last one ends at the read's end."""
    if len(seq) <= size:
        return [seq]
    starts = list(range(0, len(seq) - size + 1, stride))
    if starts[-1] != len(seq) - size:
        starts.append(len(seq) - size)
    return [seq[s : s + size] for s in starts]


def _records(path: str | Path, cfg: PredictConfig, stats) -> Iterator[tuple[str, str]]:
    p = str(path)
    low = p.lower()
    if any(low.endswith(e) for e in (".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        from edgegen.data.readers import read_labelled

        ds = read_labelled(p, labelled=False)  # labels, if any, are not the model's input
        for i, s in enumerate(ds.sequences):
            stats.total += 1
            yield f"row{i + 1}", s
        return
    from edgegen.data.reads import iter_reads

    for r in iter_reads(path, on_bad_record=cfg.on_bad_record, stats=stats):
        yield r.id, r.sequence


class ReadClassifier:
    """Reads in, one probability row per read out: each read cut into windows (:func:`windows`), with their reverse
    complements when ``rc_average``, run through ``runner`` in batches and aggregated per read (mean, or max
    renormalised). ``predict`` streams a file through it; a live run folder can feed it a batch file at a time."""

    def __init__(self, runner, cfg: PredictConfig, source=None):
        self.runner, self.cfg, self.source = runner, cfg, source
        self.size = runner.tokenizer.max_len
        self.stride = cfg.stride or max(1, self.size // 2)
        self.counts = {"reads": 0, "bases": 0, "windows": 0, "skipped_short": 0}
        self._pending: list[tuple[str, int, int]] = []  # (id, length, n_windows) in order
        self._buf: list[str] = []

    def add(self, rid: str, seq: str) -> None:
        """Queue one read (a read shorter than ``min_len``, or than the window with ``short: skip``, is counted)."""
        from edgegen.validity import reverse_complement

        if len(seq) < self.cfg.min_len or (self.cfg.short == "skip" and len(seq) < self.size):
            self.counts["skipped_short"] += 1
            return
        ws = windows(seq, self.size, self.stride)
        for w in ws:
            self._buf.append(w)
            if self.cfg.rc_average:
                self._buf.append(reverse_complement(w))
        self._pending.append((rid, len(seq), len(ws)))
        self.counts["reads"] += 1
        self.counts["bases"] += len(seq)
        self.counts["windows"] += len(ws)

    @property
    def full(self) -> bool:
        """Enough windows queued for a few batches: time to :meth:`flush`."""
        return len(self._buf) >= self.cfg.batch_size * 4

    def flush(self) -> list[tuple[str, int, int, np.ndarray]]:
        """Classify every queued read: ``(id, length, windows, probabilities)`` each, in the order they came."""
        from edgegen.runtime import run_batched

        if not self._buf:
            return []
        try:
            ids = self.runner.tokenizer.encode(self._buf)
        except ValueError as e:  # letters were validated by the reader; guard anyway
            raise DataError(str(e), path=None if str(self.source) == "-" else self.source) from None
        logits = run_batched(self.runner, ids, self.cfg.batch_size)
        z = logits - logits.max(1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        rows, i, per = [], 0, 2 if self.cfg.rc_average else 1
        for rid, length, nw in self._pending:
            pw = probs[i : i + nw * per]
            i += nw * per
            if self.cfg.rc_average:
                pw = (pw[0::2] + pw[1::2]) / 2
            p = pw.mean(0) if self.cfg.aggregate == "mean" else pw.max(0) / pw.max(0).sum()
            rows.append((rid, length, nw, p))
        self._buf, self._pending = [], []
        return rows


def predict(
    model,
    reads: str | Path,
    out: str | Path,
    cfg: PredictConfig = PredictConfig(),
    *,
    show_progress: bool = True,
    force: bool = False,
    open_runner=None,
) -> dict:
    """Stream ``reads`` through ``model`` and write one TSV row per read as results arrive.

    Columns: ``id, length, windows, prediction, prob_0..prob_{K-1}, model_version, model_sha256`` (which model made
    each prediction: :func:`model_identity`). ``out`` may be ``-``
    (stdout); a file is written to a temp name and renamed at the end, so an
    interrupted run leaves no half file under the final name.

    ``model``: a Runner, or a path opened by ``open_runner`` (default :func:`edgegen.runtime.load_runner`: files
    only; with ``open_dir=TorchRunner`` it opens model directories too).

    Returns:
        Counts (reads, bases, windows, skipped short/bad/empty, bad ids) and throughput.

    Example:
        >>> predict("student.int8.tflite", "reads.fastq.gz", "preds.tsv")  # doctest: +SKIP
    """
    from edgegen.data.reads import ReadStats
    from edgegen.runtime import Runner, load_runner

    runner = model if isinstance(model, Runner) else (open_runner or load_runner)(model, threads=cfg.threads)
    clf, stats = ReadClassifier(runner, cfg, source=reads), ReadStats()
    to_stdout = str(out) == "-"
    if not to_stdout:
        from edgegen.io import check_output, temp_path

        out = check_output(out, force, kind="file", inputs=(reads, getattr(runner, "path", None)))
        tmp = temp_path(out)  # unique: two runs writing one -o never share a temp file
        fh = open(tmp, "w")
    else:
        fh = sys.stdout
    version, sha = model_identity(runner)
    probs = "\t".join(f"prob_{c}" for c in range(runner.num_classes))
    fh.write(f"id\tlength\twindows\tprediction\t{probs}\tmodel_version\tmodel_sha256\n")
    t0 = time.perf_counter()

    def write(rows):
        for rid, length, nw, p in rows:
            probs = "\t".join(f"{x:.6f}" for x in p)
            fh.write(f"{rid}\t{length}\t{nw}\t{int(p.argmax())}\t{probs}\t{version}\t{sha}\n")

    try:
        for rid, seq in _records(reads, cfg, stats):
            clf.add(rid, seq)
            if clf.full:
                write(clf.flush())
        write(clf.flush())
    except BaseException:
        if not to_stdout:
            fh.close()
            os.unlink(tmp)
        raise
    if not to_stdout:
        from edgegen.io import commit

        fh.close()
        try:
            commit([(tmp, out)], force)
        finally:
            if tmp.exists():
                os.unlink(tmp)
    else:
        fh.flush()
    return _summary(clf, stats, time.perf_counter() - t0) | {"model_version": version, "model_sha256": sha}


def model_identity(runner) -> tuple[str, str]:
    """(version, sha256) of the model a Runner runs, for every prediction row: the release version when the model
    is in a bundle (its ``MANIFEST.json``), else ``-``; the sha256 of the model file (a native model: of its
    weights)."""
    import json

    side = getattr(runner, "sidecar", None) or {}
    sha = side.get("file_sha256") or ""
    if not sha and getattr(runner, "loaded", None) is not None:
        sha = runner.loaded.manifest["files"].get("model.safetensors", "")
    version = "-"
    path = getattr(runner, "path", None)
    if path is not None:
        man = os.path.join(os.path.dirname(os.path.abspath(path)), "MANIFEST.json")
        try:
            with open(man, encoding="utf-8") as fh:
                v = json.load(fh).get("version")
            version = v if isinstance(v, str) and v.replace(".", "").isdigit() else "-"
        except (OSError, ValueError, AttributeError):
            pass
    return version, sha or "-"


def _summary(clf: ReadClassifier, stats, dt: float) -> dict:
    """What a prediction run did: counts, skips, throughput, window and stride."""
    n = clf.counts
    return {
        **n,
        "records_seen": stats.total,
        "skipped_bad": stats.bad,
        "skipped_empty": stats.empty,
        "bad_ids": stats.bad_ids,
        "seconds": dt,
        "reads_per_s": n["reads"] / dt if dt else 0.0,
        "bases_per_s": n["bases"] / dt if dt else 0.0,
        "window": clf.size,
        "stride": clf.stride,
    }
