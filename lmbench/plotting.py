"""The seed's training report: loss and validation loss per epoch and per cumulative time,
and mu on a log scale per epoch and per time. Works headless (Agg backend)."""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lmbench.core.history import TrainingHistory  # noqa: E402

HistoryLike = str | Path | TrainingHistory | Mapping[str, Any] | Sequence[Sequence[float]]


def load_seed_history(source: HistoryLike) -> dict[str, list[float]]:
    """{"loss", "val", "mu", "time"} from a seed pickle path, a dict, a history or a 4-tuple."""
    if isinstance(source, (str, Path)):
        with Path(source).open("rb") as fh:
            data = pickle.load(fh)
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


def plot_train_report(source: HistoryLike, out: str | Path | None = None) -> Figure:
    """Draw the seed's four panels; save a PNG to ``out`` when given. Returns the figure."""
    data = load_seed_history(source)
    epochs = list(range(len(data["loss"])))
    elapsed = list(accumulate(data["time"]))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    for ax, x_values, x_label in (
        (axes[0, 0], epochs, "epoch"),
        (axes[0, 1], elapsed, "time, s"),
    ):
        ax.plot(x_values, data["loss"], label="train loss")
        if data["val"]:
            ax.plot(x_values[: len(data["val"])], data["val"], label="validation loss")
        ax.set_yscale("log")
        ax.set_xlabel(x_label)
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.3)
        ax.legend()
    for ax, x_values, x_label in (
        (axes[1, 0], epochs, "epoch"),
        (axes[1, 1], elapsed, "time, s"),
    ):
        ax.plot(x_values[: len(data["mu"])], data["mu"], color="tab:red")
        ax.set_yscale("log")
        ax.set_xlabel(x_label)
        ax.set_ylabel("mu")
        ax.grid(True, alpha=0.3)
    fig.suptitle("Levenberg-Marquardt training report")
    if out is not None:
        fig.savefig(out, dpi=110)
        plt.close(fig)
    return fig
