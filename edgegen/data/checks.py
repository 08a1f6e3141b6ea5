"""Checks on a dataset before training or benchmarking: lengths by class,
class balance, N content and train/test leakage."""

from __future__ import annotations

import logging

import numpy as np

from edgegen.data.readers import SequenceSet

log = logging.getLogger("edgegen")


def length_by_class(ds: SequenceSet) -> dict:
    lens = np.array([len(s) for s in ds.sequences])
    out = {}
    for c in range(ds.num_classes):
        lc = lens[ds.labels == c]
        if len(lc):
            out[c] = {"min": int(lc.min()), "median": float(np.median(lc)), "max": int(lc.max())}
    return out


def check_lengths(ds: SequenceSet, name: str = "") -> str | None:
    """Warn when length distributions differ between classes (a model can learn the length)."""
    stats = length_by_class(ds)
    meds = {c: v["median"] for c, v in stats.items()}
    ranges = {c: (v["min"], v["max"]) for c, v in stats.items()}
    if len(set(meds.values())) > 1 or len(set(ranges.values())) > 1:
        desc = "; ".join(f"class {c}: {v['min']}-{v['max']} bp (median {v['median']:g})" for c, v in stats.items())
        msg = (
            f"sequence lengths differ between classes in {name or ds.path}: {desc}. "
            "A model can learn the length instead of the biology; crop to a common window (max_len) "
            "no longer than the shortest class, or fix the data."
        )
        log.warning(msg)
        return msg
    return None


def data_report(splits: dict[str, SequenceSet], near_k: int = 0) -> dict:
    """Class balance, lengths, N content per split; exact train/test overlaps (leakage)."""
    rep: dict = {"splits": {}}
    for name, ds in splits.items():
        lens = np.array([len(s) for s in ds.sequences])
        n_frac = np.array([s.count("N") / max(1, len(s)) for s in ds.sequences])
        rep["splits"][name] = {
            "n": len(ds),
            "class_counts": np.bincount(ds.labels, minlength=ds.num_classes).tolist()
            if ds.labels is not None
            else None,
            "length": {"min": int(lens.min()), "median": float(np.median(lens)), "max": int(lens.max())},
            "length_by_class": length_by_class(ds) if ds.labels is not None else None,
            "n_content_mean": float(n_frac.mean()),
            "with_n": int((n_frac > 0).sum()),
        }
    warnings = []
    if "train" in splits:
        train = set(splits["train"].sequences)
        for other in ("dev", "test"):
            if other in splits:
                shared = sum(1 for s in splits[other].sequences if s in train)
                rep[f"exact_overlap_train_{other}"] = shared
                if shared:
                    warnings.append(
                        f"{shared} {other} sequences also occur in train (leakage): test scores are optimistic"
                    )
    for name, ds in splits.items():
        if ds.labels is not None:
            w = check_lengths(ds, name)
            if w:
                warnings.append(w)
    for w in warnings:
        if "lengths differ" not in w:
            log.warning(w)
    rep["warnings"] = warnings
    return rep
