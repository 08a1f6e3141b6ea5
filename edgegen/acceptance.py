"""A release's acceptance set, made on the host at bundle time: what a device's health check (:mod:`edgegen.health`)
recomputes and compares before the release may become current."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgegen.releases import check_version

ACCEPTANCE_READS = 256


def release_info(model: str | Path, data, version: str | None, n: int = ACCEPTANCE_READS) -> dict:
    """{"version", "arrays" (for acceptance.npz), "record" (host results and budgets, for MANIFEST.json),
    "reference" (the drift reference profile, REFERENCE.json: :mod:`edgegen.drift`)} for the
    exported ``model``: up to ``n`` reads of ``data`` (a table or FASTA/FASTQ path, or a SequenceSet), their
    reverse complements, labels when known, and the logits this host computes with the same file."""
    from edgegen.data.reads import as_dataset
    from edgegen.errors import UsageError
    from edgegen.health import acceptance_record
    from edgegen.runtime import load_runner, run_batched
    from edgegen.validity import reverse_complement

    version = version or time.strftime("%Y%m%d.%H%M%S", time.gmtime())
    check_version(version, "--version")
    if data is None:
        raise UsageError("a deployable bundle needs --acceptance DATA: the reads its health check runs on a device")
    ds = data if hasattr(data, "sequences") else as_dataset(data)
    idx = np.sort(np.random.default_rng(0).permutation(len(ds.sequences))[:n])
    seqs = [ds.sequences[i] for i in idx]
    runner = load_runner(model)
    ids = runner.tokenizer.encode(seqs)
    rc_ids = runner.tokenizer.encode([reverse_complement(s) for s in seqs])
    expected, expected_rc = run_batched(runner, ids), run_batched(runner, rc_ids)
    labels = None if ds.labels is None else np.asarray(ds.labels)[idx]
    arrays = {"ids": ids, "rc_ids": rc_ids, "expected": expected.astype(np.float32)}
    if labels is not None:
        arrays["labels"] = labels
    record = acceptance_record(expected, expected_rc, labels, runner.sidecar.get("config") or {})
    record["source"] = str(getattr(ds, "path", "") or "")
    from edgegen.drift import reference_profile
    from edgegen.metrics import softmax

    reference = reference_profile(seqs, softmax(expected), softmax(expected_rc), labels)
    return {"version": version, "arrays": arrays, "record": record, "reference": reference}
