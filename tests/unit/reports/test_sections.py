"""Report sections on hand-made run tables (no store): values, missing cells, absent data."""

import math

import numpy as np
import pandas as pd

from lmbench.reports.document import Section
from lmbench.reports.limits import limits_section, performance_section
from lmbench.reports.method_table import comparison_section
from lmbench.reports.paper import paper_section
from lmbench.reports.sensitivity import sensitivity_section, width_label


def text_of(section: Section) -> str:
    return "\n".join(b if isinstance(b, str) else getattr(b, "to_markdown", lambda: "")()
                     for b in section.blocks)


def lm_runs(rows):
    base = {"experiment": "e", "status": "FINISHED", "method": "lm", "task": "regression",
            "primary_metric": "rmse", "higher_is_better": False, "n_parameters": 10.0,
            "train_time_s": 1.0, "code_version": "reference", "seed": 0,
            "params.trainer.demping_coef": "10", "params.model.hidden": "[16]"}
    return pd.DataFrame([{**base, **row} for row in rows])


def histories_from(values):
    def load(run_ids, keys):
        return {r: {k: values[r] for k in keys if r in values} for r in run_ids}
    return load


def test_width_label():
    assert width_label("[32, 16]") == "32-16" and width_label("[8]") == "8"
    assert width_label("wide") == "wide"


def test_sensitivity_uses_val_loss_at_best_epoch_and_reports_missing_cells():
    runs = lm_runs([
        {"run_id": "a", "dataset": "d", "params.trainer.mu_init": "1", "primary_value": 5.0,
         "metrics.best_epoch": 1.0},
        {"run_id": "b", "dataset": "d", "params.trainer.mu_init": "10", "primary_value": 6.0,
         "params.trainer.demping_coef": "3"},
        {"run_id": "c", "dataset": "d", "params.trainer.mu_init": "10", "primary_value": 6.0,
         "status": "FAILED"},
    ])
    val = {"a": pd.Series([1.0, 0.25, 0.5]), "b": pd.Series([1.0, 0.75])}
    section = sensitivity_section(runs, histories_from(val))
    md = text_of(section)
    assert "| d | val MSE (standardised target) | 1 | missing | **0.25 (1)** |" in md
    assert "| d | val MSE (standardised target) | 10 | 0.75 (1) | failed |" in md
    assert ("sensitivity", "`d` μ_init=10, demping_coef=10: failed") in section.missing
    cited = {(e["run_id"], e["quantity"]): e["value"] for e in section.evidence}
    assert cited[("a", "val_loss_returned")] == "0.25"


def test_sensitivity_falls_back_to_the_test_metric_and_says_so():
    runs = lm_runs([{"run_id": "a", "dataset": "d", "params.trainer.mu_init": "1",
                     "primary_value": 5.0}])
    md = text_of(sensitivity_section(runs, histories_from({})))
    assert "| d | test rmse | 1 | **5 (1)** |" in md


def test_comparison_marks_missing_method_cells():
    runs = lm_runs([
        {"run_id": "a", "dataset": "d1", "primary_value": 1.0},
        {"run_id": "b", "dataset": "d2", "primary_value": 2.0},
        {"run_id": "c", "dataset": "d2", "primary_value": 1.5, "method": "adam"},
    ])
    section = comparison_section(runs)
    md = text_of(section)
    assert "| d1 | rmse ↓ | **1 (1)** | missing |" in md
    assert "| d2 | rmse ↓ | 2 (1) | **1.5 (1)** |" in md
    assert ("comparison", "`adam` on `d1`: no run") in section.missing
    assert ("comparison", "no `xgboost` runs") in section.missing


def test_absent_sections_say_so():
    empty = pd.DataFrame(columns=["run_id", "status"])
    for section in (limits_section(empty), performance_section(empty),
                    paper_section(empty, histories_from({}))):
        assert "No " in text_of(section) and section.missing
    assert "experiment `limits`" in text_of(limits_section(empty))


def test_limits_ratio_and_seed_limits():
    runs = pd.DataFrame([{
        "run_id": "x", "experiment": "limits", "status": "FINISHED", "code_version": "other",
        "tags.engine": "cache", "tags.device": "cuda", "params.n_params": "7000",
        "params.n_rows": "7000", "params.n_outputs": "1", "params.chunk_rows": "100",
        "params.dtype": "float32", "metrics.peak_memory_bytes": 2 * 2**20,
        "metrics.predicted_memory_bytes": 2**20, "metrics.epoch_time_s": 1.5,
        "metrics.predicted_flops": math.nan, "metrics.time_jacobian_s": 1.0,
        "metrics.time_system_s": 0.25, "metrics.time_solve_s": 0.25,
    }])
    md = text_of(limits_section(runs))
    assert "| cache† | cuda | float32 | 7,000 | 7,000 | 100 | 2 | 1 | 2 | 1.5 |" in md
    assert md.count("within") >= 1


