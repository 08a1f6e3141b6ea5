"""How each kind of DNA tokenizer turns nucleotide codes into token ids: one small class per kind, looked up by
:class:`edgegen.dna_tokenizer.Tokenizer` in :data:`KINDS` (numpy only; BPE in :mod:`edgegen.bpe`).

A kind answers three questions about a tokenizer ``tok`` (its vocab, ``k``, ``max_len``): what to prepare once
(``prepare``), how many tokens a full window gives without specials (``body_len``), and the ids of a batch of
codes (``ids``: ACGT 0..3, N 4, padding 5, shape (B, max_len)). The Tokenizer adds CLS/SEP around them, except for a
kind whose ``ids`` are whole rows already (``whole_rows``: BPE, whose post-processor adds them).
"""

from __future__ import annotations

import itertools

import numpy as np

from edgegen.alphabet import NUCLEOTIDES, PAD_CODE


class Kind:
    whole_rows = False  # ids() returns finished rows (specials included)

    def configure(self, tok) -> None:
        """Settle the tokenizer's own fields before they are checked (k, a vocab read from elsewhere)."""

    def prepare(self, tok) -> None:
        """Lookup tables: every k-mer's id (``tok._lut``), each base's (``tok._char_ids``), k-mer place values."""
        unk = tok.vocab[tok.unk_token]
        k = tok.k
        lut = np.full(4**k, unk, dtype=np.int32)
        for idx, kmer in enumerate(itertools.product(NUCLEOTIDES, repeat=k)):
            lut[idx] = tok.vocab.get("".join(kmer), unk)
        tok._lut = lut
        tok._char_ids = np.array([tok.vocab.get(c, unk) for c in "ACGTN"], dtype=np.int32)
        tok._pow = (4 ** np.arange(k - 1, -1, -1)).astype(np.int64)

    def body_len(self, tok) -> int:
        raise NotImplementedError

    def ids(self, tok, codes: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _base_ids(tok, codes: np.ndarray) -> np.ndarray:
    return np.where(codes == PAD_CODE, tok.pad_id, tok._char_ids[np.minimum(codes, 4)]).astype(np.int32)


class Char(Kind):
    """One token per nucleotide."""

    def configure(self, tok) -> None:
        tok.k = 1

    def body_len(self, tok) -> int:
        return tok.max_len

    def ids(self, tok, codes):
        return _base_ids(tok, codes)


class Kmer(Kind):
    """Overlapping k-mers, stride 1 (DNABERT-1); a k-mer holding an N is UNK."""

    stride_is_k = False

    def body_len(self, tok) -> int:
        return tok.max_len - tok.k + 1

    def ids(self, tok, codes):
        k = tok.k
        stride = k if self.stride_is_k else 1
        n_full = (tok.max_len - k) // stride + 1
        win = np.lib.stride_tricks.sliding_window_view(codes, k, axis=1)[:, ::stride][:, :n_full]
        ids = tok._lut[(np.minimum(win, 3).astype(np.int64) * tok._pow).sum(-1)]
        ids = np.where((win == 4).any(-1), tok.vocab[tok.unk_token], ids)
        return np.where((win == PAD_CODE).any(-1), tok.pad_id, ids).astype(np.int32)


class KmerNonOverlap(Kmer):
    """Non-overlapping k-mers, stride k, trailing bases as single-base tokens (Nucleotide Transformer); with
    ``n_singles`` every N is a single-base token and k-mers restart after it (NT-v2)."""

    stride_is_k = True

    def body_len(self, tok) -> int:
        return tok.max_len // tok.k + tok.max_len % tok.k

    def ids(self, tok, codes):
        ids = super().ids(tok, codes)
        n_full = (tok.max_len - tok.k) // tok.k + 1
        if tok.max_len % tok.k:
            ids = np.concatenate([ids, _base_ids(tok, codes[:, n_full * tok.k :])], axis=1)
        _single_base_ends(tok, codes, ids)
        if tok.n_singles:
            _split_at_n(tok, codes, ids)
        return ids


def _single_base_ends(tok, codes: np.ndarray, ids: np.ndarray) -> None:
    """Non-overlapping k-mers of a sequence shorter than the window: its last ``L % k`` bases become single-base
    tokens after its ``L // k`` k-mers (as Nucleotide Transformer's tokenizer does), instead of vanishing into a
    padded k-mer. Where the row has no room left, the last of them are dropped."""
    k = tok.k
    lengths = (codes != PAD_CODE).sum(1)
    for r in np.nonzero((lengths < tok.max_len) & (lengths % k != 0))[0]:
        n = int(lengths[r])
        start = n // k
        rest = codes[r, start * k : n]
        room = ids.shape[1] - start
        ids[r, start : start + min(len(rest), room)] = tok._char_ids[np.minimum(rest[:room], 4)]


def _split_at_n(tok, codes: np.ndarray, ids: np.ndarray) -> None:
    """Rows holding an N, re-tokenized leftmost-longest: each N-free run becomes its k-mers then its last
    ``len % k`` bases as single tokens, each N a single token (Nucleotide Transformer v2)."""
    k, width = tok.k, ids.shape[1]
    for r in np.nonzero((codes == 4).any(1))[0]:
        row = codes[r][codes[r] != PAD_CODE]
        toks: list[int] = []
        start = 0
        for end in list(np.nonzero(row == 4)[0]) + [len(row)]:
            run = row[start:end]
            full = len(run) // k
            if full:
                toks.extend(tok._lut[(run[: full * k].reshape(full, k).astype(np.int64) * tok._pow).sum(1)].tolist())
            toks.extend(tok._char_ids[run[full * k :]].tolist())
            if end < len(row):
                toks.append(int(tok._char_ids[4]))
            start = end + 1
        toks = toks[:width]
        ids[r, : len(toks)] = toks
        ids[r, len(toks) :] = tok.pad_id


class Bpe(Kind):
    """DNABERT-2's byte-pair encoding, through the ``tokenizers`` library (:mod:`edgegen.bpe`)."""

    whole_rows = True

    def configure(self, tok) -> None:
        from edgegen.bpe import init_bpe

        tok.k = 1
        init_bpe(tok)

    def body_len(self, tok) -> int:
        return tok.max_tokens - int(tok.add_cls) - int(tok.add_sep)

    def ids(self, tok, codes):
        from edgegen.bpe import encode_bpe

        return encode_bpe(tok, codes)


KINDS: dict[str, Kind] = {"char": Char(), "kmer": Kmer(), "kmer_nonoverlap": KmerNonOverlap(), "bpe": Bpe()}
