"""Exceptions raised by the LM engine, each naming what was wrong and how to fix it."""

from __future__ import annotations


class LMError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidInputError(LMError, ValueError):
    """Training data or model unusable as given (non-finite values, shape mismatch, no weights)."""


class NonFiniteLossError(LMError, FloatingPointError):
    """The loss at the starting weights is NaN or infinite, so no step can be judged."""


class DiskSpaceError(LMError, OSError):
    """The on-disk Jacobian cache would not fit in the free space of its folder."""


class CheckpointError(LMError, ValueError):
    """A checkpoint file is unreadable, damaged, of another kind, or for another model."""


class TempFolderError(LMError, OSError):
    """``temp_folder`` cannot hold the Jacobian cache (not writable, or a pseudo-filesystem)."""
