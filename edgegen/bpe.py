"""Byte-pair encoding (DNABERT-2) for :class:`edgegen.dna_tokenizer.Tokenizer`, through the ``tokenizers`` library
on the cropped window (numpy and tokenizers only: it travels to devices)."""

from __future__ import annotations

import json

import numpy as np

from edgegen.alphabet import PAD_CODE
from edgegen.errors import ConfigError


def init_bpe(tok) -> None:
    """Check a BPE tokenizer's ``bpe`` (its tokenizer.json) and take its vocab and token budget from it."""
    if not isinstance(tok.bpe, dict):
        raise ConfigError("a bpe tokenizer needs its tokenizer.json (field bpe)")
    model = tok.bpe.get("model") or {}
    if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise ConfigError("bpe: tokenizer.json holds no BPE model with a vocab")
    if not tok.vocab:
        tok.vocab = {}
        for t, i in model["vocab"].items():
            tok.vocab[str(t)] = _token_id(i, f"model.vocab[{t!r}]")
        added = tok.bpe.get("added_tokens") or []
        for n, a in enumerate(added if isinstance(added, list) else [None]):
            if not isinstance(a, dict) or not isinstance(a.get("content"), str) or not a["content"]:
                raise ConfigError(f"tokenizer.json: added_tokens[{n}] has no token text (content)")
            tok.vocab.setdefault(a["content"], _token_id(a.get("id"), f"added_tokens[{n}].id"))
    if tok.max_tokens is None:
        tok.max_tokens = tok.max_len // 3 + 2
    if tok.max_tokens < 3:
        raise ConfigError(f"max_tokens must be >= 3, got {tok.max_tokens}")
    tok._bpe = None  # the tokenizers.Tokenizer, built on first use


def _token_id(value, where: str) -> int:
    """A token id from tokenizer.json: a non-negative integer (a bool, float or text is refused, naming the field)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"tokenizer.json: {where} is {value!r}, not a token id (an integer >= 0)")
    return value


def _backend(tok):
    """The ``tokenizers`` library's tokenizer, built on first use."""
    if tok._bpe is None:
        try:
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError:
            from edgegen.errors import BackendError

            raise BackendError(
                "this model's BPE tokenizer needs the 'tokenizers' package (pip install tokenizers)"
            ) from None
        tk = HFTokenizer.from_str(json.dumps(tok.bpe))
        tk.no_padding()
        tk.enable_truncation(tok.max_tokens)
        tok._bpe = tk
    return tok._bpe


def encode_bpe(tok, codes: np.ndarray) -> np.ndarray:
    """BPE through the ``tokenizers`` library on the cropped window (the letters already checked)."""
    letters = np.frombuffer(b"ACGTN", dtype=np.uint8)
    texts = [letters[row[row != PAD_CODE]].tobytes().decode() for row in codes]
    encs = _backend(tok).encode_batch(texts)
    out = np.full((len(texts), tok.seq_len), tok.pad_id, dtype=np.int32)
    for i, e in enumerate(encs):
        ids = e.ids[: tok.seq_len]
        out[i, : len(ids)] = ids
    return out
