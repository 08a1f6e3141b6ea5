"""One error module: every expected failure is an ``EdgegenError``.

The CLI maps these to exit codes in one place (``edgegen.cli``): 2 for usage
errors, 1 for data/model/runtime errors. Messages are one line and name the
file (and line or record) involved.
"""

from __future__ import annotations

from pathlib import Path


class EdgegenError(Exception):
    """Base class for errors reported to the user without a traceback."""

    exit_code = 1

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}"
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


# A signal can be swallowed where Python cannot raise (an exception in a __del__ or a C callback is only
# printed, and converters silence stderr): the boundary's handlers also note it here, and commits check it
# before moving any output into place, so an interrupted command never leaves a finished-looking output.
_signal_seen: list[int] = []


def note_signal(signum: int) -> None:
    _signal_seen.append(signum)


def raise_if_signalled() -> None:
    """Raise KeyboardInterrupt if SIGINT or SIGTERM arrived since the command started (see edgegen.boundary)."""
    if _signal_seen:
        raise KeyboardInterrupt
