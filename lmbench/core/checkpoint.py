"""Per-epoch checkpoints (weights + optimiser state + history), written atomically.

A checkpoint is ``epoch_XXXX.pt`` holding ``model_state`` (the state dict), ``optimizer_state``
(mu, epoch, damping rule state, best-validation bookkeeping) and ``history``. ``load_checkpoint``
reads one back; ``LevenbergMarquardt.fit(..., resume_from=path)`` continues from it.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lmbench.core.damping import DampingState
from lmbench.core.history import TrainingHistory
from lmbench.core.stopping import BestWeights


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


@dataclass
class ResumePoint:
    """What a checkpoint restores besides the weights: where the loop stood."""

    epoch: int
    damping: DampingState
    best: BestWeights
    history: TrainingHistory


def checkpoint_payload(
    model: torch.nn.Module,
    epoch: int,
    damping: DampingState,
    best: BestWeights,
    history: TrainingHistory,
) -> dict[str, Any]:
    """The dict ``save_checkpoint`` writes: weights, loop position and history."""
    return {
        "model_state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "optimizer_state": {
            "epoch": epoch,
            "mu": damping.mu,
            "damping": damping.to_dict(),
            "best_val": best.best_val,
            "best_theta": best.theta,
            "best_epoch": best.epoch,
            "bad_epochs": best.bad_epochs,
        },
        "history": history.to_dict(),
    }


def restore_checkpoint(
    path: str | Path, model: torch.nn.Module, device: torch.device, patience_enabled: bool
) -> ResumePoint:
    """Load ``path`` into ``model`` and return where its loop stood."""
    payload = load_checkpoint(path, map_location=device)
    model.load_state_dict(payload["model_state"])
    opt = payload["optimizer_state"]
    history = TrainingHistory.from_dict(payload["history"])
    best = BestWeights(
        enabled=patience_enabled,
        best_val=float(opt.get("best_val", math.inf)),
        theta=opt.get("best_theta"),
        epoch=opt.get("best_epoch", history.best_epoch),
        bad_epochs=int(opt.get("bad_epochs", 0)),
    )
    damping = DampingState.from_dict({"nu": 2.0, **opt.get("damping", {}), "mu": opt["mu"]})
    return ResumePoint(epoch=int(opt["epoch"]), damping=damping, best=best, history=history)
