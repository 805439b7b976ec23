"""The one cost model: peak memory, disk and work of one LM epoch for each engine variant.

It prices each *variant* (an engine with its system form): ``in_memory_primal``,
``in_memory_dual``, ``streaming``, ``cache`` and ``matrix_free``. The trainer's automatic choices,
``lmbench-limits`` and the reports all read it from here.

Symbols: N samples, O outputs per sample, M = N*O residual rows, P weights, c rows per Jacobian
chunk (samples), s bytes per element (4 for float32), t damping trials in the epoch.

Peak memory of one epoch beyond the data and the model itself (what the engine allocates):

* in-memory primal / streaming (the same tensors; streaming reads chunks from a loader):
  ``s * (P^2 + 2*c*O*P + P^2)`` at most: J^T J (P^2) is alive throughout; during assembly one
  chunk's Jacobian (c*O*P) plus the per-layer pieces torch.func builds before concatenating
  them (another c*O*P); during a trial the Cholesky factor (P^2). The two phases do not overlap,
  so the peak is ``s * (P^2 + max(2*c*O*P, P^2))``.
* in-memory dual: J whole (M*P) and K = J D^-1 J^T (M^2) kept, plus the factor (M^2), after
  J was built whole (2*M*P transiently): ``s * max(2*M*P, M*P + 2*M^2)``.
* cache (matrix-free CG): one chunk in memory at a time while writing and while reading back,
  plus O(P) CG vectors: ``s * (2*c*O*P + 12*P)``; on disk ``s * (M*P + M)`` (the seed's formula).
* matrix_free, two phases that do not overlap, whatever N is, nothing on disk: the
  gradient/diagonal pass (``core.matrix_free_diagonal``) needs, for ``nn.Linear`` layers, only
  each layer's output cotangents per factor row (O * c * layer widths, no per-sample weight
  gradients); its fallback for other layers holds a per-sample Jacobian block of
  b = max(1, 16 // O) samples (``b*O*P``, layer by layer; 2x for losses other than mse). The
  model charges the fallback's ``b*O*P``, an upper bound for MLPs; plus 4 P-vectors. A damping
  trial holds
  ``MATRIX_FREE_VECTORS`` = 16 P-vectors (gradient, diagonal, scaling, preconditioner, shift,
  CG's rhs, x, r, z, direction and image, the product's sum and pullback, the warm start,
  the trial weights) and one chunk's activations twice (primal and tangent, or saved and
  their gradients):
  ``s * max(4*P + b*O*P, 16*P + 2*c*a)`` with a = ``activation_floats`` per sample
  (model-specific, 0 when unknown).

Floating-point work of one epoch (multiply-adds counted as 2 flops):

* Jacobian: ~ ``2 * (1 + O) * M/O * F`` where F ~ 2P is one sample's forward cost (one forward
  pass plus O vector-Jacobian products per sample); we use ``6 * M * P``;
* system: ``M * P^2`` for the upper triangle of J^T J (half the 2*M*P^2 of a full GEMM),
  ``M^2 * P`` for the dual kernel;
* solves: ``t * P^3 / 3`` (Cholesky) or ``t * M^3 / 3`` (dual); CG: ``t * k * 4 * M * P`` for k
  iterations; matrix-free CG: ``t * (k + 1) * 10 * N * P`` (each product is a jvp pass, about
  two forward passes' work, and a vjp pass, about three: two passes over the data, 10 N P);
* loss evaluations: ``t * 2 * N * P``;
* Bayesian regularisation (``bayesian=True``, ``lmbench.core.regularization``): the evidence's
  trace once per epoch, one more Cholesky and a blocked triangular inverse: ``2 * P^3 / 3``
  (primal, streaming) or ``M^2 * P + 2 * M^3 / 3`` (dual: J J^T and its factor), plus a
  P x ``GRAM_BLOCK`` block of memory beside the factor. A fixed weight decay costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmbench.core.engines import Engine, streaming_fits
from lmbench.core.gram import GRAM_BLOCK
from lmbench.core.losses import LOSS_TYPES

#: P-vectors the matrix-free engine holds (see the module doc).
MATRIX_FREE_VECTORS = 16
#: Residual rows per Jacobian block of its gradient/diagonal pass (``core.matrix_free``).
MATRIX_FREE_DIAGONAL_ROWS = 16
#: Samples per chunk the model suggests for it: activations, not weights, bound the chunk.
MATRIX_FREE_CHUNK = 1024


@dataclass(frozen=True)
class Problem:
    """Shape of one LM problem: samples, outputs, weights, dtype size."""

    n_samples: int
    n_outputs: int
    n_params: int
    itemsize: int = 4

    @property
    def n_rows(self) -> int:
        """M = N * O residual rows."""
        return self.n_samples * self.n_outputs


@dataclass(frozen=True)
class Estimate:
    """Predicted peak memory (bytes), disk (bytes) and work (flops) of one epoch."""

    engine: Engine
    chunk_samples: int
    memory_bytes: int
    disk_bytes: int
    flops: float


def estimate(
    problem: Problem,
    engine: Engine,
    chunk_samples: int | None = None,
    trials: int = 1,
    cg_iterations: int = 50,
    loss: str = "mse",
    activation_floats: int = 0,
    bayesian: bool = False,
) -> Estimate:
    """Memory and work of one epoch of ``engine`` on ``problem`` (formulas in the module doc).

    ``loss``: a non-MSE loss transforms each chunk's rows by its Hessian factor A (GGN): the
    transformed copy adds ``c*O*P`` to the chunk's memory, and the work adds ``2*M*O*P`` for the
    softmax cross-entropy's O x O factor, ``2*M*P`` for the diagonal ones (bce, huber).
    ``activation_floats``: floats one sample's activations take (the matrix-free engine's
    chunk term; 0 leaves it out). ``bayesian``: add the evidence's trace (in_memory and
    streaming variants only).
    """
    n, o, p, s = problem.n_samples, problem.n_outputs, problem.n_params, problem.itemsize
    m = problem.n_rows
    c = n if engine == "in_memory_dual" else min(chunk_samples or n, n)
    plain = LOSS_TYPES[loss].factor == "identity"  # J's rows used as they are (mse)
    chunk_jacobian = (2 if plain else 3) * c * o * p
    jacobian_flops = 6.0 * m * p + factor_flops(loss, m, o, p)
    evaluate_flops = trials * 2.0 * n * p
    if bayesian and engine not in ("in_memory_primal", "in_memory_dual", "streaming"):
        raise ValueError(f"Bayesian regularisation needs a factorisation; {engine} has none")
    if engine in ("in_memory_primal", "streaming"):
        trace = p * GRAM_BLOCK if bayesian else 0
        memory = s * (p * p + max(chunk_jacobian, p * p + trace))
        flops = jacobian_flops + m * p * p + trials * p**3 / 3 + evaluate_flops
        flops += 2 * p**3 / 3 if bayesian else 0
        disk = 0
    elif engine == "in_memory_dual":
        memory = s * max(2 * m * p, m * p + 2 * m * m + (m * GRAM_BLOCK if bayesian else 0))
        flops = jacobian_flops + m * m * p + trials * m**3 / 3 + evaluate_flops
        flops += m * m * p + 2 * m**3 / 3 if bayesian else 0
        disk = 0
    elif engine == "matrix_free":
        block = min(c, matrix_free_block(o)) * o * p * (1 if plain else 2)
        memory = s * max(4 * p + block, MATRIX_FREE_VECTORS * p + 2 * c * activation_floats)
        flops = jacobian_flops + trials * (cg_iterations + 1) * 10.0 * n * p + evaluate_flops
        disk = 0
    else:
        memory = s * (chunk_jacobian + 12 * p)
        flops = jacobian_flops + trials * cg_iterations * 4.0 * m * p + evaluate_flops
        disk = s * (m * p + m)
    return Estimate(engine, c, int(memory), int(disk), float(flops))


def matrix_free_block(n_outputs: int) -> int:
    """Samples per Jacobian block of the matrix-free gradient/diagonal pass."""
    return max(1, MATRIX_FREE_DIAGONAL_ROWS // max(n_outputs, 1))


def factor_flops(loss: str, n_rows: int, n_outputs: int, n_params: int) -> float:
    """Work of multiplying a chunk's Jacobian rows by the loss's Hessian factor A."""
    factor = LOSS_TYPES[loss].factor
    if factor == "identity":
        return 0.0
    if factor == "dense":
        return 2.0 * n_rows * n_outputs * n_params
    return 2.0 * n_rows * n_params


def largest_chunk(problem: Problem, engine: Engine, budget_bytes: int) -> int | None:
    """The most samples per chunk that keep ``engine`` within ``budget_bytes`` (None: none)."""
    p, o, s = problem.n_params, problem.n_outputs, problem.itemsize
    if engine == "in_memory_dual":
        fits = estimate(problem, engine).memory_bytes <= budget_bytes
        return problem.n_samples if fits else None
    if engine == "matrix_free":
        fits = estimate(problem, engine, 1).memory_bytes <= budget_bytes
        return min(problem.n_samples, MATRIX_FREE_CHUNK) if fits else None
    fixed = s * p * p if engine != "cache" else s * 12 * p
    if engine != "cache" and not streaming_fits(p, s, budget_bytes):
        return None  # J^T J and its factor alone do not fit
    spare = budget_bytes - fixed
    per_sample = s * 2 * o * p
    chunk = min(problem.n_samples, spare // per_sample) if per_sample else problem.n_samples
    return int(chunk) if chunk >= 1 else None


def feasible(problem: Problem, engine: Engine, budget_bytes: int) -> bool:
    """Whether ``engine`` can run ``problem`` within the memory budget at all (the in-memory
    primal engine chunks its Jacobian like streaming; it differs in holding the data)."""
    return largest_chunk(problem, engine, budget_bytes) is not None


def best_engine(
    problem: Problem, budget_bytes: int, disk_bytes: int | None = None
) -> tuple[Engine, int] | None:
    """The fastest engine that fits the budget, with its chunk size; None if nothing fits.

    Preference follows the work model: the dual form when M < P (its M^3 solve is the smaller),
    else in-memory primal, then streaming (same work, bounded memory), then the disk cache, and
    matrix_free where nothing else fits (no disk, memory O(P), but two passes per CG iteration).
    """
    order: list[Engine] = ["in_memory_primal", "streaming", "cache", "matrix_free"]
    if problem.n_rows < problem.n_params:
        order.insert(0, "in_memory_dual")
    for engine in order:
        if not feasible(problem, engine, budget_bytes):
            continue
        too_big_for_disk = (
            engine == "cache"
            and disk_bytes is not None
            and estimate(problem, engine).disk_bytes > disk_bytes
        )
        if too_big_for_disk:
            continue
        chunk = largest_chunk(problem, engine, budget_bytes) or problem.n_samples
        return engine, min(chunk, problem.n_samples)
    return None


def max_params(
    n_rows: int, engine: Engine, budget_bytes: int, itemsize: int = 4, chunk_rows: int = 4096
) -> int:
    """The largest P that ``engine`` fits in ``budget_bytes`` for M = ``n_rows`` (O = 1);
    0 when not even P = 1 fits."""
    low, high = 0, 10**7 if engine != "matrix_free" else 10**11
    while low < high:
        mid = (low + high + 1) // 2
        problem = Problem(n_rows, 1, mid, itemsize)
        if engine != "in_memory_dual":
            ok = estimate(problem, engine, min(chunk_rows, n_rows)).memory_bytes <= budget_bytes
        else:
            ok = feasible(problem, engine, budget_bytes)
        low, high = (mid, high) if ok else (low, mid - 1)
    return low
