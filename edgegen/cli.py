"""The ``edgegen`` command line: the commands (:mod:`edgegen.commands`) run inside the one error boundary
(:mod:`edgegen.boundary`), which maps every outcome to a one-line message and an exit code."""

from __future__ import annotations

import sys
from typing import List, Optional

from edgegen.commands import (
    app,
    lifecycle,  # noqa: F401
    models,  # noqa: F401  (importing registers the commands, in help order)
    pipeline,  # noqa: F401
    shipping,  # noqa: F401,I001
    trust,  # noqa: F401
)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: run the app; every outcome leaves through :func:`edgegen.boundary.run_guarded`
    (2 usage, 1 data/runtime, 130 Ctrl-C, 143 SIGTERM; a traceback only with ``--debug``)."""
    from edgegen.boundary import run_guarded

    args = list(sys.argv[1:] if argv is None else argv)

    def command():
        from edgegen import distributed

        nproc, rest = distributed.nproc_request(args)
        if nproc > 1:  # train/distill/teacher-logits --nproc N: N processes, as torchrun runs them
            return distributed.launch(nproc, rest)
        return app(args=rest, prog_name="edgegen", standalone_mode=False)

    return run_guarded(command, debug="--debug" in args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
