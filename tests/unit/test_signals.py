"""A stop signal ends training even when its exception lands where Python drops it."""

import os
import signal
import time

import pytest

from lmbench.harness.signals import (
    SIGTERM_EXIT_STATUS,
    raise_if_stop_requested,
    stop_signals_as_interrupt,
)


def _send_and_drop(sig):
    """Deliver ``sig`` inside a frame that swallows it, as a weakref/GC callback does."""
    try:
        os.kill(os.getpid(), sig)
        time.sleep(0.5)
    except KeyboardInterrupt:
        pass


def test_a_dropped_sigint_is_raised_again_at_the_next_epoch_boundary():
    with pytest.raises(KeyboardInterrupt), stop_signals_as_interrupt():
        _send_and_drop(signal.SIGINT)
        raise_if_stop_requested()
    raise_if_stop_requested()  # outside, nothing is pending any more


def test_a_dropped_sigterm_exits_with_the_conventional_status():
    with pytest.raises(SystemExit) as stop, stop_signals_as_interrupt():
        _send_and_drop(signal.SIGTERM)
        raise_if_stop_requested()
    assert stop.value.code == SIGTERM_EXIT_STATUS


def test_no_signal_no_stop_and_handlers_restored():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with stop_signals_as_interrupt():
        raise_if_stop_requested()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
