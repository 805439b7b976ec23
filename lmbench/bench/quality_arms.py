"""The trained networks of the quality-at-scale measurement: LM (matrix-free or Cholesky) and
Adam on the same MLP, each scored the same way and metered the same way.

Every arm starts from the same seeded weights for its widths (``torch.manual_seed`` right before
``build_mlp``), trains on the train split, keeps the weights of its best validation loss, and is
scored on the whole train and test splits by the mean cross-entropy of its logits and the test
accuracy. Memory is the process's RSS sampled every 20 ms (``lmbench.bench.memory.PeakMemory``),
reported above its value when the arm started (freed heap is handed back first, so an earlier
arm's leftovers do not hide this arm's growth).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmbench.baselines.adam import AdamSettings, TensorSplit, train_with_early_stopping
from lmbench.baselines.common import Deadline
from lmbench.bench.memory import PeakMemory
from lmbench.core import get_weights_count
from lmbench.core.callbacks import EpochInfo
from lmbench.core.settings import TrainerSettings
from lmbench.data.prepare import PreparedDataset
from lmbench.models import build_mlp, head_for_task

#: Interval of the RSS sampler (s): long enough to cost nothing, short against an LM epoch.
RSS_INTERVAL_S = 0.02


@dataclass(frozen=True)
class ArmResult:
    """What one trained network scored, how long it took and how much memory it grew by."""

    arm: str
    method: str
    engine: str
    hidden: tuple[int, ...]
    n_params: int
    epochs: int
    wall_time_s: float
    cpu_time_s: float
    final_train_loss: float
    val_loss: float
    test_accuracy: float
    test_cross_entropy: float
    peak_rss_bytes: int
    stop_reason: str
    settings: dict[str, Any] = field(default_factory=dict)


class EpochBudget:
    """LM callback: stop once the next epoch, as long as the last one, would end past
    ``budget_s`` seconds after construction (so a run ends near its budget, not one epoch
    beyond it)."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.started = time.perf_counter()

    def on_epoch_end(self, info: EpochInfo) -> bool:
        if info.epoch == 0:
            return False
        elapsed = time.perf_counter() - self.started
        return elapsed + info.history.epoch_time[-1] > self.budget_s


def family_hidden(width: int, shape: Sequence[int]) -> tuple[int, ...]:
    """``shape`` scaled so its first layer has ``width`` units (the same width ratios)."""
    return tuple(max(1, round(width * w / shape[0])) for w in shape)


def largest_in_family(
    shape: Sequence[int], n_inputs: int, n_outputs: int, max_params: int, step: int = 4
) -> tuple[int, ...]:
    """The widest network of ``shape``'s family (first width a multiple of ``step``) with at
    most ``max_params`` weights; ``ValueError`` when not even the narrowest one fits."""
    best: tuple[int, ...] | None = None
    width = step
    while True:
        hidden = family_hidden(width, shape)
        if mlp_weights(n_inputs, n_outputs, hidden) > max_params:
            break
        best, width = hidden, width + step
    if best is None:
        raise ValueError(f"no network of the family {tuple(shape)} has <= {max_params} weights; "
                         "raise --small-max-params")
    return best


def mlp_weights(n_inputs: int, n_outputs: int, hidden: Sequence[int]) -> int:
    """Weights and biases of the MLP ``n_inputs -> hidden -> n_outputs``."""
    widths = [n_inputs, *hidden, n_outputs]
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))


def seeded_mlp(data: PreparedDataset, hidden: Sequence[int], activation: str, head: str,
               seed: int) -> nn.Sequential:
    """The MLP with the seed's initial weights (the same for every head)."""
    torch.manual_seed(seed)
    return build_mlp(data.n_features, data.n_outputs, hidden=tuple(hidden),
                     activation=activation, head=head)


def logits_of(model: nn.Module) -> nn.Module:
    """The part of ``model`` that returns logits (a trailing softmax is skipped)."""
    if isinstance(model, nn.Sequential) and isinstance(model[-1], nn.Softmax):
        return model[:-1]
    return model


def scores(model: nn.Module, data: PreparedDataset) -> dict[str, float]:
    """Mean cross-entropy on train, val and test and the test accuracy, in eval mode."""
    net = logits_of(model).eval()
    out: dict[str, float] = {}
    with torch.no_grad():
        for split in ("train", "val", "test"):
            x, y = data.split(split)
            logits = net(torch.as_tensor(x))
            labels = torch.as_tensor(np.argmax(y, axis=1))
            out[f"{split}_cross_entropy"] = float(F.cross_entropy(logits, labels))
            if split == "test":
                out["test_accuracy"] = float((logits.argmax(dim=1) == labels).float().mean())
    return out


