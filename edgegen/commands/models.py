"""Commands that make or judge models: train, evaluate, prune, distill, teacher-logits, import."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgegen.commands import app, check_outputs, console, load_yaml_config, save_json


@app.command()
def train(
    data: str = typer.Option(
        ..., "--data", help="Folder with train/dev/test CSVs, or synthetic:promoter|splice[:N[:LEN]]."
    ),
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
    pooling: Optional[str] = typer.Option(None, help="cls | mean (mean: composition tasks, e.g. enhancers; README)"),
    patience: Optional[int] = typer.Option(None, help="epochs without dev improvement before stopping (default 3)"),
    merge_tokens: Optional[int] = typer.Option(
        None, help="merge this many adjacent tokens after embedding (shorter encoder input)"
    ),
    epochs: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None),
    batch_size: Optional[int] = typer.Option(None),
    max_steps: Optional[int] = typer.Option(None),
    seed: Optional[int] = typer.Option(None),
    threads: Optional[int] = typer.Option(None),
    train_device: Optional[str] = typer.Option(
        None, "--train-device", help="auto (a CUDA GPU when torch sees one) | cpu | cuda[:N]"
    ),
    init: Optional[Path] = typer.Option(
        None, "--init", help="Fine-tune this model directory instead of a fresh model."
    ),
    allow_chance: bool = typer.Option(
        False, "--allow-chance", help="Save the model even if its dev MCC is not above chance."
    ),
    nproc: int = typer.Option(
        1,
        "--nproc",
        min=1,
        help="Run in N processes on this machine (as torchrun --standalone "
        "--nproc-per-node N; errors keep their one line and exit code).",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
):
    """Train a model from labels, evaluate it on the test split, save a model directory."""
    from edgegen.tables import metrics_table
    from edgegen.train import TrainConfig, train_teacher

    given = dict(locals(), device=train_device, allow_chance=allow_chance or None)  # the options, by config field
    cfg = load_yaml_config(TrainConfig, config, {f: given[f] for f in TrainConfig.model_fields if f in given})
    res = train_teacher(data, out, cfg, init=init, force=force)
    from edgegen import distributed

    if not distributed.is_main():  # under torchrun, rank 0 reports
        return
    if res["test"]:
        console().print(metrics_table(res["test"], title=f"test set ({out})"))
    _print_baseline(res.get("history") or {})
    console().print(f"saved model to {out}")


def _print_baseline(hist: dict) -> None:
    """The transformer's best dev MCC beside the k-mer baseline's (edgegen.baseline), when both were measured."""
    base, dev = hist.get("kmer_baseline"), [e["dev_mcc"] for e in hist.get("epochs", []) if "dev_mcc" in e]
    if base and dev:
        console().print(f"dev MCC: transformer {max(dev):.3f}, {base['model']} {base['mcc']:.3f} (same split)")


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
    from edgegen.tables import metrics_table

    check_outputs(force, json_out, inputs=(model, data))
    rep = _evaluate(model, data, batch_size=batch_size, threads=threads)
    console().print(metrics_table(rep, title=f"{model} on {data}"))
    save_json(json_out, rep, force)


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
    hidden: Optional[float] = typer.Option(
        None, help="Hidden width to keep: a fraction (0.5) or a width (256); needs --data (activation ranking)."
    ),
    criterion: Optional[str] = typer.Option(None, help="l1 | l2 | taylor | random"),
    global_pruning: Optional[bool] = typer.Option(None, "--global/--local", help="Rank across layers or per layer."),
    iterative_steps: Optional[int] = typer.Option(None),
    data: Optional[str] = typer.Option(
        None, "--data", help="Data folder: calibration for taylor/drop-layers, and test metrics."
    ),
    target_latency_ms: Optional[float] = typer.Option(
        None, help="Search the shape that fits this batch-1 p50 on --device (measured there), instead of ratios."
    ),
    target_size_mb: Optional[float] = typer.Option(None, help="Search the shape whose exported file fits this size."),
    device: Optional[str] = typer.Option(None, "--device", help="Device profile the search times shapes on (local)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Runtime threads the latency budget is for (1)."),
    candidates: Optional[int] = typer.Option(None, help="Shapes the search ranks by a short distillation."),
    short_steps: Optional[int] = typer.Option(None, help="Steps of each candidate's short distillation."),
    json_out: Optional[Path] = typer.Option(None, "--json"),
    force: bool = typer.Option(False, "--force"),
):
    """Remove attention heads, FFN channels, layers and hidden width physically (torch-pruning), or search the
    shape that fits a device budget (--target-latency-ms / --target-size-mb)."""
    check_outputs(force, json_out, inputs=(model, data))
    if target_latency_ms is not None or target_size_mb is not None:
        budget = dict(target_latency_ms=target_latency_ms, target_size_mb=target_size_mb, device=device)
        more = dict(threads=threads, candidates=candidates, short_steps=short_steps)
        _search(model, out, data, config, budget | more, json_out, force)
        return
    from edgegen.prune import PruneConfig, prune_model

    cfg = load_yaml_config(
        PruneConfig,
        config,
        dict(
            target_params=target_params,
            target_macs=target_macs,
            head_ratio=head_ratio,
            ffn_ratio=ffn_ratio,
            drop_layers=drop_layers,
            hidden=hidden,
            criterion=criterion,
            global_pruning=global_pruning,
            iterative_steps=iterative_steps,
        ),
    )
    rep = prune_model(model, out, cfg, data=data, force=force)
    from edgegen.tables import prune_table

    console().print(prune_table(rep))
    if rep.get("metrics"):
        from edgegen.tables import metrics_table

        console().print(metrics_table(rep["metrics"]["test"], title="pruned model, test set (before fine-tuning)"))
    console().print(f"saved pruned model to {out}")
    save_json(json_out, rep, force)


def _search(model: Path, out: Path, data, config, fields: dict, json_out, force: bool) -> None:
    from edgegen.errors import UsageError
    from edgegen.shape_search import SearchConfig, search_shape
    from edgegen.tables import search_table

    if not data:
        raise UsageError("the shape search distils and measures its candidates: give --data")
    cfg = load_yaml_config(SearchConfig, config, fields)
    rep = search_shape(model, data, out, cfg, force=force)
    console().print(search_table(rep))
    console().print(f"saved the chosen shape (pruned, briefly distilled) to {out}: distil it fully next")
    save_json(json_out, rep, force)


@app.command()
def distill(
    teacher: Path = typer.Option(..., "--teacher", help="Teacher model directory."),
    student: Path = typer.Option(
        ..., "--student", help="Student model directory (e.g. pruned) or YAML with d_model/n_layers/n_heads/ffn_dim."
    ),
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
    augment: Optional[int] = typer.Option(
        None, help="Teacher-labelled mutated copies of each training sequence (KD term only)."
    ),
    mutation_rate: Optional[float] = typer.Option(
        None, help="Per-base substitution rate of those copies (default 0.05)."
    ),
    max_steps: Optional[int] = typer.Option(None),
    threads: Optional[int] = typer.Option(None),
    train_device: Optional[str] = typer.Option(
        None, "--train-device", help="auto (a CUDA GPU when torch sees one) | cpu | cuda[:N]"
    ),
    unlabeled: Optional[Path] = typer.Option(
        None,
        "--unlabeled",
        help="Reads (FASTA/FASTQ[.gz] or a table) for the KD term "
        "only, windowed as in predict: what the teacher knows beyond the labels.",
    ),
    teacher_logits: Optional[Path] = typer.Option(
        None,
        "--teacher-logits",
        help="Teacher-logit store: reused when it exists "
        "(checked against teacher and data), else computed there first.",
    ),
    json_out: Optional[Path] = typer.Option(None, "--json"),
    nproc: int = typer.Option(
        1,
        "--nproc",
        min=1,
        help="Run in N processes on this machine (as torchrun --standalone "
        "--nproc-per-node N; errors keep their one line and exit code).",
    ),
    force: bool = typer.Option(False, "--force"),
):
    """Win back accuracy: distil the teacher into a pruned or smaller student."""
    check_outputs(force, json_out, inputs=(teacher, student, data, unlabeled, teacher_logits))
    from edgegen import distributed
    from edgegen.distill import DistillConfig, distill_model
    from edgegen.tables import metrics_table

    given = dict(locals(), device=train_device)  # the options, by config field
    cfg = _distill_config(config, {f: given[f] for f in DistillConfig.model_fields if f in given})
    res = distill_model(
        teacher, student, data, out, cfg, unlabeled=unlabeled, teacher_logits=teacher_logits, force=force
    )
    if not distributed.is_main():
        return
    if "test" in res:
        console().print(metrics_table(res["teacher_test"], title="teacher, test set"))
        console().print(metrics_table(res["test"], title="distilled student, test set"))
    console().print(f"saved distilled model to {out}")
    save_json(json_out, res, force)


def _distill_config(config, overrides):
    from edgegen.distill import DistillConfig

    return load_yaml_config(DistillConfig, config, overrides)


@app.command("teacher-logits")
def teacher_logits(
    teacher: Path = typer.Option(..., "--teacher", help="Teacher model directory."),
    data: str = typer.Option(..., "--data", help="Folder with train/dev/test CSVs (the training split is scored)."),
    out: Path = typer.Option(..., "--out", help="Store folder to write (use it with distill --teacher-logits)."),
    unlabeled: Optional[Path] = typer.Option(None, "--unlabeled", help="Reads to score too (as distill --unlabeled)."),
    config: Optional[Path] = typer.Option(
        None, "--config", help="YAML with DistillConfig fields (augment and seed decide the rows)."
    ),
    augment: Optional[int] = typer.Option(None, help="As distill --augment: the store holds those rows too."),
    mutation_rate: Optional[float] = typer.Option(None),
    threads: Optional[int] = typer.Option(None),
    train_device: Optional[str] = typer.Option(
        None, "--train-device", help="Where the teacher runs: auto | cpu | cuda[:N]"
    ),
    nproc: int = typer.Option(
        1,
        "--nproc",
        min=1,
        help="Run in N processes on this machine (as torchrun --standalone "
        "--nproc-per-node N; errors keep their one line and exit code).",
    ),
    force: bool = typer.Option(False, "--force"),
):
    """Run the teacher once over every training window and store its logits for later distillations."""
    from edgegen import distributed
    from edgegen.distill import compute_teacher_logits

    cfg = _distill_config(
        config, dict(augment=augment, mutation_rate=mutation_rate, threads=threads, device=train_device)
    )
    res = compute_teacher_logits(teacher, data, out, cfg, unlabeled=unlabeled, force=force)
    if distributed.is_main():
        parts = ", ".join(f"{v:,} {k}" for k, v in res["parts"].items())
        console().print(f"saved teacher logits for {res['rows']:,} windows ({parts}) to {out}")


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
    console().print(
        f"imported {src} -> {out}: {c.n_layers} layers, d_model {c.d_model}, {c.n_heads} heads, "
        f"{c.positions} positions, {lm.tokenizer.kind} k={lm.tokenizer.k}, window {lm.tokenizer.max_len} nt, "
        f"{c.num_classes} classes"
    )
