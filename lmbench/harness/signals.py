"""Stop signals for a running job: SIGINT (Ctrl-C) and SIGTERM (what schedulers send) both end
training as a KeyboardInterrupt, so every cleanup written for Ctrl-C runs (the cache engine's
temporary folder removed, the run recorded as KILLED with what it trained).

Python raises a signal's exception in whatever frame runs when it arrives; one that lands in a
weakref or garbage-collection callback is printed and dropped, and training would go on. So the
request is also remembered, and the next epoch boundary raises it again
(``raise_if_stop_requested``, called by the harness's epoch callback).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: The conventional exit status of a process ended by SIGTERM (128 + 15).
SIGTERM_EXIT_STATUS = 128 + signal.SIGTERM
_log = logging.getLogger("lmbench")
_requested: signal.Signals | None = None


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as a KeyboardInterrupt."""


def _interrupt(signum: int) -> KeyboardInterrupt:
    return Terminated("SIGTERM") if signum == signal.SIGTERM else KeyboardInterrupt()


def raise_if_stop_requested() -> None:
    """Raise the stop a signal asked for, if it has not ended training yet."""
    if _requested is not None:
        raise _interrupt(_requested)


@contextlib.contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """While inside, the first SIGINT or SIGTERM raises (and is remembered, see the module
    doc); repeats during the cleanup are ignored; leaving on SIGTERM exits with status 143.
    The previous handlers are put back on exit. Outside the main thread signals cannot be
    handled: a no-op there."""
    global _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        global _requested
        if _requested is not None:
            return
        _requested = signal.Signals(signum)
        raise _interrupt(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    _requested = None
    try:
        yield
    except KeyboardInterrupt:
        if _requested == signal.SIGTERM:
            _log.warning("terminated by SIGTERM; the run is recorded as KILLED")
            raise SystemExit(SIGTERM_EXIT_STATUS) from None
        raise
    finally:
        _requested = None
        for sig, old in previous.items():
            signal.signal(sig, old)
