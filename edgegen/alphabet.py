"""The DNA alphabet as tokenizers read it, and the default vocabularies built on it: each byte of a sequence
becomes a code (A C G T = 0..3, N = 4, padding = 5, anything else = 6, invalid), lowercase as uppercase.
Device-side (numpy only)."""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np

NUCLEOTIDES = "ACGT"
PAD_CODE = 5
INVALID_CODE = 6

CODE = np.full(256, INVALID_CODE, dtype=np.uint8)
for _i, _c in enumerate("ACGTN"):
    CODE[ord(_c)] = _i
    CODE[ord(_c.lower())] = _i


TokenizerKind = Literal["char", "kmer", "kmer_nonoverlap", "bpe"]


def default_vocab(kind: TokenizerKind, k: int) -> dict[str, int]:
    """Specials first, then k-mers in lexicographic ACGT order, then single letters."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    if kind == "char":
        vocab += list("ACGTN")
    else:
        vocab += ["".join(p) for p in itertools.product(NUCLEOTIDES, repeat=k)]
        if kind == "kmer_nonoverlap":
            vocab += [c for c in "ACGTN" if c not in vocab]
    return {tok: i for i, tok in enumerate(vocab)}
