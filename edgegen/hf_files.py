"""Reading a Hugging Face checkpoint folder from disk, checked: config.json, the weights (safetensors, or a .bin only
through ``torch.load(weights_only=True)``), vocab.txt. Every problem is a one-line :class:`ModelFileError`."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

from edgegen.errors import ModelFileError, UsageError


def read_config(d: Path) -> dict:
    if not d.exists():
        if re.fullmatch(r"[\w.-]+/[\w.-]+", str(d)):
            raise UsageError(
                f"{d!s} looks like a Hugging Face hub id: edgegen never downloads; "
                "download the checkpoint yourself and pass its folder"
            )
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
            raise ModelFileError(
                f"{key} is {'missing' if v is None else repr(v)}; a positive integer is needed", path=f
            )
        vals.append(v)
    hidden, _, heads, _, _ = vals
    if hidden % heads:
        raise ModelFileError(f"num_attention_heads {heads} does not divide hidden_size {hidden}", path=f)
    optional = {
        "max_position_embeddings": (int, 1),
        "pad_token_id": (int, 0),
        "num_labels": (int, 1),
        "layer_norm_eps": ((int, float), 0),
        "model_type": (str, None),
        "hidden_act": (str, None),
        "position_embedding_type": (str, None),
    }
    for key, (typ, low) in optional.items():
        v = cfg.get(key)
        if v is None and key not in cfg:
            continue
        ok = (
            isinstance(v, typ)
            and not isinstance(v, bool)
            and (low is None or v >= low)
            and not (key == "layer_norm_eps" and v <= 0)
        )
        if not ok:
            raise ModelFileError(
                f"{key} is {v!r}; expected {'a string' if typ is str else 'a number'}"
                f"{'' if low is None else f' >= {low}' if key != 'layer_norm_eps' else ' > 0'}",
                path=f,
            )
    for key in ("architectures", "id2label"):
        v = cfg.get(key)
        if v is not None and not isinstance(v, (list, dict)):
            raise ModelFileError(f"{key} is {v!r}; expected a list or mapping", path=f)
    if not all(isinstance(a, str) for a in cfg.get("architectures") or []):
        raise ModelFileError("architectures must list class names", path=f)
    return tuple(vals)


# Tensors a published checkpoint may hold that a classifier never uses, ignored by name (anything else the mapping
# does not take is an error: a config.json describing fewer layers than the weights hold must not truncate the model)
IGNORED_TENSORS = (
    r"(^|\.)lm_head\.",
    r"^(bert\.)?cls\.(predictions|seq_relationship)\.",
    r"(^|\.)position_ids$",
    r"(^|\.)inv_freq$",
    r"(^|\.)contact_head\.",
)
POOLER = r"(^|\.)pooler\.dense\."  # ignored only when the checkpoint has no classification head
ROTARY_UNUSED = r"(^|\.)embeddings\.position_embeddings\.weight$"  # ESM with rotary positions keeps, never uses it


class Weights(dict):
    """A checkpoint's tensors; a missing name is a one-line ModelFileError naming the folder. Remembers which
    tensors the mapping took, so :meth:`refuse_unmapped` can name any it did not."""

    def __init__(self, state: dict, folder: Path):
        super().__init__(state)
        self.folder = folder
        self.used: set[str] = set()

    def __getitem__(self, key):
        v = super().__getitem__(key)
        self.used.add(key)
        return v

    def get(self, key, default=None):
        return self[key] if key in self else default

    def __missing__(self, key):
        raise ModelFileError(f"checkpoint lacks {key}", path=self.folder)

    def refuse_unmapped(self, has_head: bool, *, rotary: bool = False) -> None:
        """Every tensor was mapped or is ignored by name (:data:`IGNORED_TENSORS`; with ``rotary`` also the learned
        position table that ESM's code keeps but never uses then); else a ModelFileError naming them."""
        ignored = IGNORED_TENSORS + (() if has_head else (POOLER,)) + ((ROTARY_UNUSED,) if rotary else ())
        left = sorted(k for k in self if k not in self.used and not any(re.search(p, k) for p in ignored))
        if left:
            more = f" and {len(left) - 4} more" if len(left) > 4 else ""
            raise ModelFileError(
                f"the checkpoint holds tensors that config.json leaves unused: {', '.join(left[:4])}{more} "
                "(does config.json describe fewer layers, or another architecture, than the weights?)",
                path=self.folder,
            )


def shape_mismatch_message(e: Exception) -> str:
    """Every "size mismatch for X" of a load_state_dict error, on one line (not just the first)."""
    lines = [" ".join(x.split()) for x in str(e).splitlines() if x.strip()]
    found = [x for x in lines if x.startswith("size mismatch")]
    return "; ".join(found or lines)[:1200]


def weight_files(d: Path, *, required: bool = True) -> list[Path]:
    """The checkpoint's weight files: ``model.safetensors`` (or the shards its ``.index.json`` lists), else
    ``pytorch_model.bin`` (or its index's shards). Safetensors win over a .bin beside them (published checkpoints
    often carry both); any other candidate of the chosen kind is an error naming the files, never silently merged.

    Raises:
        ModelFileError: no weights (when ``required``), several candidates, or an index naming files outside the folder
        or missing.
    """
    from edgegen.integrity import confined

    for suffix, pattern in ((".safetensors", "*.safetensors"), (".bin", "pytorch_model*.bin")):
        found = sorted(p for p in d.glob(pattern) if p.is_file())
        if not found:
            continue
        index = d / f"{'model' if suffix == '.safetensors' else 'pytorch_model'}{suffix}.index.json"
        if index.exists():
            wmap = read_json_object(d, index.name, "").get("weight_map")
            if not isinstance(wmap, dict) or not wmap:
                raise ModelFileError("weight_map must map tensor names to shard files", path=index)
            listed = sorted({confined(d, f, what="shard", source=index) for f in wmap.values()})
            missing = [p.name for p in listed if not p.is_file()]
            if missing:
                raise ModelFileError(f"names shard(s) not in the folder: {', '.join(missing[:4])}", path=index)
            stray = [p.name for p in found if p not in listed]
        else:
            listed, stray = found[:1], found[1:]
        if stray:
            raise ModelFileError(
                f"more than one weight file: {', '.join(p.name for p in found)}; keep only the checkpoint's "
                f"own ({'the shards its index lists' if index.exists() else 'one file'}) in the folder",
                path=d,
            )
        return listed
    if not required:
        return []
    raise ModelFileError("no model.safetensors or pytorch_model.bin", path=d)


def _unpickle_reason(e: Exception) -> str:
    """The line of torch.load's refusal that says why (its first lines are advice on how to load it anyway)."""
    lines = [" ".join(x.split()) for x in str(e).splitlines() if x.strip()]
    why = [x for x in lines if x.startswith(("Unsupported", "Trying to", "Can only")) or "not an allowed global" in x]
    if why:
        return f"the file holds what is not a tensor ({why[0][:200]}): it may carry code, and is never unpickled"
    return (lines or [type(e).__name__])[0][:300]


def load_state(d: Path) -> dict:
    """The tensors of :func:`weight_files`: safetensors, or a .bin only through torch.load(weights_only=True)."""
    import torch

    state = {}
    for f in weight_files(d):
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            try:
                part = load_file(str(f))
            except Exception as e:  # safetensors raises its own error types
                raise ModelFileError(f"cannot read weights ({type(e).__name__}: {e})", path=f) from None
        else:
            try:
                with warnings.catch_warnings():  # torch's advice on pickle protocols is not for the user
                    warnings.simplefilter("ignore")
                    part = torch.load(str(f), map_location="cpu", weights_only=True)
            except Exception as e:  # refuses pickled code objects
                raise ModelFileError(
                    f"cannot load weights safely (weights_only=True): {_unpickle_reason(e)}", path=f
                ) from None
            if not isinstance(part, dict) or not all(
                isinstance(k, str) and torch.is_tensor(v) for k, v in part.items()
            ):
                raise ModelFileError("does not hold a state dict of named tensors", path=f)
        dup = set(part) & set(state)
        if dup:
            raise ModelFileError(f"tensor {sorted(dup)[0]} appears in more than one shard", path=f)
        state.update(part)
    return state


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
    vocab: dict[str, int] = {}
    dups = []
    for i, t in enumerate(toks):
        if t and t in vocab:
            dups.append((t, vocab[t] + 1, i + 1))
        if t:
            vocab[t] = i
    if dups:  # the published tokenizers keep the later line's id: so does edgegen, but says so
        t, a, b = dups[0]
        logging.getLogger("edgegen").warning(
            "%s: %d token(s) appear more than once (first %r, lines %d and %d); the later "
            "line's id is used, as the published tokenizer does",
            f,
            len(dups),
            t,
            a,
            b,
        )
    return vocab


def kmer_size(vocab: dict[str, int]) -> int:
    lens = {}
    for t in vocab:
        if re.fullmatch(r"[ACGTN]+", t):
            lens[len(t)] = lens.get(len(t), 0) + 1
    if not lens:
        raise ModelFileError("vocab.txt holds no nucleotide k-mers: not a DNA model")
    return max(lens, key=lens.get)


def tensor_names(d: Path) -> list[str]:
    """Tensor names of a checkpoint without loading the tensors (safetensors headers; [] for a .bin)."""
    names: list[str] = []
    for f in weight_files(d, required=False):
        if f.suffix != ".safetensors":
            continue
        try:
            from safetensors import safe_open

            with safe_open(str(f), framework="pt") as fh:
                names += list(fh.keys())
        except Exception as e:  # safetensors raises its own error types
            raise ModelFileError(
                f"cannot read weights ({type(e).__name__}: {' '.join(str(e).split())[:200]})", path=f
            ) from None
    return names
