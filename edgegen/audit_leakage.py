"""Leakage between the splits of a data set: exact and reverse-complement duplicates within and across splits, and
near-duplicates across them.

Near-duplicates: MMseqs2 (``mmseqs easy-search``, Debian's ``mmseqs2``, the tool genbenchqc moved to) where it is
installed, at ``identity`` over ``coverage`` of the query, both strands; else a MinHash estimate over canonical
(strand-free) 12-mers, candidate pairs found by LSH banding and confirmed by the exact share of the shorter
sequence's 12-mers found in the other (≥ ``containment``). The result says which ran.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgegen.validity import reverse_complement

PAIRS = (("train", "dev"), ("train", "test"), ("dev", "test"))
K = 12
N_HASHES, BAND = 96, 3  # 32 bands of 3 rows: a pair with Jaccard 0.5 meets in a band with p 0.99, 0.33 with p 0.7
MAX_QUERIES = 5000  # near-duplicate search: at most this many sequences of each evaluated split (a random sample)


def canonical(s: str) -> str:
    rc = reverse_complement(s)
    return min(s, rc)


def duplicates(splits: dict) -> dict:
    """Exact and reverse-complement duplicates: within each split, and the sequences of the later split of each pair
    that occur in the earlier one."""
    seqs = {n: [s.upper() for s in ss.sequences] for n, ss in splits.items()}
    within = {
        n: {"exact": len(v) - len(set(v)), "reverse_complement": len(set(v)) - len({canonical(s) for s in set(v)})}
        for n, v in seqs.items()
    }
    across = {}
    for a, b in PAIRS:
        if a in seqs and b in seqs:
            sa, ca = set(seqs[a]), {canonical(s) for s in seqs[a]}
            exact = sum(s in sa for s in seqs[b])
            rc = sum(s not in sa and canonical(s) in ca for s in seqs[b])
            across[f"{a}-{b}"] = {"exact": exact, "reverse_complement": rc, "of": len(seqs[b])}
    return {"within": within, "across": across}


def _kmer_hashes(s: str) -> np.ndarray:
    """Hashes of the canonical 12-mers of ``s`` (2 bits a base, both strands, the smaller kept; N-containing ones
    dropped)."""
    from edgegen.alphabet import CODE

    c = CODE[np.frombuffer(s.upper().encode("ascii", "replace"), dtype=np.uint8)].astype(np.int64)
    if len(c) < K:
        return np.zeros(0, dtype=np.int64)
    win = np.lib.stride_tricks.sliding_window_view(c, K)
    ok = (win < 4).all(1)
    w = win[ok]
    p = 4 ** np.arange(K - 1, -1, -1)
    fwd = (w * p).sum(1)
    rev = ((3 - w[:, ::-1]) * p).sum(1)
    return np.unique(np.minimum(fwd, rev))


def _minhash(kmers: list[np.ndarray], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    prime = (1 << 31) - 1
    a = rng.integers(1, prime, N_HASHES, dtype=np.int64)
    b = rng.integers(0, prime, N_HASHES, dtype=np.int64)
    sig = np.full((len(kmers), N_HASHES), prime, dtype=np.int64)
    for i, h in enumerate(kmers):
        if len(h):
            sig[i] = ((np.outer(h % prime, a) + b) % prime).min(0)
    return sig


def _minhash_near(queries: list[str], targets: list[str], containment: float) -> int:
    """How many queries have a target sharing ≥ ``containment`` of the shorter one's canonical 12-mers."""
    qk, tk = [_kmer_hashes(s) for s in queries], [_kmer_hashes(s) for s in targets]
    qs, ts = _minhash(qk), _minhash(tk)
    found = 0
    buckets: list[dict] = []
    for band in range(0, N_HASHES, BAND):
        d: dict = {}
        for j, row in enumerate(ts[:, band : band + BAND]):
            d.setdefault(row.tobytes(), []).append(j)
        buckets.append(d)
    for i, q in enumerate(qs):
        cands = set()
        for n, band in enumerate(range(0, N_HASHES, BAND)):
            cands.update(buckets[n].get(q[band : band + BAND].tobytes(), ()))
        for j in cands:
            shared = len(np.intersect1d(qk[i], tk[j], assume_unique=True))
            if shared >= containment * max(1, min(len(qk[i]), len(tk[j]))):
                found += 1
                break
    return found


def _mmseqs_near(queries: list[str], targets: list[str], identity: float, coverage: float) -> int:
    with tempfile.TemporaryDirectory(prefix="edgegen-mmseqs-") as d:
        q, t = Path(d) / "q.fa", Path(d) / "t.fa"
        q.write_text("".join(f">q{i}\n{s}\n" for i, s in enumerate(queries)))
        t.write_text("".join(f">t{i}\n{s}\n" for i, s in enumerate(targets)))
        out = Path(d) / "hits.m8"
        cmd = [
            "mmseqs",
            "easy-search",
            str(q),
            str(t),
            str(out),
            str(Path(d) / "tmp"),
            "--search-type",
            "3",
            "--min-seq-id",
            str(identity),
            "-c",
            str(coverage),
            "--cov-mode",
            "2",
            "--strand",
            "2",
            "-v",
            "1",
        ]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"mmseqs easy-search failed: {(r.stderr or r.stdout).strip()[-200:]}")
        return len({line.split("\t")[0] for line in out.read_text().splitlines() if line})


def near_duplicates(
    splits: dict,
    *,
    identity: float = 0.9,
    coverage: float = 0.8,
    containment: float = 0.5,
    method: str = "auto",
    seed: int = 0,
) -> dict:
    """Sequences of each evaluated split with a near-copy in an earlier split (a sample of at most MAX_QUERIES)."""
    use = method
    if method == "auto":
        use = "mmseqs2" if shutil.which("mmseqs") else "minhash"
    rng = np.random.default_rng(seed)
    out: dict = {"method": use, "pairs": {}}
    if use == "mmseqs2":
        out.update(identity=identity, coverage=coverage)
    else:
        out.update(kmer=K, containment=containment)
    for a, b in PAIRS:
        if a not in splits or b not in splits:
            continue
        qs = splits[b].sequences
        idx = np.sort(rng.permutation(len(qs))[:MAX_QUERIES])
        queries = [qs[i] for i in idx]
        if use == "mmseqs2":
            n = _mmseqs_near(queries, splits[a].sequences, identity, coverage)
        else:
            n = _minhash_near(queries, splits[a].sequences, containment)
        out["pairs"][f"{a}-{b}"] = {"near": n, "checked": len(queries), "rate": n / max(1, len(queries))}
    return out
