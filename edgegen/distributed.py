"""Running under torchrun: one process per rank, the student in DistributedDataParallel.

``train``, ``distill`` and ``teacher-logits`` run unchanged under
``torchrun --nproc_per_node N [--nnodes M ...] $(which edgegen) distill ...``: :func:`init_from_env` joins the process
group torchrun describes (gloo on CPU, NCCL on CUDA), every rank reads the same data with the same seed, each takes
its slice of every global batch, and rank 0 alone writes outputs. Outside torchrun everything here is a no-op with
one rank.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def rank() -> int:
    d = _dist()
    return d.get_rank() if d else 0


def world_size() -> int:
    d = _dist()
    return d.get_world_size() if d else 1


def is_main() -> bool:
    return rank() == 0


def launched() -> bool:
    """Whether torchrun started this process as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


LAUNCHABLE = ("train", "distill", "teacher-logits")  # the commands ``--nproc N`` runs in N processes


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``edgegen ARGV`` in ``nproc`` processes on this machine, as ``torchrun --standalone --nproc-per-node N``
    would, and return the exit code of the first rank that failed (0 when all succeeded).

    torchrun itself ends every failure with a traceback of its own and exit 1; here the ranks have already said what
    went wrong (rank 0, in one line), so that traceback is not printed and a usage error keeps its exit code 2.
    """
    import logging

    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default, without its banner about it
    args = torchrun.parse_args(["--standalone", f"--nproc-per-node={nproc}", "-m", "edgegen.cli", *argv])
    quiet = logging.getLogger("torch.distributed.elastic")
    level, quiet.level = quiet.level, logging.CRITICAL
    try:
        torchrun.run(args)
    except ChildFailedError as e:
        codes = [f.exitcode for _, f in sorted(e.failures.items())]
        return next((c for c in codes if c > 0), 1)
    finally:
        quiet.setLevel(level)
    return 0


def nproc_request(args: list[str]) -> tuple[int, list[str]]:
    """``(N, args without --nproc N)`` for a launchable command, ``(1, args)`` otherwise (or inside torchrun)."""
    if not args or args[0] not in LAUNCHABLE or launched():
        return 1, args
    for i, a in enumerate(args):
        value, skip = None, 0
        if a == "--nproc" and i + 1 < len(args):
            value, skip = args[i + 1], 2
        elif a.startswith("--nproc="):
            value, skip = a.split("=", 1)[1], 1
        if value is not None:
            if not value.isdigit() or int(value) < 1:
                from edgegen.errors import UsageError

                raise UsageError(f"--nproc must be a positive integer, not {value!r}")
            return int(value), args[:i] + args[i + skip :]
    return 1, args


def init_from_env(device: str = "auto") -> None:
    """Join torchrun's process group once (nothing outside torchrun): NCCL when training on CUDA, gloo on CPU."""
    if not launched() or _dist():
        return
    import torch
    import torch.distributed as dist

    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")


def local_device(device):
    """On CUDA under torchrun, this rank's own GPU (LOCAL_RANK); otherwise ``device`` unchanged."""
    import torch

    if launched() and device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def barrier() -> None:
    d = _dist()
    if d:
        d.barrier()


def my_slice(idx: np.ndarray) -> np.ndarray:
    """This rank's share of a global batch (contiguous, sizes differing by at most one)."""
    w = world_size()
    return idx if w == 1 else np.array_split(idx, w)[rank()]


def gather_rows(local: np.ndarray, n_total: int) -> np.ndarray:
    """Concatenate every rank's rows in rank order (each rank held ``np.array_split(range(n_total), world)[rank]``)."""
    d = _dist()
    if not d:
        return local
    parts = [None] * world_size()
    d.all_gather_object(parts, local)
    out = np.concatenate(parts)
    assert len(out) == n_total
    return out


def broadcast_object(obj):
    d = _dist()
    if not d:
        return obj
    box = [obj]
    d.broadcast_object_list(box, src=0)
    return box[0]


@contextlib.contextmanager
def shared_staging_dir(final: str | Path, force: bool) -> Iterator[Path]:
    """:func:`edgegen.io.staging_dir` for all ranks at once: one temp folder beside ``final`` that every rank writes
    into (on a filesystem they all see), moved into place by rank 0 once all are done."""
    from edgegen.io import commit_dir, staging_dir, temp_dir

    if world_size() == 1:
        with staging_dir(final, force) as tmp:
            yield tmp
        return
    final = Path(final)
    tmp = Path(broadcast_object(str(temp_dir(final)) if is_main() else None))
    try:
        yield tmp
        barrier()
        if is_main():
            commit_dir(tmp, final, force)
        barrier()
    except BaseException:
        if is_main():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
