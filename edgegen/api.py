"""Task-level functions the CLI delegates to (each callable from Python)."""

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
    return {"name": Path(str(spec)).name if not str(spec).startswith("synthetic:") else str(spec), "path": str(spec), "train_sha256": tr.fingerprint(), "n_train": len(tr)}


def test_report(model, tok, splits: dict[str, SequenceSet] | None) -> dict:
    """Classification report of ``model`` on the test split, or {} when there is none."""
    if not splits or "test" not in splits:
        return {}
    from edgegen.metrics import classification_report
    from edgegen.train import encode, predict_logits

    te = splits["test"]
    return classification_report(te.labels, predict_logits(model, encode(tok, te)))


def train_teacher(data: str | Path, out: str | Path, cfg=None, *, init: str | Path | None = None, force: bool = False, show_progress: bool = True,
                  splits: dict[str, SequenceSet] | None = None) -> dict:
    """Train a model on ``data`` (split folder or synthetic spec), evaluate it on test, save to ``out``.

    ``splits``: ``data`` already read (a recipe run reads it once); ``data`` then only names it in the manifest.

    Returns:
        ``{"path", "history", "test"}`` where ``test`` is the evaluation report (if a test split exists).
    """
    from edgegen.checkpoint import load_model, save_model
    from edgegen.io import check_output
    from edgegen.train import TrainConfig, train

    from edgegen import distributed

    check_output(out, force, kind="dir", inputs=(data, init))
    cfg = cfg or TrainConfig()
    distributed.init_from_env(cfg.device)
    splits = splits if splits is not None else load_data(data)
    init_model = load_model(init) if init else None
    model, tok, hist = train(splits, cfg, init=init_model, show_progress=show_progress)
    metrics = test_report(model, tok, splits)
    if distributed.is_main():  # under torchrun, rank 0 writes
        save_model(model, tok, out, metrics={"test": metrics} if metrics else {}, dataset=dataset_info(splits, data),
                   extra={"train_config": cfg.model_dump(), "history": hist}, force=force)
    distributed.barrier()
    return {"path": str(out), "history": hist, "test": metrics}


def _example_and_calib(tok, splits: dict | None, n_batches: int, batch: int = 32, seed: int = 0):
    import numpy as np

    if splits and "train" in splits:
        tr = splits["train"]
        rng = np.random.default_rng(seed)
        idx = rng.permutation(len(tr))[: n_batches * batch]
        ids = tr.encoded(tok, idx)
        y = tr.labels[idx]
        calib = [(ids[i : i + batch], y[i : i + batch]) for i in range(0, len(ids), batch)]
        return ids[:2], calib
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, tok.vocab_size, (2, tok.seq_len)).astype(np.int32)
    ids[:, 0] = tok.cls_id
    return ids, None


def prune_model(model_dir: str | Path, out: str | Path, cfg, *, data: str | Path | None = None, force: bool = False,
                splits: dict[str, SequenceSet] | None = None) -> dict:
    """Load a model dir, prune it with ``cfg`` (PruneConfig), save to ``out``; return the prune report.

    ``data`` (or ``splits``, the same already read) calibrates the pruning and gives the test report."""
    from edgegen.checkpoint import load_model, save_model
    from edgegen.io import check_output
    from edgegen.prune import prune

    check_output(out, force, kind="dir", inputs=(model_dir, data))
    lm = load_model(model_dir)
    if splits is None:
        splits = load_data(data) if data else None
    example, calib = _example_and_calib(lm.tokenizer, splits, cfg.calib_batches)
    pruned = prune(lm.model, cfg, example, calib=calib)
    rep = dict(pruned.prune_report)
    rep["source"] = str(model_dir)
    rep_test = test_report(pruned, lm.tokenizer, splits)
    metrics = {"test": rep_test} if rep_test else {}
    save_model(pruned, lm.tokenizer, out, metrics=metrics, dataset=lm.manifest.get("dataset"), extra={"pruning": rep, "parent": lm.manifest["files"]}, force=force)
    rep["size_before"] = _dir_size(model_dir)
    rep["size_after"] = _dir_size(out)
    rep["metrics"] = metrics
    return rep


