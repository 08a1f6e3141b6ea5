"""The training loop every model shares (train from labels, distil from a teacher): AdamW with warm-up and cosine
decay, dev-set early stopping with the best epoch's weights kept, DistributedDataParallel under torchrun."""

from __future__ import annotations

import copy
import math
import time
from typing import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgegen.errors import UsageError
from edgegen.inference import model_device, predict_logits


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
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="where to train: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda or cuda:N; "
        "the model comes back on the device it was given on",
    )


def set_threads(n: int | None) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


def resolve_device(name: str):
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; a CUDA device that is not there is a
    :class:`UsageError`."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise UsageError(f"device {name!r}: torch sees no such CUDA GPU (use device: cpu or auto)")
    return dev


def chance_threshold(n: int) -> float:
    """The MCC a classifier must beat on ``n`` sequences to be above chance (one-sided, p < 0.025).

    Under no association, n * MCC^2 is approximately chi-squared with 1 degree of freedom (two classes;
    Gorodkin's R_K behaves alike), so MCC * sqrt(n) is approximately standard normal.
    """
    return 1.96 / math.sqrt(max(n, 1))


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
    cfg,
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
