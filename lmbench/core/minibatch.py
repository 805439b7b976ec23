"""Mini-batch Levenberg-Marquardt: one damped LM step per batch of rows, the damping carried on.

The full-batch trainer (``lmbench.core.trainer``) takes one exact LM step per epoch on all rows.
``MiniBatchLevenbergMarquardt`` takes one LM step per batch, as torch-levenberg-marquardt does:
assemble the batch's Gauss-Newton system at the current weights, then up to ``inner_steps``
damping trials judged on that batch's objective; the damping state (mu, nu) is carried from
batch to batch and from epoch to epoch. One epoch is one pass over the batches:

* in-memory rows (``fit``): a seeded shuffle of the rows cut into batches of ``batch_size``
  (the last one may be smaller); the shuffle of epoch e depends only on (``seed``, e), so a
  resumed run sees the batches an uninterrupted one would. Rows keep their original order
  inside a batch (the system is a sum over rows, so order does not change the step, only the
  rounding); with ``batch_size`` >= the rows there is one batch of all rows and the run equals
  the full-batch trainer's exactly.
* a loader (``fit_loader``): each batch the loader yields is one step (shuffle it with the
  loader's own sampler; every pass must yield the same rows, as in full-batch LM, since the
  epoch's loss is a full pass: ``LoaderSource``); under data parallelism every rank must
  yield as many batches.

After the epoch's last batch one full pass over the training rows gives the recorded ``loss``
and ``objective`` (the exact training loss of the weights the epoch ends with, not a mean of
batch losses), then validation, callbacks, checkpoints and the stopping rules run as in the
full-batch loop. A weight decay lambda is shared out over the batches: batch b's step
minimises E_b + (n_b / N) (lambda / 2) ||w||^2 (n_b of the N rows), so one epoch's objectives
add up to the full-batch F. Per-epoch history: ``trials`` sums the trials of every batch,
``accepted`` is whether any batch step was kept, ``gradient_norm`` is the largest batch
||J_b^T r_b||, ``gain_ratio`` the last kept step's, ``mu`` the damping at the epoch's end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from lmbench.core.checks import check_finite_objective
from lmbench.core.distributed import LocalReducer
from lmbench.core.errors import InvalidInputError
from lmbench.core.outcomes import EpochTally
from lmbench.core.sources import RowSource, TensorSource
from lmbench.core.timing import PhaseTimer
from lmbench.core.trainer import FitState, LevenbergMarquardt


def check_batch_size(batch_size: Any, name: str = "batch_size") -> None:
    """``batch_size`` must be a whole number >= 1 (rows per LM step) or None (full batch)."""
    if batch_size is None:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(
            f"{name} must be a whole number of rows per LM step (or None for one full-batch "
            f"step per epoch), got {batch_size!r}"
        )
    if batch_size < 1:
        raise ValueError(
            f"{name} must be >= 1 row per LM step (or None for one full-batch step per "
            f"epoch), got {batch_size}"
        )


def epoch_order(n_rows: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled row order of ``epoch``: a permutation seeded by (seed, epoch) only."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2)
    generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.randperm(n_rows, generator=generator)


def batch_rows(n_rows: int, batch_size: int, seed: int, epoch: int, shuffle: bool = True
               ) -> list[torch.Tensor]:
    """The row indices of epoch ``epoch``'s batches, in the order the steps take them: the
    seeded order (or 0..n-1 unshuffled) cut into ``batch_size`` slices, each sorted."""
    order = epoch_order(n_rows, seed, epoch) if shuffle else torch.arange(n_rows)
    return [order[start : start + batch_size].sort().values
            for start in range(0, n_rows, batch_size)]


class MiniBatchLevenbergMarquardt(LevenbergMarquardt):
    """Levenberg-Marquardt with one LM step per mini-batch (see the module docstring).

    Args:
        model: the network; trained in place.
        batch_size: rows per LM step for in-memory data; None: one step on all rows per
            epoch (the full-batch trainer's run). Must be None for ``fit_loader``, where the
            loader's batches are the steps.
        shuffle: shuffle the in-memory rows every epoch (seeded); False keeps their order.
        seed: the shuffle's seed (epoch e's order depends only on seed and e).
        options: every other ``LevenbergMarquardt`` argument (damping, stopping, inner_steps,
            form, callbacks, checkpoint_dir, reducer, ...); the ``cg`` solver is not offered.
    """

    #: A batch's step sees one batch: ftol, xtol and gtol would stop on one batch's progress.
    tests_convergence: ClassVar[bool] = False

    def __init__(
        self,
        model: nn.Module,
        *,
        batch_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        **options: Any,
    ) -> None:
        check_batch_size(batch_size)
        engine = options.get("engine")
        solver = engine.solver if engine is not None else options.get("solver", "cholesky")
        if solver != "cholesky":
            raise ValueError(
                "mini-batch LM solves each batch's system by Cholesky: the cache engine "
                "(solver='cg') is not offered with it; use the in_memory or streaming engine"
            )
        if options.get("acceleration") is not None:
            options["acceleration"].check(None, mini_batch=True)
        super().__init__(model, **options)
        self.regularization.check_full_batch(mini_batch=True)
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.seed = int(seed)

    # ------------------------------------------------------------------ the epoch
    def _loop(self, run: FitState) -> None:
        if self.batch_size is not None and not isinstance(run.source, TensorSource):
            raise ValueError(
                f"batch_size={self.batch_size} applies to in-memory rows; a loader's own "
                "batches are the LM steps: set the loader's batch_size instead and leave "
                "batch_size=None"
            )
        super()._loop(run)

    def _run_epoch(self, run: FitState, theta: torch.Tensor, objective: float, loss: float,
                   timer: PhaseTimer, tally: EpochTally) -> tuple[torch.Tensor, float, float]:
        """One LM step per batch, then one pass over all rows for the epoch's E and loss."""
        if isinstance(run.source, TensorSource) and self.batch_size is None:
            # one batch of all rows: the full-batch epoch itself
            return super()._run_epoch(run, theta, objective, loss, timer, tally)
        for batch in self._synchronised(self._batches(run)):
            with timer("time_evaluate"):
                batch_objective, _, batch_rows = self._evaluate_rows(run, batch, theta)
            share = batch_rows / run.train_rows  # the batch's part of F's weight penalty
            system = self._assemble(replace(run, source=batch), theta, timer, batch_objective,
                                    share)
            step = self._damped_step(run, system, batch, theta, batch_objective, timer)
            tally.add(system, step)
            theta = step.theta
            if self.stopping.mu_exhausted(run.damping.mu):
                break  # no damped step can make progress: the stop rule ends the run
        with timer("time_evaluate"):
            objective, loss = self._evaluate(run, run.source, theta)
        check_finite_objective(objective, f"after epoch {run.epoch}")
        return theta, objective, loss

    # ------------------------------------------------------------------ batches
    def _batches(self, run: FitState) -> Iterator[RowSource]:
        """The epoch's batches: shuffled slices of in-memory rows, or the loader's batches."""
        chunk_rows = self._chunk_rows(run.n_outputs)
        source = run.source
        if not isinstance(source, TensorSource):
            for x, y in source.chunks():
                yield TensorSource(x, y, chunk_rows)
            return
        n_rows = source.x.shape[0]
        assert self.batch_size is not None  # None on tensors runs the full-batch loop
        if self.batch_size >= n_rows:
            yield source
            return
        for rows in batch_rows(n_rows, self.batch_size, self.seed, run.epoch, self.shuffle):
            rows = rows.to(source.x.device)
            yield TensorSource(source.x[rows], source.y[rows], source.chunk_rows)

    def _synchronised(self, batches: Iterator[RowSource]) -> Iterator[RowSource]:
        """The batches, checked under data parallelism to come in equal numbers on every rank
        (one small all-reduce per step; otherwise a rank would wait forever)."""
        if isinstance(self.reducer, LocalReducer):
            yield from batches
            return
        while True:
            batch = next(batches, None)
            flags = torch.tensor([float(batch is not None), 1.0], dtype=torch.float64,
                                 device=self.flat.device)
            have, ranks = (float(v) for v in self.reducer.sum_(flags))
            if have == 0:
                return
            if have < ranks:
                raise InvalidInputError(
                    f"mini-batch LM under data parallelism: {int(ranks - have)} of {int(ranks)} "
                    "ranks ran out of batches first. Every rank must yield the same number of "
                    "batches per epoch (e.g. equal shards, or DistributedSampler with "
                    "drop_last=True)."
                )
            assert batch is not None
            yield batch