def _dir_size(path) -> int:
    p = Path(path)
    return (p / "model.safetensors").stat().st_size if p.is_dir() else p.stat().st_size


def distill_model(
    teacher_dir: str | Path,
    student: str | Path,
    data: str | Path,
    out: str | Path,
    cfg=None,
    *,
    unlabeled: str | Path | None = None,
    teacher_logits: str | Path | None = None,
    force: bool = False,
    show_progress: bool = True,
    splits: dict[str, SequenceSet] | None = None,
) -> dict:
    """Distil a teacher into ``student`` (a model dir, or a YAML of StudentConfig fields) and save it.

    ``unlabeled``: reads (FASTA/FASTQ/table, windowed as in predict) trained on the teacher's outputs alone.
    ``teacher_logits``: a teacher-logit store folder: used when it exists (checked against this teacher and these
    windows), else computed there first, so later runs never run the teacher on the training rows.
    ``splits``: ``data`` already read (a recipe run reads it once).
    """
    from edgegen import distributed
    from edgegen.checkpoint import load_model, save_model
    from edgegen.distill import DistillConfig, StudentConfig, distill, student_from_teacher
    from edgegen.io import check_output

    check_output(out, force, kind="dir", inputs=(teacher_dir, student, data, unlabeled, teacher_logits))
    cfg = cfg or DistillConfig()
    distributed.init_from_env(cfg.device)
    t = load_model(teacher_dir)
    sp = Path(student)
    if sp.is_dir():
        s = load_model(sp)
        if s.tokenizer.to_dict() != t.tokenizer.to_dict():
            raise UsageError("student and teacher use different tokenizers", path=sp)
        smodel = s.model
    else:
        from edgegen.config_io import load_config

        sc = load_config(StudentConfig, sp)
        smodel = student_from_teacher(t.model, **sc.shape(), seed=cfg.seed)
    splits = splits if splits is not None else load_data(data)
    from edgegen.data.readers import check_fits_model

    check_fits_model(max(sp_.num_classes for sp_ in splits.values()), t.model.config.num_classes, data, "the teacher")
    unl = _unlabeled_ids(t.tokenizer, unlabeled)
    store = None
    if teacher_logits is not None:
        from edgegen.train import resolve_device

        t.model.to(distributed.local_device(resolve_device(cfg.device)))  # the teacher runs where training does
        store = teacher_logit_store(t, teacher_dir, splits, cfg, unl, teacher_logits, data=data, unlabeled=unlabeled,
                                    show_progress=show_progress)
    hist = distill(smodel, t.model, cfg, splits, t.tokenizer, show_progress=show_progress, unlabeled_ids=unl, teacher_logits=store)
    if store is not None:
        hist["teacher_logits"] = {"store": str(teacher_logits), "computed_now": bool(store.teacher_runs)}
    metrics = {}
    if "test" in splits:
        metrics = {"test": test_report(smodel, t.tokenizer, splits), "teacher_test": test_report(t.model, t.tokenizer, splits)}
    if distributed.is_main():
        save_model(smodel, t.tokenizer, out, metrics=metrics, dataset=dataset_info(splits, data),
                   extra={"distill_config": cfg.model_dump(), "history": hist, "teacher": str(teacher_dir),
                          "unlabeled": None if unlabeled is None else str(unlabeled)}, force=force)
    distributed.barrier()
    return {"path": str(out), "history": hist, **metrics}


def _unlabeled_ids(tok, unlabeled):
    if unlabeled is None:
        return None
    from edgegen.data.readers import check_usage_path
    from edgegen.teacher_logits import encode_windows

    return encode_windows(tok, check_usage_path(unlabeled, "unlabeled reads"))