def test_dynamics_table_labels_total_time_and_the_returned_weights_val_loss():
    from lmbench.reports.dynamics import dynamics_section

    runs = lm_runs([
        {"run_id": "a", "dataset": "d", "primary_value": 5.0, "metrics.best_val_loss": 0.125,
         "params.trainer.mu_init": "1"},
        {"run_id": "b", "dataset": "e", "primary_value": 5.0, "params.trainer.mu_init": "1"},
    ])
    series = {"train_loss": pd.Series([1.0, 0.5, 0.25]), "val_loss": pd.Series([1.0, 0.2, 0.3]),
              "mu": pd.Series([1.0, 0.1, 0.01]), "epoch_time_s": pd.Series([0.0, 0.5, 0.25])}

    def load(run_ids, keys):
        return {r: {k: series[k] for k in keys if k in series} for r in run_ids}

    section = dynamics_section(runs, load)
    md = text_of(section)
    assert "total epoch time s" in md and "val loss (returned weights)" in md
    assert "| 0.125 |" in md  # best_val_loss, not the last epoch's 0.3
    assert "| 0.3‡ |" in md  # no best_val_loss logged: the last epoch's, marked
    assert "| 0.75 |" in md  # total epoch time: 0.5 + 0.25
    axes = section.figures[0].figure.axes
    assert axes[0].get_ylabel().startswith("MSE (standardised target)")
    assert axes[2].get_ylabel().startswith("damping μ")


def test_sensitivity_heatmap_labels_and_log_colours_across_decades():
    runs = lm_runs([
        {"run_id": "a", "dataset": "d", "params.trainer.mu_init": "1", "primary_value": 5.0,
         "metrics.best_val_loss": 0.001},
        {"run_id": "b", "dataset": "d", "params.trainer.mu_init": "10", "primary_value": 6.0,
         "metrics.best_val_loss": 1.0},
    ])
    section = sensitivity_section(runs, histories_from({}))
    assert "| d | val MSE (standardised target) | 1 | **0.001 (1)** |" in text_of(section)
    figure = section.figures[0].figure
    heatmap, colorbar = figure.axes[0], figure.axes[-1]
    assert heatmap.get_xlabel() == "damping factor (demping_coef)"
    assert heatmap.get_ylabel() == "initial damping μ_init"
    assert colorbar.get_ylabel().replace("\n", " ") == (
        "validation MSE (standardised target), log scale")
    assert heatmap.images[0].norm.__class__.__name__ == "LogNorm"


def test_sensitivity_names_the_loss_the_runs_minimised():
    runs = lm_runs([
        {"run_id": "a", "dataset": "d", "task": "multiclass", "tags.loss": "cross_entropy",
         "params.trainer.mu_init": "1", "primary_value": 0.9, "metrics.best_val_loss": 0.5},
    ])
    section = sensitivity_section(runs, histories_from({}))
    md = text_of(section)
    assert "| d | val cross-entropy (nats) | 1 | **0.5 (1)** |" in md
    assert "MSE on the validation split" not in md
    colorbar = section.figures[0].figure.axes[-1]
    assert colorbar.get_ylabel().replace("\n", " ") == "validation cross-entropy (nats)"


def test_sensitivity_does_not_average_different_losses():
    runs = lm_runs([
        {"run_id": "a", "dataset": "d", "tags.loss": "mse", "params.trainer.mu_init": "1",
         "primary_value": 5.0, "metrics.best_val_loss": 0.5},
        {"run_id": "b", "dataset": "d", "tags.loss": "huber", "params.trainer.mu_init": "1",
         "primary_value": 7.0, "metrics.best_val_loss": 0.1},
    ])
    md = text_of(sensitivity_section(runs, histories_from({})))
    assert "| d | test rmse | 1 | **6 (2)** |" in md


