"""The checks every file from outside passes before anything uses it: one place each.

A store's ``meta.json`` and shards, a sidecar, a bundle's manifest, a device profile, a Hugging Face folder, a
recipe's inputs: anyone may have written them. Whatever they name must stay inside their folder
(:func:`confined`), match the hash recorded for it (:func:`check_sha256`), and hold finite numbers
(:func:`require_finite`). Each failure is one :class:`~edgegen.errors.ModelFileError` line naming the file.

Device-side: numpy and the standard library only (this module travels in bundles).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from edgegen.errors import ModelFileError
from edgegen.io import sha256_file

SHA256 = re.compile(r"[0-9a-f]{64}")


def confined(folder: str | Path, name: object, *, what: str = "file", source: str | Path | None = None) -> Path:
    """``folder / name`` when ``name`` is a plain relative path that stays inside ``folder`` (symbolic links
    resolved); a ModelFileError naming ``source`` (default the folder) otherwise: an absolute path, a ``..`` that
    leaves the folder, a link pointing out of it, or a name that is not a string."""
    where = source if source is not None else folder
    if not isinstance(name, str) or not name or any(ord(c) < 32 for c in name):  # control characters too
        raise ModelFileError(f"{what} name {name!r} is not a file name", path=where)
    if os.path.isabs(name) or name.startswith("~"):
        raise ModelFileError(
            f"{what} {name!r} is an absolute path; only names inside {Path(folder).name or folder}/ are allowed",
            path=where,
        )
    root = Path(folder).resolve()
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise ModelFileError(f"{what} {name!r} points outside its folder {root}", path=where)
    return Path(folder) / name


def check_sha256(path: str | Path, want: object, *, source: str | Path | None = None, remedy: str = "") -> None:
    """Refuse ``path`` unless its sha256 is ``want`` (a recorded hash that is missing or malformed is refused too:
    a check that can be removed from the record is no check)."""
    if not isinstance(want, str) or not SHA256.fullmatch(want):
        raise ModelFileError(
            f"records no valid sha256 for {Path(path).name}", path=source if source is not None else path
        )
    if not Path(path).is_file():
        raise ModelFileError(f"missing file {Path(path).name}", path=source if source is not None else path)
    got = sha256_file(path)
    if got != want:
        raise ModelFileError(
            f"sha256 differs from the one recorded{' in ' + Path(source).name if source else ''} "
            f"({got[:12]}… is not {want[:12]}…): the file was replaced or damaged{remedy}",
            path=path,
        )


def require_finite(values, what: str, *, path: str | Path | None = None, rows: int = 65_536) -> None:
    """Refuse NaN or infinite numbers in ``values`` (checked a block of rows at a time, so a memory-mapped array
    is never read whole into memory)."""
    a = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if a.dtype.kind not in "fc":
        return
    flat = a.reshape(len(a), -1) if a.ndim > 1 else a.reshape(-1, 1)
    for i in range(0, len(flat), rows):
        block = np.asarray(flat[i : i + rows])
        bad = ~np.isfinite(block)
        if bad.any():
            r = int(np.argwhere(bad)[0][0]) + i
            n = int(bad.sum())
            raise ModelFileError(
                f"{what} holds {'NaN' if np.isnan(block).any() else 'infinite'} values "
                f"({n} in rows {i}..{i + len(block) - 1}, first at row {r}): refusing to use them",
                path=path,
            )


def require_int(
    value: object, what: str, *, path: str | Path | None = None, low: int = 0, high: int | None = None
) -> int:
    """An integer field read from an outside file (bools and floats refused), within ``low..high``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ModelFileError(f"{what} is {value!r}; an integer {bound} is needed", path=path)
    return value
