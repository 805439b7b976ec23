"""Artifacts of a run written through a temporary file: figures and trained weights."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from lmbench.tracking.flatten import sanitize_key
from lmbench.tracking.schema import WEIGHTS_ARTIFACT_DIR

#: ``log_artifact(local_path, artifact_path)`` of a started tracker.
LogArtifact = Callable[[Path, "str | None"], None]


def split_artifact_file(artifact_file: str) -> tuple[str | None, str]:
    """``"notes/a.md"`` -> ``("notes", "a.md")``; absolute paths and ``..`` are refused."""
    path = PurePosixPath(artifact_file)
    if not path.name or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"artifact_file must be a relative file path, got {artifact_file!r}")
    parent = str(path.parent)
    return (None if parent == "." else parent), path.name


def log_figure(
    log_artifact: LogArtifact, figure: Any, artifact_file: str, dpi: int, tight: bool = True
) -> None:
    """Save a matplotlib figure (format from the suffix, PNG by default) and log it; ``tight``
    crops to the drawn content (one extra draw: skip it for figures that fill their canvas)."""
    folder, name = split_artifact_file(artifact_file)
    if not PurePosixPath(name).suffix:
        name += ".png"
    with tempfile.TemporaryDirectory(prefix="lmbench-fig-") as tmp:
        target = Path(tmp) / name
        figure.savefig(target, dpi=dpi, bbox_inches="tight" if tight else None)
        log_artifact(target, folder)


def log_state_dict(log_artifact: LogArtifact, state_dict: Mapping[str, Any], name: str) -> str:
    """``torch.save`` the weights (tensors moved to CPU) as ``weights/<name>.pt``; its path."""
    import torch

    cpu = {
        k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v)
        for k, v in state_dict.items()
    }
    filename = f"{sanitize_key(name)}.pt"
    with tempfile.TemporaryDirectory(prefix="lmbench-weights-") as tmp:
        target = Path(tmp) / filename
        torch.save(cpu, target)
        log_artifact(target, WEIGHTS_ARTIFACT_DIR)
    return f"{WEIGHTS_ARTIFACT_DIR}/{filename}"
