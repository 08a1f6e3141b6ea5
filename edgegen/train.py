"""Training and evaluation of native models.

``train(splits, TrainConfig)`` trains a :class:`GenomicTransformer` from labels
(AdamW, linear warm-up + cosine decay, early stopping on dev MCC). The loop,
:func:`fit`, is shared with distillation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from edgegen.data.readers import SequenceSet
from edgegen.dna_tokenizer import Tokenizer
from edgegen.errors import DataError, TrainingError
from edgegen.fit import OptimConfig, chance_threshold, fit

log = logging.getLogger("edgegen")

DEFAULT_K = 3
MAX_DEFAULT_WINDOW = 16_384  # nt: a longer default window is a data problem, not a model to train


class TrainConfig(OptimConfig):
    """Model shape, tokenizer and optimisation for training a teacher from labels."""

    # Defaults from evidence on the four shared sets (README, "Training defaults"): non-overlapping 3-mers
    # learned on every set (and on a 101-nt binding-site set where single-nucleotide tokens stayed at chance),
    # with a third of the tokens, so attention costs a ninth.
    tokenizer: Literal["char", "kmer", "kmer_nonoverlap"] = "kmer_nonoverlap"
    k: int | None = Field(None, ge=1, le=8, description="k-mer size; default 3 for k-mer tokenizers (1 for char)")
    max_len: int | None = Field(
        None,
        ge=8,
        description=f"nucleotide window; default: longest train sequence (refused "
        f"beyond {MAX_DEFAULT_WINDOW:,} nt: pass max_len)",
    )
    # 2 x d64: on the shared sets as accurate as 4 x d128 (README, "Training defaults") at a sixth of the cost
    d_model: int = Field(64, ge=8)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(4, ge=1)
    ffn_dim: int = Field(128, ge=8)
    dropout: float = Field(0.1, ge=0, lt=1)
    positions: Literal["learned", "sinusoidal", "rotary"] = "learned"
    pooling: Literal["cls", "mean"] = "cls"
    merge_tokens: int = Field(
        1, ge=1, le=16, description="merge this many adjacent tokens after embedding (ModelConfig.merge_tokens)"
    )
    allow_chance: bool = Field(
        False, description="save a model whose dev MCC is not above chance instead of refusing it"
    )

    def kmer_size(self) -> int:
        """``k`` as used: 3 by default for k-mer tokenizers, 1 for single nucleotides."""
        if self.tokenizer == "char":
            return 1
        return self.k if self.k is not None else DEFAULT_K


def encode(tok: Tokenizer, ds: SequenceSet) -> np.ndarray:
    """``ds.encoded(tok)``: the set's token ids, tokenized once per tokenizer."""
    return ds.encoded(tok)


OUTLIER_FACTOR = 1.5  # a longest sequence this many times the 99th percentile is an outlier, not the window


def default_window(lens: np.ndarray) -> tuple[int, int]:
    """(window, sequences longer than it): the longest training sequence, unless it is an outlier (over
    :data:`OUTLIER_FACTOR` times the 99th percentile of lengths), then that percentile. One 16-kb row among 200-nt
    reads must not make every training window 16 kb."""
    top = int(lens.max())
    p99 = int(np.percentile(lens, 99, method="higher"))
    window = p99 if top > OUTLIER_FACTOR * p99 else top
    return window, int((lens > window).sum())


def make_tokenizer(cfg: TrainConfig, train: SequenceSet) -> Tokenizer:
    """The tokenizer for ``cfg``; the window defaults to :func:`default_window` of the training lengths, which must
    be sane.

    Raises:
        DataError: that window exceeds :data:`MAX_DEFAULT_WINDOW` and no ``max_len`` was given.
    """
    max_len = cfg.max_len
    if max_len is None:
        lens = np.fromiter((len(s) for s in train.sequences), dtype=np.int64, count=len(train))
        max_len, longer = default_window(lens)
        if max_len > MAX_DEFAULT_WINDOW:
            i = int(np.argmax(lens >= max_len))
            rid = train.ids[i] if train.ids else f"row {i + 1}"
            raise DataError(
                f"sequence {rid} is {int(lens[i]):,} nt long (median {int(np.median(lens)):,} nt); the window "
                f"would be {max_len:,} nt: pass --max-len N to crop longer sequences",
                path=train.path,
            )
        if longer:
            log.warning(
                "%s: window %d nt, the 99th percentile of training lengths (the longest, %d nt, is an outlier): "
                "%d sequence(s) longer than it are cropped; pass --max-len to choose",
                train.path,
                max_len,
                int(lens.max()),
                longer,
            )
    return Tokenizer(kind=cfg.tokenizer, k=cfg.kmer_size(), max_len=max_len)


def check_above_chance(hist: dict, n_dev: int, *, allow: bool, path=None) -> None:
    """Refuse a model whose best dev MCC is not above chance (a constant predictor, say).

    Raises:
        TrainingError: unless ``allow``; then it only logs a warning.
    """
    scores = [e["dev_mcc"] for e in hist.get("epochs", []) if "dev_mcc" in e]
    if not scores:
        return
    best, bound = max(scores), chance_threshold(n_dev)
    hist["chance_mcc"] = bound
    if best > bound:
        return
    msg = (
        f"dev MCC stayed at chance for {len(scores)} epochs (best {best:.3f}, chance bound {bound:.3f} on {n_dev} "
        "sequences): the model has not learned the task; try another --lr, --tokenizer/--k, more --epochs or a "
        "smaller model, or pass --allow-chance to save it anyway"
    )
    if allow:
        log.warning(msg)
        return
    raise TrainingError(msg, path=path)