def release_free_heap() -> None:
    """Collect garbage and hand freed heap back to the system (glibc ``malloc_trim``)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to hand back
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


Metered = tuple[nn.Module, int, str, float, float, int]


def metered(train: Callable[[], tuple[nn.Module, int, str]]) -> Metered:
    """Run ``train`` (returning model, epochs, stop reason); add its wall time, the process's
    CPU time meanwhile (below the wall time when other processes share the core) and RSS
    growth."""
    release_free_heap()
    with PeakMemory(RSS_INTERVAL_S) as meter:
        start, cpu_start = time.perf_counter(), time.process_time()
        model, epochs, reason = train()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return model, epochs, reason, wall, cpu, max(meter.peak - meter.start, 0)


def lm_arm(
    arm: str, data: PreparedDataset, hidden: Sequence[int], settings: TrainerSettings, *,
    activation: str, seed: int, budget_s: float | None,
) -> ArmResult:
    """LM with the cross-entropy loss, best-validation weights kept (``patience`` = the epoch
    cap, so it never stops training early), stopped by ``EpochBudget`` when given."""
    settings = settings.with_(loss="cross_entropy", min_error=None, patience=settings.max_epochs)
    model = seeded_mlp(data, hidden, activation, head_for_task(data.task, settings.loss), seed)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    val = (torch.as_tensor(data.x_val), torch.as_tensor(data.y_val))

    def train() -> tuple[nn.Module, int, str]:
        callbacks = [EpochBudget(budget_s)] if budget_s is not None else None
        history = settings.fit(model, x, y, val=val, callbacks=callbacks)
        return model, history.epochs, history.stop_reason

    return _result(arm, "lm", settings.engine, hidden, data, metered(train),
                   {k: v for k, v in settings.as_dict().items() if v is not None})


def adam_arm(
    arm: str, data: PreparedDataset, hidden: Sequence[int], *, activation: str, seed: int,
    budget_s: float, lr: float, batch_size: int,
) -> ArmResult:
    """Mini-batch Adam on the cross-entropy for ``budget_s`` seconds (checked after each
    epoch), best-validation weights restored (``lmbench.baselines.adam``'s loop)."""
    settings = AdamSettings(hidden=tuple(hidden), activation=activation, lr=lr,
                            batch_size=batch_size, max_epochs=10**9, patience=10**9,
                            loss="cross_entropy", n_threads=torch.get_num_threads())
    model = seeded_mlp(data, hidden, activation, "softmax", seed)

    def split(name: str) -> TensorSplit:
        x, y = data.split(name)
        return TensorSplit(torch.as_tensor(x), torch.as_tensor(y),
                           torch.as_tensor(np.argmax(y, axis=1)))

    train_split, val_split = split("train"), split("val")

    def train() -> tuple[nn.Module, int, str]:
        deadline = Deadline(budget_s)
        history, _ = train_with_early_stopping(
            model, train_split, val_split, settings,
            generator=torch.Generator().manual_seed(seed), deadline=deadline,
        )
        return model, len(history["train_loss"]), "time_budget" if deadline.hit else "stopped"

    return _result(arm, "adam", "", hidden, data, metered(train),
                   {"lr": lr, "batch_size": batch_size, "budget_s": budget_s})


def _result(arm: str, method: str, engine: str, hidden: Sequence[int], data: PreparedDataset,
            run: Metered, settings: dict[str, Any]) -> ArmResult:
    model, epochs, reason, wall, cpu, rss = run
    scored = scores(model, data)
    return ArmResult(
        arm=arm, method=method, engine=engine, hidden=tuple(hidden),
        n_params=get_weights_count(model), epochs=epochs, wall_time_s=wall, cpu_time_s=cpu,
        final_train_loss=scored["train_cross_entropy"], val_loss=scored["val_cross_entropy"],
        test_accuracy=scored["test_accuracy"], test_cross_entropy=scored["test_cross_entropy"],
        peak_rss_bytes=rss, stop_reason=reason, settings=settings,
    )


def warm_up(data: PreparedDataset) -> None:
    """One tiny fit of each kind before any arm is metered, so that one-time costs (lazy
    imports, torch.func's first transforms, allocator pools) are charged to no arm."""
    few = replace(data, x_train=data.x_train[:8], y_train=data.y_train[:8],
                  x_val=data.x_val[:8], y_val=data.y_val[:8])
    for engine in ("matrix_free", "in_memory"):
        lm_arm("warm_up", few, (4,), TrainerSettings(engine=engine, max_epochs=1, cg_max_iter=2),
               activation="tanh", seed=0, budget_s=None)
    adam_arm("warm_up", few, (4,), activation="tanh", seed=0, budget_s=0.0, lr=1e-3,
             batch_size=8)
