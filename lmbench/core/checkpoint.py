"""Per-epoch checkpoints (weights + optimiser state + history), written atomically.

A checkpoint is ``epoch_XXXX.pt`` holding ``model_state`` (the state dict), ``optimizer_state``
(mu, epoch, damping rule state, best-validation bookkeeping) and ``history``. ``load_checkpoint``
reads one back; ``LevenbergMarquardt.fit(..., resume_from=path)`` continues from it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def checkpoint_path(folder: str | Path, epoch: int) -> Path:
    return Path(folder) / f"epoch_{epoch:04d}.pt"


def save_checkpoint(folder: str | Path, epoch: int, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to folder/epoch_XXXX.pt via a temp file + rename (never half-written)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = checkpoint_path(folder, epoch)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pt")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The highest-epoch checkpoint in ``folder``, or None."""
    found = sorted(Path(folder).glob("epoch_*.pt"))
    return found[-1] if found else None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``."""
    return torch.load(Path(path), map_location=map_location, weights_only=False)
