"""The teacher's logits, computed once and kept on disk: what ``edgegen distill --teacher-logits DIR`` reads.

Distilling a foundation model, the teacher's forward pass over every training window is most of the cost. A store
holds the teacher's logits for every training window (labelled sequences, their augmented copies, unlabeled reads),
so later distillations, and every student of a sweep, never run the teacher again; it can be computed on one
machine (a GPU box) and used on another.

A store is a folder:

- ``meta.json``: the format, the teacher's sha256 (its ``model.safetensors``), the tokenizer's sha256, the sha256
  of the token-id matrix the logits belong to (row order included), the rows of each part and where they came from.
- ``logits-00000.npy`` …: float32 ``(rows, classes)`` shards, written one at a time as the teacher runs (the
  whole set of logits is never in memory) and read memory-mapped. ``meta.json`` records each shard's sha256.

Opening a store checks what a store from someone else's disk could get wrong (:mod:`edgegen.integrity`): every shard
file inside the store's folder, its sha256 as recorded, float32 of the recorded shape, and finite.

A store whose teacher, tokenizer or windows differ from the run's is refused with an error naming the difference.
Under torchrun every rank computes its own shards (the store's folder must then be on a filesystem all ranks see).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgegen.distill_data import ENCODE_CHUNK, training_windows
from edgegen.errors import ModelFileError, UsageError

if TYPE_CHECKING:
    pass

FORMAT = "edgegen-teacher-logits/1"
SHARD_ROWS = 65_536  # 512 KB of float32 logits per shard for two classes


def ids_sha256(ids: np.ndarray) -> str:
    """sha256 of a token-id matrix, shape and row order included."""
    h = hashlib.sha256(f"{ids.shape}".encode())
    a = np.ascontiguousarray(ids, dtype="<i4")
    for i in range(0, len(a), ENCODE_CHUNK):
        h.update(a[i : i + ENCODE_CHUNK].tobytes())
    return h.hexdigest()


def tokenizer_sha256(tok) -> str:
    return tok.fingerprint()


def _check_meta(path: Path, meta: dict, rows: int) -> None:
    """The fields of ``meta.json`` that locate and size the shards: types, counts, a sha256 per shard."""
    from edgegen.integrity import require_int

    where = path / "meta.json"
    require_int(meta.get("num_classes"), "num_classes", path=where, low=2, high=1_000_000)
    require_int(meta.get("rows"), "rows", path=where)
    shards = meta.get("shards")
    if not isinstance(shards, list) or not shards or not all(isinstance(s, dict) for s in shards):
        raise ModelFileError("shards must list {file, rows, sha256} entries", path=where)
    total = sum(require_int(s.get("rows"), f"shards[{i}].rows", path=where) for i, s in enumerate(shards))
    if total != meta["rows"] or total != rows:
        raise ModelFileError(
            f"shards add up to {total} rows, meta.json says {meta['rows']}, this run has {rows}", path=where
        )


def _open_shard(path: Path, entry: dict, i: int, meta: dict) -> np.ndarray:
    """One shard, memory-mapped, after every check a shard from someone else's disk needs: its file inside the store,
    its sha256 as recorded, float32 ``(rows, num_classes)`` as recorded, finite."""
    from edgegen.integrity import check_sha256, confined, require_finite

    where = path / "meta.json"
    f = confined(path, entry.get("file"), what=f"shard {i}", source=where)
    if f.is_file() and f.stat().st_size == 0:
        raise ModelFileError("shard is empty (0 bytes): the store is damaged; compute it again", path=f)
    check_sha256(f, entry.get("sha256"), source=where, remedy="; compute the store again (edgegen teacher-logits)")
    try:
        a = np.load(f, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ModelFileError(f"not a readable .npy shard ({type(e).__name__}: {e})", path=f) from None
    want = (entry["rows"], meta["num_classes"])
    if a.dtype != np.float32 or a.shape != want:
        raise ModelFileError(f"shard holds {a.dtype} {a.shape}; meta.json records float32 {want}", path=f)
    require_finite(a, "teacher logits", path=f)
    return a


class LogitStore:
    """A store opened for reading: ``store[idx]`` gives the logits of those rows (float32, memory-mapped shards)."""

    def __init__(self, path: Path, meta: dict):
        self.path, self.meta = path, meta
        self._shards = [_open_shard(path, s, i, meta) for i, s in enumerate(meta["shards"])]
        self._starts = np.cumsum([0] + [len(s) for s in self._shards])
        self.teacher_runs = 0  # how often this run's teacher was asked for logits through the store (0 when reused)

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    def __getitem__(self, idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"row out of range 0..{len(self) - 1}")
        shard = np.searchsorted(self._starts, idx, side="right") - 1
        out = np.empty((len(idx), self.num_classes), np.float32)
        for s in np.unique(shard):
            hit = shard == s
            out[hit] = self._shards[s][idx[hit] - self._starts[s]]
        return out

    @classmethod
    def open(cls, path: str | Path, *, teacher_sha: str, tokenizer_sha: str, ids_sha: str, rows: int) -> "LogitStore":
        """Open a store and check it belongs to this teacher, tokenizer and training windows.

        Raises:
            UsageError: the store was made for another teacher, tokenizer or data.
            ModelFileError: it is not a store, or a shard is missing or damaged.
        """
        path = Path(path)
        from edgegen.io import read_json

        meta = read_json(path / "meta.json", missing="not a teacher-logit store (no meta.json)", where=path)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ModelFileError(f"unknown teacher-logit store format (expected {FORMAT})", path=path)
        for what, key, want in (
            ("teacher", "teacher_sha256", teacher_sha),
            ("tokenizer", "tokenizer_sha256", tokenizer_sha),
            ("training windows", "ids_sha256", ids_sha),
        ):
            if meta.get(key) != want:
                extra = ""
                if what == "training windows":
                    src = meta.get("sources") if isinstance(meta.get("sources"), dict) else {}
                    parts = ", ".join(f"{v} {k}" for k, v in (meta.get("parts") or {}).items())
                    extra = f" (it holds {meta.get('rows')} rows: {parts} of {src.get('data')}; this run has {rows})"
                raise UsageError(
                    f"teacher-logit store was made for another {what}{extra}: compute one for this run "
                    f"(edgegen teacher-logits) or pass another folder",
                    path=path,
                )
        _check_meta(path, meta, rows)
        try:
            store = cls(path, meta)
        except (OSError, ValueError, EOFError) as e:
            raise ModelFileError(
                f"damaged teacher-logit store ({type(e).__name__}: {e}); compute it again", path=path
            ) from None
        if len(store) != rows:
            raise ModelFileError(
                f"damaged teacher-logit store (its shards hold {len(store)} rows; this run has {rows})", path=path
            )
        return store


def write_store(
    teacher,
    tok,
    ids: np.ndarray,
    out: str | Path,
    *,
    teacher_sha: str,
    parts: dict[str, int],
    sources: dict[str, str | None],
    batch_size: int = 256,
    shard_rows: int | None = None,
    force: bool = False,
    show_progress: bool = False,
) -> LogitStore:
    """Run ``teacher`` over ``ids`` a shard at a time and write the store to ``out`` (atomically; under torchrun
    each rank computes every world-size-th shard). Returns the store, opened."""
    from edgegen import distributed
    from edgegen.inference import predict_logits
    from edgegen.integrity import require_finite
    from edgegen.io import check_output
    from edgegen.progress import progress

    out = Path(out)
    check_output(out, force, kind="dir")
    shard_rows = shard_rows or SHARD_ROWS
    n = len(ids)
    starts = list(range(0, n, shard_rows)) or [0]
    rank, world = distributed.rank(), distributed.world_size()
    ids_sha = ids_sha256(ids)
    meta = {
        "format": FORMAT,
        "teacher_sha256": teacher_sha,
        "tokenizer_sha256": tokenizer_sha256(tok),
        "ids_sha256": ids_sha,
        "rows": n,
        "num_classes": int(teacher.config.num_classes),
        "seq_len": int(ids.shape[1]),
        "parts": parts,
        "sources": sources,
        "shards": [{"file": f"logits-{i:05d}.npy", "rows": min(shard_rows, n - s)} for i, s in enumerate(starts)],
    }
    with distributed.shared_staging_dir(out, force) as tmp:
        mine = [i for i in range(len(starts)) if i % world == rank]
        with progress(show_progress and distributed.is_main()) as prog:
            task = prog.add_task("teacher logits", total=n, info=f"{len(starts)} shard(s)")
            for i in mine:
                rows = ids[starts[i] : starts[i] + shard_rows]
                logits = predict_logits(teacher, rows, batch_size).astype(np.float32)
                require_finite(logits, "the teacher's logits (the teacher model computes NaN or infinity)", path=out)
                f = tmp / meta["shards"][i]["file"]
                np.save(f.with_suffix(".part.npy"), logits)
                f.with_suffix(".part.npy").replace(f)
                prog.update(task, advance=len(rows) * world)
        distributed.barrier()  # every rank's shards are written: rank 0 records their hashes
        if distributed.is_main():
            from edgegen.io import sha256_file, write_json

            for entry in meta["shards"]:
                entry["sha256"] = sha256_file(tmp / entry["file"])
            write_json(tmp / "meta.json", meta)
    store = LogitStore.open(
        out, teacher_sha=teacher_sha, tokenizer_sha=meta["tokenizer_sha256"], ids_sha=ids_sha, rows=n
    )
    store.teacher_runs = 1
    return store


def teacher_logit_store(
    t,
    teacher_dir,
    splits,
    cfg,
    unlabeled_ids,
    path,
    *,
    data,
    unlabeled=None,
    force: bool = False,
    show_progress: bool = True,
):
    """Open the store at ``path`` for this teacher and these training windows, or compute it there."""
    ids, _, parts = training_windows(t.tokenizer, splits["train"], cfg, unlabeled_ids)
    sha = t.manifest["files"]["model.safetensors"]
    if Path(path).exists() and not force:
        store = LogitStore.open(
            path, teacher_sha=sha, tokenizer_sha=tokenizer_sha256(t.tokenizer), ids_sha=ids_sha256(ids), rows=len(ids)
        )
        if store.num_classes != t.config.num_classes:
            from edgegen.errors import ModelFileError

            raise ModelFileError(
                f"store holds {store.num_classes}-class logits; the teacher has {t.config.num_classes} classes",
                path=Path(path) / "meta.json",
            )
        return store
    return write_store(
        t.model,
        t.tokenizer,
        ids,
        path,
        teacher_sha=sha,
        parts=parts,
        force=force,
        batch_size=cfg.eval_batch_size,
        sources={
            "teacher": str(teacher_dir),
            "data": str(data),
            "unlabeled": None if unlabeled is None else str(unlabeled),
        },
        show_progress=show_progress,
    )
