"""The bar a transformer must clear: a k-mer logistic regression on the same split (numpy only, seconds).

A genomic transformer that does not beat a bag of 4-mers has learned nothing a linear model could not; ``edgegen
train`` reports this baseline beside its own dev score and warns when the transformer does not beat it.
"""

from __future__ import annotations

import numpy as np

K = 4  # 256 features: what the README's comparisons use


def kmer_profile(seqs: list[str], k: int = K) -> np.ndarray:
    """``(N, 4**k)`` k-mer frequencies of each sequence (overlapping; a k-mer with N in it is not counted)."""
    code = np.full(256, -1, np.int64)
    for i, c in enumerate(b"ACGT"):
        code[c] = i
    X = np.zeros((len(seqs), 4**k), np.float32)
    for row, s in enumerate(seqs):
        b = code[np.frombuffer(s.encode("ascii"), np.uint8)]
        if len(b) < k:
            continue
        win = np.lib.stride_tricks.sliding_window_view(b, k)
        win = win[(win >= 0).all(1)]
        idx = win @ (4 ** np.arange(k - 1, -1, -1))
        X[row] = np.bincount(idx, minlength=4**k)
    return X / np.maximum(X.sum(1, keepdims=True), 1)


def fit_logistic(
    X: np.ndarray, y: np.ndarray, n_classes: int, *, epochs: int = 300, l2: float = 1e-4
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch gradient descent on standardised features:
    ``(W, b, mean, std)``. The step is 1/L for the loss's smoothness bound L (the softmax Hessian is at most
    ½·ZᵀZ/n + l2), so descent never oscillates, whatever the data."""
    mu, sd = X.mean(0, dtype=np.float64), X.std(0, dtype=np.float64) + 1e-6
    Z = (X - mu) / sd  # float64 once (not upcast again in every product)
    lr = 1.0 / (0.5 * np.linalg.norm(Z, 2) ** 2 / len(Z) + 0.5 + l2)  # + ½ for the bias column
    W = np.zeros((X.shape[1], n_classes))
    b = np.zeros(n_classes)
    Y = np.eye(n_classes)[y]
    for _ in range(epochs):
        z = Z @ W + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - Y) / len(Z)
        W -= lr * (Z.T @ g + l2 * W)
        b -= lr * g.sum(0)
    return W, b, mu, sd


def kmer_baseline(train, evaluate_on, *, k: int = K) -> dict:
    """Fit the k-mer logistic regression on ``train`` (a labelled SequenceSet) and score it on ``evaluate_on``:
    ``{"model", "accuracy", "mcc", "n"}``."""
    from edgegen.metrics import point_metrics

    n_classes = int(max(train.labels.max(), evaluate_on.labels.max())) + 1
    W, b, mu, sd = fit_logistic(kmer_profile(train.sequences, k), np.asarray(train.labels), n_classes)
    logits = ((kmer_profile(evaluate_on.sequences, k) - mu) / sd) @ W + b
    m = point_metrics(np.asarray(evaluate_on.labels), logits)
    return {
        "model": f"{k}-mer logistic regression",
        "accuracy": float(m["accuracy"]),
        "mcc": float(m["mcc"]),
        "n": len(evaluate_on),
    }
