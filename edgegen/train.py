"""Training and evaluation of native models.

``train(splits, TrainConfig)`` trains a :class:`GenomicTransformer` from labels
(AdamW, linear warm-up + cosine decay, early stopping on dev MCC). The loop,
:func:`fit`, is shared with distillation.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from typing import Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgegen.data.readers import SequenceSet
from edgegen.errors import DataError, TrainingError, UsageError
from edgegen.tokenizers import Tokenizer

log = logging.getLogger("edgegen")

DEFAULT_K = 3
MAX_DEFAULT_WINDOW = 16_384  # nt: a longer default window is a data problem, not a model to train


class OptimConfig(BaseModel):
    """Optimisation settings shared by training and distillation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    patience: int = Field(3, ge=1, description="epochs without dev improvement before stopping")
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps")
    seed: int = 0
    threads: int | None = Field(None, ge=1)
    eval_batch_size: int = Field(256, ge=1)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
                        description="where to train: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda or cuda:N; "
                        "the model comes back on the device it was given on")


class TrainConfig(OptimConfig):
    """Model shape, tokenizer and optimisation for training a teacher from labels."""

    # Defaults from evidence on the four shared sets (README, "Training defaults"): non-overlapping 3-mers
    # learned on every set (and on a 101-nt binding-site set where single-nucleotide tokens stayed at chance),
    # with a third of the tokens, so attention costs a ninth.
    tokenizer: Literal["char", "kmer", "kmer_nonoverlap"] = "kmer_nonoverlap"
    k: int | None = Field(None, ge=1, le=8, description="k-mer size; default 3 for k-mer tokenizers (1 for char)")
    max_len: int | None = Field(None, ge=8, description=f"nucleotide window; default: longest train sequence (refused "
                                f"beyond {MAX_DEFAULT_WINDOW:,} nt: pass max_len)")
    # 2 x d64: on the shared sets as accurate as 4 x d128 (README, "Training defaults") at a sixth of the cost
    d_model: int = Field(64, ge=8)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(4, ge=1)
    ffn_dim: int = Field(128, ge=8)
    dropout: float = Field(0.1, ge=0, lt=1)
    positions: Literal["learned", "sinusoidal", "rotary"] = "learned"
    pooling: Literal["cls", "mean"] = "cls"
    merge_tokens: int = Field(1, ge=1, le=16, description="merge this many adjacent tokens after embedding (ModelConfig.merge_tokens)")
    allow_chance: bool = Field(False, description="save a model whose dev MCC is not above chance instead of refusing it")

    def kmer_size(self) -> int:
        """``k`` as used: 3 by default for k-mer tokenizers, 1 for single nucleotides."""
        if self.tokenizer == "char":
            return 1
        return self.k if self.k is not None else DEFAULT_K


def set_threads(n: int | None) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


def resolve_device(name: str):
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; a CUDA device that is not there is a :class:`UsageError`."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise UsageError(f"device {name!r}: torch sees no such CUDA GPU (use device: cpu or auto)")
    return dev


def model_device(model):
    """The device of a model's first parameter (CPU for a model without parameters)."""
    import torch

    return next((p.device for p in model.parameters()), torch.device("cpu"))


