"""Reading a Hugging Face checkpoint folder from disk, checked: config.json, the weights (safetensors, or a .bin only
through ``torch.load(weights_only=True)``), vocab.txt. Every problem is a one-line :class:`ModelFileError`."""

from __future__ import annotations

import re
from pathlib import Path

from edgegen.errors import ModelFileError, UsageError


def read_config(d: Path) -> dict:
    if not d.exists():
        if re.fullmatch(r"[\w.-]+/[\w.-]+", str(d)):
            raise UsageError(f"{d!s} looks like a Hugging Face hub id: edgegen never downloads; "
                             "download the checkpoint yourself and pass its folder")
        raise ModelFileError("no such checkpoint folder", path=d)
    return read_json_object(d, "config.json", "not a Hugging Face checkpoint folder")


def read_json_object(d: Path, name: str, missing: str) -> dict:
    """A checkpoint folder's JSON file that must hold an object; every problem a one-line ModelFileError."""
    from edgegen.io import read_json

    f = d / name
    obj = read_json(f, missing=f"no {name}: {missing}", where=d)
    if not isinstance(obj, dict):
        raise ModelFileError(f"{name} must hold an object, not a {type(obj).__name__}", path=f)
    return obj


def shape_fields(cfg: dict, f: Path) -> tuple[int, int, int, int, int]:
    """(hidden, layers, heads, intermediate, vocab) from config.json, each a positive integer, heads dividing hidden.

    Raises:
        ModelFileError: naming config.json and the field.
    """
    vals = []
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"):
        v = cfg.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ModelFileError(f"{key} is {'missing' if v is None else repr(v)}; a positive integer is needed", path=f)
        vals.append(v)
    hidden, _, heads, _, _ = vals
    if hidden % heads:
        raise ModelFileError(f"num_attention_heads {heads} does not divide hidden_size {hidden}", path=f)
    optional = {"max_position_embeddings": (int, 1), "pad_token_id": (int, 0), "num_labels": (int, 1), "layer_norm_eps": ((int, float), 0),
                "model_type": (str, None), "hidden_act": (str, None), "position_embedding_type": (str, None)}
    for key, (typ, low) in optional.items():
        v = cfg.get(key)
        if v is None and key not in cfg:
            continue
        ok = isinstance(v, typ) and not isinstance(v, bool) and (low is None or v >= low) and not (key == "layer_norm_eps" and v <= 0)
        if not ok:
            raise ModelFileError(f"{key} is {v!r}; expected {'a string' if typ is str else 'a number'}"
                                 f"{'' if low is None else f' >= {low}' if key != 'layer_norm_eps' else ' > 0'}", path=f)
    for key in ("architectures", "id2label"):
        v = cfg.get(key)
        if v is not None and not isinstance(v, (list, dict)):
            raise ModelFileError(f"{key} is {v!r}; expected a list or mapping", path=f)
    if not all(isinstance(a, str) for a in cfg.get("architectures") or []):
        raise ModelFileError("architectures must list class names", path=f)
    return tuple(vals)


class Weights(dict):
    """A checkpoint's tensors; a missing name is a one-line ModelFileError naming the folder."""

    def __init__(self, state: dict, folder: Path):
        super().__init__(state)
        self.folder = folder

    def __missing__(self, key):
        raise ModelFileError(f"checkpoint lacks {key}", path=self.folder)


def shape_mismatch_message(e: Exception) -> str:
    """Every "size mismatch for X" of a load_state_dict error, on one line (not just the first)."""
    lines = [" ".join(x.split()) for x in str(e).splitlines() if x.strip()]
    found = [x for x in lines if x.startswith("size mismatch")]
    return "; ".join(found or lines)[:1200]


def load_state(d: Path) -> dict:
    """safetensors preferred; pytorch_model.bin only through torch.load(weights_only=True)."""
    import torch

    st = sorted(d.glob("*.safetensors"))
    if st:
        from safetensors.torch import load_file

        state = {}
        for f in st:
            try:
                state.update(load_file(str(f)))
            except Exception as e:  # safetensors raises its own error types
                raise ModelFileError(f"cannot read weights ({type(e).__name__}: {e})", path=f) from None
        return state
    b = d / "pytorch_model.bin"
    if b.exists():
        try:
            return torch.load(str(b), map_location="cpu", weights_only=True)
        except Exception as e:  # refuses pickled code objects
            raise ModelFileError(f"cannot load weights safely (weights_only=True): {str(e).splitlines()[0][:200]}", path=b) from None
    raise ModelFileError("no model.safetensors or pytorch_model.bin", path=d)


def read_vocab(d: Path) -> dict[str, int]:
    f = d / "vocab.txt"
    if not f.exists():
        raise ModelFileError("no vocab.txt (the k-mer vocabulary is needed to tokenize DNA)", path=d)
    try:
        text = f.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelFileError("vocab.txt is not UTF-8 text (one token per line expected)", path=f) from None
    if "\x00" in text:
        raise ModelFileError("vocab.txt is not text (one token per line expected)", path=f)
    toks = [line.rstrip("\n").strip() for line in text.splitlines()]
    return {t: i for i, t in enumerate(toks) if t}


def kmer_size(vocab: dict[str, int]) -> int:
    lens = {}
    for t in vocab:
        if re.fullmatch(r"[ACGTN]+", t):
            lens[len(t)] = lens.get(len(t), 0) + 1
    if not lens:
        raise ModelFileError("vocab.txt holds no nucleotide k-mers: not a DNA model")
    return max(lens, key=lens.get)


def tensor_names(d: Path) -> list[str]:
    """Tensor names of a checkpoint without loading the tensors (safetensors headers; [] otherwise)."""
    names: list[str] = []
    for f in sorted(d.glob("*.safetensors")):
        try:
            from safetensors import safe_open

            with safe_open(str(f), framework="pt") as fh:
                names += list(fh.keys())
        except Exception as e:  # safetensors raises its own error types
            raise ModelFileError(f"cannot read weights ({type(e).__name__}: {' '.join(str(e).split())[:200]})", path=f) from None
    return names
