"""An adversarial check: budgeted greedy in-silico mutagenesis (ISM). How few substitutions flip a model's call?

For a sample of correctly classified test sequences, each step tries every single-base substitution of the current
sequence (all positions of the model's window, the three other bases) in one batch, stops when one flips the call,
and otherwise keeps the substitution that lowers the true class's margin most; up to ``max_edits`` steps (a
position is changed once at most). The result: the share of sequences flipped with at most k edits, k = 1…max,
and the median number of edits of those flipped. Run on the teacher and every compressed model, it shows whether
compression made the model easier to fool (``bench --attack ism``).
"""

from __future__ import annotations

import numpy as np

BASES = "ACGT"


def _window(tok, s: str) -> str:
    """The part of ``s`` the model sees (the tokenizer's crop)."""
    if len(s) <= tok.max_len:
        return s
    start = (len(s) - tok.max_len) // 2 if tok.crop == "center" else 0
    return s[start : start + tok.max_len]


def _margins(logits: np.ndarray, y: int) -> np.ndarray:
    other = np.delete(logits, y, axis=1).max(1)
    return logits[:, y] - other


def greedy_flip(runner, seq: str, y: int, max_edits: int = 5, batch: int = 256) -> int | None:
    """The number of substitutions (≤ ``max_edits``) the greedy search needed to flip ``seq`` away from class
    ``y``, or None when it did not."""
    from edgegen.runtime import run_batched

    tok = runner.tokenizer
    cur = list(_window(tok, seq).upper())
    frozen: set[int] = set()
    for step in range(1, max_edits + 1):
        cands, where = [], []
        for i, base in enumerate(cur):
            if i in frozen:
                continue
            for b in BASES:
                if b != base:
                    v = cur.copy()
                    v[i] = b
                    cands.append("".join(v))
                    where.append((i, b))
        if not cands:
            return None
        m = _margins(run_batched(runner, tok.encode(cands), batch), y)
        best = int(np.argmin(m))
        if m[best] < 0:
            return step
        i, b = where[best]
        cur[i] = b
        frozen.add(i)
    return None


def ism_attack(runner, sequences, labels, *, n: int = 50, max_edits: int = 5, seed: int = 0) -> dict:
    """The greedy ISM attack on up to ``n`` correctly classified sequences of a labelled set (a sample)."""
    from edgegen.runtime import run_batched

    labels = np.asarray(labels)
    pred = run_batched(runner, runner.tokenizer.encode(list(sequences))).argmax(1)
    right = np.nonzero(pred == labels)[0]
    pick = np.sort(np.random.default_rng(seed).permutation(right)[:n])
    edits = [greedy_flip(runner, sequences[i], int(labels[i]), max_edits) for i in pick]
    flipped = [e for e in edits if e is not None]
    return {
        "method": "greedy ISM",
        "n": len(pick),
        "max_edits": max_edits,
        "success_at_k": [
            float(np.mean([e is not None and e <= k for e in edits])) if edits else 0.0 for k in range(1, max_edits + 1)
        ],
        "median_edits": float(np.median(flipped)) if flipped else None,
        "flipped": len(flipped),
    }


def attack_models(result: dict, ds, cfg) -> None:
    """Add ``attack`` to every measured model of a bench result (run here, with the same files: robustness is the
    model's, not the device's)."""
    from edgegen.inference import TorchRunner
    from edgegen.runtime import load_runner

    for entry in result["models"]:
        if "error" in entry:
            continue
        runner = load_runner(entry["model"], threads=None, open_dir=TorchRunner)
        entry["attack"] = ism_attack(
            runner, ds.sequences, ds.labels, n=cfg.attack_samples, max_edits=cfg.attack_max_edits, seed=cfg.seed
        )
