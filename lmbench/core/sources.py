"""Where residual rows come from: tensors in memory, or a DataLoader streamed chunk by chunk.

A source yields (x_chunk, y_chunk) on the training device, with y_chunk shaped (m, O) to match
the flattened model outputs. The trainer never asks a source for more than one chunk at a time,
so in-memory and streaming training share one loop.

Full-batch LM walks a loader many times per epoch (the system, then each damping trial's loss),
and a trial is judged on the rows its system was built from only if every pass yields the same
rows. ``LoaderSource`` therefore fingerprints each complete pass while it reads it
(``RowsFingerprint``: the row count and float64 sums of x, x^2, y and y^2, which do not depend
on the order of the rows) and refuses a pass that differs from the first: a shuffling loader is
fine, a sampler with replacement or a loader that yields fewer rows each pass is not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from lmbench.core.checks import forward_error
from lmbench.core.errors import InvalidInputError
from lmbench.core.fingerprint import SUM_NAMES, RowsFingerprint, fingerprint_dtype, row_sums


class RowSource(Protocol):
    """An iterable of training chunks that can be walked many times per epoch."""

    n_samples: int | None

    def chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (x, y) chunks on the training device; y is 2-D (rows, outputs)."""
        ...

    def fingerprint(self) -> RowsFingerprint:
        """What identifies the source's rows whatever their order (``RowsFingerprint``)."""
        ...


def as_tensor(value: Any, name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Tensor on ``device`` in ``dtype``, from a tensor or array; clear error otherwise."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
    elif isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        # torch cannot wrap read-only memory (e.g. a memory-mapped .npy) without a warning
        tensor = torch.from_numpy(array if array.flags.writeable else array.copy())
    else:
        try:
            tensor = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}"
            ) from exc
    if not (tensor.is_floating_point() or tensor.dtype in (torch.int32, torch.int64, torch.bool)):
        raise InvalidInputError(f"{name} has non-numeric dtype {tensor.dtype}")
    return tensor.to(device=device, dtype=dtype)


def check_finite(tensor: torch.Tensor, name: str) -> None:
    """Raise naming how many values of ``tensor`` are NaN or infinite, and the first row."""
    bad = ~torch.isfinite(tensor)
    if bool(bad.any()):
        rows = bad.reshape(bad.shape[0], -1).any(dim=1).nonzero().flatten()
        raise InvalidInputError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or Inf) in "
            f"{rows.numel()} row(s), first at row {int(rows[0])}. Impute or drop those rows "
            "before training."
        )


#: What a batch of a training or validation loader must be.
PAIRS_HINT = "build the loader over TensorDataset(x, y) or a Dataset returning (x, y)"


