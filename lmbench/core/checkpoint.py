"""Per-epoch checkpoints (weights + optimiser state + history), written atomically, read safely.

A checkpoint is ``epoch_XXXX.pt`` holding ``format``, ``model_state`` (the state dict),
``optimizer_state`` (mu, epoch, damping rule state, best-validation bookkeeping), ``history``
(plain lists and numbers), ``setup`` (what the run trains with: ``TrainingSetup``) and
``checksum``: SHA-256 over every tensor's name, dtype, shape and bytes. Only plain dicts,
lists, tensors, numbers and strings are written, so ``load_checkpoint`` reads with
``torch.load(weights_only=True)``: a crafted file cannot run code. A flipped bit, an empty or
foreign file, a plain ``state_dict`` and a checkpoint of another architecture are each
refused with a ``CheckpointError`` that says what the file is, before the model is touched.

Resuming with another loss, damping rule, regularisation or other training rows than the
checkpoint's ``setup`` is refused too, naming each difference (the history would otherwise mix
epochs of two objectives), unless the caller passes ``allow_changed_setup=True``. A checkpoint
written before ``setup`` was recorded still resumes, with a warning that nothing was compared.

The seed functions also write ``epoch_XXXXXX.pth`` beside them: a plain ``state_dict`` per
epoch, loadable with ``model.load_state_dict(torch.load(path))`` (``SnapshotCallback``).
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from lmbench.core.callbacks import EpochInfo
from lmbench.core.damping import DampingState
from lmbench.core.distributed import LocalReducer
from lmbench.core.errors import CheckpointError
from lmbench.core.fingerprint import RowsFingerprint
from lmbench.core.history import TrainingHistory
from lmbench.core.regularization import Regularization, RegularizationState
from lmbench.core.stopping import BestWeights

#: The ``format`` tag of a checkpoint written by ``checkpoint_payload``.
FORMAT = "lmbench-checkpoint-v2"
EXPECTED = (
    "expected an lmbench checkpoint (epoch_XXXX.pt written by checkpoint_dir= or the seed "
    "functions' snap_folder=)"
)


def checkpoint_path(folder: str | Path, epoch: int) -> Path:
    return Path(folder) / f"epoch_{epoch:04d}.pt"


def snapshot_path(folder: str | Path, epoch: int) -> Path:
    """The seed's per-epoch weights file: ``epoch_{epoch:06d}.pth`` (a plain state_dict)."""
    return Path(folder) / f"epoch_{epoch:06d}.pth"


