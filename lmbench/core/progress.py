"""A tqdm bar per epoch (loss, validation loss, mu, damping trials) for the seed functions."""

from __future__ import annotations

import math
import sys
from typing import Any

from tqdm import tqdm

from lmbench.core.callbacks import EpochInfo


def default_verbose() -> bool:
    """Progress bars on only when stderr is a terminal (not in logs, CI or notebooks' pipes)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """One bar step per LM epoch; ``close()`` when training ends."""

    def __init__(self, total_epochs: int, description: str = "LM", **tqdm_options: Any) -> None:
        self.bar = tqdm(total=total_epochs, desc=description, unit="epoch", **tqdm_options)

    def on_epoch_end(self, info: EpochInfo) -> None:
        history = info.history
        val = history.val_loss[-1] if history.val_loss else math.nan
        postfix: dict[str, Any] = {"loss": f"{history.loss[-1]:.4g}"}
        if not math.isnan(val):
            postfix["val"] = f"{val:.4g}"
        postfix["mu"] = f"{history.mu[-1]:.3g}"
        postfix["trials"] = history.trials[-1] if history.trials else 0
        self.bar.set_postfix(postfix, refresh=False)
        if info.epoch > 0:
            self.bar.update(1)
        else:
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
