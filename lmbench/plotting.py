"""The seed's training report: loss and validation loss per epoch and per cumulative time,
and mu on a log scale per epoch and per time; for Bayesian regularisation a third row shows
the effective number of parameters gamma against the P weights, and alpha and beta.

Drawn on a bare ``matplotlib.figure.Figure`` (no pyplot): importing this module leaves the
user's backend alone, the figure is never registered with pyplot (it is garbage-collected
when dropped) and saving a PNG works headless. A history file is read without running code:
JSON, or a pickle restricted to plain containers, numbers and numpy scalars/arrays.
"""

from __future__ import annotations

import io
import json
import math
import pickle
from collections.abc import Mapping, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FormatStrFormatter, MaxNLocator, NullLocator

from lmbench.core.history import TrainingHistory

HistoryLike = str | Path | TrainingHistory | Mapping[str, Any] | Sequence[Sequence[float]]

#: The only globals a history pickle may name: numpy's scalar and array reconstruction
#: (numpy 1.x ``numpy.core`` and numpy 2 ``numpy._core`` spellings) and protocol-2 bytes.
SAFE_PICKLE_GLOBALS = frozenset({
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
})


class UnsafePickleError(pickle.UnpicklingError):
    """A history pickle named a global outside ``SAFE_PICKLE_GLOBALS`` (it was not loaded)."""


class _HistoryUnpickler(pickle.Unpickler):
    """Admits builtins containers, numbers and strings (pickle opcodes, no globals) and numpy
    scalars/arrays; any other global is refused before it is imported or called."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refused global {module}.{name}: a training-history pickle may hold only dicts, "
            f"lists, tuples, strings, numbers and numpy scalars/arrays"
        )


def read_history_file(path: str | Path) -> Any:
    """The payload of a history file: JSON (``.json`` or text starting with ``{``) or a
    restricted pickle (see ``SAFE_PICKLE_GLOBALS``); no code in the file runs."""
    raw = Path(path).read_bytes()
    if Path(path).suffix.lower() == ".json" or raw.lstrip()[:1] == b"{":
        return json.loads(raw.decode("utf-8"))
    try:
        return _HistoryUnpickler(io.BytesIO(raw)).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None


def load_seed_history(source: HistoryLike) -> dict[str, list[float]]:
    """{"loss", "val", "mu", "time"} from a seed pickle or JSON path, a dict, a history or a
    4-tuple."""
    if isinstance(source, (str, Path)):
        data = read_history_file(source)
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: a training history is a dict, got {type(data).__name__}")
    elif isinstance(source, TrainingHistory):
        data = source.to_seed_dict()
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        loss, val, mu, time = source
        data = {"loss": loss, "val": val, "mu": mu, "time": time}
    missing = {"loss", "val", "mu", "time"} - set(data)
    if missing:
        raise ValueError(
            f"training report needs keys loss, val, mu, time; missing {sorted(missing)}"
        )
    return {k: [float(v) for v in data[k]] for k in ("loss", "val", "mu", "time")}


#: Figure size (inches) and the margins of its fixed 2 x 2 grid (fractions of the figure).
#: A fixed layout, not constrained/tight: the layout engines measure every tick label in
#: extra passes, which cost most of a quick-sweep job's wall time (about 0.7 s a figure).
REPORT_FIGSIZE = (9.0, 6.0)
REPORT_GRID = {"left": 0.09, "right": 0.98, "bottom": 0.08, "top": 0.91,
               "wspace": 0.22, "hspace": 0.3}
#: Resolution of the PNG written by ``plot_train_report(..., out=...)``.
REPORT_DPI = 100


def _log_ticks(values: Sequence[float], most: int = 6) -> list[float]:
    """At most ``most`` tick positions for a log axis over ``values``: every k-th decade when
    the data spans a decade or more, else "nice" linear steps inside the range."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return []
    low, high = min(positive), max(positive)
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    if last - first >= 2:
        stride = max(1, math.ceil((last - first + 1) / most))
        return [10.0**e for e in range(first, last + 1, stride)]
    return [float(v) for v in MaxNLocator(nbins=most - 1).tick_values(low, high) if v > 0]


def distinct_tick_format(ticks: Sequence[float], fewest: int = 2, most: int = 12) -> str:
    """A ``%.<n>g`` format with the fewest significant digits (at least ``fewest``) that
    writes every tick exactly, so no two ticks share a label: ticks 0.215 and 0.22 read
    ``0.215, 0.22``, not ``0.22`` twice (and 1.0025 is not rounded to 1.002)."""
    for digits in range(fewest, most + 1):
        if all(math.isclose(float(f"{t:.{digits}g}"), t, rel_tol=1e-9, abs_tol=1e-300)
               for t in ticks):
            return f"%.{digits}g"
    return f"%.{most}g"


def _log_axis(ax: Any, values: Sequence[float]) -> None:
    """Log y axis with at most six ticks labelled in plain text (``%.<n>g`` with as few digits
    as keep the labels distinct, no mathtext) and no minor ticks, at most six x ticks: tick
    labels are what drawing a figure spends its time on."""
    ticks = _log_ticks(values)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FormatStrFormatter(distinct_tick_format(ticks)))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6))


