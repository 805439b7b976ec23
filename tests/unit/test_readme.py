"""The README agrees with the tree and the committed reports: its lists of configs, modules and
reports, the links in the repository, how to reach the CLIs, and the paper-check figures."""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
PAPER_REPORT = (REPO / "reports" / "paper_checks" / "report.md").read_text(encoding="utf-8")
#: A CLI called by its bare name (not as ``.venv/bin/<name>``).
BARE_CLI = re.compile(r"(?<!bin/)\blmbench-(run|report|compare|limits)\b")


def _between(text: str, start: str, end: str) -> str:
    head = text[text.index(start):]
    return head[:head.index(end)]


def _significant_digits(number: str) -> int:
    """Digits a quoted number states: ``7.0`` -> 2, ``120`` -> 2, ``1.94e-06`` -> 3."""
    mantissa = re.sub(r"[eE].*", "", number).replace(",", "").lstrip("-")
    digits = mantissa.replace(".", "").lstrip("0")
    if "." not in mantissa:
        digits = digits.rstrip("0")
    return max(len(digits), 1)


def _agrees(quoted: str, reported: str) -> bool:
    """Whether ``quoted`` is ``reported`` rounded to the digits ``quoted`` states (and does not
    state more digits than the report holds)."""
    digits = _significant_digits(quoted)
    if digits > _significant_digits(reported):
        return False
    rounded = float(f"{float(reported.replace(',', '')):.{digits - 1}e}")
    return rounded == float(quoted.replace(",", ""))


def _markdown_rows(text: str, header_start: str) -> list[dict[str, str]]:
    table = _between(text, header_start, "\n\n").strip().splitlines()
    names = [c.strip() for c in table[0].strip("|").split("|")]
    return [dict(zip(names, (c.strip() for c in line.strip("|").split("|")), strict=True))
            for line in table[2:]]


def test_config_group_lists_name_every_config() -> None:
    paragraph = _between(README, "Config groups (", "\n\n")
    named = set(re.findall(r"`([^`]+)`", paragraph))
    for group in ("model", "trainer", "job", "tracking"):
        configs = {p.stem for p in (REPO / "lmbench" / "conf" / group).glob("*.yaml")}
        assert configs <= named, (group, sorted(configs - named))


def test_layout_lists_every_engine_module_package_and_report() -> None:
    layout = _between(README.split("## Layout", 1)[1], "lmbench/core/", "\n```")
    core = _between(layout, "lmbench/core/", "\nlmbench/compat.py").split("\n", 1)[1].split()
    assert sorted(core) == sorted(p.stem for p in (REPO / "lmbench" / "core").glob("*.py")
                                  if p.stem != "__init__")
    for entry in (REPO / "lmbench").iterdir():
        if entry.name.startswith(("_", ".")):
            continue
        assert f"lmbench/{entry.name}{'/' if entry.is_dir() else ''}" in layout, entry.name
    reports = _between(layout, "generated reports (", ")").removeprefix("generated reports (")
    listed = {name.strip() for name in reports.replace("\n", " ").split(",")}
    assert listed == {p.name for p in (REPO / "reports").iterdir() if p.is_dir()}


def test_readme_states_the_repository_links_the_right_way_round() -> None:
    links = {p.name: os.readlink(p).rstrip("/") for p in REPO.iterdir() if p.is_symlink()}
    claims = re.findall(r"`([\w./-]+)` links to `([\w./-]+)`", " ".join(README.split()))
    described = {link.rstrip("/"): target.rstrip("/") for link, target in claims}
    assert links and described == links


def test_readme_says_how_to_reach_the_clis_before_calling_one_by_name() -> None:
    first_bare_call = BARE_CLI.search(README)
    assert first_bare_call is not None
    assert "source .venv/bin/activate" in README[:first_bare_call.start()]


def test_readme_gives_the_duration_of_make_test() -> None:
    assert re.search(r"`make test` \(about \d+ minutes", _between(README, "## Tests", "\n## "))


def test_readme_paper_check_figures_are_the_committed_reports() -> None:
    measured = {row["problem"]: row for row in _markdown_rows(PAPER_REPORT, "| problem | network")}
    section = _between(README, "`make paper-checks`", "## Tests")
    rows = _markdown_rows(section, "| problem | net |")
    assert len(rows) == len(measured)
    for row in rows:
        key = (row["problem"].lower().replace("-", "").replace("(10πx)", "")
               .replace(", minibatch", "_minibatch"))
        report = measured[key]
        assert _agrees(row["final MSE (median)"], report["final MSE median"]), key
        if "±" in row["epochs mean ± std"]:
            for quoted, reported in zip(row["epochs mean ± std"].split(" ± "),
                                        report["epochs mean ± std"].split(" ± "), strict=True):
                assert _agrees(quoted, reported), (key, quoted, reported)
        success = re.fullmatch(r"(\d+)/(\d+) below .*", row["success"])
        reported_rate = float(report["success"].rstrip("%"))
        if success:
            assert abs(100 * int(success[1]) / int(success[2]) - reported_rate) < 0.1, key
        else:
            assert _agrees(row["success"].rstrip("%"), report["success"].rstrip("%")), key
    timings = re.findall(r"(\d[\d.,]*) s\b", PAPER_REPORT) + [
        row["time mean ± std, s"].split(" ± ")[0] for row in measured.values()]
    for quoted in re.findall(r"(\d[\d.,]*) s\b", section):
        assert any(_agrees(quoted, reported) for reported in timings), quoted
