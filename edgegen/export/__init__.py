"""Export a native model to ONNX or TFLite, optionally quantized, and verify it.

``export_model(model_dir, out, ExportConfig)`` dispatches to :mod:`edgegen.export.onnx` or
:mod:`edgegen.export.tflite` (imported lazily), writes a sidecar ``<file>.json``
(:mod:`edgegen.runtime.sidecar`: inputs, tokenizer, quantization, calibration and source hashes,
verification results), fails loudly when the file does not compute what the PyTorch model computes
(:mod:`edgegen.export.verify`), and returns an :class:`ExportResult`. What each quant mode means is one
table (:mod:`edgegen.export.quant_modes`); ``max_drop`` runs :mod:`edgegen.export.keep_float`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegen.errors import UsageError
from edgegen.export.config import ExportConfig, graph_mode
from edgegen.export.quant_modes import quant_mode
from edgegen.export.verify import granularities, judge, pick_granularity, size_rule, verification
from edgegen.integrity import require_finite

log = logging.getLogger("edgegen")


def calib_ids(tok, calib, n: int, seed: int = 0):
    """(ids, labels|None) for calibration/verification from a SequenceSet or random tokens."""
    from edgegen.data.readers import SequenceSet

    if isinstance(calib, SequenceSet):
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.permutation(len(calib))[:n])
        return calib.encoded(tok, idx), None if calib.labels is None else calib.labels[idx]
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("ACGT"), tok.max_len)) for _ in range(n)]
    return tok.encode(seqs), None


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote: the file, and its sidecar as written (verification included)."""

    path: Path
    sidecar: dict

    @property
    def files(self) -> list[Path]:
        """The model file and its external weights, if any (the sidecar not included)."""
        from edgegen.runtime.sidecar import model_files

        return model_files(self.path, self.sidecar)


def export(
    model_dir: str | Path,
    out: str | Path,
    cfg: ExportConfig = ExportConfig(),
    *,
    calib=None,
    verify=None,
    force: bool = False,
) -> Path:
    """:func:`export_model`, returning only the written file."""
    return export_model(model_dir, out, cfg, calib=calib, verify=verify, force=force).path


def export_model(
    model_dir: str | Path,
    out: str | Path,
    cfg: ExportConfig = ExportConfig(),
    *,
    calib=None,
    verify=None,
    force: bool = False,
) -> ExportResult:
    """Export a model directory to ``out`` (.onnx or .tflite) and verify it.

    Args:
        model_dir: an edgegen model directory.
        out: the file to write; its sidecar goes to ``out + ".json"``.
        cfg: format and quantization.
        calib: a SequenceSet (or path) for calibration; random DNA if omitted
            (static int8 should always get real sequences).
        verify: a labelled SequenceSet (or path) for verification and
            ``max_drop``; defaults to ``calib``.

    Returns:
        The written file and its sidecar.

    Raises:
        ExportVerificationError: float export differs from torch by more than
            ``atol``, or int8 argmax agreement is below ``min_agreement``, or
            ``max_drop`` cannot be met.

    Example:
        >>> cfg = ExportConfig(format="tflite", quant="int8")
        >>> export("runs/student", "student.int8.tflite", cfg, calib="data/dev.csv")  # doctest: +SKIP
    """
    from edgegen.checkpoint import load_model
    from edgegen.io import remove_quietly, temp_dir

    out = Path(out)
    _check_outputs(out, cfg, force, inputs=(model_dir, calib, verify))
    mode = quant_mode(cfg.format, cfg.quant)
    lm = load_model(model_dir)
    calib_set, verify_set = _datasets(calib, verify)
    if calib_set is None and mode.calibrates:
        log.warning(
            "calibrating %s on random DNA: pass --calib with real sequences for a trustworthy int8 model", cfg.quant
        )
    if cfg.max_drop is not None and mode.step != "fp32" and getattr(verify_set, "labels", None) is None:
        raise UsageError(
            "--max-drop needs labelled data to measure accuracy (pass --calib/--verify with a labelled CSV or "
            "data folder)"
        )
    cal_ids, _ = calib_ids(lm.tokenizer, calib_set, cfg.calib_samples)
    # a private folder beside OUT (concurrent exports never share temp files) holding the file under its final
    # name: an ONNX file records its external data file's name inside it
    stage = temp_dir(out)
    try:
        tmp, sidecar, chosen = _convert_and_verify(lm, model_dir, stage / out.name, cfg, cal_ids, calib_set, verify_set)
        judge(chosen, sidecar["verification"], out)
        if verify_set is not None and verify_set.labels is not None:
            sidecar["reference"] = _drift_reference(tmp, verify_set, cfg.threads)
        _publish(tmp, out, sidecar, cfg, force)
    finally:
        remove_quietly(stage)
    return ExportResult(out, sidecar)


