"""``watch``: classify reads live as a sequencer writes them (device-side: numpy + one runtime).

Follows a run folder at any depth (MinKNOW: ``fastq_pass/[barcodeNN/]*.fastq[.gz]``; or any folder of FASTA/FASTQ
files) and takes a file once it is complete: its size and modification time unchanged over a poll interval (and,
for an empty file, only once the run has ended), or at once when MinKNOW's ``output_hash_*`` lists it with its
digest (the run folder: :mod:`edgegen.run_folder`). Each file's reads are classified as ``predict`` does (windows, RC
averaging, bad records skipped) and written at once to ``OUT/results/<barcode>/<file>.tsv`` (a temp file renamed);
then ``OUT/checkpoint.json`` records the file as done (also atomically). A restarted watch skips what the checkpoint
holds and redoes a file whose result was written but not recorded, replacing that result: every read is counted
once. A file that cannot be read (a truncated gzip) is recorded as bad with the reason and retried if it changes.
Every ``chunk_reads`` reads a drift check (:mod:`edgegen.drift`) appends a line to ``OUT/drift.jsonl``;
``OUT/status.json`` and ``OUT/status.html`` (:mod:`edgegen.status_page`) follow each file. It stops on MinKNOW's
``final_summary_*`` once every file is done, after ``idle_timeout_s`` without new data, or on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from dataclasses import dataclass

import numpy as np

from edgegen.io import atomic_write_text as write_atomic
from edgegen.run_folder import barcode_of, digest_of, listed_hashes, scan


@dataclass
class WatchConfig:
    poll_s: float = 2.0
    idle_timeout_s: float | None = None
    chunk_reads: int = 500
    rc_check_reads: int = 100  # reads of each drift chunk also classified reverse-complemented
    batch_size: int = 64
    stride: int | None = None
    rc_average: bool = False
    threads: int | None = None  # the runtime's threads (None: its default)


class Watch:
    def __init__(self, run_dir: str, runner, out: str, cfg: WatchConfig, reference: dict | None = None):
        from edgegen.predict import PredictConfig, model_identity

        self.run_dir, self.runner, self.out, self.cfg, self.reference = run_dir, runner, out, cfg, reference
        self.pcfg = PredictConfig(
            batch_size=cfg.batch_size, stride=cfg.stride, rc_average=cfg.rc_average, on_bad_record="skip"
        )
        self.version, self.sha = model_identity(runner)
        self.ckpt_path = os.path.join(out, "checkpoint.json")
        try:
            with open(self.ckpt_path) as fh:
                self.ckpt = json.load(fh)
        except FileNotFoundError:
            self.ckpt = {"files": {}, "started": time.time(), "busy_s": 0.0}
        self.chunk_seqs: list[str] = []
        self.chunk_probs: list[np.ndarray] = []
        self.drift_last: dict | None = self.ckpt.get("drift_last")
        self.stop_reason: str | None = None
        self._trim_drift_log()

    def _trim_drift_log(self) -> None:
        """A kill can land after a drift line was appended and before the checkpoint that counts it was written:
        keep only the lines the checkpoint knows, so that the log and the status agree after a restart."""
        path, known = os.path.join(self.out, "drift.jsonl"), self.ckpt.get("chunks", 0)
        try:
            with open(path) as fh:
                lines = fh.read().splitlines(keepends=True)
        except FileNotFoundError:
            return
        kept = [ln for ln in lines if ln.endswith("\n")][:known]
        if len(kept) != len(lines):
            write_atomic(path, "".join(kept))

    # ------------------------------------------------------------------ one file
    def done(self, rel: str, sig: tuple[int, int]) -> bool:
        e = self.ckpt["files"].get(rel)
        return e is not None and (e["size"], e["mtime_ns"]) == tuple(sig)

    def process(self, rel: str, sig: tuple[int, int]) -> None:
        from edgegen.data.reads import ReadStats, iter_reads
        from edgegen.errors import DataError
        from edgegen.predict import ReadClassifier

        t0 = time.perf_counter()
        entry = {"size": sig[0], "mtime_ns": sig[1], "barcode": barcode_of(rel)}
        try:
            stats = ReadStats()
            reads = list(iter_reads(os.path.join(self.run_dir, rel), on_bad_record="skip", stats=stats))
        except DataError as e:
            entry.update(status="bad", why=str(e).split(": ", 1)[-1], reads=0)
            self._record(rel, entry, time.perf_counter() - t0)
            return
        clf = ReadClassifier(self.runner, self.pcfg, source=rel)
        taken = []  # the reads classified (too-short ones are counted, not classified)
        for r in reads:
            before = clf.counts["reads"]
            clf.add(r.id, r.sequence)
            if clf.counts["reads"] > before:
                taken.append(r.sequence)
        rows = clf.flush()
        k = self.runner.num_classes
        counts = np.bincount([int(p.argmax()) for *_, p in rows], minlength=k).tolist()
        result = (
            f"results/{entry['barcode']}/{os.path.basename(rel)}.{hashlib.sha256(rel.encode()).hexdigest()[:8]}.tsv"
        )
        head = "id\tlength\twindows\tprediction\t" + "\t".join(f"prob_{c}" for c in range(k))
        lines = [f"{head}\tmodel_version\tmodel_sha256\tsource"]
        for rid, length, nw, p in rows:
            probs = "\t".join(f"{x:.6f}" for x in p)
            lines.append(f"{rid}\t{length}\t{nw}\t{int(p.argmax())}\t{probs}\t{self.version}\t{self.sha}\t{rel}")
        write_atomic(os.path.join(self.out, result), "\n".join(lines) + "\n")
        entry.update(
            status="done",
            reads=len(rows),
            counts=counts,
            result=result,
            skipped_bad=stats.bad,
            skipped_short=clf.counts["skipped_short"],
        )
        if self.reference is not None:  # before the checkpoint, so that it and the status include this file's check
            self._drift(taken, rows)
        self._record(rel, entry, time.perf_counter() - t0)

    def _record(self, rel: str, entry: dict, seconds: float) -> None:
        entry["seconds"] = seconds
        entry["finished"] = time.time()
        self.ckpt["files"][rel] = entry
        self.ckpt["busy_s"] = self.ckpt.get("busy_s", 0.0) + seconds
        write_atomic(self.ckpt_path, json.dumps(self.ckpt))
        self.write_status()

    def _drift(self, seqs: list[str], rows) -> None:
        t0 = time.perf_counter()
        try:
            self._drift_chunks(seqs, rows)
        finally:  # keep-up counts the drift checks as work too
            self.ckpt["busy_s"] = self.ckpt.get("busy_s", 0.0) + time.perf_counter() - t0

    def _drift_chunks(self, seqs: list[str], rows) -> None:
        from edgegen.drift import check_chunk

        self.chunk_seqs += seqs
        self.chunk_probs += [p for *_, p in rows]
        while len(self.chunk_seqs) >= self.cfg.chunk_reads:
            n = self.cfg.chunk_reads
            seqs_c, probs_c = self.chunk_seqs[:n], np.stack(self.chunk_probs[:n])
            self.chunk_seqs, self.chunk_probs = self.chunk_seqs[n:], self.chunk_probs[n:]
            rc = self._rc_probs(seqs_c[: self.cfg.rc_check_reads])
            res = check_chunk(self.reference, seqs_c, probs_c, None)
            if rc is not None:
                sub = check_chunk(self.reference, seqs_c[: len(rc)], probs_c[: len(rc)], rc)
                if "rc_consistency" in sub["stats"]:
                    res["stats"]["rc_consistency"] = sub["stats"]["rc_consistency"]
                    extra = [r for r in sub["reasons"] if "reverse complement" in r]
                    res["reasons"] += extra
                    res["state"] = "drift" if extra else res["state"]
            res["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            res["chunk"] = self.ckpt["chunks"] = self.ckpt.get("chunks", 0) + 1
            self.drift_last = self.ckpt["drift_last"] = res
            fd = os.open(os.path.join(self.out, "drift.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (json.dumps(res) + "\n").encode())
            finally:
                os.close(fd)

    def _rc_probs(self, seqs: list[str]):
        if not seqs:
            return None
        from edgegen.predict import ReadClassifier
        from edgegen.validity import reverse_complement

        clf = ReadClassifier(self.runner, self.pcfg)
        for i, s in enumerate(seqs):
            clf.add(str(i), reverse_complement(s))
        return np.stack([p for *_, p in clf.flush()])

    # ------------------------------------------------------------------ status
    def summary(self) -> dict:
        from edgegen.status_page import summarise

        return summarise(self)

    def write_status(self) -> None:
        from edgegen.status_page import render_html

        s = self.summary()
        write_atomic(os.path.join(self.out, "status.json"), json.dumps(s, indent=1))
        write_atomic(os.path.join(self.out, "status.html"), render_html(s))

    def _complete(self, rel: str, sig, prev: dict, listed: dict, final: bool) -> bool:
        """Written to the end: listed in MinKNOW's output_hash with that digest, or its size and time unchanged
        since the last poll (an empty file: only once the run has ended)."""
        name = os.path.basename(rel)
        if name in listed and digest_of(os.path.join(self.run_dir, rel), listed[name]) == listed[name]:
            return True
        return prev.get(rel) == sig and (sig[0] > 0 or final)

    # ------------------------------------------------------------------ the loop
    def run(self, max_polls: int | None = None) -> dict:
        os.makedirs(self.out, exist_ok=True)
        prev: dict = {}
        last_new = time.time()
        polls = 0
        stop = {"signal": None}
        old = _on_sigterm(stop)
        try:
            while True:
                cur, final = scan(self.run_dir, self.out)
                if any(prev.get(f) != s for f, s in cur.items()):
                    last_new = time.time()
                listed = listed_hashes(self.run_dir, scan.hash_files)
                for rel in sorted(cur, key=lambda f: (cur[f][1], f)):
                    sig = cur[rel]
                    if self.done(rel, sig) or not self._complete(rel, sig, prev, listed, final):
                        continue
                    self.process(rel, sig)
                    if stop["signal"]:
                        break
                pending = [f for f, s in cur.items() if not self.done(f, s)]
                if stop["signal"]:
                    self.stop_reason = f"stopped by {stop['signal']}"
                elif final and not pending:
                    self.stop_reason = "the run ended (final_summary)"
                elif (
                    self.cfg.idle_timeout_s is not None
                    and time.time() - last_new > self.cfg.idle_timeout_s
                    and not pending
                ):
                    self.stop_reason = f"no new reads for {self.cfg.idle_timeout_s:g} s"
                polls += 1
                if self.stop_reason is None and max_polls is not None and polls >= max_polls:
                    self.stop_reason = f"{max_polls} polls"
                if self.stop_reason:
                    break
                prev = cur
                time.sleep(self.cfg.poll_s)
        except KeyboardInterrupt:
            self.stop_reason = "stopped by Ctrl-C"
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)
        self.write_status()
        return self.summary()


def _on_sigterm(stop: dict):
    """SIGTERM ends the watch after the file in hand (main thread only); returns the previous handler."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        stop["signal"] = "SIGTERM"

    return signal.signal(signal.SIGTERM, handler)


def watch(
    run_dir,
    model,
    out,
    cfg: WatchConfig = WatchConfig(),
    *,
    reference: dict | None = None,
    open_runner=None,
    max_polls: int | None = None,
) -> dict:
    """Follow ``run_dir`` and classify its reads with ``model`` into ``out`` until the run ends (see the module).
    ``reference``: a drift reference profile (default: ``REFERENCE.json`` beside the model, as in a bundle, else the
    export's own, in its sidecar)."""
    from edgegen.runtime import load_runner

    runner = (open_runner or load_runner)(str(model), threads=cfg.threads)
    if reference is None:  # a bundle's REFERENCE.json, else the one the export recorded in its sidecar
        ref_file = os.path.join(os.path.dirname(os.path.abspath(str(model))), "REFERENCE.json")
        if os.path.isfile(ref_file):
            from edgegen.io import read_json

            reference, where = read_json(ref_file, missing="no drift reference"), ref_file
        else:
            reference, where = (getattr(runner, "sidecar", None) or {}).get("reference"), f"{model}.json"
        if reference is not None:
            from edgegen.drift import check_reference

            check_reference(reference, where)
    return Watch(str(run_dir), runner, str(out), cfg, reference).run(max_polls=max_polls)
