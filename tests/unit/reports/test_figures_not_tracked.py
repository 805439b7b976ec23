"""Report figures are bare ``Figure`` objects: building sections registers nothing with pyplot,
so a report built and not written (or failing half-way) leaves no figure behind."""

import gc
import weakref

import pandas as pd
from matplotlib import pyplot as plt

from lmbench.plotting import plot_train_report
from lmbench.reports.figures import save_figure, subplots
from lmbench.reports.sensitivity import sensitivity_section

from .test_sections import histories_from, lm_runs


def test_sections_register_no_pyplot_figure(tmp_path):
    before = plt.get_fignums()
    runs = lm_runs([
        {"run_id": "a", "dataset": "d", "params.trainer.mu_init": "1", "primary_value": 5.0},
        {"run_id": "b", "dataset": "d", "params.trainer.mu_init": "10", "primary_value": 6.0},
    ])
    section = sensitivity_section(runs, histories_from({"a": pd.Series([1.0, 0.5])}))
    assert section.figures
    assert plt.get_fignums() == before
    written = save_figure(section.figures[0].figure, tmp_path, "heat")
    assert all(p.stat().st_size > 0 for p in written)


def test_a_dropped_report_figure_is_garbage_collected():
    figure, axes = subplots(1, 2, figsize=(4, 2), squeeze=False)
    assert axes.shape == (1, 2)
    refs = [weakref.ref(figure),
            weakref.ref(plot_train_report({"loss": [1, 0.5], "val": [], "mu": [1, 0.1],
                                           "time": [0.1, 0.1]}))]
    del figure, axes
    gc.collect()
    assert all(ref() is None for ref in refs)


def test_study_figures_register_no_pyplot_figure():
    from lmbench.reports.study_section import study_section

    from .test_study import TABLE, runs_from

    before = plt.get_fignums()
    section = study_section(runs_from(TABLE))
    assert {"study_cd_diagram", "study_win_rate"} <= {f.stem for f in section.figures}
    assert plt.get_fignums() == before