def _check_outputs(out: Path, cfg: ExportConfig, force: bool, inputs: tuple) -> None:
    """OUT has the format's suffix, and neither it, its sidecar nor its external data would clobber anything."""
    from edgegen.io import check_output
    from edgegen.runtime.sidecar import data_file

    want = ".onnx" if cfg.format == "onnx" else ".tflite"
    if out.suffix != want:
        raise UsageError(f"output for format {cfg.format} must end in {want}", path=out)
    protect = tuple(p if isinstance(p, (str, Path)) else None for p in inputs)
    check_output(out, force, kind="file", inputs=protect)
    check_output(str(out) + ".json", force, kind="file", inputs=protect)
    if cfg.format == "onnx":
        check_output(data_file(out), force, kind="file", inputs=protect)


def _datasets(calib, verify):
    """(calibration set, verification set): paths read (calibration from a folder's dev split); verification
    defaults to calibration."""
    from edgegen.data.reads import as_dataset

    calib_set = as_dataset(calib, split="dev") if calib is not None and not hasattr(calib, "sequences") else calib
    verify_set = as_dataset(verify) if verify is not None and not hasattr(verify, "sequences") else verify
    return calib_set, verify_set or calib_set


def _convert_and_verify(lm, model_dir, tmp: Path, cfg: ExportConfig, cal_ids, calib_set, verify_set):
    """Convert once per weight-scale granularity to try, verify each file through the runner users get, and keep
    the chosen one at ``tmp``; returns (tmp, its sidecar with the verification, the chosen config)."""
    from edgegen.inference import predict_logits
    from edgegen.io import write_json
    from edgegen.runtime import load_runner, run_batched
    from edgegen.runtime.sidecar import seal

    if cfg.format == "onnx":
        from edgegen.export import onnx as backend
    else:
        from edgegen.export import tflite as backend
    ver_ids, ver_y = calib_ids(lm.tokenizer, verify_set, cfg.verify_samples, seed=1)
    ref = predict_logits(lm.model, ver_ids)
    require_finite(ref, "the PyTorch model's logits on the verification set", path=lm.path)
    n_params = sum(p.numel() for p in lm.model.parameters())
    tried = []  # (config, sidecar, verification, file) per weight-scale granularity
    for per_channel in granularities(cfg, n_params):
        c = cfg.model_copy(update={"per_channel": per_channel})
        t0 = time.perf_counter()
        if cfg.max_drop is not None and quant_mode(cfg.format, cfg.quant).step != "fp32":
            from edgegen.export.keep_float import accuracy_aware

            info = accuracy_aware(backend, lm, tmp, c, cal_ids, ver_ids, ver_y, ref)
        else:
            info = backend.export(lm.model, lm.tokenizer, tmp, c, cal_ids)
        sidecar = _sidecar(lm, model_dir, c, info, cal_ids, calib_set, time.perf_counter() - t0)
        write_json(str(tmp) + ".json", seal(dict(sidecar), tmp))  # the runner reads the sidecar beside the file
        ver = verification(ref, run_batched(load_runner(tmp, threads=cfg.threads), ver_ids), ver_y)
        ver.update(info.get("search", {}))
        sidecar["verification"] = ver
        keep = tmp.with_name(f"{tmp.name}.{len(tried)}")
        tmp.replace(keep)
        tried.append((c, sidecar, ver, keep))
    c, sidecar, ver, chosen = pick_granularity(tried)
    if note := size_rule(cfg, n_params):
        ver["weight_scales"] = note
    chosen.replace(tmp)
    for *_, f in tried:
        f.unlink(missing_ok=True)
    write_json(str(tmp) + ".json", seal(dict(sidecar), tmp))  # the chosen file's sidecar beside it, not the last tried
    return tmp, sidecar, c


