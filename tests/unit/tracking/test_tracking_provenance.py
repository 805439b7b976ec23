"""git_commit: the commit of a checkout, or "unknown"."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lmbench.tracking import git_commit
from lmbench.tracking.provenance import git_dirty, package_version

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def _git(repo: Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


@needs_git
def test_commit_of_a_checkout(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    assert git_commit(tmp_path) == "unknown"  # no commit yet
    (tmp_path / "f.txt").write_text("1")
    _git(tmp_path, "add", "f.txt")
    _git(tmp_path, "commit", "-q", "-m", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert len(head) == 40 and git_commit(tmp_path) == head
    assert git_dirty(tmp_path) is False
    (tmp_path / "f.txt").write_text("2")
    assert git_dirty(tmp_path) is True


def test_not_a_checkout_or_site_packages_is_unknown(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == "unknown"
    assert git_dirty(tmp_path) is None
    assert git_commit(tmp_path / "lib" / "site-packages" / "lmbench") == "unknown"


def test_package_version_without_import() -> None:
    assert package_version("pyyaml") != "unknown"
    assert package_version("surely-not-installed-pkg") == "unknown"