def build_model(cfg: TrainConfig, tok: Tokenizer, num_classes: int):
    from edgegen.model import GenomicTransformer, ModelConfig

    mc = ModelConfig(
        vocab_size=tok.vocab_size,
        max_positions=tok.seq_len,
        num_classes=num_classes,
        d_model=cfg.d_model,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        ffn_dim=cfg.ffn_dim,
        dropout=cfg.dropout,
        positions=cfg.positions,
        pooling=cfg.pooling,
        pad_id=tok.pad_id,
        merge_tokens=cfg.merge_tokens,
    )
    return GenomicTransformer(mc)


def train(
    splits: dict[str, SequenceSet],
    cfg: TrainConfig = TrainConfig(),
    *,
    init=None,
    show_progress: bool = True,
):
    """Train a teacher from labels.

    Args:
        splits: ``{"train": ..., "dev": ...}`` (``test`` is ignored here).
        cfg: model shape, tokenizer and optimisation.
        init: a :class:`~edgegen.checkpoint.LoadedModel` to fine-tune instead of
            a fresh model (its tokenizer and shapes are kept; a head of the wrong
            size is replaced).

    Returns:
        ``(model, tokenizer, history)``.

    Example:
        >>> from edgegen.data.synthetic import make_task
        >>> ds = make_task("promoter", 200, 100)
        >>> cfg = TrainConfig(epochs=1, d_model=16, n_layers=1, n_heads=2, ffn_dim=32)
        >>> m, tok, h = train({"train": ds}, cfg, show_progress=False)
    """
    import torch

    from edgegen.data.checks import check_lengths

    if "train" not in splits:
        raise DataError("no training split")
    tr = splits["train"]
    dev = splits.get("dev")
    check_lengths(tr, "train")
    from edgegen.data.readers import check_labels

    num_classes = check_labels(splits)
    torch.manual_seed(cfg.seed)
    if init is not None:
        model, tok = init.model, init.tokenizer
        if model.config.num_classes != num_classes:
            cfg_new = model.config.model_copy(update={"num_classes": num_classes})
            model.config = cfg_new
            model.classifier = torch.nn.Linear(model.classifier.in_features, num_classes)
            torch.nn.init.normal_(model.classifier.weight, std=0.02)
            torch.nn.init.zeros_(model.classifier.bias)
    else:
        tok = make_tokenizer(cfg, tr)
        model = build_model(cfg, tok, num_classes)
    tr_ids = encode(tok, tr)
    dev_ids = encode(tok, dev) if dev is not None else None
    hist = fit(
        model,
        tr_ids,
        tr.labels,
        dev_ids,
        None if dev is None else dev.labels,
        cfg,
        show_progress=show_progress,
        description="train",
    )
    if dev is not None:
        check_above_chance(hist, len(dev), allow=cfg.allow_chance, path=dev.path)
        compare_with_baseline(hist, tr, dev)
    return model, tok, hist


def compare_with_baseline(hist: dict, train: SequenceSet, dev: SequenceSet) -> None:
    """Record the k-mer logistic regression's dev score in ``hist["kmer_baseline"]`` (:mod:`edgegen.baseline`) and
    warn when the transformer's best dev MCC does not beat it."""
    from edgegen.baseline import kmer_baseline

    scores = [e["dev_mcc"] for e in hist.get("epochs", []) if "dev_mcc" in e]
    if not scores or train.labels is None or dev.labels is None:
        return
    base = hist["kmer_baseline"] = kmer_baseline(train, dev)
    if max(scores) <= base["mcc"]:
        log.warning(
            "%s: the transformer's best dev MCC %.3f does not beat a %s on the same split (MCC %.3f): a linear "
            "model of k-mer counts does as well; for a composition task try --pooling mean --epochs 20 --patience 5 "
            "(README, training defaults), or keep the simpler model",
            dev.path,
            max(scores),
            base["model"],
            base["mcc"],
        )


def evaluate_logits(y: np.ndarray, logits: np.ndarray, n_boot: int = 1000) -> dict:
    from edgegen.metrics import classification_report

    return classification_report(y, logits, n_boot=n_boot)


def train_teacher(
    data: str | Path,
    out: str | Path,
    cfg=None,
    *,
    init: str | Path | None = None,
    force: bool = False,
    show_progress: bool = True,
    splits: dict[str, SequenceSet] | None = None,
) -> dict:
    """Train a model on ``data`` (split folder or synthetic spec), evaluate it on test, save to ``out``.

    ``splits``: ``data`` already read (a recipe run reads it once); ``data`` then only names it in the manifest.

    Returns:
        ``{"path", "history", "test"}`` where ``test`` is the evaluation report (if a test split exists).
    """
    from edgegen import distributed
    from edgegen.checkpoint import load_model, save_model
    from edgegen.data.load import dataset_info, load_data
    from edgegen.inference import evaluate_on_test
    from edgegen.io import check_output

    check_output(out, force, kind="dir", inputs=(data, init))
    cfg = cfg or TrainConfig()
    distributed.init_from_env(cfg.device)
    splits = splits if splits is not None else load_data(data)
    init_model = load_model(init) if init else None
    model, tok, hist = train(splits, cfg, init=init_model, show_progress=show_progress)
    metrics = evaluate_on_test(model, tok, splits)
    if distributed.is_main():  # under torchrun, rank 0 writes
        save_model(
            model,
            tok,
            out,
            metrics={"test": metrics} if metrics else {},
            dataset=dataset_info(splits, data),
            extra={"train_config": cfg.model_dump(), "history": hist},
            force=force,
        )
    distributed.barrier()
    return {"path": str(out), "history": hist, "test": metrics}