def _drift_reference(model: Path, ds, threads, n: int = 512) -> dict:
    """The drift reference profile (:mod:`edgegen.drift`) of the exported file on up to ``n`` labelled verification
    reads: what ``edgegen watch`` compares live reads with."""
    from edgegen.drift import reference_profile
    from edgegen.runtime import load_runner, run_batched
    from edgegen.validity import reverse_complement

    idx = np.sort(np.random.default_rng(2).permutation(len(ds))[:n])
    seqs = [ds.sequences[i] for i in idx]
    runner = load_runner(model, threads=threads)

    from edgegen.metrics import softmax

    fwd = softmax(run_batched(runner, ds.encoded(runner.tokenizer, idx)))  # the set's remembered ids: tokenized once
    rc = softmax(run_batched(runner, runner.tokenizer.encode([reverse_complement(s) for s in seqs])))
    return reference_profile(seqs, fwd, rc, ds.labels[idx])


def _publish(tmp: Path, out: Path, sidecar: dict, cfg: ExportConfig, force: bool) -> None:
    """Seal the sidecar with the file's (and external data's) sha256 and move everything to OUT at once."""
    from edgegen.io import commit, remove_quietly, sha256_file, write_json
    from edgegen.runtime.sidecar import data_file

    sidecar["file_sha256"] = sha256_file(tmp)
    moves = [(tmp, out), (Path(str(tmp) + ".json"), Path(str(out) + ".json"))]
    if cfg.format == "onnx" and data_file(tmp).exists():
        sidecar["external_data"] = {
            "file": data_file(out).name,
            "sha256": sha256_file(data_file(tmp)),
            "bytes": data_file(tmp).stat().st_size,
        }
        moves.insert(0, (data_file(tmp), data_file(out)))
    write_json(str(tmp) + ".json", sidecar)
    commit(moves, force)
    if cfg.format == "onnx" and "external_data" not in sidecar:
        remove_quietly(data_file(out))  # --force over an export that had one: no stale weights beside the new file


def _sidecar(lm, model_dir, cfg: ExportConfig, info: dict, cal_ids, calib_set, seconds: float) -> dict:
    from edgegen.runtime import sidecar

    mode = quant_mode(cfg.format, cfg.quant)
    return sidecar.build(
        model_format=cfg.format,
        quant=cfg.quant,
        impl=info.get("impl"),
        input_name=info["input_name"],
        input_shape=info["input_shape"],
        output_name=info["output_name"],
        num_classes=lm.model.config.num_classes,
        params=sum(p.numel() for p in lm.model.parameters()),
        macs=lm.model.config.macs(lm.tokenizer.seq_len, cls_only_last=graph_mode(cfg)["cls_shortcut"]),
        graph=graph_mode(cfg),
        tokenizer=lm.tokenizer.to_dict(),
        source_model={"path": str(model_dir), "sha256": lm.manifest["files"]["model.safetensors"]},
        calibration={
            "source": getattr(calib_set, "path", None) or "random DNA",
            "samples": int(len(cal_ids)),
            "sha256": hashlib.sha256(cal_ids.tobytes()).hexdigest(),
            "method": cfg.calibrator if mode.calibrates else None,
        },
        config=cfg.model_dump(),
        seconds=seconds,
        kept_float=info.get("kept_float", []),
    )
