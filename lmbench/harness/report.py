"""``lmbench-report``: the report of named experiments, from the MLflow store alone.

    lmbench-report                                    # lmbench-run's default experiment
    lmbench-report --experiment quick                 # -> build/reports/quick/
    lmbench-report --experiment lm_sweep --experiment lm_vs_gbdt --out build/reports/paper
    lmbench-report --experiment quick --tracking-uri sqlite:////data/mlflow.db

The default output folder, ``build/reports/<experiment>/``, is git-ignored: the committed
reports in ``reports/`` are written only by the Makefile (``make reports``, ``make study``,
``make paper-checks``), which names them with ``--out``.

Writes ``report.md`` (GitHub-readable), ``tables/*.tex`` (booktabs), ``figures/*.png|pdf`` and
``runs.csv`` (every number with its run ID, git commit and dataset hash). The limits,
performance and paper-check sections read the experiments ``limits``, ``performance`` and
``paper_checks`` of the same store where present (options below; '' turns one off), and the
quality-at-scale section the experiment ``scale``.

Without --experiment the report covers ``lmbench`` (the experiment ``lmbench-run`` logs to by
default, conf/tracking/mlflow.yaml) when the store has it, else every experiment of the store
except MLflow's ``Default`` and the limits, performance and paper-check experiments.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lmbench.harness.cli_errors import exit_on_cli_error
from lmbench.reports.build import DEFAULT_REPORTS_DIR, ReportOptions, generate_report
from lmbench.tracking import TrackingConfig
from lmbench.tracking.schema import METHOD_LM

#: The experiment ``lmbench-run`` logs to unless ``tracking.experiment_name`` says otherwise.
DEFAULT_EXPERIMENT = TrackingConfig().experiment_name
#: MLflow's own experiment (id 0), never a benchmark.
MLFLOW_DEFAULT_EXPERIMENT = "Default"


def default_experiments(tracking_uri: str | None, sections: Sequence[str | None]) -> list[str]:
    """``[DEFAULT_EXPERIMENT]`` when the store has it (or has no file yet: the report then says
    the store is missing), else every active experiment except MLflow's ``Default`` and the
    ``sections`` (limits, performance, paper checks)."""
    from lmbench.tracking import get_client, resolve_tracking_uri
    from lmbench.tracking.uri import sqlite_path

    uri = resolve_tracking_uri(tracking_uri)
    db = sqlite_path(uri)
    if db is not None and not db.exists():
        return [DEFAULT_EXPERIMENT]
    names = [e.name for e in get_client(uri).search_experiments()]
    if DEFAULT_EXPERIMENT in names:
        return [DEFAULT_EXPERIMENT]
    skip = {MLFLOW_DEFAULT_EXPERIMENT, *(s for s in sections if s)}
    return sorted(n for n in names if n not in skip) or [DEFAULT_EXPERIMENT]


def parse_args(argv: Sequence[str] | None = None) -> ReportOptions:
    """The command line as ``ReportOptions``."""
    parser = argparse.ArgumentParser(
        prog="lmbench-report", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--experiment", action="append", default=None,
                        help=f"MLflow experiment name (repeatable; default: "
                        f"{DEFAULT_EXPERIMENT}, lmbench-run's default experiment, if the store "
                        f"has it, else every experiment but Default, limits, performance and "
                        f"paper_checks)")
    parser.add_argument("--tracking-uri", default=None,
                        help="store URI (default: MLFLOW_TRACKING_URI, else "
                        "sqlite:///<cwd>/mlflow.db)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default: {DEFAULT_REPORTS_DIR}/<experiment>"
                        f"[+<experiment>...]; the committed reports/ are written by make)")
    parser.add_argument("--limits-experiment", default="limits",
                        help="experiment with kind=limits runs (default: limits; '' = none)")
    parser.add_argument("--performance-experiment", default="performance",
                        help="experiment with kind=performance runs (default: performance)")
    parser.add_argument("--paper-experiment", default="paper_checks",
                        help="experiment with kind=paper_check runs (default: paper_checks)")
    parser.add_argument("--scale-experiment", default="scale",
                        help="experiment with kind=scale runs, shown where present (default: "
                        "scale)")
    parser.add_argument("--reference-commit", default=None,
                        help="git commit the runs are checked against: a sha, or HEAD for "
                        "this checkout's (default: the commit most runs share)")
    parser.add_argument("--reference-method", default=METHOD_LM,
                        help="method whose win/tie/loss is shown (default: lm)")
    parser.add_argument("--dpi", type=int, default=200,
                        help="PNG resolution (default: 200)")
    args = parser.parse_args(argv)
    reference = args.reference_commit
    if reference == "HEAD":
        from lmbench.tracking import git_commit

        reference = git_commit()
        if reference == "unknown":
            parser.error("--reference-commit HEAD: this checkout has no git commit")
    sections = (args.limits_experiment, args.performance_experiment, args.paper_experiment,
                args.scale_experiment)
    experiments = args.experiment or default_experiments(args.tracking_uri, sections)
    return ReportOptions(
        experiments=list(dict.fromkeys(experiments)),
        tracking_uri=args.tracking_uri,
        out_dir=args.out,
        limits_experiment=args.limits_experiment or None,
        performance_experiment=args.performance_experiment or None,
        paper_experiment=args.paper_experiment or None,
        scale_experiment=args.scale_experiment or None,
        reference_commit=reference,
        reference_method=args.reference_method,
        dpi=args.dpi,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Build and write the report; exit 2 with the reason when the store lacks the experiment
    or cannot be read."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with exit_on_cli_error("lmbench-report"):
        options = parse_args(argv)
        report = generate_report(options)
    out = report.files[0].parent if report.files else options.out_dir
    report_md = next((p for p in report.files if p.name == "report.md"), None)
    n_tables = sum(p.suffix == ".tex" for p in report.files)
    n_figures = sum(p.suffix == ".png" for p in report.files)
    print(f"{report_md or out}: {len(report.runs)} runs, {n_tables} tables, "
          f"{n_figures} figures")
    if report.reference:
        from lmbench.tracking import git_commit

        head = git_commit()
        if head not in ("unknown", report.reference):
            print(f"note: the runs' reference commit {report.reference[:12]} is not this "
                  f"checkout's HEAD {head[:12]}", file=sys.stderr)


if __name__ == "__main__":
    main()
