"""One error style for the store-reading CLIs (``lmbench-report``, ``lmbench-compare``): a
missing experiment or an unreadable store exits with status 2 and one line on stderr,
``<prog>: <reason>``, never a traceback."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from lmbench.tracking import TrackingStoreError

#: The exit status of a CLI that could not read what it was asked for (argparse's usage status).
CLI_ERROR_STATUS = 2
#: What such a CLI reports in one line instead of a traceback.
CLI_ERRORS = (LookupError, TrackingStoreError)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (a KeyError's quotes dropped)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return " ".join(text.split()) or type(exc).__name__


@contextlib.contextmanager
def exit_on_cli_error(prog: str) -> Iterator[None]:
    """Inside, a :data:`CLI_ERRORS` exception prints ``prog: reason`` to stderr and exits 2."""
    try:
        yield
    except CLI_ERRORS as exc:
        print(f"{prog}: {one_line(exc)}", file=sys.stderr)
        raise SystemExit(CLI_ERROR_STATUS) from None
