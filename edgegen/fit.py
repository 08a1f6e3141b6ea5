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


def _optimizer_and_schedule(params: list, cfg, n_rows: int):
    """AdamW (no decay on biases and norms) with linear warm-up then cosine decay; returns (opt, sched, total)."""
    import torch

    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr
    )
    total = math.ceil(n_rows / cfg.batch_size) * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    warm = max(1, int(cfg.warmup_ratio * total))

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        prog = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, prog)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_at), total


class _BestDevEpoch:
    """Keeps the weights of the best dev epoch (MCC, then accuracy) and counts the epochs without progress."""

    def __init__(self, dev_rows: int):
        self.best, self.state, self.epoch, self.bad = (-float("inf"), -float("inf")), None, None, 0
        self.dev_rows = dev_rows

    def score(self, model, epoch: int, dev_ids, dev_y, batch_size: int) -> dict:
        """Score the dev set, keep the weights if best; returns the epoch's dev metrics."""
        m, a = _score(dev_y, predict_logits(model, dev_ids, batch_size))
        self.update(model, epoch, (m, a))
        return {"dev_mcc": m, "dev_accuracy": a}

    def update(self, model, epoch: int, score: tuple[float, float]) -> None:
        if score > self.best:
            self.best, self.bad, self.epoch = score, 0, epoch
            self.state = copy.deepcopy(model.state_dict())
        elif self.best[0] > chance_threshold(self.dev_rows):
            self.bad += 1  # patience counts from the first epoch above chance: slow starters get every epoch


def _placed(model, cfg):
    """Move ``model`` to its device and seed torch; returns (device, the module a step calls, world size).

    Under torchrun the module is a DistributedDataParallel: each rank takes its slice of every global batch, and
    the gradients are averaged (the mean over the global batch when the slices are equal)."""
    import torch

    from edgegen import distributed

    dev = distributed.local_device(resolve_device(cfg.device))
    model.to(dev)
    torch.manual_seed(cfg.seed)
    world = distributed.world_size()
    if world == 1:
        return dev, model, world
    from torch.nn.parallel import DistributedDataParallel

    return dev, DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None), world


def _optimizer_step(loss, params: list, opt, sched) -> float:
    """Backward, clip the gradient norm to 1, step the optimiser and the schedule; returns the loss."""
    import torch

    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()
    return float(loss.detach())


def _default_loss(m, idx, ids, y):
    import torch.nn.functional as F

    return F.cross_entropy(m(ids), y)


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

    from edgegen import distributed
    from edgegen.progress import progress

    set_threads(cfg.threads)
    home = model_device(model)
    dev, step_model, world = _placed(model, cfg)
    show_progress = show_progress and distributed.is_main()
    rng = np.random.default_rng(cfg.seed)
    loss_fn = loss_fn or _default_loss
    params = list(params if params is not None else model.parameters())
    opt, sched, total = _optimizer_and_schedule(params, cfg, len(train_ids))
    hist: dict = {"epochs": []}
    keeper = _BestDevEpoch(0 if dev_ids is None else len(dev_ids))
    t0 = time.perf_counter()
    step = 0

    def train_step(idx) -> float:
        ids, y = (torch.from_numpy(a[idx]).to(dev, non_blocking=True) for a in (train_ids, train_y))
        return _optimizer_step(loss_fn(step_model, idx, ids, y), params, opt, sched)

    try:
        with progress(show_progress) as prog:
            task = prog.add_task(description, total=total, info="")
            for epoch in range(1, cfg.epochs + 1):
                model.train()
                losses = []
                for idx in _epoch_batches(rng, len(train_ids), cfg.batch_size, world):
                    if step >= total:
                        break
                    losses.append(train_step(distributed.my_slice(idx)))
                    step += 1
                    prog.update(task, advance=1, info=f"epoch {epoch} loss {np.mean(losses[-50:]):.4f}")
                rec = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else float("nan")}
                if dev_ids is not None and len(dev_ids):
                    rec.update(keeper.score(model, epoch, dev_ids, dev_y, cfg.eval_batch_size))
                    prog.update(task, info=f"epoch {epoch} dev mcc {rec['dev_mcc']:.3f} acc {rec['dev_accuracy']:.3f}")
                hist["epochs"].append(rec)
                if on_epoch:
                    on_epoch(epoch, rec)
                if step >= total or keeper.bad >= cfg.patience:
                    break
        if keeper.state is not None:
            model.load_state_dict(keeper.state)
    finally:  # also on an error or Ctrl-C: the caller gets its model back where it was
        model.eval()
        model.to(home)
    hist.update(best_epoch=keeper.epoch, steps=step, device=str(dev), world_size=world)
    return hist | {"seconds": time.perf_counter() - t0}


def _epoch_batches(rng, n: int, batch_size: int, world: int):
    """One epoch's global batches of row indices (every rank draws the same permutation)."""
    perm = rng.permutation(n)
    for b in range(math.ceil(n / batch_size)):
        idx = perm[b * batch_size : (b + 1) * batch_size]
        if len(idx) < world:
            return  # a last batch too small to give every rank a row
        yield idx
