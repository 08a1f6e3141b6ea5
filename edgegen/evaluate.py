"""Evaluate any edgegen model (dir, .onnx, .tflite) on a labelled set."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgegen.data.readers import SequenceSet, check_fits_model
from edgegen.data.reads import as_dataset
from edgegen.errors import DataError
from edgegen.inference import TorchRunner
from edgegen.runtime import Runner, load_runner, run_batched


def tokenize_for(runner: Runner, ds: SequenceSet) -> np.ndarray:
    return ds.encoded(runner.tokenizer)


def evaluate(
    model: str | Path | Runner,
    data: str | Path | SequenceSet,
    *,
    batch_size: int = 64,
    n_boot: int = 1000,
    threads: int | None = None,
) -> dict:
    """Accuracy, macro F1, MCC and AUROC with bootstrap 95% intervals, per-class recall, ECE.

    Args:
        model: a model directory, ``.onnx``/``.tflite`` file, or an open Runner.
        data: a labelled CSV/TSV, a split folder (its ``test`` split) or a SequenceSet.

    Returns:
        A JSON-ready dict; ``logits`` is not included (see :func:`predict_set`).

    Example:
        >>> evaluate("runs/teacher", "data/promoter/test.csv")["mcc"]["value"]  # doctest: +SKIP
    """
    runner = model if isinstance(model, Runner) else load_runner(model, threads=threads, open_dir=TorchRunner)
    ds = as_dataset(data)
    if ds.labels is None:
        raise DataError("needs labels (a sequence,label table)", path=ds.path)
    check_fits_model(ds.num_classes, runner.num_classes, ds.path)
    logits, timing = predict_set(runner, ds, batch_size=batch_size)
    from edgegen.metrics import classification_report

    rep = classification_report(ds.labels, logits, n_boot=n_boot)
    rep.update(model=str(runner.path), backend=runner.backend, data=ds.path, timing=timing)
    return rep


def predict_set(runner: Runner, ds: SequenceSet, *, batch_size: int = 64) -> tuple[np.ndarray, dict]:
    t0 = time.perf_counter()
    ids = tokenize_for(runner, ds)
    t1 = time.perf_counter()
    logits = run_batched(runner, ids, batch_size)
    t2 = time.perf_counter()
    return logits, {"tokenize_s": t1 - t0, "model_s": t2 - t1, "n": len(ds)}
