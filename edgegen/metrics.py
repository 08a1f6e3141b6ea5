"""Classification metrics with bootstrap intervals (numpy only)."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def confusion(y: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y * k + p, minlength=k * k).reshape(k, k)


def mcc(y: np.ndarray, p: np.ndarray, k: int | None = None) -> float:
    """Matthews correlation (multi-class, Gorodkin's R_K)."""
    k = k or int(max(y.max(), p.max())) + 1
    c = confusion(y, p, k).astype(np.float64)
    t, pk = c.sum(1), c.sum(0)
    n, correct = c.sum(), np.trace(c)
    num = correct * n - (t * pk).sum()
    den = np.sqrt((n**2 - (pk**2).sum()) * (n**2 - (t**2).sum()))
    return float(num / den) if den > 0 else 0.0


def f1_macro(y, p, k=None) -> float:
    k = k or int(max(y.max(), p.max())) + 1
    c = confusion(y, p, k).astype(np.float64)
    tp = np.diag(c)
    prec = np.divide(tp, c.sum(0), out=np.zeros(k), where=c.sum(0) > 0)
    rec = np.divide(tp, c.sum(1), out=np.zeros(k), where=c.sum(1) > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros(k), where=(prec + rec) > 0)
    return float(f1.mean())


def per_class_recall(y, p, k) -> list[float]:
    c = confusion(y, p, k).astype(np.float64)
    return [float(c[i, i] / c[i].sum()) if c[i].sum() else float("nan") for i in range(k)]


def auroc_binary(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney AUROC with tied scores given their average rank."""
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    _, inv, counts = np.unique(score, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0  # 1-based average rank per unique value
    r = avg_rank[inv]
    return float((r[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def auroc(y, probs) -> float:
    """Binary AUROC, or macro one-vs-rest for K > 2."""
    k = probs.shape[1]
    if k == 2:
        return auroc_binary(y, probs[:, 1])
    vals = [auroc_binary((y == c).astype(int), probs[:, c]) for c in range(k)]
    return float(np.nanmean(vals))


def ece(y, probs, bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence."""
    conf = probs.max(1)
    pred = probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        m = (conf > a) & (conf <= b)
        if m.any():
            total += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return float(total)


def point_metrics(y: np.ndarray, logits: np.ndarray) -> dict:
    return _metrics_from_probs(y, softmax(np.asarray(logits, dtype=np.float64)))


def _metrics_from_probs(y: np.ndarray, probs: np.ndarray) -> dict:
    k = probs.shape[1]
    p = probs.argmax(1)
    return {
        "accuracy": float((p == y).mean()),
        "f1": f1_macro(y, p, k),
        "mcc": mcc(y, p, k),
        "auroc": auroc(y, probs),
    }


def classification_report(
    y: np.ndarray, logits: np.ndarray, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> dict:
    """Accuracy, macro F1, MCC, AUROC with bootstrap (1-alpha) intervals, per-class recall and ECE."""
    y = np.asarray(y, dtype=np.int64)
    logits = np.asarray(logits, dtype=np.float64)
    k = logits.shape[1]
    probs = softmax(logits)
    est = _metrics_from_probs(y, probs)
    rng = np.random.default_rng(seed)
    boots = {m: [] for m in est}
    n = len(y)
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        for m, v in _metrics_from_probs(y[idx], probs[idx]).items():
            boots[m].append(v)
    out = {"n": n, "num_classes": k}
    for m, v in est.items():
        lo, hi = np.nanquantile(boots[m], [alpha / 2, 1 - alpha / 2])
        out[m] = {"value": v, "ci": [float(lo), float(hi)]}
    pred = logits.argmax(1)
    out["per_class_recall"] = per_class_recall(y, pred, k)
    out["class_counts"] = np.bincount(y, minlength=k).tolist()
    out["ece"] = ece(y, softmax(logits))
    return out


def paired_delta(y, logits_a, logits_b, metric: str = "mcc", n_boot: int = 1000, seed: int = 0) -> dict:
    """Bootstrap interval of metric(b) - metric(a) on the same resamples."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    a0 = point_metrics(y, logits_a)[metric]
    b0 = point_metrics(y, logits_b)[metric]
    ds = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        ds.append(point_metrics(y[idx], logits_b[idx])[metric] - point_metrics(y[idx], logits_a[idx])[metric])
    lo, hi = np.quantile(ds, [0.025, 0.975])
    return {"metric": metric, "delta": b0 - a0, "ci": [float(lo), float(hi)]}