def test_sensitivity_colorbar_labels_stay_beside_their_own_panel():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    runs = lm_runs([
        {"run_id": f"{dataset}{mu}{damping}", "dataset": dataset, "primary_value": 1.0,
         "params.trainer.mu_init": mu, "params.trainer.demping_coef": damping,
         "metrics.best_val_loss": float(mu) * float(damping) * scale}
        for dataset, scale in (("a", 1.0), ("b", 1e-3), ("c", 2.0), ("d", 1.0))
        for mu in ("1", "10") for damping in ("3", "10")
    ])
    for block in sensitivity_section(runs, histories_from({})).figures:
        figure = block.figure
        renderer = FigureCanvasAgg(figure).get_renderer()
        figure.draw(renderer)
        page = figure.bbox
        colorbars = [ax for ax in figure.axes if hasattr(ax, "_colorbar")]
        assert colorbars
        for colorbar in colorbars:
            label = colorbar.yaxis.label.get_window_extent(renderer)
            assert page.y0 <= label.y0 and label.y1 <= page.y1, block.stem
            assert page.x0 <= label.x0 and label.x1 <= page.x1, block.stem
            heatmap = colorbar._colorbar.mappable.axes
            for other in figure.axes:
                if other in (colorbar, heatmap) or not other.get_visible():
                    continue
                assert not label.overlaps(other.get_tightbbox(renderer)), (
                    block.stem, colorbar.get_ylabel())


def test_tuned_methods_are_described_as_tuned_by_optuna_trials_not_a_grid_search():
    from lmbench.reports.dynamics import dynamics_section

    runs = lm_runs([
        {"run_id": "a", "dataset": "d", "primary_value": 5.0, "params.trainer.mu_init": "1"},
        {"run_id": "b", "dataset": "d", "primary_value": 4.0, "method": "adam"},
    ])
    series = {"train_loss": pd.Series([1.0, 0.5]), "val_loss": pd.Series([1.0, 0.6]),
              "mu": pd.Series([1.0, 0.1]), "epoch_time_s": pd.Series([0.0, 0.5])}

    def load(run_ids, keys):
        return {r: {k: series[k] for k in keys if k in series} for r in run_ids}

    for section in (comparison_section(runs), dynamics_section(runs, load)):
        md = text_of(section) + "\n".join(table.caption for table in section.tables)
        assert "grid" not in md.lower() and "Optuna trial" in md


def test_cost_lists_a_size_per_hidden_width_instead_of_their_mean():
    runs = lm_runs([
        {"run_id": f"{width}{seed}", "dataset": "d", "primary_value": 1.0, "seed": seed,
         "params.model.hidden": width, "n_parameters": size}
        for width, size in (("[8]", 266.0), ("[16]", 530.0)) for seed in (0, 1)
    ] + [{"run_id": "a0", "dataset": "d", "method": "adam", "primary_value": 1.0,
          "params.model.hidden": math.nan, "n_parameters": 2026.0}])
    section = comparison_section(runs)
    cost = next(t for t in section.tables if t.name == "comparison_cost")
    assert "| d | 266 (8) / 530 (16) | 1 | 2,026 | 1 |" in cost.to_markdown()
    assert "398" not in cost.to_markdown() and any("widths" in n for n in cost.notes)


def test_a_one_method_comparison_has_no_rank_table_and_says_why():
    runs = lm_runs([{"run_id": "a", "dataset": "d1", "primary_value": 1.0},
                    {"run_id": "b", "dataset": "d2", "primary_value": 2.0}])
    section = comparison_section(runs)
    assert [t.name for t in section.tables] == ["comparison_scores", "comparison_cost"]
    md = text_of(section)
    assert "with one method (`lm`) in these experiments there is nothing to rank or pair" in md
    assert "Wilcoxon" not in md and "Win/tie/loss needs" not in md


def test_lm_vs_adam_counts_the_epochs_adam_ran_at_its_cap():
    from lmbench.reports.dynamics import dynamics_section

    runs = lm_runs([
        {"run_id": "l", "dataset": "d", "primary_value": 5.0},
        {"run_id": "a", "dataset": "d", "primary_value": 5.0, "method": "adam"},
        {"run_id": "r", "dataset": "e", "primary_value": 5.0},
        {"run_id": "b", "dataset": "e", "primary_value": 5.0, "method": "adam",
         "metrics.epochs": 37.0},  # the run's own record wins over the history's length
    ])
    lm = {"train_loss": pd.Series([1.0, 0.5, 0.25]), "epoch_time_s": pd.Series([0.0, 0.5, 0.25])}
    capped = {"train_loss": pd.Series(np.linspace(1.0, 0.1, 500)),  # steps 0..499: epochs 1..500
              "epoch_time_s": pd.Series(np.full(500, 0.01))}
    series = {"l": lm, "r": lm, "a": capped, "b": capped}

    def load(run_ids, keys):
        return {r: {k: series[r][k] for k in keys if k in series[r]} for r in run_ids}

    md = text_of(dynamics_section(runs, load))
    table = md[md.index("| dataset | method |"):]
    assert "| d | adam | a | 500 |" in table  # not 499: Adam's step 0 is its first epoch
    assert "| d | lm | l | 2 |" in table  # LM's step 0 is the state before the first epoch
    assert "| e | adam | b | 37 |" in table