def _atomic_save(obj: Any, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def save_checkpoint(folder: str | Path, epoch: int, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to folder/epoch_XXXX.pt via a temp file + rename (never half-written)."""
    return _atomic_save(payload, checkpoint_path(folder, epoch))


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The highest-epoch checkpoint in ``folder``, or None."""
    found = sorted(Path(folder).glob("epoch_*.pt"))
    return found[-1] if found else None


def tensors_checksum(model_state: Mapping[str, torch.Tensor], best_theta: Any) -> str:
    """SHA-256 over the name, dtype, shape and bytes of every tensor a checkpoint holds."""
    digest = hashlib.sha256()
    items = sorted(model_state.items()) + [("<best_theta>", best_theta)]
    for name, value in items:
        digest.update(name.encode())
        if not isinstance(value, torch.Tensor):
            digest.update(repr(value).encode())
            continue
        tensor = value.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{tensor.dtype}{tuple(value.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _read(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with an error that says what the file is."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (or is not a file); {EXPECTED}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is an empty file (0 bytes); {EXPECTED}")
    if not zipfile.is_zipfile(path):
        with path.open("rb") as fh:
            head = fh.read(8)
        raise CheckpointError(
            f"{path} is not a PyTorch file ({size} bytes starting {head!r}, not a torch.save "
            f"zip archive): damaged, truncated or some other file; {EXPECTED}"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} holds Python objects other than tensors, numbers, strings, lists and dicts, "
            f"so it was not loaded (unpickling them could run code); {EXPECTED}. Detail: {exc}"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is a damaged PyTorch file and cannot be read ({exc}); {EXPECTED}"
        ) from exc


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and verify a checkpoint written by ``save_checkpoint`` (safe: weights only)."""
    path = Path(path)
    payload = _read(path)
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} holds a {type(payload).__name__}, not a dict; {EXPECTED}")
    if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise CheckpointError(
            f"{path} is a plain state_dict of {len(payload)} tensor(s) (what "
            "torch.save(model.state_dict()) writes, e.g. the MLflow 'weights' artifact or a "
            f"seed snapshot epoch_XXXXXX.pth), not a resume checkpoint; {EXPECTED}. To start "
            "from these weights, call model.load_state_dict(torch.load(path)) and fit without "
            "resume_from."
        )
    missing = [k for k in ("model_state", "optimizer_state", "history") if k not in payload]
    if missing:
        raise CheckpointError(
            f"{path} is a dict with keys {sorted(map(str, payload))[:8]} but lacks {missing}; "
            f"{EXPECTED}"
        )
    opt = payload["optimizer_state"]
    if "checksum" not in payload:
        warnings.warn(f"{path} has no checksum (written by an older lmbench): its weights "
                      "cannot be verified", stacklevel=2)
    elif tensors_checksum(payload["model_state"], opt.get("best_theta")) != payload["checksum"]:
        raise CheckpointError(
            f"{path} is corrupted: the SHA-256 of its tensors does not match the checksum "
            "stored when it was written (a flipped bit or a partial copy). Resume from an "
            "earlier epoch_XXXX.pt or copy the file again."
        )
    device = torch.device(map_location)
    payload["model_state"] = {k: v.to(device) for k, v in payload["model_state"].items()}
    if isinstance(opt.get("best_theta"), torch.Tensor):
        opt["best_theta"] = opt["best_theta"].to(device)
    return payload


def describe_damping(rule: Any) -> str:
    """A damping rule as the checkpoint records it: its class and the parameters that decide
    its steps (``mu_init`` left out: a resumed run continues from the checkpoint's mu)."""
    if not is_dataclass(rule):
        return type(rule).__name__
    params = ", ".join(f"{f.name}={getattr(rule, f.name)!r}" for f in fields(rule)
                       if f.name != "mu_init")
    return f"{type(rule).__name__}({params})"


class SetupView(Protocol):
    """What ``TrainingSetup.of`` reads of a trainer (``LevenbergMarquardt``)."""

    loss: Any
    damping: Any
    regularization: Regularization
    reducer: Any


class RowsView(Protocol):
    """A row source that can fingerprint its rows (``lmbench.core.sources.RowSource``)."""

    def fingerprint(self) -> RowsFingerprint: ...


@dataclass(frozen=True)
class TrainingSetup:
    """What a run trains with, recorded in each checkpoint and compared when it is resumed:
    the loss (``Loss.name``, with Huber's delta), the damping rule (``describe_damping``), the
    weight penalty, and the training rows' ``RowsFingerprint`` (None when not known: data
    parallelism, where each rank holds another shard)."""

    loss: str
    damping: str
    regularization: str
    data: RowsFingerprint | None = None

    @classmethod
    def of(cls, trainer: SetupView, source: RowsView) -> TrainingSetup:
        """What ``trainer`` trains with on ``source``. The rows are fingerprinted in a single
        process only (each data-parallel rank holds another shard); a loader's fingerprint is
        its first complete pass's (one pass is read now if none has completed yet)."""
        loss = trainer.loss
        name = f"huber(delta={loss.huber_delta!r})" if loss.name == "huber" else str(loss.name)
        data = source.fingerprint() if isinstance(trainer.reducer, LocalReducer) else None
        return cls(name, describe_damping(trainer.damping), repr(trainer.regularization), data)

    def differences(self, resumed: TrainingSetup) -> list[str]:
        """What ``resumed`` changes, one phrase each (rows compared only when both know them)."""
        found = [f"{name}: checkpoint {mine} vs now {theirs}"
                 for name, mine, theirs in (("loss", self.loss, resumed.loss),
                                            ("damping", self.damping, resumed.damping),
                                            ("regularization", self.regularization,
                                             resumed.regularization))
                 if mine != theirs]
        if self.data is not None and resumed.data is not None:
            rows = self.data.difference(resumed.data)
            if rows is not None:
                found.append(f"training rows: now {rows}")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "damping": self.damping,
                "regularization": self.regularization,
                "data": self.data.to_dict() if self.data is not None else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingSetup:
        rows = data.get("data")
        return cls(str(data["loss"]), str(data["damping"]), str(data["regularization"]),
                   RowsFingerprint.from_dict(rows) if rows is not None else None)


@dataclass
class ResumePoint:
    """What a checkpoint restores besides the weights: where the loop stood."""

    epoch: int
    damping: DampingState
    best: BestWeights
    history: TrainingHistory
    regularization: RegularizationState | None = None  # None: written before it was kept


def checkpoint_payload(
    model: torch.nn.Module,
    epoch: int,
    damping: DampingState,
    best: BestWeights,
    history: TrainingHistory,
    regularization: RegularizationState | None = None,
    setup: TrainingSetup | None = None,
) -> dict[str, Any]:
    """The dict ``save_checkpoint`` writes: weights, loop position, history, what the run
    trains with (``setup``) and the checksum."""
    model_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    best_theta = best.theta.detach().to("cpu", copy=True) if best.theta is not None else None
    return {
        "format": FORMAT,
        "model_state": model_state,
        "optimizer_state": {
            "epoch": int(epoch),
            "mu": float(damping.mu),
            "damping": {k: float(v) for k, v in damping.to_dict().items()},
            "best_val": float(best.best_val),
            "best_theta": best_theta,
            "best_epoch": best.epoch,
            "bad_epochs": int(best.bad_epochs),
            **({"regularization": regularization.to_dict()} if regularization is not None
               else {}),
        },
        "history": history.to_dict(),
        **({"setup": setup.to_dict()} if setup is not None else {}),
        "checksum": tensors_checksum(model_state, best_theta),
    }


def check_compatible(path: Path, state: Mapping[str, torch.Tensor], model: torch.nn.Module,
                     n_weights: int, best_theta: Any) -> None:
    """Every parameter and buffer present with the model's shape, else name the mismatches."""
    own = model.state_dict()
    problems = [f"missing {k} {tuple(v.shape)}" for k, v in own.items() if k not in state]
    problems += [f"unexpected {k} {tuple(v.shape)}" for k, v in state.items() if k not in own]
    problems += [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items() if k in own and v.shape != own[k].shape
    ]
    if not problems and isinstance(best_theta, torch.Tensor) and best_theta.numel() != n_weights:
        problems.append(f"best weights: {best_theta.numel()} values vs model {n_weights}")
    if problems:
        shown = "; ".join(problems[:10]) + (f"; ... {len(problems) - 10} more"
                                            if len(problems) > 10 else "")
        raise CheckpointError(
            f"{path} was written for another architecture ({type(model).__name__} does not "
            f"match it): {shown}. Resume with the model the checkpoint was trained with; the "
            "model was left unchanged."
        )


def restore_checkpoint(
    path: str | Path, model: torch.nn.Module, device: torch.device, patience_enabled: bool,
    n_weights: int | None = None, setup: TrainingSetup | None = None,
) -> ResumePoint:
    """Load ``path`` into ``model`` and return where its loop stood. Everything is read and
    checked first: on any error the model is left exactly as it was. With ``setup`` (what the
    resumed run trains with; None: not compared, the caller's ``allow_changed_setup=True``) a
    checkpoint recorded with another setup is refused; one that records none resumes with a
    warning."""
    path = Path(path)
    payload = load_checkpoint(path, map_location=device)
    opt = payload["optimizer_state"]
    if n_weights is None:
        n_weights = sum(p.numel() for p in model.parameters() if p.requires_grad)
    check_compatible(path, payload["model_state"], model, n_weights, opt.get("best_theta"))
    if setup is not None:
        check_same_setup(path, payload, setup)
    try:
        history = TrainingHistory.from_dict(payload["history"])
        best = BestWeights(
            enabled=patience_enabled,
            best_val=float(opt.get("best_val", math.inf)),
            theta=opt.get("best_theta"),
            epoch=opt.get("best_epoch", history.best_epoch),
            bad_epochs=int(opt.get("bad_epochs", 0)),
        )
        damping = DampingState.from_dict({"nu": 2.0, **opt.get("damping", {}), "mu": opt["mu"]})
        epoch = int(opt["epoch"])
        regularization = (RegularizationState.from_dict(opt["regularization"])
                          if "regularization" in opt else None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(
            f"{path} has a malformed optimizer_state or history ({exc!r}); {EXPECTED}"
        ) from exc
    model.load_state_dict(payload["model_state"])
    return ResumePoint(epoch=epoch, damping=damping, best=best, history=history,
                       regularization=regularization)


def check_same_setup(path: Path, payload: Mapping[str, Any], setup: TrainingSetup) -> None:
    """Refuse to resume ``payload`` with another ``setup`` than it recorded, naming each
    difference; a checkpoint without a record (an older lmbench) only warns."""
    if "setup" not in payload:
        warnings.warn(f"{path} records no training setup (written by an older lmbench): the "
                      "loss, damping rule and data it was trained with cannot be compared with "
                      "this run's", stacklevel=3)
        return
    try:
        recorded = TrainingSetup.from_dict(payload["setup"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} has a malformed setup record ({exc!r}); {EXPECTED}"
                              ) from exc
    changes = recorded.differences(setup)
    if changes:
        raise CheckpointError(
            f"{path} was trained with another setup than this run: {'; '.join(changes)}. "
            "Resuming would continue one history under two objectives. Resume with the "
            "checkpoint's loss, damping rule, regularization and training rows, or pass "
            "allow_changed_setup=True to fit(...) to continue from its weights anyway. The "
            "model was left unchanged."
        )


class SnapshotCallback:
    """Writes the seed's ``epoch_{epoch:06d}.pth`` (a plain ``state_dict``) after each epoch."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def on_epoch_end(self, info: EpochInfo) -> None:
        state = {k: v.detach().to("cpu", copy=True) for k, v in info.model.state_dict().items()}
        _atomic_save(state, snapshot_path(self.folder, info.epoch))