def check_pair(batch: Any, name: str) -> None:
    """A loader's batch must be an (x, y) pair: a missing target or a third element (sample
    weights, ids) is refused rather than silently ignored."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return
    if isinstance(batch, (tuple, list)) and len(batch) > 2:
        raise InvalidInputError(
            f"{name} is a {type(batch).__name__} of {len(batch)} items, but LM reads (x, y) "
            "pairs: the item(s) after y (e.g. sample weights) would be ignored, and LM has no "
            f"sample weights. Yield (x, y) only: {PAIRS_HINT}."
        )
    got = (f"a {type(batch).__name__} of {len(batch)} item(s)"
           if isinstance(batch, (tuple, list)) else f"a {type(batch).__name__}")
    raise InvalidInputError(f"{name} must be an (x, y) pair, but it is {got}: {PAIRS_HINT}.")


def match_targets(y: torch.Tensor, n_outputs: int, name: str = "y") -> torch.Tensor:
    """y reshaped to (rows, n_outputs); a 1-D y is accepted for a single-output model."""
    if y.dim() == 1 and n_outputs == 1:
        return y.unsqueeze(1)
    flat = y.reshape(y.shape[0], -1) if y.dim() > 0 else y
    if y.dim() == 0 or flat.shape[1] != n_outputs:
        raise InvalidInputError(
            f"{name} has shape {tuple(y.shape)} but the model produces {n_outputs} output(s) per "
            f"sample; {name} must be (n_samples, {n_outputs}) (one-hot for classification, "
            "as the model's output layer)."
        )
    return flat


def check_target_shape(y: torch.Tensor, sample_shape: tuple[int, ...] | None, name: str) -> None:
    """Targets with as many values per sample as the model's outputs must also have their
    shape: a (N, 6) y for (N, 2, 3) outputs is refused, not reshaped, since a target would meet
    another output than its own. The one broadcast allowed: one value per sample ((N,) or
    (N, 1)) for a model with one output per sample. Other sizes are the loss's to read
    (``match_targets``; class indices for cross-entropy)."""
    if sample_shape is None or y.dim() == 0:
        return
    per_sample = math.prod(y.shape[1:])
    if per_sample == math.prod(sample_shape) != 1 and tuple(y.shape[1:]) != tuple(sample_shape):
        raise InvalidInputError(
            f"{name} has shape {tuple(y.shape)} but the model's output for one sample has "
            f"shape {tuple(sample_shape)}: {name} must be (n_samples, "
            f"{', '.join(map(str, sample_shape))}), one target per output in the same layout "
            "(targets are not reshaped to the outputs). Reshape y, or the model's output."
        )


#: Shapes a target batch for the loss: (y, n_outputs, name for errors) -> (rows, O).
TargetFn = Callable[[torch.Tensor, int, str], torch.Tensor]


class TensorSource:
    """Rows held in memory, served in chunks of ``chunk_rows`` samples (all at once if None)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, chunk_rows: int | None = None,
                 sample_shape: tuple[int, ...] | None = None) -> None:
        if x.shape[0] != y.shape[0]:
            raise InvalidInputError(
                f"x has {x.shape[0]} samples but y has {y.shape[0]}; they must have the same "
                "first dimension."
            )
        self.x = x
        self.y = y
        self.n_samples: int | None = x.shape[0]
        self.chunk_rows = chunk_rows
        self.sample_shape = sample_shape  # the model's output shape per sample, when known
        self._fingerprint: RowsFingerprint | None = None

    def chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        step = self.chunk_rows or self.x.shape[0]
        for start in range(0, self.x.shape[0], step):
            yield self.x[start : start + step], self.y[start : start + step]

    def fingerprint(self) -> RowsFingerprint:
        """The rows' ``RowsFingerprint`` (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = RowsFingerprint.of(self.x, self.y)
        return self._fingerprint


class LoaderSource:
    """Rows streamed from an iterable of (x, y) batches, e.g. a DataLoader.

    Each batch is moved to ``device``/``dtype``, checked for non-finite values on the first pass
    and reshaped to (rows, n_outputs). Every complete pass must yield the same rows, in any
    order: each pass is fingerprinted while it is read (``RowsFingerprint``, no extra pass) and
    one that differs from the first is refused, since LM judges a damping trial on the rows its
    system was built from. Shuffling is harmless (but useless: every row enters every LM step);
    a sampler with replacement, or a loader that yields fewer rows on a later pass, is refused.
    """

    def __init__(
        self,
        loader: Iterable[Any],
        n_outputs: int,
        dtype: torch.dtype,
        device: torch.device,
        name: str = "x_loader",
        targets: TargetFn = match_targets,
        sample_shape: tuple[int, ...] | None = None,
    ) -> None:
        self.loader = loader
        self.n_outputs = n_outputs
        self.dtype = dtype
        self.device = device
        self.name = name
        self.targets = targets
        self.sample_shape = sample_shape
        dataset = getattr(loader, "dataset", None)
        sized = dataset is not None and hasattr(dataset, "__len__")
        drops = bool(getattr(loader, "drop_last", False))
        # Known up front for a plain DataLoader; otherwise learnt after the first full pass.
        self.n_samples: int | None = len(dataset) if sized and not drops else None
        #: The rows of the first complete pass; every later pass must match them.
        self.first_pass: RowsFingerprint | None = None
        self._passes = 0

    def chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        checked = self.first_pass is not None
        rows = 0
        sums = torch.zeros(len(SUM_NAMES), dtype=fingerprint_dtype(self.device),
                           device=self.device)
        for index, batch in enumerate(self.loader):
            check_pair(batch, f"{self.name} batch {index}")
            x = as_tensor(batch[0], f"{self.name} batch {index} x", self.dtype, self.device)
            y = as_tensor(batch[1], f"{self.name} batch {index} y", self.dtype, self.device)
            if x.shape[0] != y.shape[0]:
                raise InvalidInputError(
                    f"{self.name} batch {index}: x has {x.shape[0]} rows but y has {y.shape[0]}"
                )
            check_target_shape(y, self.sample_shape, f"{self.name} batch {index} y")
            y = self.targets(y, self.n_outputs, f"{self.name} batch {index} y")
            if not checked:
                check_finite(x, f"{self.name} batch {index} x")
                check_finite(y, f"{self.name} batch {index} y")
            rows += x.shape[0]
            sums += row_sums(x, y, sums.dtype)
            yield x, y
        if rows == 0:
            raise InvalidInputError(f"{self.name} yielded no rows")
        self._check_same_rows(RowsFingerprint.from_sums(rows, sums))
        self.n_samples = rows

    def fingerprint(self) -> RowsFingerprint:
        """The rows of a complete pass (the first one's; one pass is read if none was yet)."""
        if self.first_pass is None:
            for _ in self.chunks():
                pass
        assert self.first_pass is not None
        return self.first_pass

    def _check_same_rows(self, seen: RowsFingerprint) -> None:
        """Keep the first pass's fingerprint; refuse a later pass over other rows."""
        self._passes += 1
        if self.first_pass is None:
            self.first_pass = seen
            return
        difference = self.first_pass.difference(seen)
        if difference is not None:
            raise InvalidInputError(
                f"{self.name} yielded other rows on pass {self._passes} than on its first pass "
                f"({difference}). LM builds each step's system from one pass and judges its "
                "damping trials on the next passes, so every pass must yield the same rows "
                "(in any order): use a sampler that yields each row once per pass "
                "(shuffle=True or False), not RandomSampler(replacement=True), a "
                "WeightedRandomSampler or a subset drawn anew each pass, and a loader whose "
                "length does not change between passes."
            )


def first_batch(loader: Iterable[Any], name: str = "x_loader") -> Any:
    """The loader's first batch, which must be an (x, y) pair; clear errors otherwise."""
    try:
        batch = next(iter(loader))
    except StopIteration:
        raise InvalidInputError(
            f"{name} yielded no batches: its dataset is empty (or drop_last=True with fewer "
            "rows than batch_size). Pass a loader over at least one (x, y) row."
        ) from None
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        got = (f"a {type(batch).__name__} of {len(batch)} item(s)"
               if isinstance(batch, (tuple, list)) else f"a {type(batch).__name__}")
        raise InvalidInputError(
            f"{name} must yield (x, y) pairs, but its first batch is {got}: targets are "
            "missing. Build it over TensorDataset(x, y) (or a Dataset returning (x, y)), or "
            "use train_levenberg(model, x, y, ...) for tensors in memory."
        )
    check_pair(batch, f"{name} batch 0")
    return batch


def check_paired_rows(x: torch.Tensor, y: torch.Tensor) -> None:
    """x and y must hold the same, non-zero number of samples in their first dimension."""
    if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
        raise InvalidInputError(
            f"x has shape {tuple(x.shape)} and y has shape {tuple(y.shape)}: they must "
            "have the same number of samples in their first dimension."
        )
    if x.shape[0] == 0:
        raise InvalidInputError("x has no samples")


def output_shape(model: nn.Module, x_row: torch.Tensor, name: str = "x") -> tuple[int, ...]:
    """The shape of ``model``'s output for one sample (one forward pass on one row, no
    autograd); a failing pass is re-raised naming ``name``'s shape and what the first layer
    expects."""
    try:
        with torch.no_grad():
            out = model(x_row)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise forward_error(model, x_row, name, exc) from exc
    if not isinstance(out, torch.Tensor):
        raise InvalidInputError(
            f"the model returned {type(out).__name__}; LM needs a single output tensor"
        )
    return tuple(out.shape[1:]) if out.dim() > 0 else ()


def tensor_source(
    x: Any, y: Any, n_outputs: int, dtype: torch.dtype, device: torch.device,
    chunk_rows: int, name: str = "", targets: TargetFn | None = None,
    sample_shape: tuple[int, ...] | None = None,
) -> TensorSource:
    """In-memory (x, y) checked for finite values and matched to the model's outputs
    (``sample_shape``: the model's output shape per sample, see ``check_target_shape``)."""
    prefix = f"{name} " if name else ""
    x_t = as_tensor(x, f"{prefix}x", dtype, device)
    y_t = as_tensor(y, f"{prefix}y", dtype, device)
    check_finite(x_t, f"{prefix}x")
    check_finite(y_t, f"{prefix}y")
    check_target_shape(y_t, sample_shape, f"{prefix}y")
    shaped = (targets or match_targets)(y_t, n_outputs, f"{prefix}y")
    return TensorSource(x_t, shaped, chunk_rows, sample_shape)


def memory_rows(
    model: nn.Module, x: Any, y: Any, dtype: torch.dtype, device: torch.device,
    chunk_rows: Callable[[int], int], targets: TargetFn = match_targets,
) -> TensorSource:
    """In-memory training rows for ``model``: x and y paired, checked and shaped as its outputs
    (``check_target_shape``), in chunks of ``chunk_rows(outputs per sample)`` rows."""
    x_t = as_tensor(x, "x", dtype, device)
    y_t = as_tensor(y, "y", dtype, device)
    check_paired_rows(x_t, y_t)
    shape = output_shape(model, x_t[:1])
    n_outputs = math.prod(shape)
    return tensor_source(x_t, y_t, n_outputs, dtype, device, chunk_rows(n_outputs),
                         targets=targets, sample_shape=shape)


def loader_rows(
    model: nn.Module, loader: Iterable[Any], dtype: torch.dtype, device: torch.device,
    targets: TargetFn = match_targets,
) -> tuple[LoaderSource, torch.Tensor]:
    """Training rows streamed from ``loader`` for ``model`` (targets shaped as its outputs),
    and the first row, to probe the model with."""
    first = first_batch(loader)
    x0 = as_tensor(first[0], "x_loader batch 0 x", dtype, device)[:1]
    shape = output_shape(model, x0, "x_loader batch 0 x")
    return LoaderSource(loader, math.prod(shape), dtype, device, targets=targets,
                        sample_shape=shape), x0


def validation_source(
    val: Any, n_outputs: int, dtype: torch.dtype, device: torch.device, chunk_rows: int,
    targets: TargetFn = match_targets, sample_shape: tuple[int, ...] | None = None,
) -> RowSource | None:
    """Validation rows from ``(x_val, y_val)`` arrays or from a loader of (x, y) batches."""
    if val is None:
        return None
    # A 2-tuple of batches ((x, y) pairs) would be a tiny loader, not (x, y) arrays.
    if isinstance(val, tuple) and len(val) == 2 and not isinstance(val[0], (tuple, list)):
        return tensor_source(val[0], val[1], n_outputs, dtype, device, chunk_rows, "validation",
                             targets, sample_shape)
    return LoaderSource(val, n_outputs, dtype, device, name="val_loader", targets=targets,
                        sample_shape=sample_shape)


#: The largest Jacobian chunk the default budget allows, and the only one on a GPU (where each
#: chunk costs kernel launches and host round trips, and memory is rarely the limit at that size).
MAX_JACOBIAN_BUDGET = 512 * 2**20
#: The default CPU chunk's floors, in samples and bytes: smaller chunks lose speed and save no
#: memory that matters (256-sample chunks made a P = 1.2k, M = 2k epoch 1.5x slower).
MIN_CHUNK_ROWS, MIN_JACOBIAN_BUDGET = 1024, 8 * 2**20


def default_jacobian_budget(n_params: int, n_outputs: int, dtype: torch.dtype,
                            device: torch.device) -> int:
    """Bytes of one Jacobian chunk when the caller sets neither ``chunk_rows`` nor a budget. On the
    CPU: half of J^T J's bytes (P^2 * itemsize / 2) within ``MIN_CHUNK_ROWS`` samples' rows,
    ``MIN_JACOBIAN_BUDGET`` and ``MAX_JACOBIAN_BUDGET``: assembly then needs about what the solve
    needs (J^T J and its factor), not the whole M x P Jacobian. GPU: ``MAX_JACOBIAN_BUDGET``."""
    if device.type != "cpu":
        return MAX_JACOBIAN_BUDGET
    itemsize = torch.finfo(dtype).bits // 8
    smallest = max(MIN_CHUNK_ROWS * max(n_outputs, 1) * n_params * itemsize, MIN_JACOBIAN_BUDGET)
    return min(MAX_JACOBIAN_BUDGET, max(n_params * n_params * itemsize // 2, smallest))


def chunk_rows_for(budget_bytes: int, n_outputs: int, n_params: int, dtype: torch.dtype) -> int:
    """Samples per Jacobian chunk so that one chunk's J (rows*O x P) fits ``budget_bytes``."""
    per_row = max(n_outputs * n_params * (torch.finfo(dtype).bits // 8), 1)
    return max(1, budget_bytes // per_row)


def check_inference_layers(model: nn.Module) -> None:
    """BatchNorm and Dropout in training mode make a sample's output depend on its batch (or on
    chance): LM's per-sample Jacobians and repeated loss passes need them fixed."""
    active = [
        f"{name or type(model).__name__} ({type(module).__name__})"
        for name, module in model.named_modules()
        if module.training
        and isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd))
    ]
    if active:
        raise InvalidInputError(
            f"the model has BatchNorm/Dropout layers in training mode: {', '.join(active)}. LM "
            "needs a deterministic per-sample function: call model.eval() before training (this "
            "freezes BatchNorm statistics and turns Dropout off), or remove those layers."
        )
