"""A tqdm bar per LM run (epoch, loss, validation loss, mu), as an engine callback."""

from __future__ import annotations

import math

from tqdm.auto import tqdm

from lmbench.core import EpochInfo


class EpochProgress:
    """Advances one step per epoch and shows the latest loss, validation loss and mu."""

    def __init__(self, total_epochs: int, description: str) -> None:
        self.bar = tqdm(total=total_epochs, desc=description, unit="epoch", leave=False)

    def on_epoch_end(self, info: EpochInfo) -> None:
        history = info.history
        postfix = {"loss": f"{history.loss[-1]:.4g}", "mu": f"{history.mu[-1]:.3g}"}
        if not math.isnan(history.val_loss[-1]):
            postfix["val"] = f"{history.val_loss[-1]:.4g}"
        if info.epoch > 0:
            self.bar.update(1)
        self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        self.bar.close()
