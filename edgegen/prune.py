"""Structured pruning on torch-pruning's dependency graph.

Removes whole attention heads (q/k/v/out together), FFN channels (fc1 out /
fc2 in) and, optionally, whole encoder layers. Pruning is physical: tensors
shrink, and the model's config is rewritten so the plain loader rebuilds it.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgegen.errors import UsageError
from edgegen.prune_layers import check_rebuild, drop_layers_, model_stats
from edgegen.prune_pass import prune_once

if TYPE_CHECKING:
    from edgegen.data.readers import SequenceSet

log = logging.getLogger("edgegen")


class PruneConfig(BaseModel):
    """What to remove and how to rank it.

    Give a target (``target_params`` or ``target_macs``: the fraction of the
    original to keep, in (0, 1)) or explicit ratios (``head_ratio``,
    ``ffn_ratio``: the fraction of heads / FFN channels to remove).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    # added after recipe runs were cached: left out of a prune stage's cache key while at these defaults
    later_fields: ClassVar[dict[str, tuple]] = {"hidden": (None,)}

    target_params: float | None = Field(None, description="keep this fraction of parameters")
    target_macs: float | None = Field(None, description="keep this fraction of MACs (at the model's sequence length)")
    head_ratio: float | None = Field(None, description="fraction of heads to remove per layer")
    ffn_ratio: float | None = Field(None, description="fraction of FFN channels to remove per layer")
    prune_heads: bool = True
    prune_ffn: bool = True
    drop_layers: int = Field(0, ge=0, description="remove this many whole encoder layers (least residual change first)")
    hidden: float | None = Field(
        None,
        gt=0,
        description="hidden width to keep: a fraction of d_model in (0, 1) or a width (an integer >= 1); the same "
        "residual channels go from every layer (edgegen.prune_width), ranked by activations on calibration data",
    )
    criterion: Literal["l1", "l2", "taylor", "random"] = "l2"
    global_pruning: bool = False
    iterative_steps: int = Field(1, ge=1)
    ignored_layers: list[str] = Field(default_factory=list, description="module name patterns never pruned")
    calib_batches: int = Field(8, ge=1, description="batches for Taylor importance and layer ranking")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> "PruneConfig":
        for name in ("target_params", "target_macs", "head_ratio", "ffn_ratio"):
            v = getattr(self, name)
            if v is not None and not 0.0 < v < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {v}")
        if self.target_params is not None and self.target_macs is not None:
            raise ValueError("give target_params or target_macs, not both")
        has_target = self.target_params is not None or self.target_macs is not None
        if has_target and (self.head_ratio is not None or self.ffn_ratio is not None):
            raise ValueError("give a target or explicit ratios (head_ratio/ffn_ratio), not both")
        if self.hidden is not None and self.hidden >= 1 and (self.hidden == 1 or not float(self.hidden).is_integer()):
            raise ValueError(f"hidden must be a fraction in (0, 1) or a whole width of at least 2, got {self.hidden}")
        if not (self.prune_heads or self.prune_ffn) and has_target and not self.drop_layers:
            raise ValueError("nothing to prune: prune_heads and prune_ffn are both off")
        return self


def _taylor_grads(model, calib) -> None:
    import torch
    import torch.nn.functional as F

    model.zero_grad(set_to_none=True)
    model.eval()
    for ids, y in calib:
        F.cross_entropy(model(torch.as_tensor(ids)), torch.as_tensor(y)).backward()


def _check_calib(cfg: PruneConfig, calib) -> None:
    needs = {"taylor importance": cfg.criterion == "taylor", "drop_layers": cfg.drop_layers > 0}
    needs["hidden-width pruning"] = cfg.hidden is not None
    first = next((name for name, on in needs.items() if on), None)
    if first and not calib:
        raise UsageError(f"{first} needs calibration data")


def _layers_and_width(model, cfg: PruneConfig, calib, example_inputs):
    """Whole layers dropped, then the hidden width narrowed: (model, dropped layers, removed hidden channels)."""
    dropped = drop_layers_(model, cfg.drop_layers, calib) if cfg.drop_layers else []
    if cfg.hidden is None:
        return model, dropped, []
    from edgegen.prune_width import prune_width, width_of

    model, removed = prune_width(model, width_of(cfg.hidden, model.config.d_model), calib, example_inputs)
    for p in model.parameters():
        p.requires_grad_(True)  # torch-pruning skips frozen parameters
    return model, dropped, removed


def _measure(model, cfg: PruneConfig, seq_len: int) -> int:
    from edgegen.model import count_params

    return count_params(model) if cfg.target_params is not None else model.config.macs(seq_len)


