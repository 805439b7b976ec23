"""One result per configuration: reruns of the same job are counted once, not pooled.

A benchmark run's *identity* is its ``config_hash`` tag (the hash of its code-relevant
configuration) together with method, dataset and seed (so that a hash that left the seed out
still never merges two seeds). Runs logged before the tag existed fall back to method,
dataset, seed and every ``params.trainer.*`` / ``params.model.*`` value. Of the runs sharing
an identity the latest FINISHED one is kept; the others (earlier finished reruns, and failed
or killed attempts a finished rerun replaced) are dropped and counted. An identity with no
FINISHED run keeps all its runs, so that failures are still reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lmbench.tracking.schema import (
    PARAM_CONFIG_PREFIXES,
    PARAM_SEED,
    TAG_CONFIG_HASH,
    TAG_DATASET,
    TAG_METHOD,
    param_column,
    tag_column,
)

#: Columns of the benchmark table that hold the configuration of runs without a config hash.
_CONFIG_COLUMNS = tuple(param_column(p) for p in PARAM_CONFIG_PREFIXES)


@dataclass(frozen=True)
class Deduplicated:
    """The runs kept and how many of each kind were dropped."""

    runs: pd.DataFrame
    dropped_finished: int
    dropped_unfinished: int
    dropped_runs: pd.DataFrame

    @property
    def dropped(self) -> int:
        return self.dropped_finished + self.dropped_unfinished

    @property
    def dropped_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self.dropped_runs["run_id"])) if self.dropped else ()


def run_identity(runs: pd.DataFrame) -> pd.Series:
    """One text key per run: ``hash:<config_hash>|...`` or ``params:<settings>|...``."""
    hash_column = tag_column(TAG_CONFIG_HASH)
    hashes = runs[hash_column] if hash_column in runs else pd.Series(None, index=runs.index)
    config_columns = sorted(c for c in runs.columns if c.startswith(_CONFIG_COLUMNS))
    keys = []
    for index, run in runs.iterrows():
        base = f"{run.get(TAG_METHOD)}|{run.get(TAG_DATASET)}|{run.get(PARAM_SEED)}"
        config_hash = hashes.at[index]
        if isinstance(config_hash, str) and config_hash:
            keys.append(f"hash:{config_hash}|{base}")
            continue
        settings = ",".join(f"{c}={run[c]}" for c in config_columns if isinstance(run[c], str))
        keys.append(f"params:{settings}|{base}")
    return pd.Series(keys, index=runs.index, dtype=object)


def deduplicate(runs: pd.DataFrame) -> Deduplicated:
    """Keep the latest FINISHED run of each identity (see the module docstring)."""
    if runs.empty:
        return Deduplicated(runs, 0, 0, runs.iloc[0:0])
    identity = run_identity(runs)
    start = runs["start_time"] if "start_time" in runs else pd.Series(0, index=runs.index)
    order = pd.DataFrame({
        "identity": identity, "finished": runs["status"].eq("FINISHED"),
        "start": pd.to_numeric(start, errors="coerce").fillna(0), "run_id": runs["run_id"],
    })
    keep = pd.Series(True, index=runs.index)
    for _, group in order.groupby("identity", sort=False):
        finished = group[group["finished"]]
        if finished.empty:
            continue
        latest = finished.sort_values(["start", "run_id"], kind="stable").index[-1]
        keep.loc[group.index] = False
        keep.loc[latest] = True
    dropped = runs[~keep]
    return Deduplicated(
        runs[keep],
        int(dropped["status"].eq("FINISHED").sum()),
        int((~dropped["status"].eq("FINISHED")).sum()),
        dropped.sort_values("run_id", kind="stable"),
    )
