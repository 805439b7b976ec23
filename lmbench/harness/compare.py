"""``lmbench-compare``: the method comparison table of a named experiment, from the store.

    lmbench-compare --experiment lm_vs_gbdt_quick [--tracking-uri URI] [--out table.md]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lmbench.harness.cli_errors import exit_on_cli_error
from lmbench.reports import compare_methods, load_runs
from lmbench.reports.dedupe import deduplicate
from lmbench.tracking.schema import METHOD_LM


def main(argv: list[str] | None = None) -> None:
    """Print (and with --out write) the comparison table; exit 2 with the reason when the
    store lacks the experiment or cannot be read."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", action="append", required=True,
                        help="MLflow experiment name (repeatable)")
    parser.add_argument("--tracking-uri", default=None,
                        help="store URI (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    parser.add_argument("--reference", default=METHOD_LM, help="method whose win/tie/loss is shown")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with exit_on_cli_error("lmbench-compare"):
        runs = deduplicate(load_runs(args.experiment, args.tracking_uri)).runs  # reruns once
        table = compare_methods(runs, reference=args.reference).to_markdown()
    print(table)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
