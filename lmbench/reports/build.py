"""Build a report from the MLflow store alone: ``reports/<experiment>/`` with ``report.md``,
``tables/*.tex`` (booktabs), ``figures/*.png|pdf`` and ``runs.csv``.

Determinism: tables and ``runs.csv`` depend only on the store (runs sorted by fixed keys,
numbers formatted once, no timestamps, no paths); figures are saved without dates
(``lmbench.reports.figures``). The same store and the same call give byte-identical tables.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lmbench.reports.audit import audit_section, reference_commit, with_code_version
from lmbench.reports.dedupe import deduplicate
from lmbench.reports.document import FigureBlock, Section
from lmbench.reports.dynamics import dynamics_section
from lmbench.reports.figures import save_figure
from lmbench.reports.limits import limits_section, performance_section
from lmbench.reports.losses import losses_section
from lmbench.reports.method_table import comparison_section
from lmbench.reports.paper import paper_section
from lmbench.reports.regularization import regularization_section
from lmbench.reports.runs import load_metric_histories, load_runs, run_records
from lmbench.reports.scale import scale_section
from lmbench.reports.sensitivity import sensitivity_section
from lmbench.reports.study_errors import errors_section
from lmbench.reports.study_section import study_section
from lmbench.reports.tables import Table
from lmbench.tracking import resolve_tracking_uri
from lmbench.tracking.schema import (
    KIND_LIMITS,
    KIND_PAPER_CHECK,
    KIND_PERFORMANCE,
    KIND_SCALE,
    METHOD_LM,
    TAG_KIND,
    tag_column,
)
from lmbench.tracking.uri import sqlite_path

_log = logging.getLogger(__name__)

#: Runs of kind limits, performance and paper_check (``schema.KIND_*``) feed the limits,
#: performance and paper-check sections; every other run is a benchmark run (one per
#: configuration: ``lmbench.reports.dedupe``), read by the study and comparison sections.
RUNS_CSV_COLUMNS = [
    "section", "experiment", "run_id", "status", "code_version", "git_commit", "git_dirty",
    "dataset_hash", "kind", "method", "dataset", "seed", "quantity", "value",
]


#: Where a report goes without an explicit ``out_dir``: ``build/reports/<experiment>/``
#: (git-ignored), so that regenerating a report never rewrites the committed ones in
#: ``reports/`` (only the Makefile's ``reports``, ``study`` and ``paper-checks`` targets pass
#: ``--out reports/<experiment>``).
DEFAULT_REPORTS_DIR = Path("build") / "reports"


@dataclass
class ReportOptions:
    """What to read and how to write it (the ``lmbench-report`` options)."""

    experiments: list[str]
    tracking_uri: str | None = None
    out_dir: Path | None = None
    limits_experiment: str | None = "limits"
    performance_experiment: str | None = "performance"
    paper_experiment: str | None = "paper_checks"
    scale_experiment: str | None = "scale"
    reference_commit: str | None = None
    reference_method: str = METHOD_LM
    dpi: int = 200

    @property
    def name(self) -> str:
        return "+".join(self.experiments)

    def command(self) -> str:
        """The command line that regenerates this report (store location left out)."""
        parts = ["lmbench-report"] + [f"--experiment {e}" for e in self.experiments]
        defaults = ReportOptions(self.experiments)
        for flag, value, default in (
            ("--limits-experiment", self.limits_experiment, defaults.limits_experiment),
            ("--performance-experiment", self.performance_experiment,
             defaults.performance_experiment),
            ("--paper-experiment", self.paper_experiment, defaults.paper_experiment),
            ("--scale-experiment", self.scale_experiment, defaults.scale_experiment),
            ("--reference-commit", self.reference_commit, None),
            ("--reference-method", self.reference_method, METHOD_LM),
            ("--dpi", self.dpi, 200),
        ):
            if value != default:
                parts.append(f"{flag} {value if value is not None else chr(39) * 2}")
        return " ".join(parts)


@dataclass
class Report:
    """A built report: its sections and the run table it stands on."""

    options: ReportOptions
    runs: pd.DataFrame
    sections: list[Section]
    reference: str | None
    absent: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def _kind(runs: pd.DataFrame) -> pd.Series:
    column = tag_column(TAG_KIND)
    if column not in runs:
        return pd.Series("", index=runs.index)
    return runs[column].fillna("").astype(str)


def read_runs(options: ReportOptions) -> tuple[pd.DataFrame, list[str]]:
    """The named experiments (required) plus the limits/performance/paper experiments (each
    optional: absent ones are returned by name), deduplicated and in a fixed order."""
    uri = resolve_tracking_uri(options.tracking_uri)
    db = sqlite_path(uri)
    if db is not None and not db.exists():  # opening it would create an empty store
        raise LookupError(
            f"no MLflow store at {db}; run the experiments first (lmbench-run "
            "+experiment=NAME) or pass the store with --tracking-uri"
        )
    frames = [load_runs(options.experiments, uri)]
    absent = []
    for name in (options.limits_experiment, options.performance_experiment,
                 options.paper_experiment):
        if not name or name in options.experiments:
            continue
        try:
            frames.append(load_runs(name, uri))
        except LookupError:
            absent.append(name)
    scale = options.scale_experiment
    if scale and scale not in options.experiments:
        # shown only where present: a store without it is not missing anything
        with contextlib.suppress(LookupError):
            frames.append(load_runs(scale, uri))
    runs = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    runs = runs.drop_duplicates("run_id")
    runs = runs.sort_values(
        ["experiment", "dataset", "method", "seed", "run_id"], na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    return runs, absent


def build_report(options: ReportOptions) -> Report:
    """Read the store and build every section (nothing is written)."""
    runs, absent = read_runs(options)
    reference = reference_commit(runs, options.reference_commit)
    runs = with_code_version(runs, reference)
    uri = resolve_tracking_uri(options.tracking_uri)

    def histories(run_ids: Sequence[str], keys: Sequence[str]) -> dict:
        return load_metric_histories(run_ids, keys, uri)

    kind = _kind(runs)
    other_kinds = kind.isin([KIND_LIMITS, KIND_PERFORMANCE, KIND_PAPER_CHECK, KIND_SCALE])
    deduplicated = deduplicate(runs[~other_kinds])
    benchmark = deduplicated.runs
    runs = runs[~runs["run_id"].isin(deduplicated.dropped_ids)].reset_index(drop=True)
    kind = _kind(runs)
    sections = [
        study_section(benchmark, options.reference_method),
        errors_section(benchmark, options.reference_method),
        comparison_section(benchmark, options.reference_method),
        sensitivity_section(benchmark, histories),
        dynamics_section(benchmark, histories),
        losses_section(benchmark),  # None unless the LM runs hold more than one loss
        regularization_section(benchmark, histories),  # None without lm_plain / lm_bayesian
        limits_section(runs[kind == KIND_LIMITS], options.limits_experiment or "limits"),
        performance_section(runs[kind == KIND_PERFORMANCE],
                            options.performance_experiment or "performance"),
        paper_section(runs[kind == KIND_PAPER_CHECK], histories,
                      options.paper_experiment or "paper_checks"),
        scale_section(runs[kind == KIND_SCALE]),  # None without kind=scale runs
    ]
    built = [s for s in sections if s is not None]
    missing = [m for s in built for m in s.missing]
    # a section is shown only when it holds data; what it lacked is listed in the audit
    shown = [s for s in built if s.tables or s.figures]
    rule = "given with --reference-commit" if options.reference_commit else (
        "the commit most runs were made with")
    shown.append(audit_section(runs, reference, rule, missing, absent, deduplicated))
    sections = shown
    return Report(options, runs, sections, reference, absent)


# ---------------------------------------------------------------------- writing
def write_report(report: Report) -> list[Path]:
    """Write report.md, tables/*.tex, figures/*.png|pdf and runs.csv; remove stale files of
    ours (tables and figures a previous build wrote that this one did not)."""
    options = report.options
    out = options.out_dir or DEFAULT_REPORTS_DIR / options.name
    tables_dir, figures_dir = out / "tables", out / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for section in report.sections:
        for table in section.tables:
            written.append(_write_text(tables_dir / f"{table.name}.tex", table.to_latex()))
        for block in section.figures:
            written += save_figure(block.figure, figures_dir, block.stem, options.dpi)
    written.append(_write_text(out / "report.md", render_markdown(report)))
    written.append(_write_text(out / "runs.csv", runs_csv(report)))
    keep = set(written)
    for folder, patterns in ((tables_dir, ("*.tex",)), (figures_dir, ("*.png", "*.pdf"))):
        for pattern in patterns:
            for path in sorted(folder.glob(pattern)):
                if path not in keep:
                    path.unlink()
                    _log.info("removed stale %s", path)
    report.files = written
    return written


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def render_markdown(report: Report) -> str:
    """``report.md``: header, contents, the numbered sections (GitHub-readable)."""
    options = report.options
    runs = report.runs
    finished = int((runs["status"] == "FINISHED").sum())
    other = int((runs["code_version"] == "other").sum())
    read = [e for e in (options.limits_experiment, options.performance_experiment,
                        options.paper_experiment) if e and e not in options.experiments]
    if options.scale_experiment in set(runs["experiment"]) - set(options.experiments):
        read.append(options.scale_experiment)
    lines = [
        f"# lmbench report: {options.name}",
        "",
        f"Generated by `{options.command()}` from the MLflow store alone "
        f"(experiments {', '.join(f'`{e}`' for e in options.experiments)}"
        + (f"; also read where present: {', '.join(f'`{e}`' for e in read)}" if read else "")
        + "). Every number comes from a run in that store: `runs.csv` lists each with its run "
        "ID, git commit and dataset hash. LaTeX tables (booktabs) are in `tables/`, figures "
        "(PNG and PDF) in `figures/`. Regenerating from the same store gives byte-identical "
        "tables.",
        "",
        f"Runs read: {len(runs)} ({finished} finished, {len(runs) - finished} not finished, "
        f"{other} from another code version than the reference"
        + (f" `{report.reference[:12]}`" if report.reference else "")
        + f"); see section {len(report.sections)}.",
        "",
        "Contents:",
        "",
    ]
    lines += [f"{i}. [{s.title}](#{_anchor(i, s.title)})"
              for i, s in enumerate(report.sections, 1)]
    for i, section in enumerate(report.sections, 1):
        lines += ["", f"## {i}. {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines += [f"**{block.caption}** (`tables/{block.name}.tex`)", "",
                          block.to_markdown(), ""]
            elif isinstance(block, FigureBlock):
                lines += [f"![{block.caption}](figures/{block.stem}.png)", "",
                          f"*{block.caption}* ([PDF](figures/{block.stem}.pdf))", ""]
            else:
                lines += [block, ""]
    return "\n".join(line.rstrip() for line in lines).rstrip("\n") + "\n"


def _anchor(number: int, title: str) -> str:
    text = f"{number}. {title}".lower()
    kept = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def runs_csv(report: Report) -> str:
    """One row per number a section took from a run, the runs' records (``records``: the
    selected hyper-parameters and every trial's epochs, best epoch, stop reason, timed-out
    flag and fit time, ``lmbench.reports.runs.run_records``), plus one ``status`` row per
    run."""
    meta = report.runs.set_index("run_id")
    rows: list[dict[str, str]] = []
    for section in report.sections:
        for item in section.evidence:
            rows.append(_csv_row(section.key, item["run_id"], meta, item["quantity"],
                                 item["value"]))
    for run_id, quantity, value in run_records(report.runs):
        rows.append(_csv_row("records", run_id, meta, quantity, value))
    for run_id in report.runs["run_id"]:
        rows.append(_csv_row("runs", run_id, meta, "status", str(meta.at[run_id, "status"])))
    seen: set[tuple[str, ...]] = set()
    unique = []
    for row in rows:
        key = tuple(row.values())
        if key not in seen:
            seen.add(key)
            unique.append(row)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RUNS_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(unique)
    return buffer.getvalue()


def _csv_row(section: str, run_id: str, meta: pd.DataFrame, quantity: str, value: str) -> dict:
    run = meta.loc[run_id]

    def text(column: str) -> str:
        value = run.get(column)
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return {
        "section": section, "experiment": text("experiment"), "run_id": run_id,
        "status": text("status"), "code_version": text("code_version"),
        "git_commit": text("git_commit"), "git_dirty": text("git_dirty"),
        "dataset_hash": text("dataset_hash"), "kind": text(tag_column(TAG_KIND)),
        "method": text("method"), "dataset": text("dataset"), "seed": text("seed"),
        "quantity": quantity, "value": value,
    }


def generate_report(options: ReportOptions) -> Report:
    """Build and write; returns the report with ``files`` filled in."""
    report = build_report(options)
    write_report(report)
    return report
