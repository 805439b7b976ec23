"""The study's error-ratio section on hand-made run tables (no store), the conclusion that
names its tests and reconciles Nemenyi with Wilcoxon, and the exported run records."""

import math

import pandas as pd
import pytest

from lmbench.reports.runs import run_records
from lmbench.reports.statistics import FriedmanResult
from lmbench.reports.study import PairedResult
from lmbench.reports.study_errors import dataset_test_rows, errors_section
from lmbench.reports.study_section import conclusion
from lmbench.tracking import schema


def text_of(section) -> str:
    return "\n".join(b if isinstance(b, str) else getattr(b, "to_markdown", lambda: "")()
                     for b in section.blocks)


def runs_from(values: dict, n_test: dict) -> pd.DataFrame:
    """One FINISHED accuracy run per (dataset, method, seed)."""
    rows = []
    for (dataset, method), scores in values.items():
        for seed, score in enumerate(scores):
            rows.append({
                "run_id": f"{dataset}-{method}-{seed}", "status": "FINISHED", "method": method,
                "dataset": dataset, "seed": seed, "task": "multiclass",
                "primary_metric": "accuracy", "higher_is_better": True, "primary_value": score,
                "n_parameters": {"lm": 100.0, "xgboost": 5000.0}[method], "train_time_s": 1.0,
                schema.metric_column(schema.METRIC_N_TEST_ROWS): n_test[dataset]})
    return pd.DataFrame(rows)


# errors: iris lm 0.10, xgboost 0.20 (ratio 2); wine lm 0.20, xgboost 0.10 (ratio 1/2);
# digits lm 0.05, xgboost 0.20 (ratio 4): median log ratio log 2, extra error +100%
VALUES = {("iris", "lm"): [0.9] * 5, ("iris", "xgboost"): [0.8] * 5,
          ("wine", "lm"): [0.8] * 5, ("wine", "xgboost"): [0.9] * 5,
          ("digits", "lm"): [0.95] * 5, ("digits", "xgboost"): [0.8] * 5}
N_TEST = {"iris": 30, "wine": 36, "digits": 360}


def test_section_shows_extra_error_improvability_tests_test_rows_and_size():
    section = errors_section(runs_from(VALUES, N_TEST), "lm")
    md = text_of(section)
    xgb = next(line for line in md.splitlines() if line.startswith("| xgboost | 3 |"))
    assert "+100.0%" in xgb and "1 of 3" in xgb  # lower error than lm on wine only
    # improvability: xgboost 0.5 on iris, 0 on wine, 0.75 on digits -> 0.4167
    assert xgb.endswith("| 0.417 |")
    lm_row = next(line for line in md.splitlines() if line.startswith("| lm | 3 |"))
    assert "(reference)" in lm_row and lm_row.endswith("| 0.167 |")  # 0, 0.5, 0
    tests = md[md.index("| method | versus |"):]
    assert "| lm | xgboost | 2 | 0 | 1 | 0 |" in tests  # constant differences over 5 seeds
    assert "| iris | multiclass | accuracy | 30 | 3.33 | ⚠ |" in md
    assert "| digits | multiclass | accuracy | 360 | 0.278 |  |" in md
    assert "Small test sets (one row moves the score by more than 1 point): iris, wine" in md
    assert [f.stem for f in section.figures] == ["study_efficiency"]
    assert "| lm | 3 | 100 |" in md and "| xgboost | 3 | 5,000 |" in md


def test_test_rows_are_not_flagged_for_regression():
    runs = runs_from({("iris", "lm"): [0.9]}, {"iris": 30}).assign(task="regression")
    assert not dataset_test_rows(runs)["small"].any()


def _friedman(ranks: dict, cd: float) -> FriedmanResult:
    return FriedmanResult(k=len(ranks), n_datasets=19, statistic=20.6, p_value=0.00038, cd=cd,
                          mean_ranks=pd.Series(ranks), nemenyi=None)


