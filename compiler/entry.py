"""The `yarch` command's entry point: signal handlers first, then the imports.

Importing the command line takes a few tenths of a second (click, PyYAML, pydantic); Ctrl-C in
that time would print a Python traceback, and click itself turns Ctrl-C into "Aborted!" with exit
code 1. Here an interrupt or a SIGTERM at any time ends yarch with one line and exit code 130
(143 for SIGTERM), after the `finally` blocks have run: temporary files are removed and a `dot`
child is killed (`subprocess.run` kills its child when interrupted).
"""

from __future__ import annotations

import os
import signal
import sys


class Interrupted(BaseException):
    """Raised by the signal handlers; not a KeyboardInterrupt, which click would swallow."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum: int, _frame: object) -> None:
    # once: a second Ctrl-C while cleaning up must not interrupt the clean-up
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted(signum)


def main() -> None:
    """Console entry point. A bug in yarch is reported in one line, not as a traceback
    (set YARCH_DEBUG=1 to see the traceback)."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from .cli import run

        run()
    except Interrupted as exc:
        name = "interrupted" if exc.signum == signal.SIGINT else "terminated"
        _stderr(f"yarch: {name}\n")
        os._exit(128 + exc.signum)  # the work is cleaned up; skip the interpreter's shutdown
    except BrokenPipeError:  # `yarch summary ... | head`: the reader has gone
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)


def _stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