def prune(
    model,
    cfg: PruneConfig,
    example_inputs,
    *,
    calib: list | None = None,
    finetune: Callable | None = None,
):
    """Prune a :class:`GenomicTransformer` structurally; return the (new) pruned model.

    Args:
        model: the model to prune (not modified; a pruned copy is returned).
        cfg: targets, criterion and scope.
        example_inputs: (B, T) int32 token ids for graph tracing.
        calib: ``[(ids, labels), ...]`` batches; needed for ``taylor``, ``drop_layers`` and ``hidden``.
        finetune: ``finetune(model) -> None`` called after each iterative step but the last.

    Returns:
        The pruned model, with ``model.config`` describing the new shapes and
        ``model.prune_report`` holding before/after statistics.

    Raises:
        UsageError: unreachable target, missing calibration data, bad ignore pattern.

    Example:
        >>> small = prune(teacher, PruneConfig(target_params=0.5), ids[:2])  # doctest: +SKIP
    """
    import torch

    torch.manual_seed(cfg.seed)
    _check_calib(cfg, calib)
    example_inputs = torch.as_tensor(example_inputs)
    seq_len = example_inputs.shape[1]
    model = copy.deepcopy(model).eval()
    for p in model.parameters():
        p.requires_grad_(True)  # torch-pruning skips frozen parameters
    before = model_stats(model, seq_len)
    base = _measure(model, cfg, seq_len)
    model, dropped, removed_channels = _layers_and_width(model, cfg, calib, example_inputs)
    steps = cfg.iterative_steps
    target = cfg.target_params if cfg.target_params is not None else cfg.target_macs
    for s in range(1, steps + 1):
        if target is not None:
            goal = base * target ** (s / steps)  # geometric schedule towards the target
            model = _prune_to(model, cfg, example_inputs, goal, calib)
        else:
            hr = 1 - (1 - (cfg.head_ratio or 0.0)) ** (1 / steps)
            fr = 1 - (1 - (cfg.ffn_ratio or 0.0)) ** (1 / steps)
            if cfg.criterion == "taylor":
                _taylor_grads(model, calib)
            prune_once(model, example_inputs, hr, fr, cfg)
        if finetune is not None and s < steps:
            finetune(model)
    model.zero_grad(set_to_none=True)
    check_rebuild(model)
    after = model_stats(model, seq_len)
    model.prune_report = {
        "config": cfg.model_dump(),
        "seq_len": seq_len,
        "before": before,
        "after": after,
        "dropped_layers": dropped,
        "removed_hidden_channels": removed_channels,
        "params_ratio": after["params"] / before["params"],
        "macs_ratio": after["macs"] / before["macs"],
    }
    return model.eval()


def _prune_to(model, cfg: PruneConfig, example_inputs, goal: float, calib):
    """Find the smallest equal head/FFN ratio whose pruned copy meets ``goal`` (bisection on real prunes)."""
    if _measure(model, cfg, example_inputs.shape[1]) <= goal:
        return model

    def attempt(r: float):
        m = copy.deepcopy(model)
        if cfg.criterion == "taylor":
            _taylor_grads(m, calib)  # gradients are not deep-copied
        prune_once(m, example_inputs, r if cfg.prune_heads else 0.0, r if cfg.prune_ffn else 0.0, cfg)
        return m, _measure(m, cfg, example_inputs.shape[1])

    # torch-pruning's result is not monotone in the ratio near the top (it may skip heads),
    # so scan coarsely for the first ratio that meets the goal, then refine below it.
    base = _measure(model, cfg, example_inputs.shape[1])
    smallest = base
    found = None
    for r in [x / 20 for x in range(1, 19)]:
        m, val = attempt(r)
        smallest = min(smallest, val)
        if val <= goal:
            found = (r, m)
            break
    if found is None:
        raise UsageError(
            f"target unreachable by pruning heads/FFN: at best {smallest / base:.2f} of the current size remains "
            "(embeddings, positions, norms and the head are kept); add drop_layers or distil a smaller student"
        )
    hi, best = found
    lo = hi - 0.05
    for _ in range(4):
        mid = (lo + hi) / 2
        m, val = attempt(mid)
        if val <= goal:
            best, hi = m, mid
        else:
            lo = mid
    return best


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


def prune_model(
    model_dir: str | Path,
    out: str | Path,
    cfg,
    *,
    data: str | Path | None = None,
    force: bool = False,
    splits: dict[str, SequenceSet] | None = None,
) -> dict:
    """Load a model dir, prune it with ``cfg`` (PruneConfig), save to ``out``; return the prune report.

    ``data`` (or ``splits``, the same already read) calibrates the pruning and gives the test report."""
    from edgegen.checkpoint import load_model, save_model
    from edgegen.data.load import load_data
    from edgegen.inference import evaluate_on_test
    from edgegen.io import check_output

    check_output(out, force, kind="dir", inputs=(model_dir, data))
    lm = load_model(model_dir)
    if splits is None:
        splits = load_data(data) if data else None
    example, calib = _example_and_calib(lm.tokenizer, splits, cfg.calib_batches)
    pruned = prune(lm.model, cfg, example, calib=calib)
    rep = dict(pruned.prune_report)
    rep["source"] = str(model_dir)
    rep_test = evaluate_on_test(pruned, lm.tokenizer, splits)
    metrics = {"test": rep_test} if rep_test else {}
    save_model(
        pruned,
        lm.tokenizer,
        out,
        metrics=metrics,
        dataset=lm.manifest.get("dataset"),
        extra={"pruning": rep, "parent": lm.manifest["files"]},
        force=force,
    )
    rep["size_before"] = _dir_size(model_dir)
    rep["size_after"] = _dir_size(out)
    rep["metrics"] = metrics
    return rep


def _dir_size(path) -> int:
    """Bytes of a model directory's weights (or of a file)."""
    p = Path(path)
    return (p / "model.safetensors").stat().st_size if p.is_dir() else p.stat().st_size
