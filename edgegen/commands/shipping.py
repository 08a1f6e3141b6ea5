"""Commands that take a model to a device: export, bench, devices, bundle, predict (its life there after:
:mod:`edgegen.commands.lifecycle`)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, get_args

import typer

from edgegen.commands import app, check_outputs, console, load_yaml_config, save_json
from edgegen.export.quant_modes import Quant


@app.command()
def export(
    model: Path = typer.Argument(..., help="Model directory."),
    out: Path = typer.Option(..., "--out", help="File to write (.onnx or .tflite); its sidecar goes to OUT.json."),
    format: Optional[str] = typer.Option(None, "--format", help="onnx | tflite (default: from OUT's suffix)."),
    quant: str = typer.Option("none", "--quant", help=" | ".join(get_args(Quant))),
    calib: Optional[Path] = typer.Option(
        None, "--calib", help="Sequences for calibration: CSV/FASTA, or a data folder (its dev split)."
    ),
    verify: Optional[Path] = typer.Option(
        None, "--verify", help="Labelled set for verification and --max-drop (default: --calib)."
    ),
    max_drop: Optional[float] = typer.Option(None, "--max-drop", help="Accuracy budget in percentage points vs float."),
    calibrator: str = typer.Option("minmax", help="minmax | percentile | entropy (ONNX static)."),
    batch_size: Optional[int] = typer.Option(None, help="Fixed batch (TFLite default 1; ONNX default dynamic)."),
    per_channel: Optional[bool] = typer.Option(
        None,
        "--per-channel/--per-tensor",
        help="Static int8 weight scales (default: TFLite int8 tries both and keeps per-tensor unless per-channel is "
        "better).",
    ),
    keep_names: bool = typer.Option(
        False, "--keep-names", help="Keep internal tensor names (bigger file, easier debugging)."
    ),
    plain_graph: bool = typer.Option(
        False,
        "--plain-graph",
        help="No graph rewrites (CLS-row-only last layer, additive mask): "
        "the graph a hand-written export gives, for comparisons.",
    ),
    fused_attention: bool = typer.Option(
        False,
        "--fused-attention",
        help="ONNX: attention as ONNX Runtime's fused "
        "MultiHeadAttention kernel (exact; the file then needs ONNX Runtime).",
    ),
    external_data: Optional[bool] = typer.Option(
        None,
        "--external-data/--no-external-data",
        help="ONNX: weights in OUT.data beside the file (default: only over ~1.8 GB, as protobuf cannot write 2 GiB).",
    ),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with ExportConfig fields."),
    force: bool = typer.Option(False, "--force"),
):
    """Export to ONNX or TFLite (optionally int8) and verify it against PyTorch."""
    from edgegen.export import export_model
    from edgegen.export.config import ExportConfig

    fmt = format or {".onnx": "onnx", ".tflite": "tflite"}.get(out.suffix)
    cfg = load_yaml_config(
        ExportConfig,
        config,
        dict(
            format=fmt,
            quant=quant,
            max_drop=max_drop,
            calibrator=calibrator,
            batch_size=batch_size,
            per_channel=per_channel,
            strip_names=False if keep_names else None,
            graph_rewrites=False if plain_graph else None,
            fused_attention=True if fused_attention else None,
            external_data=external_data,
        ),
    )
    res = export_model(model, out, cfg, calib=calib, verify=verify, force=force)
    from edgegen.tables import export_table

    console().print(export_table(res, cfg))


@app.command()
def bench(
    models: List[Path] = typer.Argument(..., help="Model dirs, .onnx and .tflite files; the first is the reference."),
    data: Path = typer.Option(..., "--data", help="Labelled CSV/TSV, or a data folder (its test split)."),
    device: Optional[str] = typer.Option(
        None, "--device", help="Profile name from devices/ or a YAML path (default: local)."
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results JSON here."),
    report: Optional[Path] = typer.Option(
        None, "--report", help="Write report.md, bench.json and PNG plots into this folder."
    ),
    baseline: int = typer.Option(0, "--baseline", help="Index of the reference model."),
    threads: Optional[List[int]] = typer.Option(None, "--threads", help="Thread counts to time (repeatable)."),
    runs: Optional[int] = typer.Option(None, help="Timed runs at batch 1."),
    warmup: Optional[int] = typer.Option(None),
    batch: Optional[int] = typer.Option(None, help="Throughput batch."),
    max_samples: Optional[int] = typer.Option(None, help="Subsample the test set."),
    validity: bool = typer.Option(
        True, "--validity/--no-validity", help="Reverse-complement and sequencing-error checks."
    ),
    attack: Optional[str] = typer.Option(
        None, "--attack", help="ism: how few substitutions flip each model's calls (greedy in-silico mutagenesis)."
    ),
    attack_samples: int = typer.Option(50, "--attack-samples", help="Correctly called test sequences to attack."),
    force: bool = typer.Option(False, "--force", help="Overwrite the --json file and the --report folder."),
):
    """Accuracy, size, latency and memory of models side by side, locally or on a device."""
    from edgegen.bench import BenchConfig
    from edgegen.bench import bench as _bench
    from edgegen.io import staging_dir
    from edgegen.report import write_report
    from edgegen.tables import attack_table, bench_table

    check_outputs(force, json_out, folder=report, inputs=(*models, data))
    cfg = BenchConfig(
        baseline=baseline,
        threads=threads or None,
        runs=runs,
        warmup=warmup,
        batch=batch,
        max_samples=max_samples,
        validity=validity,
        attack=attack,
        attack_samples=attack_samples,
    )
    res = _bench(models, data, device, cfg, partial_out=json_out)
    console().print(bench_table(res))
    if (at := attack_table(res)) is not None:
        console().print(at)
    save_json(json_out, res, force=True)  # checked above; bench kept partial results there while it ran
    if report:
        with staging_dir(report, force=force) as tmp:
            write_report(res, tmp)
        console().print(f"report: {report / 'report.md'}")
    if res["errors"]:
        from edgegen.errors import BackendError

        raise BackendError(
            f"{len(res['errors'])} of {len(models)} models failed (partial results kept): {res['errors'][0]}"
        )


@app.command()
def devices(
    name: Optional[str] = typer.Argument(None, help="Show one profile (name or YAML path)."),
):
    """List device profiles (devices/*.yaml), or validate and show one."""
    from rich.table import Table

    from edgegen.devices import list_devices, load_device

    if name:
        prof = load_device(name)
        console().print_json(prof.model_dump_json())
        return
    t = Table(title="device profiles")
    for c in ("name", "runtimes", "reach", "threads", "file"):
        t.add_column(c)
    for n, f in list_devices().items():
        try:
            p = load_device(f)
            reach = "this machine" if not p.ssh else f"ssh {p.ssh.target()}" + (f":{p.ssh.port}" if p.ssh.port else "")
            t.add_row(n, ", ".join(p.runtimes), reach, str(p.thread_counts()), str(f))
        except Exception as e:  # show broken profiles instead of hiding them
            t.add_row(n, f"[red]invalid: {e}[/red]", "", "", str(f))
    console().print(t)


@app.command()
def bundle(
    model: Path = typer.Argument(..., help=".onnx or .tflite file (with its sidecar)."),
    out: Path = typer.Option(..., "--out", help="Bundle folder to write."),
    data: Optional[Path] = typer.Option(
        None, "--data", help="Labelled set to include, already tokenized, for 'runner.py measure'."
    ),
    device: Optional[str] = typer.Option(
        None, "--device", help="Device profile (checked against the model's runtime)."
    ),
    wheelhouse: bool = typer.Option(
        False, "--wheelhouse", help="Add the runner's wheels and install.sh: installs on the device with no internet."
    ),
    platform: Optional[str] = typer.Option(
        None,
        "--platform",
        help="Wheels for linux_aarch64 | linux_x86_64 (default: aarch64 with --device, else this machine).",
    ),
    python: Optional[str] = typer.Option(
        None, "--python", help="The device's CPython version, e.g. 3.11 (default: this one's)."
    ),
    tflite_runtime: bool = typer.Option(
        False,
        "--tflite-runtime",
        help="TFLite: tflite-runtime + numpy<2 instead of ai-edge-litert (wheels up to CPython 3.10).",
    ),
    acceptance: Optional[Path] = typer.Option(
        None,
        "--acceptance",
        help="Reads (labelled if possible) for the health check a device runs before a deploy makes it current.",
    ),
    version: Optional[str] = typer.Option(
        None, "--version", help="Release version, numbers and dots (default with --acceptance: the UTC time)."
    ),
    sign: Optional[Path] = typer.Option(
        None, "--sign", help="Private key file (edgegen keys new): sign every file of the bundle."
    ),
    audit: Optional[Path] = typer.Option(None, "--audit", help="audit.json (edgegen audit) for the model card."),
    bench_json: Optional[Path] = typer.Option(
        None, "--bench", help="bench.json (edgegen bench, --attack ism) for the model card."
    ),
    force: bool = typer.Option(False, "--force"),
):
    """Write a self-contained bundle (model, sidecar, runner.py, numpy-only edgegen, checksums) to copy onto a
    device; with --acceptance a deployable release, with --sign a signed one."""
    from edgegen.bundle import bundle_model

    bundle_model(
        model,
        out,
        data=data,
        device=device,
        wheelhouse=wheelhouse,
        platform=platform,
        python=python,
        tflite_runtime=tflite_runtime,
        acceptance=acceptance,
        version=version,
        sign=sign,
        audit=audit,
        bench=bench_json,
        force=force,
    )
    if wheelhouse:
        console().print(
            f"bundle written to {out}; on the device (no internet needed): sh install.sh, then "
            f"venv/bin/python runner.py measure --model {model.name} --inputs inputs.npz --out result.json"
        )
        return
    console().print(
        f"bundle written to {out}; on the device: python3 runner.py measure --model {model.name} --inputs inputs.npz "
        "--out result.json"
    )


@app.command()
def predict(
    model: Path = typer.Argument(..., help="Model directory, .onnx or .tflite file."),
    input: str = typer.Option(
        ..., "--input", "-i", help="FASTA/FASTQ (plain or .gz), a sequence table, or - for stdin."
    ),
    out: str = typer.Option(..., "--out", "-o", help="TSV to write (- for stdout)."),
    batch_size: int = typer.Option(64, help="Windows per model call."),
    stride: Optional[int] = typer.Option(
        None, help="Sliding-window step in nt for reads longer than the window (default: half)."
    ),
    aggregate: str = typer.Option("mean", help="Combine window probabilities: mean | max."),
    short: str = typer.Option("pad", help="Reads shorter than the window: pad | skip."),
    min_len: int = typer.Option(1, help="Always skip reads shorter than this."),
    on_bad_record: str = typer.Option("fail", help="Non-ACGTN letters or empty records: skip | fail."),
    rc_average: bool = typer.Option(False, "--rc-average", help="Average each read with its reverse complement."),
    threads: Optional[int] = typer.Option(None),
    force: bool = typer.Option(False, "--force"),
):
    """Classify reads as they stream in; one TSV row per read (id, length, windows, prediction, probabilities)."""
    from edgegen.predict import PredictConfig
    from edgegen.predict import predict as _predict

    cfg = PredictConfig(
        batch_size=batch_size,
        stride=stride,
        aggregate=aggregate,
        short=short,
        min_len=min_len,
        on_bad_record=on_bad_record,
        rc_average=rc_average,
        threads=threads,
    )
    from functools import partial

    from edgegen.inference import TorchRunner
    from edgegen.runtime import load_runner

    st = _predict(model, input, out, cfg, force=force, open_runner=partial(load_runner, open_dir=TorchRunner))
    msg = (
        f"{st['reads']:,} reads ({st['bases']:,} nt, {st['windows']:,} windows) in {st['seconds']:.1f} s: "
        f"{st['reads_per_s']:,.0f} reads/s, {st['bases_per_s']:,.0f} nt/s; skipped: {st['skipped_bad']} bad, "
        f"{st['skipped_empty']} empty, {st['skipped_short']} short"
    )
    if st["bad_ids"]:
        msg += f" (bad: {', '.join(st['bad_ids'][:5])}{', ...' if len(st['bad_ids']) > 5 else ''})"
    typer.echo(msg, err=True)
