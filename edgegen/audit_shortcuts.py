"""Shortcut features of a labelled data set: how well one trivial property of a sequence alone separates the
classes (AUROC), graded as genbenchqc grades them (pass ≤ 0.6, warn ≤ 0.7, fail above).

The features: length, GC content, N rate, GC content in each tenth of the sequence (per-position base content),
and the frequencies of every 1-, 2- (dinucleotide) and 3-mer. For several classes, a feature's score is its best
one-vs-rest AUROC. numpy only.
"""

from __future__ import annotations

import itertools

import numpy as np

from edgegen.alphabet import CODE, NUCLEOTIDES

PASS, WARN = 0.6, 0.7  # AUROC up to PASS passes, up to WARN warns, above fails
POSITION_BINS = 10


def grade(auroc: float) -> str:
    return "pass" if auroc <= PASS else ("warn" if auroc <= WARN else "fail")


def _codes(seqs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(B, Lmax) base codes (ACGT 0..3, N 4, padding 5) and the lengths."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    out = np.full((len(seqs), max(1, int(lengths.max(initial=1)))), 5, dtype=np.uint8)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = CODE[np.frombuffer(s.encode("ascii", "replace"), dtype=np.uint8)]
    return np.minimum(out, 5), lengths


def _kmer_freqs(codes: np.ndarray, k: int) -> np.ndarray:
    """(B, 4^k) frequencies of the k-mers made of ACGT only."""
    b, width = codes.shape
    if width < k:
        return np.zeros((b, 4**k))
    win = np.lib.stride_tricks.sliding_window_view(codes, k, axis=1)
    ok = (win < 4).all(-1)
    idx = (win.astype(np.int64) * (4 ** np.arange(k - 1, -1, -1))).sum(-1)
    rows = np.broadcast_to(np.arange(b)[:, None], idx.shape)
    counts = np.bincount((rows[ok] * 4**k + idx[ok]), minlength=b * 4**k).reshape(b, 4**k).astype(np.float64)
    return counts / np.maximum(counts.sum(1, keepdims=True), 1)


def features(seqs: list[str]) -> tuple[list[str], np.ndarray]:
    """(names, (B, F) values) of the trivial features of each sequence."""
    codes, lengths = _codes(seqs)
    real = codes < 5
    gc = (codes == 1) | (codes == 2)
    names, cols = ["length"], [lengths.astype(np.float64)]
    names.append("GC content")
    cols.append(gc.sum(1) / np.maximum(lengths, 1))
    names.append("N rate")
    cols.append((codes == 4).sum(1) / np.maximum(lengths, 1))
    pos = np.arange(codes.shape[1])[None, :] * POSITION_BINS // np.maximum(lengths, 1)[:, None]
    for b in range(POSITION_BINS):
        inbin = real & (pos == b)
        names.append(f"GC in tenth {b + 1}")
        cols.append((gc & inbin).sum(1) / np.maximum(inbin.sum(1), 1))
    for k in (1, 2, 3):
        f = _kmer_freqs(codes, k)
        for j, kmer in enumerate(itertools.product(NUCLEOTIDES, repeat=k)):
            names.append(("dinucleotide " if k == 2 else f"{k}-mer ") + "".join(kmer))
            cols.append(f[:, j])
    return names, np.stack(cols, 1)


def auroc(x: np.ndarray, positive: np.ndarray) -> float:
    """The probability that a random positive scores above a random negative (ties count half); 0.5 when one side
    is empty."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return 0.5
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    ranks = (sums / counts)[inv]  # tied values share their mean rank
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def shortcut_scores(seqs: list[str], labels: np.ndarray) -> list[dict]:
    """Every feature's separating power, worst first: ``{"feature", "auroc", "class", "grade"}`` (AUROC folded to
    ≥ 0.5: a feature lower in the class separates as well)."""
    names, X = features(seqs)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    out = []
    for j, name in enumerate(names):
        best, best_c = 0.5, int(classes[0])
        for c in classes if len(classes) > 2 else classes[1:]:
            a = auroc(X[:, j], labels == c)
            a = max(a, 1 - a)
            if a > best:
                best, best_c = a, int(c)
        out.append({"feature": name, "auroc": round(best, 4), "class": best_c, "grade": grade(best)})
    return sorted(out, key=lambda r: -r["auroc"])
