"""``lmbench-compare``: the method comparison table of a named experiment, from the store.

    lmbench-compare                                   # lmbench-run's default experiment
    lmbench-compare --experiment lm_vs_gbdt_quick [--tracking-uri URI] [--out table.md]

Without --experiment it reads what ``lmbench-report`` reads by default: ``lmbench`` (the
experiment ``lmbench-run`` logs to by default) when the store has it, else every experiment of
the store except MLflow's ``Default`` and the limits, performance, paper-check and scale ones.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lmbench.harness.cli_errors import exit_on_cli_error
from lmbench.harness.report import DEFAULT_EXPERIMENT, default_experiments
from lmbench.reports import compare_methods, load_runs
from lmbench.reports.build import ReportOptions
from lmbench.reports.dedupe import deduplicate
from lmbench.tracking.schema import METHOD_LM


def main(argv: list[str] | None = None) -> None:
    """Print (and with --out write) the comparison table; exit 2 with the reason when the
    store lacks the experiment or cannot be read."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", action="append", default=None,
                        help=f"MLflow experiment name (repeatable; default: "
                        f"{DEFAULT_EXPERIMENT}, lmbench-run's default experiment, if the store "
                        f"has it, else every experiment but Default, limits, performance, "
                        f"paper_checks and scale)")
    parser.add_argument("--tracking-uri", default=None,
                        help="store URI (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    parser.add_argument("--reference", default=METHOD_LM, help="method whose win/tie/loss is shown")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with exit_on_cli_error("lmbench-compare"):
        experiments = args.experiment or default_experiments(
            args.tracking_uri, _section_experiments())
        runs = deduplicate(load_runs(experiments, args.tracking_uri)).runs  # reruns once
        table = compare_methods(runs, reference=args.reference).to_markdown()
    print(table)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n", encoding="utf-8")


def _section_experiments() -> tuple[str | None, ...]:
    """The experiments of the report's own sections (not benchmarks): limits, performance,
    paper checks, scale, as ``lmbench-report`` names them by default."""
    defaults = ReportOptions(experiments=[])
    return (defaults.limits_experiment, defaults.performance_experiment,
            defaults.paper_experiment, defaults.scale_experiment)


if __name__ == "__main__":
    main()
