"""Does the live data still look like what the model knows? A reference profile, per-chunk drift tests, and a
label-free accuracy estimate (numpy only: it runs on the device).

The reference profile (:func:`reference_profile`) is computed from reads the model was checked on: read length,
GC content and N rate samples, the pooled 4-mer spectrum, the model's confidence and entropy, its predicted class
prior, reverse-complement consistency, and a temperature fitted on labelled reads so that confidences are
calibrated. A chunk of live reads (:func:`check_chunk`) is compared statistic by statistic with tests suited to
each, as Evidently chooses them for this sample size: two-sample Kolmogorov–Smirnov for the numeric ones (with a
Wasserstein effect size, so a trivial shift on many reads is not an alarm), Jensen–Shannon distance for the k-mer
spectrum and the class prior, a difference for RC consistency. The label-free accuracy estimate is the mean
calibrated confidence (NannyML's CBPE idea). Each chunk gets ``ok | warn | drift`` and the reasons in words.
"""

from __future__ import annotations

import numpy as np

from edgegen.alphabet import CODE

NUMERIC = ("length", "gc", "n_rate", "confidence", "entropy")
WORDS = {
    "length": "read length",
    "gc": "GC content",
    "n_rate": "share of N bases",
    "confidence": "the model's confidence",
    "entropy": "the model's uncertainty (entropy)",
}
SAMPLE = 2000  # reference values kept per numeric statistic
ALPHA = 0.01  # KS significance (Bonferroni over the numeric statistics)
MIN_EFFECT = 0.15  # Wasserstein distance / reference spread that counts as a real shift
KMER_JS = 0.03  # Jensen–Shannon distance of the 4-mer spectrum beyond sampling noise that counts as drift
PRIOR_JS = 0.02  # ... of the predicted class prior (a weak model moves its calls less than the true prior moves)
NOISE_TIMES = 2.5  # how many times the sampling noise of a JS distance an alarm must exceed
RC_DROP = 0.1  # a fall in RC consistency that counts as drift
ACC_DROP = 0.05  # a fall of the estimated accuracy that warns
# the least spread a statistic is measured against (a model at chance has nearly constant confidence: a tiny change
# of it is no shift); length: 5% of the median read
MIN_SPREAD = {"gc": 0.02, "n_rate": 0.01, "confidence": 0.02, "entropy": 0.02}


def read_stats(seqs: list[str]) -> dict[str, np.ndarray]:
    """Per-read length, GC content and N rate; the pooled 4-mer counts of the chunk."""
    lengths = np.array([len(s) for s in seqs], dtype=np.float64)
    gc, nr = np.zeros(len(seqs)), np.zeros(len(seqs))
    kmers = np.zeros(256)
    p = np.array([64, 16, 4, 1])
    for i, s in enumerate(seqs):
        c = CODE[np.frombuffer(s.encode("ascii", "replace"), dtype=np.uint8)]
        acgt = c < 4
        gc[i] = ((c == 1) | (c == 2)).sum() / max(1, acgt.sum())
        nr[i] = (c == 4).mean() if len(c) else 0.0
        if len(c) >= 4:
            w = np.lib.stride_tricks.sliding_window_view(c, 4)
            ok = (w < 4).all(1)
            kmers += np.bincount((w[ok].astype(np.int64) * p).sum(1), minlength=256)
    return {"length": lengths, "gc": gc, "n_rate": nr, "kmer4": kmers}


def calibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    z = np.log(np.clip(probs, 1e-12, 1)) / temperature
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``labels`` (a grid, then a finer one)."""

    def nll(t):
        return -np.log(np.clip(calibrated(probs, t)[np.arange(len(labels)), labels], 1e-12, 1)).mean()

    grid = np.exp(np.linspace(np.log(0.2), np.log(10), 60))
    best = grid[int(np.argmin([nll(t) for t in grid]))]
    fine = best * np.exp(np.linspace(-0.1, 0.1, 21))
    return float(fine[int(np.argmin([nll(t) for t in fine]))])


def _model_stats(probs: np.ndarray, temperature: float) -> dict[str, np.ndarray]:
    cal = calibrated(probs, temperature)
    return {
        "confidence": cal.max(1),
        "entropy": -(cal * np.log(np.clip(cal, 1e-12, 1))).sum(1),
        "prior": np.bincount(cal.argmax(1), minlength=cal.shape[1]) / max(1, len(cal)),
    }


def reference_profile(seqs, probs, rc_probs=None, labels=None, *, seed: int = 0) -> dict:
    """The profile live chunks are compared with: from reads the model was checked on, their probabilities (and
    those of their reverse complements; their labels fit the temperature)."""
    t = fit_temperature(probs, np.asarray(labels)) if labels is not None else 1.0
    rs, ms = read_stats(list(seqs)), _model_stats(probs, t)
    rng = np.random.default_rng(seed)
    prof = {"schema": "edgegen-reference/1", "n": len(seqs), "temperature": t, "numeric": {}}
    for name in NUMERIC:
        v = rs[name] if name in rs else ms[name]
        prof["numeric"][name] = np.sort(rng.permutation(v)[:SAMPLE]).round(6).tolist()
    prof["kmer4"] = (rs["kmer4"] / max(1, rs["kmer4"].sum())).tolist()
    prof["prior"] = ms["prior"].tolist()
    prof["estimated_accuracy"] = float(ms["confidence"].mean())
    if rc_probs is not None:
        prof["rc_consistency"] = float((probs.argmax(1) == rc_probs.argmax(1)).mean())
    if labels is not None:
        prof["accuracy"] = float((probs.argmax(1) == np.asarray(labels)).mean())
    return prof


def check_reference(ref, where) -> dict:
    """A reference profile read from outside (a bundle's REFERENCE.json, a sidecar): the fields :func:`check_chunk`
    reads, of the right kinds, finite; a ModelFileError naming ``where`` otherwise."""
    from edgegen.errors import ModelFileError

    def bad(what):
        raise ModelFileError(f"drift reference: {what}", path=where)

    if not isinstance(ref, dict):
        bad("not an object")
    try:
        t = float(ref["temperature"])
        arrays = [np.asarray(ref["numeric"][n], dtype=np.float64) for n in NUMERIC]
        arrays += [np.asarray(ref["kmer4"], dtype=np.float64), np.asarray(ref["prior"], dtype=np.float64)]
        float(ref["estimated_accuracy"])
    except (KeyError, TypeError, ValueError) as e:
        bad(f"missing or malformed field ({type(e).__name__}: {e})")
    if not (np.isfinite(t) and t > 0) or any(not np.isfinite(a).all() or a.size == 0 for a in arrays):
        bad("a number is missing, not finite, or the temperature is not positive")
    if arrays[-2].shape != (256,) or (arrays[-2] < 0).any():
        bad("kmer4 must be 256 non-negative frequencies")
    return ref


def ks(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov statistic and its asymptotic p-value."""
    a, b = np.sort(a), np.sort(b)
    allv = np.concatenate([a, b])
    d = float(np.abs(np.searchsorted(a, allv, "right") / len(a) - np.searchsorted(b, allv, "right") / len(b)).max())
    ne = len(a) * len(b) / (len(a) + len(b))
    lam = (np.sqrt(ne) + 0.12 + 0.11 / np.sqrt(ne)) * d
    k = np.arange(1, 101)
    p = float(np.clip(2 * np.sum((-1) ** (k - 1) * np.exp(-2 * k**2 * lam**2)), 0, 1)) if lam > 0 else 1.0
    return d, p


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    qs = np.linspace(0, 1, 101)
    return float(np.abs(np.quantile(a, qs) - np.quantile(b, qs)).mean())


def js_distance(p, q) -> float:
    p, q = np.asarray(p, float) + 1e-12, np.asarray(q, float) + 1e-12
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    js = 0.5 * (p * np.log2(p / m)).sum() + 0.5 * (q * np.log2(q / m)).sum()
    return float(np.sqrt(max(js, 0.0)))


def js_noise(bins: int, n: float) -> float:
    """The JS distance between a sample of ``n`` counts and the distribution it was drawn from, typically:
    sqrt((bins - 1) / (8 n ln 2)) (the chi-square approximation); an alarm must be well above it."""
    return float(np.sqrt(max(bins - 1, 1) / (8 * max(n, 1) * np.log(2))))


def check_chunk(ref: dict, seqs, probs, rc_probs=None) -> dict:
    """One chunk of live reads against the reference: every statistic, ``state`` and the ``reasons``."""
    rs, ms = read_stats(list(seqs)), _model_stats(probs, ref["temperature"])
    stats, reasons, warns = {}, [], []
    for name in NUMERIC:
        r = np.asarray(ref["numeric"][name])
        v = rs[name] if name in rs else ms[name]
        d, p = ks(v, r)
        floor = 0.05 * float(np.median(r)) if name == "length" else MIN_SPREAD[name]
        spread = max(float(np.quantile(r, 0.9) - np.quantile(r, 0.1)), floor, 1e-9)
        effect = wasserstein(v, r) / spread
        stats[name] = {"ks": round(d, 4), "p": p, "effect": round(effect, 4), "mean": float(np.mean(v))}
        if p < ALPHA / len(NUMERIC) and effect >= MIN_EFFECT:
            way = "higher" if np.mean(v) > np.mean(r) else "lower"
            reasons.append(
                f"{WORDS[name]} is {way} than in the reads the model knows (KS p={p:.1e}, shift "
                f"{effect:.2f} of the usual spread)"
            )
        elif p < ALPHA:
            warns.append(f"{WORDS[name]} differs a little (KS p={p:.1e})")
    kjs = js_distance(rs["kmer4"], ref["kmer4"])
    k_limit = KMER_JS + NOISE_TIMES * js_noise(256, rs["kmer4"].sum())
    stats["kmer4"] = {"js": round(kjs, 4), "limit": round(k_limit, 4)}
    if kjs > k_limit:
        reasons.append(f"the 4-mer composition differs from the reads the model knows (JS distance {kjs:.3f})")
    pjs = js_distance(ms["prior"], ref["prior"])
    p_limit = PRIOR_JS + NOISE_TIMES * js_noise(len(ref["prior"]), len(probs))
    stats["prior"] = {"js": round(pjs, 4), "limit": round(p_limit, 4), "predicted": ms["prior"].round(4).tolist()}
    if pjs > p_limit:
        shares = ", ".join(f"{x:.0%}" for x in ms["prior"])
        reasons.append(f"the classes called are in other proportions ({shares}) than in the reference")
    if rc_probs is not None and "rc_consistency" in ref:
        rc = float((probs.argmax(1) == rc_probs.argmax(1)).mean())
        stats["rc_consistency"] = round(rc, 4)
        if rc < ref["rc_consistency"] - RC_DROP:
            reasons.append(
                f"a read and its reverse complement agree less often ({rc:.2f} vs {ref['rc_consistency']:.2f})"
            )
    est = float(ms["confidence"].mean())
    stats["estimated_accuracy"] = round(est, 4)
    if est < ref["estimated_accuracy"] - ACC_DROP:
        warns.append(f"estimated accuracy {est:.2f} (reference {ref['estimated_accuracy']:.2f}, no labels needed)")
    state = "drift" if reasons else ("warn" if warns else "ok")
    return {"state": state, "reads": len(seqs), "reasons": reasons + warns, "stats": stats}
