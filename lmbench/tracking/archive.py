"""Carry an embedded (SQLite) store between machines that keep only the repository.

A study longer than one sitting on a machine whose build folder does not survive (a CI runner,
a lent machine with a session limit) goes on where it stopped only if its store does.
``save`` writes a consistent, gzip-compressed copy of the store through SQLite's online backup
(safe while a sweep writes to it); ``restore`` unpacks it where the store is missing and never
overwrites one. Artifacts (``mlruns/``) are not carried: resuming and the reports read only the
database (``lmbench.tracking.resume``, ``lmbench.reports``).

    python -m lmbench.tracking.archive save build/study.db studies/lm_vs_gbdt_standard.db.gz
    python -m lmbench.tracking.archive restore studies/lm_vs_gbdt_standard.db.gz build/study.db
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lmbench.tracking.store import SQLITE_HEADER


def save_store(database: Path, archive: Path) -> int:
    """Write ``archive`` (gzip) from a consistent snapshot of ``database``; returns its bytes."""
    _check_database(database)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=archive.parent) as scratch:
        snapshot = Path(scratch) / "snapshot.db"
        source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=60)
        target = sqlite3.connect(snapshot)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        partial = Path(scratch) / "archive.gz"
        with snapshot.open("rb") as raw, gzip.open(partial, "wb", compresslevel=9) as packed:
            shutil.copyfileobj(raw, packed)
        partial.replace(archive)  # never a half-written archive under the final name
    return archive.stat().st_size


def restore_store(archive: Path, database: Path) -> bool:
    """Unpack ``archive`` into ``database`` unless a store is already there (it is kept, as the
    newer one); True when it was unpacked."""
    if database.exists():
        return False
    if not archive.is_file():
        raise FileNotFoundError(f"no store archive at {archive}: nothing to restore")
    database.parent.mkdir(parents=True, exist_ok=True)
    partial = database.with_name(database.name + ".restoring")
    try:
        with gzip.open(archive, "rb") as packed, partial.open("wb") as raw:
            shutil.copyfileobj(packed, raw)
        _check_database(partial)
        partial.replace(database)
    finally:
        partial.unlink(missing_ok=True)
    return True


def _check_database(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"no SQLite store at {path}")
    with path.open("rb") as handle:
        if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise ValueError(f"{path} is not an SQLite database: not an embedded MLflow store")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmbench.tracking.archive",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    save = commands.add_parser("save", help="pack DATABASE into ARCHIVE (gzip)")
    save.add_argument("database", type=Path)
    save.add_argument("archive", type=Path)
    restore = commands.add_parser("restore", help="unpack ARCHIVE into DATABASE if missing")
    restore.add_argument("archive", type=Path)
    restore.add_argument("database", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "save":
            size = save_store(args.database, args.archive)
            print(f"saved {args.database} -> {args.archive} ({size / 2**20:.1f} MiB)")
        elif restore_store(args.archive, args.database):
            print(f"restored {args.archive} -> {args.database}")
        else:
            print(f"kept the existing store {args.database} (not overwritten by {args.archive})")
    except (FileNotFoundError, ValueError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