def predict_logits(model, ids: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Run a torch model over (N, T) token ids in eval mode, on the model's device; return (N, C) float32 logits."""
    import torch

    from edgegen.runtime import safe_batch

    model.eval()
    out = []
    dev = model_device(model)
    batch_size = safe_batch(ids.shape[1], batch_size)
    with torch.inference_mode():
        for i in range(0, len(ids), batch_size):
            out.append(model(torch.from_numpy(ids[i : i + batch_size]).to(dev)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.num_classes), np.float32)


def encode(tok: Tokenizer, ds: SequenceSet) -> np.ndarray:
    try:
        return tok.encode(ds.sequences)
    except ValueError as e:  # readers validate already; this guards hand-built sets
        raise DataError(str(e), path=ds.path) from None


def _score(y: np.ndarray, logits: np.ndarray) -> tuple[float, float]:
    from edgegen.metrics import mcc

    p = logits.argmax(1)
    return mcc(y, p, logits.shape[1]), float((p == y).mean())


def fit(
    model,
    train_ids: np.ndarray,
    train_y: np.ndarray,
    dev_ids: np.ndarray | None,
    dev_y: np.ndarray | None,
    cfg: OptimConfig,
    loss_fn: Callable | None = None,
    *,
    params=None,
    show_progress: bool = True,
    description: str = "train",
    on_epoch: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train ``model`` in place; keep the weights of the best dev epoch.

    Args:
        loss_fn: ``loss_fn(model, idx, ids, y) -> scalar loss`` where ``idx``
            indexes the training rows of the batch (for cached teacher logits)
            and ``ids``/``y`` are on ``cfg.device``. Default: cross-entropy.
        params: parameters to optimise (default: the model's); parameters
            outside ``model`` must already be on ``cfg.device``.

    Returns:
        History dict: per-epoch train loss and dev MCC/accuracy, best epoch, steps, seconds.
    """
    import torch
    import torch.nn.functional as F

    from edgegen import distributed
    from edgegen.progress import progress

    set_threads(cfg.threads)
    dev = distributed.local_device(resolve_device(cfg.device))
    home = model_device(model)
    model.to(dev)
    torch.manual_seed(cfg.seed)
    world = distributed.world_size()
    # under torchrun the student is in DistributedDataParallel: each rank takes its slice of every global batch,
    # and the gradients are averaged (the mean over the global batch when the slices are equal)
    step_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        step_model = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    show_progress = show_progress and distributed.is_main()
    rng = np.random.default_rng(cfg.seed)
    if loss_fn is None:

        def loss_fn(m, idx, ids, y):
            return F.cross_entropy(m(ids), y)

    params = list(params if params is not None else model.parameters())
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr
    )
    n = len(train_ids)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    warm = max(1, int(cfg.warmup_ratio * total))

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        prog = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, prog)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    hist: dict = {"epochs": [], "best_epoch": None, "steps": 0}
    best, best_state, bad = (-float("inf"), -float("inf")), None, 0
    t0 = time.perf_counter()
    step = 0
    try:
        with progress(show_progress) as prog:
            task = prog.add_task(description, total=total, info="")
            for epoch in range(cfg.epochs):
                model.train()
                perm = rng.permutation(n)
                losses = []
                for b in range(steps_per_epoch):
                    if step >= total:
                        break
                    idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                    if len(idx) < world:
                        break  # a last batch too small to give every rank a row (all ranks see the same perm)
                    idx = distributed.my_slice(idx)
                    ids = torch.from_numpy(train_ids[idx]).to(dev, non_blocking=True)
                    y = torch.from_numpy(train_y[idx]).to(dev, non_blocking=True)
                    loss = loss_fn(step_model, idx, ids, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    opt.step()
                    sched.step()
                    step += 1
                    losses.append(float(loss.detach()))
                    prog.update(task, advance=1, info=f"epoch {epoch + 1} loss {np.mean(losses[-50:]):.4f}")
                rec = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan")}
                if dev_ids is not None and len(dev_ids):
                    m, a = _score(dev_y, predict_logits(model, dev_ids, cfg.eval_batch_size))
                    rec.update(dev_mcc=m, dev_accuracy=a)
                    score = (m, a)
                    if score > best:
                        best, bad = score, 0
                        best_state = copy.deepcopy(model.state_dict())
                        hist["best_epoch"] = epoch + 1
                    elif best[0] > chance_threshold(len(dev_ids)):
                        bad += 1  # patience counts from the first epoch above chance: slow starters get every epoch
                    prog.update(task, info=f"epoch {epoch + 1} dev mcc {m:.3f} acc {a:.3f}")
                hist["epochs"].append(rec)
                if on_epoch:
                    on_epoch(epoch + 1, rec)
                if step >= total or bad >= cfg.patience:
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
    finally:  # also on an error or Ctrl-C: the caller gets its model back where it was
        model.eval()
        model.to(home)
    hist["device"] = str(dev)
    hist["world_size"] = world
    hist["steps"] = step
    hist["seconds"] = time.perf_counter() - t0
    return hist


def make_tokenizer(cfg: TrainConfig, train: SequenceSet) -> Tokenizer:
    """The tokenizer for ``cfg``; the window defaults to the longest training sequence, which must be sane.

    Raises:
        DataError: the longest training sequence exceeds :data:`MAX_DEFAULT_WINDOW` and no ``max_len`` was given.
    """
    max_len = cfg.max_len
    if max_len is None:
        lens = np.fromiter((len(s) for s in train.sequences), dtype=np.int64, count=len(train))
        i = int(lens.argmax())
        max_len = int(lens[i])
        if max_len > MAX_DEFAULT_WINDOW:
            rid = train.ids[i] if train.ids else f"row {i + 1}"
            raise DataError(f"sequence {rid} is {max_len:,} nt long (median {int(np.median(lens)):,} nt); the window would be "
                            f"that long: pass --max-len N (e.g. {min(int(np.percentile(lens, 99)), MAX_DEFAULT_WINDOW)}) to crop "
                            "longer sequences", path=train.path)
    return Tokenizer(kind=cfg.tokenizer, k=cfg.kmer_size(), max_len=max_len)


def chance_threshold(n: int) -> float:
    """The MCC a classifier must beat on ``n`` sequences to be above chance (one-sided, p < 0.025).

    Under no association, n * MCC^2 is approximately chi-squared with 1 degree of freedom (two classes;
    Gorodkin's R_K behaves alike), so MCC * sqrt(n) is approximately standard normal.
    """
    return 1.96 / math.sqrt(max(n, 1))


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
    msg = (f"dev MCC stayed at chance for {len(scores)} epochs (best {best:.3f}, chance bound {bound:.3f} on {n_dev} "
           "sequences): the model has not learned the task; try another --lr, --tokenizer/--k, more --epochs or a "
           "smaller model, or pass --allow-chance to save it anyway")
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
        >>> m, tok, h = train({"train": ds}, TrainConfig(epochs=1, d_model=16, n_layers=1, n_heads=2, ffn_dim=32), show_progress=False)
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
            model.classifier = torch.nn.Linear(cfg_new.d_model, num_classes)
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
    return model, tok, hist


def evaluate_logits(y: np.ndarray, logits: np.ndarray, n_boot: int = 1000) -> dict:
    from edgegen.metrics import classification_report

    return classification_report(y, logits, n_boot=n_boot)
