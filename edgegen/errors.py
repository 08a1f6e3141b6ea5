"""One error module: every expected failure is an ``EdgegenError``.

The CLI maps these to exit codes in one place (``edgegen.cli``): 2 for usage
errors, 1 for data/model/runtime errors. Messages are one line and name the
file (and line or record) involved.
"""

from __future__ import annotations

import contextlib
from pathlib import Path


class EdgegenError(Exception):
    """Base class for errors reported to the user without a traceback."""

    exit_code = 1

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:  # control characters in a file name are shown escaped: the message stays one line
            where = "".join(c if ord(c) >= 32 else repr(c)[1:-1] for c in self.path)
            if line is not None:
                where += f":{line}"
            where += ": "
        super().__init__(f"{where}{message}")


class UsageError(EdgegenError):
    """Bad arguments or configuration given by the user."""

    exit_code = 2


class ConfigError(UsageError):
    """An invalid config, recipe or device profile."""


class DataError(EdgegenError):
    """Malformed or unusable sequence data."""


class ModelFileError(EdgegenError):
    """A missing, corrupt, tampered or mismatched model file."""


class BackendError(EdgegenError):
    """A runtime or exporter failed, or is not installed."""


class ExportVerificationError(EdgegenError):
    """An exported model does not compute what the source model computes."""


class RemoteError(EdgegenError):
    """A remote device could not be reached or failed to run the bundle."""


class TrainingError(EdgegenError):
    """Training finished but produced no usable model (e.g. dev MCC at chance)."""


class PruneError(EdgegenError):
    """Pruning left shapes the model's config cannot describe (a torch-pruning result edgegen cannot use)."""


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so ``finally`` blocks remove temp files as on Ctrl-C."""


# A signal can be swallowed where Python cannot raise (an exception in a __del__ or a C callback is only
# printed, and converters silence stderr): the boundary's handlers also note it here, and commits check it
# before moving any output into place, so an interrupted command never leaves a finished-looking output.
_signal_seen: list[int] = []
_deferring: list[bool] = []


def note_signal(signum: int) -> bool:
    """Note SIGINT/SIGTERM; True when the handler should raise now (False: held by :func:`signals_deferred`)."""
    _signal_seen.append(signum)
    return not _deferring or len(_signal_seen) > 1  # a second signal is the user insisting: raise anyway


def raise_if_signalled() -> None:
    """Raise KeyboardInterrupt (SIGINT) or Terminated (SIGTERM) if either arrived since the command started."""
    import signal

    if _signal_seen:
        raise Terminated() if _signal_seen[0] == signal.SIGTERM else KeyboardInterrupt


@contextlib.contextmanager
def signals_deferred():
    """Hold the first SIGINT/SIGTERM until the block ends, then raise it.

    For C++ that calls back into Python (the TFLite converter): an exception raised by a signal handler
    inside such a callback cannot unwind through the C++ frames and aborts the process (exit -6, no
    cleanup). A second signal raises at once.
    """
    _deferring.append(True)
    try:
        yield
    finally:
        _deferring.pop()
    raise_if_signalled()
