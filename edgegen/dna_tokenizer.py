"""DNA tokenizers: single-nucleotide, overlapping k-mer (DNABERT-1), non-overlapping k-mer (Nucleotide-Transformer)
and BPE (DNABERT-2). :class:`Tokenizer` holds what describes one (kind, window, specials, vocab; saved and read
back checked); how each kind turns bases into ids is :mod:`edgegen.token_kinds`. numpy only, so the on-device
runner can use them without torch.

Token ids are int32 (TFLite wants int32 inputs). Every encoded batch has the
same fixed length, :attr:`Tokenizer.seq_len`, derived from the nucleotide window
``max_len``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from edgegen.alphabet import CODE as _CODE
from edgegen.alphabet import PAD_CODE, TokenizerKind, default_vocab
from edgegen.errors import ConfigError, DataError, ModelFileError


class SequenceError(DataError, ValueError):
    """A letter outside ACGTN in a sequence given to a tokenizer."""


@dataclass
class Tokenizer:
    """Maps DNA strings to fixed-length int32 token-id arrays.

    Args:
        kind: ``char`` (one token per nucleotide), ``kmer`` (overlapping k-mers,
            stride 1, DNABERT-1) or ``kmer_nonoverlap`` (stride k, trailing
            bases as single-letter tokens, Nucleotide-Transformer).
        k: k-mer size (ignored for ``char``).
        max_len: nucleotide window; longer sequences are cropped, shorter padded.
        crop: keep the ``center`` or the ``left`` part of longer sequences.
        add_cls / add_sep: prepend CLS / append SEP.
        vocab: token -> id; defaults to :func:`default_vocab`.
        n_singles: ``kmer_nonoverlap`` only: every ``N`` is a single-base token and k-mers restart after it
            (Nucleotide Transformer v2's tokenizer: leftmost-longest over k-mers and single bases); otherwise
            a k-mer holding an ``N`` is UNK. A row that needs more tokens than :attr:`seq_len` is cut at its end.
        bpe: ``bpe`` only: a Hugging Face ``tokenizer.json`` (DNABERT-2's BPE), run by the ``tokenizers``
            library; its post-processor adds ``[CLS] ... [SEP]``.
        max_tokens: ``bpe`` only: the fixed row length (specials included); longer encodings are cut at
            the end (before SEP). Default: ``max_len // 3 + 2``.

    Example:
        >>> tok = Tokenizer(kind="kmer", k=3, max_len=10)
        >>> tok.encode(["ACGTACGTAC"]).shape
        (1, 10)
    """

    kind: TokenizerKind = "char"
    k: int = 1
    max_len: int = 200
    crop: Literal["center", "left"] = "center"
    add_cls: bool = True
    add_sep: bool = False
    pad_token: str = "[PAD]"
    unk_token: str = "[UNK]"
    cls_token: str = "[CLS]"
    sep_token: str = "[SEP]"
    mask_token: str = "[MASK]"
    vocab: dict[str, int] = field(default_factory=dict)
    n_singles: bool = False
    bpe: dict | None = None
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        from edgegen.token_kinds import KINDS

        if self.kind not in KINDS:
            raise ConfigError(f"unknown tokenizer kind {self.kind!r} ({', '.join(KINDS)})")
        kind = KINDS[self.kind]
        kind.configure(self)
        if not 1 <= self.k <= 8:
            raise ConfigError(f"k must be in 1..8, got {self.k}")
        if self.max_len < self.k:
            raise ConfigError(f"max_len ({self.max_len}) must be >= k ({self.k})")
        if not self.vocab:
            self.vocab = default_vocab(self.kind, self.k)
        specials = [self.pad_token, self.unk_token, self.mask_token]
        specials += [self.cls_token] if self.add_cls else []
        specials += [self.sep_token] if self.add_sep else []
        missing = [t for t in specials if t not in self.vocab]
        if missing:
            raise ConfigError(f"tokenizer vocab lacks special tokens {missing}")
        kind.prepare(self)
        self._kind = kind

    @property
    def pad_id(self) -> int:
        return self.vocab[self.pad_token]

    @property
    def cls_id(self) -> int:
        return self.vocab[self.cls_token]

    @property
    def mask_id(self) -> int:
        return self.vocab[self.mask_token]

    @property
    def vocab_size(self) -> int:
        return max(self.vocab.values()) + 1

    @property
    def body_len(self) -> int:
        """Number of tokens produced for a full ``max_len`` window, without specials."""
        return self._kind.body_len(self)

    @property
    def seq_len(self) -> int:
        """Length of every encoded row (specials included)."""
        return self.body_len + int(self.add_cls) + int(self.add_sep)

    # ---------------------------------------------------------------- encoding
    def codes(self, seqs: Sequence[str]) -> np.ndarray:
        """(B, max_len) uint8 codes: ACGT 0..3, N 4, padding 5. Invalid letters raise ValueError."""
        out = np.full((len(seqs), self.max_len), PAD_CODE, dtype=np.uint8)
        for i, s in enumerate(seqs):
            if len(s) > self.max_len:
                start = (len(s) - self.max_len) // 2 if self.crop == "center" else 0
                s = s[start : start + self.max_len]
            c = _CODE[np.frombuffer(s.encode("ascii", "replace"), dtype=np.uint8)]
            if (c == 6).any():
                bad = s[int(np.argmax(c == 6))]
                raise SequenceError(f"invalid nucleotide {bad!r}")
            out[i, : len(c)] = c
        return out

    def encode(self, seqs: Sequence[str]) -> np.ndarray:
        """Encode DNA strings to a (B, seq_len) int32 array (the ids by kind: :mod:`edgegen.token_kinds`)."""
        codes = self.codes(seqs)
        ids = self._kind.ids(self, codes)
        return ids if self._kind.whole_rows else self._with_specials(ids)

    def _with_specials(self, ids: np.ndarray) -> np.ndarray:
        pad = self.pad_id
        parts = []
        if self.add_cls:
            parts.append(np.full((len(ids), 1), self.cls_id, dtype=np.int32))
        parts.append(ids)
        if self.add_sep:
            # SEP follows the last real token; padded rows keep PAD after it.
            parts.append(np.full((len(ids), 1), pad, dtype=np.int32))
        out = np.concatenate(parts, axis=1) if len(parts) > 1 else ids
        if self.add_sep:
            n_real = (out != pad).sum(1)
            out[np.arange(len(out)), n_real] = self.vocab[self.sep_token]
        return np.ascontiguousarray(out, dtype=np.int32)

    # ----------------------------------------------------------------- storage
    def to_dict(self) -> dict:
        d = asdict(self)
        for name, default in (("n_singles", False), ("bpe", None), ("max_tokens", None)):
            if d[name] == default:
                del d[name]  # fields added later stay out at their defaults: older readers and hashes are unchanged
        d["format"] = "edgegen-tokenizer/1"
        return d

    def fingerprint(self) -> str:
        """sha256 of :meth:`to_dict`: equal for tokenizers that encode alike."""
        import hashlib
        import json

        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_dict(cls, d: dict) -> "Tokenizer":
        """Rebuild from :meth:`to_dict` output, checking every field's type first.

        Raises:
            ConfigError: not an object, an unknown field, or a field of the wrong type.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"bad tokenizer description: expected an object, got {type(d).__name__}")
        d = dict(d)
        d.pop("format", None)
        types = {
            "kind": str,
            "k": int,
            "max_len": int,
            "crop": str,
            "add_cls": bool,
            "add_sep": bool,
            "vocab": dict,
            "n_singles": bool,
            "bpe": dict,
            "max_tokens": int,
        }
        types.update({f: str for f in ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")})
        for name, value in d.items():
            want = types.get(name)
            if want is None:
                raise ConfigError(f"bad tokenizer description: unknown field {name!r}")
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise ConfigError(
                    f"bad tokenizer description: {name} must be {want.__name__}, got {type(value).__name__}"
                )
        vocab = d.get("vocab", {})
        if not all(
            isinstance(t, str) and isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 1 << 24
            for t, i in vocab.items()
        ):
            raise ConfigError("bad tokenizer description: vocab must map token strings to ids in 0..2^24")
        if not 1 <= d.get("max_len", 200) <= 1 << 22:
            raise ConfigError(f"bad tokenizer description: max_len must be in 1..{1 << 22}")
        return cls(**d)

    def save(self, path: str | Path) -> None:
        from edgegen.io import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Tokenizer":
        try:
            d = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ModelFileError("tokenizer file not found", path=path) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ModelFileError(f"tokenizer is not valid JSON ({e})", path=path) from None
        try:
            return cls.from_dict(d)
        except ConfigError as e:
            raise ModelFileError(str(e), path=path) from None

    def with_max_len(self, max_len: int) -> "Tokenizer":
        d = self.to_dict()
        d["max_len"] = max_len
        return Tokenizer.from_dict(d)
