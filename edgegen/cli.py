"""The ``edgegen`` command line. Commands only parse and delegate to library
functions; heavy imports happen inside the commands so ``--help`` is instant.
Errors are mapped to exit codes in one place, :func:`main`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

import edgegen

app = typer.Typer(
    name="edgegen",
    help="Prune, distill, quantize and export genomic transformers for field devices, and prove they still work.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool):
    if value:
        typer.echo(f"edgegen {edgegen.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
):
    """edgegen: small, fast genomic transformers for field devices."""


def _console():
    from rich.console import Console

    return Console()


def _check_outputs(force: bool, *files: Optional[Path], folder: Optional[Path] = None) -> None:
    """Before any work: refuse outputs that exist (without --force) or cannot be written."""
    from edgegen.io import check_output

    for f in files:
        if f is not None:
            check_output(f, force, kind="file")
    if folder is not None:
        check_output(folder, force, kind="dir")


def _save_json(path: Optional[Path], obj, force: bool = False) -> None:
    if path is not None:
        from edgegen.io import commit, temp_path, write_json

        tmp = temp_path(path)
        try:
            write_json(tmp, obj)
            commit([(tmp, Path(path))], force)
        finally:
            tmp.unlink(missing_ok=True)
        _console().print(f"wrote {path}")


def _load_yaml_config(cls, path: Optional[Path], overrides: dict):
    """Build a pydantic config from an optional YAML file plus CLI overrides (CLI wins)."""
    from edgegen.config_io import load_config

    return load_config(cls, path, {k: v for k, v in overrides.items() if v is not None})


@app.command()
def train(
    data: str = typer.Option(..., "--data", help="Folder with train/dev/test CSVs, or synthetic:promoter|splice[:N[:LEN]]."),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with TrainConfig fields."),
    tokenizer: Optional[str] = typer.Option(None, help="char | kmer | kmer_nonoverlap (default kmer_nonoverlap)"),
    k: Optional[int] = typer.Option(None, help="k-mer size (default 3; 1 for char)"),
    max_len: Optional[int] = typer.Option(None, help="nucleotide window (default: longest train sequence)"),
    d_model: Optional[int] = typer.Option(None),
    n_layers: Optional[int] = typer.Option(None),
    n_heads: Optional[int] = typer.Option(None),
    ffn_dim: Optional[int] = typer.Option(None),
    positions: Optional[str] = typer.Option(None, help="learned | sinusoidal | rotary"),
    merge_tokens: Optional[int] = typer.Option(None, help="merge this many adjacent tokens after embedding (shorter encoder input)"),
    epochs: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None),
    batch_size: Optional[int] = typer.Option(None),
    max_steps: Optional[int] = typer.Option(None),
    seed: Optional[int] = typer.Option(None),
    threads: Optional[int] = typer.Option(None),
    train_device: Optional[str] = typer.Option(None, "--train-device", help="auto (a CUDA GPU when torch sees one) | cpu | cuda[:N]"),
    init: Optional[Path] = typer.Option(None, "--init", help="Fine-tune this model directory instead of a fresh model."),
    allow_chance: bool = typer.Option(False, "--allow-chance", help="Save the model even if its dev MCC is not above chance."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
):
    """Train a model from labels, evaluate it on the test split, save a model directory."""
    from edgegen.api import train_teacher
    from edgegen.report import metrics_table
    from edgegen.train import TrainConfig

    cfg = _load_yaml_config(TrainConfig, config, dict(
        tokenizer=tokenizer, k=k, max_len=max_len, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
        ffn_dim=ffn_dim, positions=positions, merge_tokens=merge_tokens, epochs=epochs, lr=lr, batch_size=batch_size, max_steps=max_steps,
        seed=seed, threads=threads, device=train_device, allow_chance=allow_chance or None,
    ))
    res = train_teacher(data, out, cfg, init=init, force=force)
    from edgegen import distributed

    if not distributed.is_main():  # under torchrun, rank 0 reports
        return
    if res["test"]:
        _console().print(metrics_table(res["test"], title=f"test set ({out})"))
    _console().print(f"saved model to {out}")


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="Model directory, .onnx or .tflite file."),
    data: Path = typer.Option(..., "--data", help="Labelled CSV/TSV, or a folder (its test split)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON."),
    batch_size: int = typer.Option(64),
    threads: Optional[int] = typer.Option(None),
    force: bool = typer.Option(False, "--force", help="Overwrite the --json file."),
):
    """Accuracy, F1, MCC, AUROC with bootstrap 95% intervals, per class."""
    from edgegen.evaluate import evaluate as _evaluate
    from edgegen.report import metrics_table

    _check_outputs(force, json_out)
    rep = _evaluate(model, data, batch_size=batch_size, threads=threads)
    _console().print(metrics_table(rep, title=f"{model} on {data}"))
    _save_json(json_out, rep, force)


def _stats_table(rep: dict):
    from rich.table import Table

    t = Table(title=f"pruning at {rep['seq_len']} tokens")
    t.add_column("")
    t.add_column("before", justify="right")
    t.add_column("after", justify="right")
    t.add_column("ratio", justify="right")
    b, a = rep["before"], rep["after"]
    t.add_row("params", f"{b['params']:,}", f"{a['params']:,}", f"{a['params'] / b['params']:.3f}")
    t.add_row("MACs / sequence", f"{b['macs']:,}", f"{a['macs']:,}", f"{a['macs'] / b['macs']:.3f}")
    t.add_row("file bytes", f"{rep['size_before']:,}", f"{rep['size_after']:,}", f"{rep['size_after'] / rep['size_before']:.3f}")
    t.add_row("layers", str(b["layers"]), str(a["layers"]), "")
    t.add_row("heads per layer", str(b["heads"]), str(a["heads"]), "")
    t.add_row("FFN per layer", str(b["ffn"]), str(a["ffn"]), "")
    return t


@app.command()
def prune(
    model: Path = typer.Argument(..., help="Model directory to prune."),
    out: Path = typer.Option(..., "--out", help="Pruned model directory to write."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with PruneConfig fields."),
    target_params: Optional[float] = typer.Option(None, help="Keep this fraction of parameters, e.g. 0.5."),
    target_macs: Optional[float] = typer.Option(None, help="Keep this fraction of MACs, e.g. 0.4."),
    head_ratio: Optional[float] = typer.Option(None, help="Remove this fraction of heads per layer."),
    ffn_ratio: Optional[float] = typer.Option(None, help="Remove this fraction of FFN channels per layer."),
    drop_layers: Optional[int] = typer.Option(None, help="Remove this many whole encoder layers."),
    criterion: Optional[str] = typer.Option(None, help="l1 | l2 | taylor | random"),
    global_pruning: Optional[bool] = typer.Option(None, "--global/--local", help="Rank across layers or per layer."),
    iterative_steps: Optional[int] = typer.Option(None),
    data: Optional[str] = typer.Option(None, "--data", help="Data folder: calibration for taylor/drop-layers, and test metrics."),
    json_out: Optional[Path] = typer.Option(None, "--json"),
    force: bool = typer.Option(False, "--force"),
):
    """Remove attention heads, FFN channels and layers physically (torch-pruning)."""
    _check_outputs(force, json_out)
    from edgegen.api import prune_model
    from edgegen.prune import PruneConfig

    cfg = _load_yaml_config(PruneConfig, config, dict(
        target_params=target_params, target_macs=target_macs, head_ratio=head_ratio, ffn_ratio=ffn_ratio,
        drop_layers=drop_layers, criterion=criterion, global_pruning=global_pruning, iterative_steps=iterative_steps,
    ))
    rep = prune_model(model, out, cfg, data=data, force=force)
    _console().print(_stats_table(rep))
    if rep.get("metrics"):
        from edgegen.report import metrics_table

        _console().print(metrics_table(rep["metrics"]["test"], title="pruned model, test set (before fine-tuning)"))
    _console().print(f"saved pruned model to {out}")
    _save_json(json_out, rep, force)


@app.command()
def distill(
    teacher: Path = typer.Option(..., "--teacher", help="Teacher model directory."),
    student: Path = typer.Option(..., "--student", help="Student model directory (e.g. pruned) or YAML with d_model/n_layers/n_heads/ffn_dim."),
    data: str = typer.Option(..., "--data", help="Folder with train/dev/test CSVs."),
    out: Path = typer.Option(..., "--out"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with DistillConfig fields."),
    epochs: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None),
    alpha: Optional[float] = typer.Option(None, help="Weight of CE on labels."),
    beta: Optional[float] = typer.Option(None, help="Weight of logit KD."),
    temperature: Optional[float] = typer.Option(None),
    hidden_weight: Optional[float] = typer.Option(None),
    attn_weight: Optional[float] = typer.Option(None),
    augment: Optional[int] = typer.Option(None, help="Teacher-labelled mutated copies of each training sequence (KD term only)."),
    mutation_rate: Optional[float] = typer.Option(None, help="Per-base substitution rate of those copies (default 0.05)."),
    max_steps: Optional[int] = typer.Option(None),
    threads: Optional[int] = typer.Option(None),
    train_device: Optional[str] = typer.Option(None, "--train-device", help="auto (a CUDA GPU when torch sees one) | cpu | cuda[:N]"),
    unlabeled: Optional[Path] = typer.Option(None, "--unlabeled", help="Reads (FASTA/FASTQ[.gz] or a table) for the KD term "
                                             "only, windowed as in predict: what the teacher knows beyond the labels."),
    teacher_logits: Optional[Path] = typer.Option(None, "--teacher-logits", help="Teacher-logit store: reused when it exists "
                                                  "(checked against teacher and data), else computed there first."),
    json_out: Optional[Path] = typer.Option(None, "--json"),
    force: bool = typer.Option(False, "--force"),
):
    """Win back accuracy: distil the teacher into a pruned or smaller student."""
    _check_outputs(force, json_out)
    from edgegen import distributed
    from edgegen.api import distill_model
    from edgegen.report import metrics_table

    cfg = _distill_config(config, dict(
        epochs=epochs, lr=lr, alpha=alpha, beta=beta, temperature=temperature, hidden_weight=hidden_weight,
        attn_weight=attn_weight, augment=augment, mutation_rate=mutation_rate, max_steps=max_steps, threads=threads,
        device=train_device,
    ))
    res = distill_model(teacher, student, data, out, cfg, unlabeled=unlabeled, teacher_logits=teacher_logits, force=force)
    if not distributed.is_main():
        return
    if "test" in res:
        _console().print(metrics_table(res["teacher_test"], title="teacher, test set"))
        _console().print(metrics_table(res["test"], title="distilled student, test set"))
    _console().print(f"saved distilled model to {out}")
    _save_json(json_out, res, force)


def _distill_config(config, overrides):
    from edgegen.distill import DistillConfig

    return _load_yaml_config(DistillConfig, config, overrides)


@app.command("teacher-logits")
def teacher_logits(
    teacher: Path = typer.Option(..., "--teacher", help="Teacher model directory."),
    data: str = typer.Option(..., "--data", help="Folder with train/dev/test CSVs (the training split is scored)."),
    out: Path = typer.Option(..., "--out", help="Store folder to write (use it with distill --teacher-logits)."),
    unlabeled: Optional[Path] = typer.Option(None, "--unlabeled", help="Reads to score too (as distill --unlabeled)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with DistillConfig fields (augment and seed decide the rows)."),
    augment: Optional[int] = typer.Option(None, help="As distill --augment: the store holds those rows too."),
    mutation_rate: Optional[float] = typer.Option(None),
    threads: Optional[int] = typer.Option(None),
    train_device: Optional[str] = typer.Option(None, "--train-device", help="Where the teacher runs: auto | cpu | cuda[:N]"),
    force: bool = typer.Option(False, "--force"),
):
    """Run the teacher once over every training window and store its logits for later distillations."""
    from edgegen import distributed
    from edgegen.api import compute_teacher_logits

    cfg = _distill_config(config, dict(augment=augment, mutation_rate=mutation_rate, threads=threads, device=train_device))
    res = compute_teacher_logits(teacher, data, out, cfg, unlabeled=unlabeled, force=force)
    if distributed.is_main():
        parts = ", ".join(f"{v:,} {k}" for k, v in res["parts"].items())
        _console().print(f"saved teacher logits for {res['rows']:,} windows ({parts}) to {out}")


@app.command()
def export(
    model: Path = typer.Argument(..., help="Model directory."),
    out: Path = typer.Option(..., "--out", help="File to write (.onnx or .tflite); its sidecar goes to OUT.json."),
    format: Optional[str] = typer.Option(None, "--format", help="onnx | tflite (default: from OUT's suffix)."),
    quant: str = typer.Option("none", "--quant", help="none | fp16 | dynamic | int8 | int8-full | 16x8"),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Sequences for calibration: CSV/FASTA, or a data folder (its dev split)."),
    verify: Optional[Path] = typer.Option(None, "--verify", help="Labelled set for verification and --max-drop (default: --calib)."),
    max_drop: Optional[float] = typer.Option(None, "--max-drop", help="Accuracy budget in percentage points vs float."),
    calibrator: str = typer.Option("minmax", help="minmax | percentile | entropy (ONNX static)."),
    batch_size: Optional[int] = typer.Option(None, help="Fixed batch (TFLite default 1; ONNX default dynamic)."),
    per_channel: Optional[bool] = typer.Option(None, "--per-channel/--per-tensor",
                                               help="Static int8 weight scales (default: TFLite int8 tries both and keeps per-tensor unless per-channel is better)."),
    keep_names: bool = typer.Option(False, "--keep-names", help="Keep internal tensor names (bigger file, easier debugging)."),
    plain_graph: bool = typer.Option(False, "--plain-graph", help="No graph rewrites (CLS-row-only last layer, additive mask): "
                                     "the graph a hand-written export gives, for comparisons."),
    fused_attention: bool = typer.Option(False, "--fused-attention", help="ONNX: attention as ONNX Runtime's fused "
                                         "MultiHeadAttention kernel (exact; the file then needs ONNX Runtime)."),
    external_data: Optional[bool] = typer.Option(None, "--external-data/--no-external-data", help="ONNX: weights in OUT.data "
                                                 "beside the file (default: only over ~1.8 GB, as protobuf cannot write 2 GiB)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with ExportConfig fields."),
    force: bool = typer.Option(False, "--force"),
):
    """Export to ONNX or TFLite (optionally int8) and verify it against PyTorch."""
    import json as _json

    from edgegen.export import ExportConfig
    from edgegen.export import export as _export

    fmt = format or {".onnx": "onnx", ".tflite": "tflite"}.get(out.suffix)
    cfg = _load_yaml_config(ExportConfig, config, dict(format=fmt, quant=quant, max_drop=max_drop, calibrator=calibrator, batch_size=batch_size,
                                                              per_channel=per_channel, strip_names=False if keep_names else None,
                                                              graph_rewrites=False if plain_graph else None,
                                                              fused_attention=True if fused_attention else None,
                                                              external_data=external_data))
    path = _export(model, out, cfg, calib=calib, verify=verify, force=force)
    side = _json.loads(Path(str(path) + ".json").read_text())
    v = side["verification"]
    from rich.table import Table

    t = Table(title=f"{path} ({cfg.format}, quant={cfg.quant})")
    t.add_column("check")
    t.add_column("value", justify="right")
    t.add_row("file bytes", f"{path.stat().st_size:,}")
    if side.get("external_data"):
        t.add_row("external weights", f"{side['external_data']['file']} ({side['external_data']['bytes']:,} bytes)")
    t.add_row("max |logit diff| vs torch", f"{v['max_abs_diff']:.3g}")
    t.add_row("argmax agreement", f"{100 * v['argmax_agreement']:.2f}% of {v['n']}")
    if "accuracy" in v:
        t.add_row("accuracy torch -> export", f"{v['torch_accuracy']:.4f} -> {v['accuracy']:.4f} ({-v['accuracy_drop_pp']:+.2f} pp)")
    if side.get("kept_float"):
        t.add_row("kept in float", ", ".join(side["kept_float"]))
    if "weight_scales" in v:
        w = v["weight_scales"]
        t.add_row("weight scales", f"{w['chosen']} (per-tensor {w['per_tensor']['bytes']:,} B, per-channel {w['per_channel']['bytes']:,} B)")
    t.add_row("implementation", side["quant_impl"] or "")
    _console().print(t)


@app.command()
def bench(
    models: List[Path] = typer.Argument(..., help="Model dirs, .onnx and .tflite files; the first is the reference."),
    data: Path = typer.Option(..., "--data", help="Labelled CSV/TSV, or a data folder (its test split)."),
    device: Optional[str] = typer.Option(None, "--device", help="Profile name from devices/ or a YAML path (default: local)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results JSON here."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write report.md, bench.json and PNG plots into this folder."),
    baseline: int = typer.Option(0, "--baseline", help="Index of the reference model."),
    threads: Optional[List[int]] = typer.Option(None, "--threads", help="Thread counts to time (repeatable)."),
    runs: Optional[int] = typer.Option(None, help="Timed runs at batch 1."),
    warmup: Optional[int] = typer.Option(None),
    batch: Optional[int] = typer.Option(None, help="Throughput batch."),
    max_samples: Optional[int] = typer.Option(None, help="Subsample the test set."),
    validity: bool = typer.Option(True, "--validity/--no-validity", help="Reverse-complement and sequencing-error checks."),
    force: bool = typer.Option(False, "--force", help="Overwrite the --json file and the --report folder."),
):
    """Accuracy, size, latency and memory of models side by side, locally or on a device."""
    from edgegen.bench import BenchConfig
    from edgegen.bench import bench as _bench
    from edgegen.io import staging_dir
    from edgegen.report import bench_table, write_report

    _check_outputs(force, json_out, folder=report)
    cfg = BenchConfig(baseline=baseline, threads=threads or None, runs=runs, warmup=warmup, batch=batch,
                      max_samples=max_samples, validity=validity)
    res = _bench(models, data, device, cfg, partial_out=json_out)
    _console().print(bench_table(res))
    _save_json(json_out, res, force=True)  # checked above; bench kept partial results there while it ran
    if report:
        with staging_dir(report, force=force) as tmp:
            write_report(res, tmp)
        _console().print(f"report: {report / 'report.md'}")
    if res["errors"]:
        from edgegen.errors import BackendError

        raise BackendError(f"{len(res['errors'])} of {len(models)} models failed (partial results kept): {res['errors'][0]}")


@app.command()
def devices(
    name: Optional[str] = typer.Argument(None, help="Show one profile (name or YAML path)."),
):
    """List device profiles (devices/*.yaml), or validate and show one."""
    from rich.table import Table

    from edgegen.devices import list_devices, load_device

    if name:
        prof = load_device(name)
        _console().print_json(prof.model_dump_json())
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
    _console().print(t)


@app.command()
def bundle(
    model: Path = typer.Argument(..., help=".onnx or .tflite file (with its sidecar)."),
    out: Path = typer.Option(..., "--out", help="Bundle folder to write."),
    data: Optional[Path] = typer.Option(None, "--data", help="Labelled set to include, already tokenized, for 'runner.py measure'."),
    device: Optional[str] = typer.Option(None, "--device", help="Device profile (checked against the model's runtime)."),
    wheelhouse: bool = typer.Option(False, "--wheelhouse", help="Add the runner's wheels and install.sh: installs on the device with no internet."),
    platform: Optional[str] = typer.Option(None, "--platform", help="Wheels for linux_aarch64 | linux_x86_64 (default: aarch64 with --device, else this machine)."),
    python: Optional[str] = typer.Option(None, "--python", help="The device's CPython version, e.g. 3.11 (default: this one's)."),
    tflite_runtime: bool = typer.Option(False, "--tflite-runtime", help="TFLite: tflite-runtime + numpy<2 instead of ai-edge-litert (wheels up to CPython 3.10)."),
    force: bool = typer.Option(False, "--force"),
):
    """Write a self-contained bundle (model, sidecar, runner.py, numpy-only edgegen, checksums) to copy onto a device."""
    from edgegen.api import bundle_model

    bundle_model(model, out, data=data, device=device, wheelhouse=wheelhouse, platform=platform, python=python,
                 tflite_runtime=tflite_runtime, force=force)
    if wheelhouse:
        _console().print(f"bundle written to {out}; on the device (no internet needed): sh install.sh, then "
                         f"venv/bin/python runner.py measure --model {model.name} --inputs inputs.npz --out result.json")
        return
    _console().print(f"bundle written to {out}; on the device: python3 runner.py measure --model {model.name} --inputs inputs.npz --out result.json")


@app.command()
def predict(
    model: Path = typer.Argument(..., help="Model directory, .onnx or .tflite file."),
    input: str = typer.Option(..., "--input", "-i", help="FASTA/FASTQ (plain or .gz), a sequence table, or - for stdin."),
    out: str = typer.Option(..., "--out", "-o", help="TSV to write (- for stdout)."),
    batch_size: int = typer.Option(64, help="Windows per model call."),
    stride: Optional[int] = typer.Option(None, help="Sliding-window step in nt for reads longer than the window (default: half)."),
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

    cfg = PredictConfig(batch_size=batch_size, stride=stride, aggregate=aggregate, short=short, min_len=min_len,
                        on_bad_record=on_bad_record, rc_average=rc_average, threads=threads)
    st = _predict(model, input, out, cfg, force=force)
    msg = (f"{st['reads']:,} reads ({st['bases']:,} nt, {st['windows']:,} windows) in {st['seconds']:.1f} s: "
           f"{st['reads_per_s']:,.0f} reads/s, {st['bases_per_s']:,.0f} nt/s; skipped: {st['skipped_bad']} bad, "
           f"{st['skipped_empty']} empty, {st['skipped_short']} short")
    if st["bad_ids"]:
        msg += f" (bad: {', '.join(st['bad_ids'][:5])}{', ...' if len(st['bad_ids']) > 5 else ''})"
    typer.echo(msg, err=True)


@app.command()
def run(
    recipe: Path = typer.Argument(..., help="Recipe YAML (see recipes/)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a field: key=value (dotted keys, e.g. steps.0.epochs=2)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved plan and what is cached; run nothing."),
):
    """Run a whole pipeline: train -> prune -> distill -> export -> bench -> report. Reruns skip unchanged stages."""
    from edgegen.recipe import dry_run as _dry_run
    from edgegen.recipe import load_recipe, run_recipe

    r = load_recipe(recipe, set_ or [])
    con = _console()
    if dry_run:
        from rich.table import Table

        con.print_json(r.model_dump_json())
        t = Table(title=f"plan for {r.name} -> {r.out}")
        t.add_column("stage")
        t.add_column("input hash")
        t.add_column("status")
        for row in _dry_run(r):
            t.add_row(row["stage"], row["key"], "cached" if row["cached"] else "to run")
        con.print(t)
        return
    import time as _time

    t0 = _time.perf_counter()

    def on_stage(name, status):
        if status == "cached":
            con.print(f"[dim]- {name}: cached[/dim]")
        elif status == "running":
            con.print(f"[bold]> {name}[/bold]")

    summary = run_recipe(r, on_stage=on_stage)
    if summary:
        from rich.table import Table

        t = Table(title=f"{r.name}: compressed models vs the teacher ({summary['teacher']})")
        for c in ("model", "quant", "acc", "Δacc pp", "MCC", "ΔMCC", "size", "×smaller", "p50 ms (1t)", "×faster (1t)"):
            t.add_column(c, justify="right" if c not in ("model", "quant") else "left")
        tm = summary["teacher_metrics"]
        t.add_row("teacher", "fp32", f"{tm['accuracy']:.3f}", "", f"{tm['mcc']:.3f}", "", f"{tm['size_bytes'] / 1024:.0f} KB", "1.0",
                  f"{tm['p50_ms_t1']:.2f}" if tm.get("p50_ms_t1") else "-", "1.0")
        for m in summary["models"]:
            t.add_row(m["name"], str(m["quant"]), f"{m['accuracy']:.3f}", f"{m['accuracy_delta_pp']:+.2f}", f"{m['mcc']:.3f}",
                      f"{m['mcc_delta']:+.3f}", f"{m['size_bytes'] / 1024:.0f} KB", f"{m['size_ratio']:.1f}",
                      f"{m['p50_ms_t1']:.2f}" if m.get("p50_ms_t1") else "-", f"{m['latency_ratio_t1']:.1f}" if m.get("latency_ratio_t1") else "-")
        con.print(t)
        if summary.get("best"):
            b = summary["best"]
            con.print(f"best within 1 pp of the teacher: [bold]{b['name']}[/bold] - {b['size_ratio']:.1f}x smaller, "
                      f"{b['latency_ratio_t1']:.1f}x faster (batch 1, 1 thread), accuracy {b['accuracy_delta_pp']:+.2f} pp")
        con.print(f"report: {summary['report']}  (summary: {Path(r.out) / 'report' / 'summary.json'})")
    con.print(f"done in {_time.perf_counter() - t0:.1f} s")


@app.command("import")
def import_(
    src: Path = typer.Argument(..., help="Hugging Face checkpoint folder on disk (config.json, weights, vocab.txt)."),
    out: Path = typer.Option(..., "--out", help="edgegen model directory to write."),
    max_len: Optional[int] = typer.Option(None, help="Nucleotide window (default: what the positions allow)."),
    num_classes: Optional[int] = typer.Option(None, help="Classes for a new head (masked-LM checkpoints)."),
    force: bool = typer.Option(False, "--force"),
):
    """Convert a DNABERT (BERT) or Nucleotide-Transformer (ESM) checkpoint folder; nothing is downloaded."""
    try:
        from edgegen.hf import import_hf
    except ImportError:  # pragma: no cover
        from edgegen.errors import BackendError

        raise BackendError("Hugging Face import needs transformers: pip install 'edgegen[hf]'") from None
    import_hf(src, out, max_len=max_len, num_classes=num_classes, force=force)
    from edgegen.checkpoint import load_model

    lm = load_model(out)
    c = lm.config
    _console().print(f"imported {src} -> {out}: {c.n_layers} layers, d_model {c.d_model}, {c.n_heads} heads, "
                     f"{c.positions} positions, {lm.tokenizer.kind} k={lm.tokenizer.k}, window {lm.tokenizer.max_len} nt, "
                     f"{c.num_classes} classes")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: run the app; every outcome leaves through :func:`edgegen.boundary.run_guarded`
    (2 usage, 1 data/runtime, 130 Ctrl-C, 143 SIGTERM; a traceback only with ``--debug``)."""
    from edgegen.boundary import run_guarded

    args = list(sys.argv[1:] if argv is None else argv)
    return run_guarded(lambda: app(args=args, prog_name="edgegen", standalone_mode=False), debug="--debug" in args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