def test_conclusion_reconciles_a_rank_gap_inside_the_cd_with_a_significant_pair():
    result = _friedman({"catboost": 1.95, "adam": 2.58, "lm": 3.95}, cd=1.40)
    pair = PairedResult("lm", "adam", 19, 6, 0, 13, -0.2, 0.007, 0.014)
    text = conclusion(result, [pair], "lm", pd.DataFrame())
    assert "Ranks (Friedman test over 19 datasets)" in text
    assert ("rank gap 1.37 (mean ranks 3.95 and 2.58) is inside the critical difference 1.4, "
            "so the Nemenyi test does not separate them, although the paired Wilcoxon "
            "signed-rank test p = 0.007 (Holm p = 0.014) does: `adam` is better") in text


@pytest.mark.parametrize(("gap_rank", "p_holm", "expected"), [
    (4.9, 0.001, "`catboost` is better by the paired Wilcoxon signed-rank test"),
    (4.9, 0.3, "so the Nemenyi test separates them, although the paired Wilcoxon signed-rank "
               "test p = 0.2 (Holm p = 0.3) finds no significant difference"),
    (2.5, 0.3, "no significant difference at 0.05; their rank gap 0.55"),
])
def test_conclusion_names_both_tests_for_every_pair(gap_rank, p_holm, expected):
    result = _friedman({"catboost": 1.95, "lm": gap_rank}, cd=1.40)
    pair = PairedResult("lm", "catboost", 19, 2, 0, 17, -0.3, 0.2 if p_holm > 0.05 else 0.0005,
                        p_holm)
    assert expected in conclusion(result, [pair], "lm", pd.DataFrame())


def test_run_records_export_selected_params_and_trial_records_in_order():
    runs = pd.DataFrame([{
        "run_id": "r1",
        "params.selected.hidden": "[32, 16]", "params.selected.lr": "0.01",
        "params.trainer.lr": "0.001",  # the config, not a record
        "metrics.trial.10.epochs": 7.0, "metrics.trial.2.epochs": 500.0,
        "metrics.trial.2.fit_time_s": 1.25, "tags.trial.2.stop_reason": "max_epochs",
        "metrics.epochs": 500.0, "tags.stop_reason": "max_epochs",
        "metrics.n_test_rows": math.nan,
    }])
    assert run_records(runs) == [
        ("r1", "selected.hidden", "[32, 16]"), ("r1", "selected.lr", "0.01"),
        ("r1", "epochs", "500"), ("r1", "stop_reason", "max_epochs"),
        ("r1", "trial.2.epochs", "500"), ("r1", "trial.2.fit_time_s", "1.25"),
        ("r1", "trial.2.stop_reason", "max_epochs"), ("r1", "trial.10.epochs", "7"),
    ]


def test_conclusion_reads_no_nemenyi_verdict_after_a_non_significant_friedman_test():
    result = FriedmanResult(k=2, n_datasets=19, statistic=1.0, p_value=0.3, cd=1.4,
                            mean_ranks=pd.Series({"catboost": 1.0, "lm": 2.9}), nemenyi=None)
    pair = PairedResult("lm", "catboost", 19, 9, 0, 10, -0.01, 0.6, 0.6)
    text = conclusion(result, [pair], "lm", pd.DataFrame())
    assert "no significant difference between the methods' ranks" in text
    assert "no Nemenyi post-hoc comparison separates them" in text
    assert "separates them, although" not in text


def test_conclusion_names_no_nemenyi_result_without_a_friedman_test():
    result = FriedmanResult(k=2, n_datasets=1, statistic=math.nan, p_value=math.nan, cd=7.5,
                            mean_ranks=pd.Series({"catboost": 1.0, "lm": 2.0}), nemenyi=None,
                            reason="the Friedman test needs at least 2 datasets")
    pair = PairedResult("lm", "catboost", 1, 0, 0, 1, -0.5, math.nan)
    text = conclusion(result, [pair], "lm", pd.DataFrame())
    assert "No Friedman test" in text and "Nemenyi" not in text


def test_each_extra_error_is_read_with_its_interval():
    md = text_of(errors_section(runs_from(VALUES, N_TEST), "lm"))
    assert ("`xgboost`: error typically 100.0% larger than `lm`'s (median over 3 datasets; 95% "
            "bootstrap interval [-50.0%, +300.0%]; the interval contains 0: not separated "
            "from it).") in md
