"""The one error boundary between edgegen and a shell.

:func:`run_guarded` runs a command and turns every way it can end into an exit code and at most
one line on stderr: ``EdgegenError`` (its own code), typer/click usage errors (2), Ctrl-C (130),
SIGTERM (143), a missing file or folder (1), and anything unexpected (1, with a hint to rerun with
``--debug``, which shows the traceback instead).

typer 0.29 vendors click as ``typer._click`` (older typer depends on the ``click`` package), and in
non-standalone mode it *returns* 130 on Ctrl-C instead of raising: both are handled here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from typing import Any, Callable

from edgegen.errors import EdgegenError, Terminated, _signal_seen, note_signal

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


def click_exceptions():
    """The module holding ``ClickException`` for the installed typer (vendored or the click package)."""
    try:
        from typer._click import exceptions  # typer >= 0.29
    except ImportError:  # pragma: no cover - older typer depends on click
        from click import exceptions
    return exceptions


PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "GLHF")  # gloo/NCCL wording


def _peer_gone(e: Exception) -> bool:
    """A collective failing on a rank because another rank exited (torchrun then stops them all)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and any(p in str(e) for p in PEER_GONE)


def _say(msg: str, *, every_rank: bool = False) -> None:
    """One error line on stderr. Under torchrun every rank reads the same inputs and meets the same errors: rank 0
    alone reports them, and a rank stopped by torchrun (because another failed) says nothing; an error only one
    rank can meet (``every_rank``: out of memory, an unexpected exception) is reported by that rank, with its number."""
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and rank != 0 and not every_rank:
        return
    msg = " ".join(str(msg).split())  # one line, whatever the exception carried
    where = f"[rank {rank}] " if world > 1 and every_rank else ""
    print(f"edgegen: error: {where}{msg}", file=sys.stderr, flush=True)


def _raise_terminated(signum, frame):  # pragma: no cover - exercised through a subprocess
    if note_signal(signum):
        raise Terminated()


def _raise_interrupted(signum, frame):  # pragma: no cover - exercised through a subprocess
    if note_signal(signum):
        raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_raises():
    try:
        old = {
            s: signal.signal(s, h)
            for s, h in ((signal.SIGTERM, _raise_terminated), (signal.SIGINT, _raise_interrupted))
        }
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _setup_logging(debug: bool) -> None:
    log = logging.getLogger("edgegen")
    if not log.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("edgegen: %(levelname)s: %(message)s"))
        log.addHandler(h)
        log.setLevel(logging.DEBUG if debug else logging.INFO)
        log.propagate = False


def os_error_message(e: OSError) -> str:
    """``PATH: reason`` for an OSError (the file it names, the system's words)."""
    where = e.filename if e.filename is not None else ""
    reason = e.strerror or type(e).__name__
    return f"{where}: {reason}" if where else reason


def run_guarded(command: Callable[[], Any], *, debug: bool = False) -> int:
    """Run ``command`` (a typer app in non-standalone mode) and return the process exit code."""
    import typer

    cx = click_exceptions()
    _setup_logging(debug)
    _signal_seen.clear()  # per command: a signal noted by an earlier command in this process does not count
    try:
        with _sigterm_raises():
            rv = command()
    except typer.Exit as e:
        return int(e.exit_code or 0)
    except typer.Abort:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except (KeyboardInterrupt, Terminated) as e:
        # the first signal decides (a SIGTERM noted while deferred is raised as Terminated; a Ctrl-C
        # raised by a library's own handler has no note)
        term = _signal_seen[0] == signal.SIGTERM if _signal_seen else isinstance(e, Terminated)
        _signal_seen.clear()
        if int(os.environ.get("WORLD_SIZE", "1")) == 1:  # under torchrun: stopped because another rank failed
            _say("terminated" if term else "interrupted")
        return EXIT_TERMINATED if term else EXIT_INTERRUPTED
    except cx.ClickException as e:
        if debug:
            raise
        hint = ""
        ctx = getattr(e, "ctx", None)
        if ctx is not None and isinstance(e, cx.UsageError):
            hint = f" (see '{ctx.command_path} --help')"
        _say(f"{e.format_message()}{hint}")
        return int(getattr(e, "exit_code", EXIT_USAGE) or EXIT_USAGE)
    except EdgegenError as e:
        if debug:
            raise
        _say(e)
        return e.exit_code
    except OSError as e:
        if debug:
            raise
        _say(os_error_message(e))
        return 1
    except MemoryError:
        if debug:
            raise
        _say("out of memory (try a smaller --batch-size or --max-len)", every_rank=True)
        return 1
    except Exception as e:
        if debug:
            raise
        if _peer_gone(e):  # under torchrun, a rank whose peer stopped on an error rank 0 has already reported
            return 1
        first = (str(e).strip().splitlines() or [""])[0][:300]
        _say(f"unexpected {type(e).__name__}: {first} (rerun with --debug for the traceback)", every_rank=True)
        return 1
    if _signal_seen:  # a signal whose exception something swallowed: still not a success
        seen = _signal_seen[0]
        _signal_seen.clear()
        _say("terminated" if seen == signal.SIGTERM else "interrupted")
        return EXIT_TERMINATED if seen == signal.SIGTERM else EXIT_INTERRUPTED
    if isinstance(rv, int) and not isinstance(rv, bool):  # typer returns Exit codes in non-standalone mode
        if rv == EXIT_INTERRUPTED:
            _say("interrupted")
        return rv
    return 0
