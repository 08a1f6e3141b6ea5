"""Genomic validity checks: reverse complements and simulated sequencing errors (numpy only)."""

from __future__ import annotations

import numpy as np

_COMP = str.maketrans("ACGTN", "TGCAN")


def reverse_complement(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


def sequencing_errors(seqs: list[str], rate: float, seed: int = 0) -> list[str]:
    """Apply substitutions, insertions and deletions (equally likely) at ``rate`` per base, with a fixed seed."""
    rng = np.random.default_rng(seed)
    bases = np.array(list("ACGT"))
    out = []
    for s in seqs:
        arr = np.array(list(s))
        hit = rng.random(len(arr)) < rate
        if not hit.any():
            out.append(s)
            continue
        kind = rng.integers(0, 3, len(arr))
        pieces = []
        for i, c in enumerate(arr):
            if not hit[i]:
                pieces.append(c)
            elif kind[i] == 0:  # substitution to a different base
                pieces.append(bases[(np.searchsorted(bases, c) + rng.integers(1, 4)) % 4] if c in "ACGT" else c)
            elif kind[i] == 1:  # insertion before this base
                pieces.append(bases[rng.integers(0, 4)] + c)
            # else: deletion
        out.append("".join(pieces))
    return out


def validity_sets(seqs: list[str], rates=(0.01, 0.05, 0.10), seed: int = 0) -> dict[str, list[str]]:
    sets = {"rc": [reverse_complement(s) for s in seqs]}
    for r in rates:
        sets[f"err_{r:g}"] = sequencing_errors(seqs, r, seed)
    return sets


def validity_report(y: np.ndarray, logits: dict[str, np.ndarray]) -> dict:
    """RC consistency, accuracy under sequencing error, calibration; from logits of each set."""
    from edgegen.metrics import ece, softmax

    base = logits["test"].argmax(1)
    rep: dict = {}
    if "rc" in logits:
        rep["rc_consistency"] = float((logits["rc"].argmax(1) == base).mean())
    rob = {}
    for k, v in logits.items():
        if k.startswith("err_"):
            p = v.argmax(1)
            rob[k[4:]] = {"accuracy": float((p == y).mean()), "agreement_with_clean": float((p == base).mean())}
    if rob:
        rep["sequencing_error"] = rob
    rep["ece"] = ece(y, softmax(logits["test"]))
    return rep
