"""The training report reads history files without running code and leaves matplotlib alone."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from lmbench.plotting import UnsafePickleError, load_seed_history, plot_train_report

SEED = {"loss": [1.0, 0.5, 0.25], "val": [1.1, 0.6, 0.3], "mu": [10.0, 1.0, 0.1],
        "time": [0.0, 0.01, 0.02]}


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_pickle_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "history.pkl"
    path.write_bytes(pickle.dumps({**SEED, "loss": _Exploit(marker)}))
    with pytest.raises(UnsafePickleError, match=r"refused global (posix|nt|os)\.system"):
        plot_train_report(path)
    assert not marker.exists()


def test_a_pickle_naming_a_builtin_callable_is_refused(tmp_path):
    path = tmp_path / "history.pkl"
    path.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval"):
        load_seed_history(path)


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_seed_pickles_with_floats_and_numpy_values_plot(tmp_path, protocol):
    payload = {"loss": [np.float64(v) for v in SEED["loss"]],
               "val": np.asarray(SEED["val"], dtype=np.float32),
               "mu": list(SEED["mu"]), "time": tuple(SEED["time"])}
    path = tmp_path / "history.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    out = tmp_path / "report.png"
    fig = plot_train_report(path, out=out)
    assert out.stat().st_size > 10_000 and len(fig.axes) == 4
    assert load_seed_history(path)["val"] == pytest.approx(SEED["val"], rel=1e-6)


def test_a_json_history_plots(tmp_path):
    path = tmp_path / "history.json"
    path.write_text(json.dumps(SEED))
    out = tmp_path / "report.png"
    plot_train_report(path, out=out)
    assert out.stat().st_size > 10_000
    assert load_seed_history(path) == SEED


def test_the_report_figure_is_not_held_by_pyplot(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    for _ in range(3):
        plot_train_report(SEED, out=tmp_path / "r.png")
    assert plt.get_fignums() == before


def test_importing_plotting_keeps_the_users_backend():
    code = ("import sys, matplotlib; matplotlib.use('svg'); before = matplotlib.get_backend(); "
            "import lmbench.plotting; import lmbench; lmbench.plot_train_report; "
            "after = matplotlib.get_backend(); "
            "print(before, after, 'matplotlib.pyplot' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": ""}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg", "svg", "False"]


def test_report_axes_have_few_plain_text_ticks():
    history = {"loss": [10.0 ** -k for k in range(12)],
               "val": [2.0 * 10.0 ** -k for k in range(12)],
               "mu": [0.5 + 0.01 * k for k in range(12)], "time": [0.01] * 12}
    fig = plot_train_report(history)
    assert fig.get_layout_engine() is None
    for ax in fig.axes:
        ticks = ax.get_yticks()
        assert 1 <= len(ticks) <= 6 and ax.get_yaxis().get_minor_locator().tick_values(1, 2) == []
        labels = [ax.yaxis.get_major_formatter()(t) for t in ticks]
        assert not any("$" in label for label in labels)


def test_report_tick_labels_never_repeat_within_a_decade():
    # a loss that moves from 0.23 to 0.21: ticks 0.21, 0.215, ... must not read 0.22 twice
    history = {"loss": [0.23 - 0.002 * k for k in range(11)],
               "val": [0.229 - 0.002 * k for k in range(11)],
               "mu": [1.0 + 0.001 * k for k in range(11)], "time": [0.01] * 11}
    fig = plot_train_report(history)
    for ax in fig.axes:
        ticks = ax.get_yticks()
        labels = [ax.yaxis.get_major_formatter()(t) for t in ticks]
        assert len(ticks) >= 2 and len(set(labels)) == len(labels), labels