def teacher_logit_store(t, teacher_dir, splits, cfg, unlabeled_ids, path, *, data, unlabeled=None, force: bool = False,
                        show_progress: bool = True):
    """Open the store at ``path`` for this teacher and these training windows, or compute it there."""
    from edgegen.distill import training_windows
    from edgegen.teacher_logits import LogitStore, ids_sha256, tokenizer_sha256, write_store

    ids, _, parts = training_windows(t.tokenizer, splits["train"], cfg, unlabeled_ids)
    sha = t.manifest["files"]["model.safetensors"]
    if Path(path).exists() and not force:
        store = LogitStore.open(path, teacher_sha=sha, tokenizer_sha=tokenizer_sha256(t.tokenizer), ids_sha=ids_sha256(ids), rows=len(ids))
        if store.num_classes != t.config.num_classes:
            from edgegen.errors import ModelFileError

            raise ModelFileError(f"store holds {store.num_classes}-class logits; the teacher has {t.config.num_classes} "
                                 "classes", path=Path(path) / "meta.json")
        return store
    return write_store(t.model, t.tokenizer, ids, path, teacher_sha=sha, parts=parts, force=force, batch_size=cfg.eval_batch_size,
                       sources={"teacher": str(teacher_dir), "data": str(data), "unlabeled": None if unlabeled is None else str(unlabeled)},
                       show_progress=show_progress)


def compute_teacher_logits(teacher_dir: str | Path, data: str | Path, out: str | Path, cfg=None, *,
                           unlabeled: str | Path | None = None, force: bool = False, show_progress: bool = True) -> dict:
    """Write the teacher-logit store for distilling ``teacher_dir`` on ``data`` (+ ``unlabeled`` reads) with ``cfg``
    (its augmentation settings decide the rows); ``edgegen distill --teacher-logits OUT`` then reuses it."""
    from edgegen import distributed
    from edgegen.checkpoint import load_model
    from edgegen.distill import DistillConfig
    from edgegen.io import check_output
    from edgegen.train import resolve_device, set_threads

    check_output(out, force, kind="dir", inputs=(teacher_dir, data, unlabeled))
    cfg = cfg or DistillConfig()
    distributed.init_from_env(cfg.device)
    set_threads(cfg.threads)
    t = load_model(teacher_dir)
    t.model.to(distributed.local_device(resolve_device(cfg.device)))
    splits = load_data(data)
    store = teacher_logit_store(t, teacher_dir, splits, cfg, _unlabeled_ids(t.tokenizer, unlabeled), out, data=data,
                                unlabeled=unlabeled, force=force, show_progress=show_progress)
    return {"path": str(out), **{k: store.meta[k] for k in ("rows", "parts", "num_classes", "teacher_sha256", "ids_sha256")}}


def bundle_model(model: str | Path, out: str | Path, *, data: str | Path | None = None, device: str | Path | None = None,
                 wheelhouse: bool = False, platform: str | None = None, python: str | None = None, tflite_runtime: bool = False,
                 force: bool = False) -> Path:
    """Write a self-contained bundle for ``model`` (.onnx/.tflite) to ``out`` (see :func:`edgegen.remote.write_bundle`).

    ``data`` (a sequence table) is included already tokenized as ``inputs.npz`` for ``runner.py measure``, with its
    labels when it has them; ``device`` (a profile) must run the model's runtime. ``wheelhouse`` adds the runner's
    wheels for ``platform`` (default: linux_aarch64 for a device profile, else this machine's) and CPython ``python``
    (default: this interpreter's version) and an ``install.sh`` that installs them with no network.
    """
    import platform as _platform
    import sys
    from edgegen.data.readers import as_dataset, check_fits_model
    from edgegen.remote import write_bundle
    from edgegen.runtime.sidecar import read_sidecar, tokenizer_from_sidecar

    model = Path(model)
    if device:
        from edgegen.devices import load_device

        load_device(device).require_runtime("onnxruntime" if model.suffix == ".onnx" else "tflite", model)
    inputs = None
    if data:
        ds = as_dataset(data)
        side = read_sidecar(model)
        inputs = {"test": tokenizer_from_sidecar(side, model).encode(ds.sequences)}
        if ds.labels is not None:
            check_fits_model(ds.num_classes, side["num_classes"], ds.path)
            inputs["labels"] = ds.labels
    wheels = None
    if wheelhouse:
        plat = platform or ("linux_aarch64" if device else f"linux_{_platform.machine()}")
        wheels = (plat, python or f"{sys.version_info[0]}.{sys.version_info[1]}", tflite_runtime)
    elif platform or python or tflite_runtime:
        raise UsageError("--platform, --python and --tflite-runtime choose the wheels of --wheelhouse; add --wheelhouse")
    return write_bundle(model, out, inputs=inputs, wheels=wheels, force=force)
