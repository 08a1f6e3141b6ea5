"""Small file helpers: atomic writes, hashing, JSON."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from edgegen.errors import UsageError, raise_if_signalled


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def usual_permissions(path: str | Path) -> None:
    """Give a file a library wrote (safetensors writes 0600) the permissions every other output has (0666 & ~umask)."""
    os.chmod(path, 0o666 & ~_umask())


def _naming(e: BaseException, path: str | Path) -> BaseException:
    """An OSError that names no file (a full disk, a lost mount) made to name the output it was writing."""
    if isinstance(e, OSError) and e.filename is None and e.errno is not None:
        return OSError(e.errno, e.strerror, str(path))
    return e


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600: give outputs the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise _naming(e, path) from None


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(file: str | Path, *, missing: str, where: str | Path | None = None) -> Any:
    """Parse a JSON file a model or store depends on. A missing file is a one-line ModelFileError saying ``missing``
    (naming ``where``, default the file); an unparseable one names the file and the parser's complaint."""
    from edgegen.errors import ModelFileError

    file = Path(file)
    if not file.is_file():
        raise ModelFileError(missing, path=where if where is not None else file)
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{file.name} is not valid JSON ({e})", path=file) from None


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: str | Path, force: bool, *, kind: str = "any", inputs: tuple = ()) -> Path:
    """Refuse to clobber an existing output unless ``force``, and refuse outputs that cannot be written.

    ``force`` replaces regular files (or folders, for ``kind="dir"``) that are not the command's inputs, never more:
    a device node, pipe or socket, one of ``inputs``, or the sidecar or external data of an input model is refused
    even with ``force``.

    Args:
        kind: ``"file"`` (a folder there is an error even with ``force``), ``"dir"`` (a file there is
            an error even with ``force``), or ``"any"``.
        inputs: the paths the command reads.

    Raises:
        UsageError: naming the path: it exists (without ``force``), it is the wrong kind, it is an input, or a part
            of its parent path is a file.
    """
    path = Path(path)
    if path.exists():
        if not (path.is_file() or path.is_dir()):
            raise UsageError(
                "is not a regular file (a device, pipe or socket): edgegen never replaces one, --force or not",
                path=path,
            )
        for i in (Path(x) for x in inputs if x is not None and str(x) != "-"):
            for protected in (i, Path(f"{i}.json"), Path(f"{i}.data")):
                if _same_file(path, protected):
                    what = "an input of this command" if protected == i else f"part of the input model {i.name}"
                    raise UsageError(
                        f"is {what}: choose another output name (--force never replaces an input)", path=path
                    )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"cannot write here: {parent} is a file, not a folder", path=path)
            if not os.access(parent, os.W_OK | os.X_OK):  # found now, not after all the work
                raise UsageError(
                    f"cannot write here: no permission to write in {parent} (or it is read-only)", path=path
                )
            break
    if path.exists() or path.is_symlink():
        if kind == "file" and path.is_dir():
            raise UsageError("is a folder; give a file name to write", path=path)
        if kind == "dir" and not path.is_dir():
            raise UsageError("is a file; this output is a folder (remove the file or choose another name)", path=path)
        if not force:
            raise UsageError("already exists; pass --force to overwrite", path=path)
    return path


def temp_path(final: str | Path, suffix: str = "") -> Path:
    """A fresh, unique temp file name beside ``final`` (``.NAME.XXXX.tmp``): concurrent writers
    never share one, and a crash leaves only a dot-file that cleanup can recognise."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=f".tmp{suffix}")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return Path(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_stale_temp_dirs(final: str | Path) -> None:
    """Remove the temp folders of ``final`` that a killed process left (``.NAME.pPID.XXXX.tmp`` whose PID is gone on
    this machine): a SIGKILL runs no cleanup, and the next writer of the same output tidies up."""
    final = Path(final)
    for d in final.parent.glob(f".{final.name}.p*.tmp"):
        pid = d.name[len(final.name) + 3 :].split(".", 1)[0]
        if d.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def temp_dir(final: str | Path) -> Path:
    """A fresh, private temp folder beside ``final`` (``.NAME.pPID.XXXX.tmp``), for outputs made of several files or
    files that must be written under their final names. Folders of the same output that a killed process left are
    removed first (:func:`remove_stale_temp_dirs`)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(final)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.p{os.getpid()}.", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
    return tmp


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[None]:
    """An exclusive advisory lock on a folder (flock on the folder itself: no lock file is left)."""
    import fcntl

    fd = os.open(str(folder), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def held_or_refused(lock_file: str | Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` for the block, or refuse at once (a UsageError naming ``what``) when
    another process holds it: two runs never share one folder. The file exists only while it is held."""
    import fcntl

    lock_file = Path(lock_file)
    busy = UsageError(
        f"another edgegen process is using this {what}; wait for it to finish (or use another folder)",
        path=lock_file.parent,
    )
    fd = os.open(str(lock_file), os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        try:  # the holder removes the file as it finishes: a lock on a file no longer there is no lock
            if os.stat(lock_file).st_ino != os.fstat(fd).st_ino:
                raise busy
        except FileNotFoundError:
            raise busy from None
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_file)  # nothing is left behind; removed while still held
    finally:
        os.close(fd)


def commit(moves: list[tuple[Path, Path]], force: bool) -> None:
    """Move finished temp files onto their final names together, under the output folder's lock.

    The no-clobber check is repeated under the lock, so of two runs writing the same output without
    ``force`` the later one fails instead of replacing the first; with ``force`` every file of the
    set comes from the same run (a model and its sidecar are never mixed from two writers).
    """
    if not moves:
        return
    folder = Path(moves[0][1]).parent
    with folder_lock(folder):
        raise_if_signalled()
        if not force:
            for _, final in moves:
                if Path(final).exists():
                    raise UsageError(
                        "already exists (written meanwhile by another run); pass --force to overwrite", path=final
                    )
        for tmp, final in moves:
            os.replace(tmp, final)


def remove_quietly(*paths: str | Path) -> None:
    for p in paths:
        p = Path(p)
        with contextlib.suppress(FileNotFoundError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink()


@contextlib.contextmanager
def staging_dir(final: str | Path, force: bool = False) -> Iterator[Path]:
    """Build a directory in a sibling temp folder, then move it into place.

    Nothing at ``final`` is touched unless the block succeeds; an existing
    ``final`` is replaced only with ``force`` (and only a folder: a file there is refused).
    """
    final = Path(final)
    check_output(final, force, kind="dir")
    tmp = temp_dir(final)
    try:
        yield tmp
        commit_dir(tmp, final, force)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        named = _naming(e, final)
        if named is e:
            raise
        raise named from None


def commit_dir(tmp: Path, final: Path, force: bool) -> None:
    """Move a finished folder onto ``final`` under the parent's lock (an existing one replaced only with ``force``)."""
    with folder_lock(final.parent):
        raise_if_signalled()
        if final.exists():
            if not force:
                raise UsageError(
                    "already exists (written meanwhile by another run); pass --force to overwrite", path=final
                )
            old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".old"))
            os.rmdir(old)
            final.rename(old)
            tmp.rename(final)
            remove_quietly(old)
        else:
            tmp.rename(final)