def _evidence(source: HistoryLike) -> dict[str, Any] | None:
    """gamma, alpha, beta and P of a Bayesian-regularised history (None for any other)."""
    if isinstance(source, TrainingHistory):
        data: Mapping[str, Any] = source.to_dict()
    elif isinstance(source, Mapping):
        data = source
    else:
        return None
    gamma = [float(v) for v in data.get("gamma", [])]
    if not any(math.isfinite(v) for v in gamma):
        return None
    return {"gamma": gamma, "alpha": [float(v) for v in data.get("alpha", [])],
            "beta": [float(v) for v in data.get("beta", [])],
            "n_params": int(data.get("n_params", 0))}


def _evidence_panels(axes: Any, evidence: dict[str, Any]) -> None:
    """gamma against P per epoch (left), alpha and beta per epoch on a log scale (right)."""
    left, right = axes
    epochs = list(range(len(evidence["gamma"])))
    left.plot(epochs, evidence["gamma"], color="tab:green", label="gamma (effective)")
    if evidence["n_params"]:
        left.axhline(evidence["n_params"], color="0.4", linestyle="--",
                     label=f"P = {evidence['n_params']:,} weights")
    left.set_xlabel("epoch")
    left.set_ylabel("parameters")
    left.legend(loc="upper right")
    for name, color in (("alpha", "tab:purple"), ("beta", "tab:orange")):
        right.plot(epochs[: len(evidence[name])], evidence[name], color=color, label=name)
    _log_axis(right, evidence["alpha"] + evidence["beta"])
    right.set_xlabel("epoch")
    right.legend(loc="upper right")
    for ax in axes:
        ax.grid(True, alpha=0.3)


def plot_train_report(source: HistoryLike, out: str | Path | None = None) -> Figure:
    """Draw the seed's four panels; save a PNG to ``out`` when given. Returns the figure
    (a bare ``Figure``, not tracked by pyplot: nothing to close).

    Drawn on a fixed grid (``REPORT_GRID``) with a few plain-text ticks per axis, so that
    saving it is one cheap draw (the harness writes one for every run)."""
    data = load_seed_history(source)
    evidence = _evidence(source)
    epochs = list(range(len(data["loss"])))
    elapsed = list(accumulate(data["time"]))
    rows = 2 if evidence is None else 3
    fig = Figure(figsize=(REPORT_FIGSIZE[0], REPORT_FIGSIZE[1] * rows / 2))
    axes = fig.subplots(rows, 2, gridspec_kw=REPORT_GRID)
    if evidence is not None:
        _evidence_panels(axes[2], evidence)
    for ax, x_values, x_label in (
        (axes[0, 0], epochs, "epoch"),
        (axes[0, 1], elapsed, "time, s"),
    ):
        ax.plot(x_values, data["loss"], label="train loss")
        if data["val"]:
            ax.plot(x_values[: len(data["val"])], data["val"], label="validation loss")
        _log_axis(ax, data["loss"] + data["val"])
        ax.set_xlabel(x_label)
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right")
    for ax, x_values, x_label in (
        (axes[1, 0], epochs, "epoch"),
        (axes[1, 1], elapsed, "time, s"),
    ):
        ax.plot(x_values[: len(data["mu"])], data["mu"], color="tab:red")
        _log_axis(ax, data["mu"])
        ax.set_xlabel(x_label)
        ax.set_ylabel("mu")
        ax.grid(True, alpha=0.3)
    fig.suptitle("Levenberg-Marquardt training report")
    if out is not None:
        fig.savefig(out, dpi=REPORT_DPI)
    return fig
