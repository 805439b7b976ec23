"""Which runs a report stands on: status, code version and what is missing — never dropped.

A run's *code version* is ``reference`` when its ``git_commit`` tag equals the reference commit
(by default the commit most of the runs share, so the verdict depends on the store alone),
``other`` when it differs and ``unknown`` when the tag is absent. Runs whose tree had
uncommitted changes (``git_dirty=true``) are counted too: a commit alone may not pin the code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pandas as pd

from lmbench.reports.dedupe import Deduplicated
from lmbench.reports.document import Section
from lmbench.reports.numbers import fmt_int
from lmbench.reports.tables import Table
from lmbench.tracking.schema import KIND_BENCHMARK, TAG_GIT_DIRTY, TAG_KIND, tag_column

#: Statuses whose numbers enter the statistics; every other status is listed.
OK_STATUS = "FINISHED"


def reference_commit(runs: pd.DataFrame, given: str | None = None) -> str | None:
    """The commit runs are compared against: ``given`` (a full or abbreviated sha matched
    against the runs' commits), else the most frequent known commit (ties: smallest sha)."""
    commits = [c for c in runs.get("git_commit", pd.Series(dtype=object)) if _known(c)]
    if given:
        matches = sorted({c for c in commits if str(c).startswith(given)})
        return matches[0] if len(matches) == 1 else given
    if not commits:
        return None
    counts = Counter(commits)
    top = max(counts.values())
    return min(c for c, n in counts.items() if n == top)


def with_code_version(runs: pd.DataFrame, reference: str | None) -> pd.DataFrame:
    """``runs`` plus ``code_version`` (reference / other / unknown) and ``git_dirty``."""
    out = runs.copy()
    commits = out["git_commit"] if "git_commit" in out else pd.Series([None] * len(out))
    out["code_version"] = [
        "unknown" if not _known(c) else ("reference" if c == reference else "other")
        for c in commits
    ]
    dirty_column = tag_column(TAG_GIT_DIRTY)
    dirty = out[dirty_column] if dirty_column in out else pd.Series([None] * len(out))
    out["git_dirty"] = [str(d).lower() if isinstance(d, str) else "" for d in dirty]
    return out


def _known(commit: object) -> bool:
    return isinstance(commit, str) and commit not in ("", "unknown")


def audit_section(
    runs: pd.DataFrame,
    reference: str | None,
    reference_rule: str,
    missing: Sequence[tuple[str, str]],
    absent_experiments: Sequence[str],
    deduplicated: Deduplicated | None = None,
) -> Section:
    """The report's run audit: counts per experiment and status, duplicates dropped, every run
    that is not FINISHED, every run from another code version, and every expected-but-missing
    result."""
    section = Section("runs", "Runs behind this report")
    dirty = int((runs["git_dirty"] == "true").sum()) if "git_dirty" in runs else 0
    dirty_text = (f" {dirty} of {len(runs)} runs were made from a tree with uncommitted "
                  "changes (`git_dirty=true`): their commit alone does not pin their code."
                  if dirty else " No run was made from a tree with uncommitted changes.")
    if reference:
        section.text(
            f"Reference code version: `{reference[:12]}` ({reference_rule}). Runs with another "
            "`git_commit` are marked † in the tables and listed below; they still enter the "
            "statistics (nothing is dropped silently)." + dirty_text
        )
    else:
        section.text("No run carries a `git_commit` tag: code versions cannot be compared."
                     + dirty_text)
    if deduplicated is not None:
        section.text(_duplicates_text(deduplicated))
        if deduplicated.dropped:
            table = Table(
                "runs_duplicates",
                "Runs left out as repeats of a configuration (a later FINISHED run replaces "
                "them).", ["experiment", "run id", "method", "dataset", "seed", "status"],
                align="llllrl")
            for _, row in deduplicated.dropped_runs.iterrows():
                table.add([_text(row.get("experiment")), str(row["run_id"]),
                           _text(row.get("method")), _text(row.get("dataset")),
                           fmt_int(row.get("seed")), str(row["status"])])
            section.table(table)
    counts = Table(
        "runs_status",
        "Runs per experiment: status and code version.",
        ["experiment", "runs", "finished", "failed", "killed", "unfinished",
         "other code version", "unknown code version", "uncommitted changes"],
    )
    for experiment, group in runs.groupby("experiment", sort=True):
        status = group["status"]
        counts.add([
            str(experiment), fmt_int(len(group)),
            fmt_int((status == "FINISHED").sum()), fmt_int((status == "FAILED").sum()),
            fmt_int((status == "KILLED").sum()),
            fmt_int((~status.isin(["FINISHED", "FAILED", "KILLED"])).sum()),
            fmt_int((group["code_version"] == "other").sum()),
            fmt_int((group["code_version"] == "unknown").sum()),
            fmt_int((group["git_dirty"] == "true").sum()),
        ])
    section.table(counts)
    if absent_experiments:
        section.text(
            "Experiments not in the store: "
            + ", ".join(f"`{name}`" for name in absent_experiments) + "."
        )
    bad = runs[runs["status"] != OK_STATUS]
    if not bad.empty:
        failed = Table(
            "runs_not_finished", "Runs that did not finish (no numbers from them are used).",
            ["experiment", "run id", "kind", "method", "dataset", "status", "error"],
            align="lllllll",
        )
        for _, row in bad.iterrows():
            failed.add([
                str(row["experiment"]), str(row["run_id"]), _kind(row), _text(row["method"]),
                _text(row["dataset"]), str(row["status"]), _text(row["error"])[:120],
            ])
        section.table(failed)
    else:
        section.text("Every run finished.")
    other = runs[runs["code_version"] != "reference"] if reference else runs.iloc[0:0]
    if not other.empty:
        stale = Table(
            "runs_other_code_version",
            "Runs from another code version than the reference (marked † in the tables).",
            ["experiment", "run id", "kind", "method", "dataset", "git commit"],
            align="llllll",
        )
        for _, row in other.iterrows():
            commit = row["git_commit"] if _known(row["git_commit"]) else "unknown"
            stale.add([str(row["experiment"]), str(row["run_id"]), _kind(row),
                       _text(row["method"]), _text(row["dataset"]), str(commit)[:12]])
        section.table(stale)
    elif reference:
        section.text("Every run comes from the reference code version.")
    if missing:
        section.text(
            "Expected and missing:\n\n"
            + "\n".join(f"- {where}: {what}" for where, what in missing)
        )
    else:
        section.text("Nothing expected is missing.")
    return section


def _duplicates_text(deduplicated: Deduplicated) -> str:
    if not deduplicated.dropped:
        return ("Duplicates: none (every benchmark configuration, `config_hash` or method, "
                "dataset, seed and settings, has one run).")
    return (f"Duplicates dropped: {deduplicated.dropped} benchmark runs repeated a "
            "configuration (same `config_hash`, or for runs without it the same method, "
            "dataset, seed and trainer/model settings) and were left out of every statistic "
            f"and of the tables below: {deduplicated.dropped_finished} earlier FINISHED "
            f"reruns and {deduplicated.dropped_unfinished} unfinished attempts that a "
            "FINISHED run of the same configuration replaced; the latest FINISHED run of each "
            "configuration is kept.")


def _kind(row: pd.Series) -> str:
    kind = row.get(tag_column(TAG_KIND))
    return kind if isinstance(kind, str) and kind else KIND_BENCHMARK


def _text(value: object) -> str:
    return value if isinstance(value, str) else "–"
