"""Run audit: reference commit by majority (store only), code version of every run."""

import pandas as pd

from lmbench.reports.audit import audit_section, reference_commit, with_code_version

A, B = "a" * 40, "b" * 40


def runs(commits, statuses=None):
    n = len(commits)
    return pd.DataFrame({
        "run_id": [f"r{i}" for i in range(n)], "experiment": ["e"] * n,
        "status": statuses or ["FINISHED"] * n, "method": ["lm"] * n, "dataset": ["d"] * n,
        "error": [None] * n, "git_commit": commits, "tags.git_dirty": ["false"] * n,
    })


def test_reference_is_the_majority_commit_ties_broken_by_sha():
    assert reference_commit(runs([A, B, B, "unknown", None])) == B
    assert reference_commit(runs([B, A])) == A
    assert reference_commit(runs(["unknown"])) is None
    assert reference_commit(runs([A, B, B]), given="aaaa") == A


def test_code_version_and_audit_list_failed_and_other_runs():
    table = with_code_version(runs([A, A, B, None], ["FINISHED", "FAILED", "FINISHED", "RUNNING"]),
                              A)
    assert list(table["code_version"]) == ["reference", "reference", "other", "unknown"]
    section = audit_section(table, A, "majority", [("comparison", "no `adam` runs")], ["limits"])
    text = "\n".join(b if isinstance(b, str) else b.to_markdown() for b in section.blocks)
    assert "| e | 4 | 2 | 1 | 0 | 1 | 1 | 1 | 0 |" in text
    assert "r1" in text and "r3" in text  # FAILED and RUNNING are listed
    assert "| e | r2 | benchmark | lm | d | bbbbbbbbbbbb |" in text
    assert "- comparison: no `adam` runs" in text and "`limits`" in text
