"""What produced a run: git commit of the lmbench checkout and package versions."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from lmbench.paths import PACKAGE_DIR

UNKNOWN = "unknown"


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit(path: str | Path | None = None) -> str:
    """``git rev-parse HEAD`` of the repository holding ``path`` (default: the lmbench package).

    ``"unknown"`` when git is missing, ``path`` is not in a checkout, the checkout has no commit
    yet, or lmbench is installed under ``site-packages`` (a repo around a venv is not ours).
    """
    where = Path(path) if path is not None else PACKAGE_DIR
    if "site-packages" in where.parts:
        return UNKNOWN
    commit = _git(["rev-parse", "--verify", "--quiet", "HEAD"], where)
    return commit if commit else UNKNOWN


def git_dirty(path: str | Path | None = None) -> bool | None:
    """Whether tracked files differ from HEAD (``None`` if unknown): a commit alone may mislead."""
    where = Path(path) if path is not None else PACKAGE_DIR
    if git_commit(where) == UNKNOWN:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    return None if status is None else bool(status)


def package_version(name: str) -> str:
    """Installed version of distribution ``name``, without importing it; ``"unknown"`` if absent.

    For torch the imported module's version wins when it is already loaded (it may differ from
    the metadata in an odd environment and is what actually ran).
    """
    module = sys.modules.get(name)
    version = getattr(module, "__version__", None) if module is not None else None
    if isinstance(version, str) and version:
        return version
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return UNKNOWN
