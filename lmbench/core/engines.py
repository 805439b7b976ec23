"""The engines: one vocabulary, one small type per engine, and the ``auto`` choice among them.

Engines (what a user or a config names):

* ``in_memory``: rows from tensors in memory; J^T J (primal) or J J^T (dual) and Cholesky;
* ``streaming``: rows streamed from a loader; J^T J accumulated chunk by chunk, Cholesky;
* ``cache``: rows streamed once per epoch into a Jacobian cache on disk; matrix-free CG;
* ``matrix_free``: no Jacobian anywhere: CG on Jacobian-vector products (jvp then vjp) over
  rows streamed from tensors or a loader (``lmbench.core.matrix_free``); memory O(P);
* ``auto``: streaming while J^T J and its factor fit the memory budget, else the cache while
  it has a folder and its disk (when known), else matrix_free.

Each engine is a small frozen type below (``InMemoryEngine``, ``StreamingEngine``,
``CacheEngine``, ``MatrixFreeEngine``) that assembles its system; the trainer receives one, and
``plan_engine`` builds one from its name. Their memory and work per epoch are priced, under
each engine's ``variant``, by ``lmbench.core.cost_model``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

from lmbench.core.system import SystemForm

if TYPE_CHECKING:
    import torch

    from lmbench.core.cache import JacobianCache
    from lmbench.core.distributed import Reducer
    from lmbench.core.jacobian import ResidualFunction
    from lmbench.core.losses import Loss
    from lmbench.core.matrix_free import WarmStart
    from lmbench.core.params import FlatParameters
    from lmbench.core.solve import GramBuffer
    from lmbench.core.sources import RowSource
    from lmbench.core.stopping import FitClock
    from lmbench.core.system import FormName, GaussNewtonSystem
    from lmbench.core.timing import PhaseTimer

EngineName = Literal["in_memory", "streaming", "cache", "matrix_free", "auto"]
#: Engines a user can name (``auto`` resolves to one of the others before it).
ENGINE_NAMES: tuple[EngineName, ...] = ("in_memory", "streaming", "cache", "matrix_free", "auto")
#: Engines a benchmark job may name (``auto`` is for library callers).
CONCRETE_ENGINES: tuple[EngineName, ...] = ENGINE_NAMES[:4]
SourceKind = Literal["tensors", "loader"]

#: A costed variant: an engine together with its system form (``LMEngine.variant``).
Engine = Literal["in_memory_primal", "in_memory_dual", "streaming", "cache", "matrix_free"]
ENGINES: tuple[Engine, ...] = (
    "in_memory_primal", "in_memory_dual", "streaming", "cache", "matrix_free"
)


class TrainerView(Protocol):
    """What an engine reads of the trainer (``lmbench.core.trainer.LevenbergMarquardt``)."""

    flat: FlatParameters
    loss: Loss
    reducer: Reducer
    system_dtype: torch.dtype


class FitView(Protocol):
    """What an engine reads of one fit (``lmbench.core.trainer.FitState``)."""

    source: RowSource
    residual_fn: ResidualFunction
    n_outputs: int
    cache: JacobianCache | None
    warm: WarmStart
    clock: FitClock  # the time limit, checked before each chunk
    gram_buffer: GramBuffer  # J^T J's buffer, reused from epoch to epoch


@dataclass(frozen=True)
class LMEngine:
    """How an epoch builds its Gauss-Newton system; the trainer receives one.

    ``name`` is what configs call it, ``source`` where its rows come from when it is named
    (``TrainerSettings.fit``), ``solver`` the trainer's seed-style ``solver=`` spelling, and
    ``variant`` the cost model's name for it.
    """

    name: ClassVar[EngineName]
    source: ClassVar[SourceKind] = "loader"
    solver: ClassVar[str] = "cholesky"

    @property
    def variant(self) -> Engine:
        return self.name  # type: ignore[return-value]

    def check(self) -> None:
        """Refuse a configuration the engine cannot run, before any work."""

    def open_cache(self, trainer: TrainerView, run: FitView) -> JacobianCache | None:
        """Per-fit storage the engine needs (only the disk cache has one; closed by the
        trainer, even when training fails)."""
        return None

    def assemble(self, trainer: TrainerView, run: FitView, theta: torch.Tensor,
                 timer: PhaseTimer) -> GaussNewtonSystem:
        """The Gauss-Newton system at ``theta`` (one pass over the rows)."""
        raise NotImplementedError


def _accumulated(trainer: TrainerView, run: FitView, theta: torch.Tensor, timer: PhaseTimer,
                 form: FormName, cg_max_iter: int = 500) -> GaussNewtonSystem:
    """The system summed chunk by chunk from each chunk's Jacobian (``SystemAccumulator``)."""
    from lmbench.core.system import SystemAccumulator

    acc = SystemAccumulator(trainer.flat.count, form, trainer.system_dtype, theta.device,
                            run.gram_buffer)
    return acc.assemble(run.clock.timed_chunks(run.source),
                        lambda x: run.residual_fn.jacobian(theta, x), trainer.loss,
                        trainer.reducer, run.cache, timer, cg_max_iter)


@dataclass(frozen=True)
class InMemoryEngine(LMEngine):
    """J^T J (primal) or J J^T (dual; ``auto``: the smaller) accumulated chunk by chunk and
    factored once per damping trial; named, it reads its rows from tensors."""

    form: SystemForm = "auto"
    name: ClassVar[EngineName] = "in_memory"
    source: ClassVar[SourceKind] = "tensors"

    def __post_init__(self) -> None:
        if self.form not in ("auto", "primal", "dual"):
            raise ValueError(f"form must be 'auto', 'primal' or 'dual', got {self.form!r}")

    @property
    def variant(self) -> Engine:
        return "in_memory_dual" if self.form == "dual" else "in_memory_primal"

    def system_form(self, trainer: TrainerView, run: FitView) -> FormName:
        """The system this fit builds: ``auto`` takes the dual form when it is smaller."""
        from lmbench.core.distributed import LocalReducer

        if self.form != "auto":
            return self.form
        n_samples = run.source.n_samples
        if n_samples is None or not isinstance(trainer.reducer, LocalReducer):
            return "primal"  # rows unknown, or spread over workers: J^T J is what adds up
        rows = n_samples * trainer.loss.rows_per_sample(run.n_outputs)
        return choose_form(rows, trainer.flat.count)

    def assemble(self, trainer: TrainerView, run: FitView, theta: torch.Tensor,
                 timer: PhaseTimer) -> GaussNewtonSystem:
        return _accumulated(trainer, run, theta, timer, self.system_form(trainer, run))


@dataclass(frozen=True)
class StreamingEngine(InMemoryEngine):
    """The in-memory engine's J^T J over rows streamed from a loader (the primal form)."""

    form: SystemForm = "primal"
    name: ClassVar[EngineName] = "streaming"
    source: ClassVar[SourceKind] = "loader"

    @property
    def variant(self) -> Engine:
        return "streaming"


@dataclass(frozen=True)
class CacheEngine(LMEngine):
    """Rows' Jacobians written once per epoch to a cache on disk; CG on J^T J products read
    back from it (``lmbench.core.cache``)."""

    temp_folder: str | Path | None = None
    cg_max_iter: int = 500
    name: ClassVar[EngineName] = "cache"
    solver: ClassVar[str] = "cg"

    def check(self) -> None:
        if self.temp_folder is None:
            raise ValueError("solver='cg' caches the Jacobian on disk: pass temp_folder=...")

    def open_cache(self, trainer: TrainerView, run: FitView) -> JacobianCache | None:
        from lmbench.core.cache import open_cache

        self.check()
        assert self.temp_folder is not None
        return open_cache(self.temp_folder, trainer.system_dtype, run.source.n_samples,
                          run.n_outputs, trainer.flat.count)

    def assemble(self, trainer: TrainerView, run: FitView, theta: torch.Tensor,
                 timer: PhaseTimer) -> GaussNewtonSystem:
        return _accumulated(trainer, run, theta, timer, "cache_cg", self.cg_max_iter)


@dataclass(frozen=True)
class MatrixFreeEngine(LMEngine):
    """No Jacobian anywhere: CG on Jacobian-vector products (jvp then vjp) over the rows
    (``lmbench.core.matrix_free``); memory O(P)."""

    cg_max_iter: int = 500
    name: ClassVar[EngineName] = "matrix_free"
    solver: ClassVar[str] = "matrix_free"

    def assemble(self, trainer: TrainerView, run: FitView, theta: torch.Tensor,
                 timer: PhaseTimer) -> GaussNewtonSystem:
        from lmbench.core.matrix_free import assemble_streamed

        return assemble_streamed(trainer, run, theta, timer)  # type: ignore[arg-type]


def plan_engine(engine: str, form: str = "auto", temp_folder: str | Path | None = None,
                cg_max_iter: int = 500) -> LMEngine:
    """The engine a name describes (``auto`` must be resolved first with ``resolve_auto``)."""
    if engine == "in_memory":
        return InMemoryEngine(form)  # type: ignore[arg-type]
    if engine == "streaming":
        return StreamingEngine()
    if engine == "cache":
        return CacheEngine(temp_folder=temp_folder, cg_max_iter=cg_max_iter)
    if engine == "matrix_free":
        return MatrixFreeEngine(cg_max_iter=cg_max_iter)
    raise ValueError(
        f"engine must be one of {CONCRETE_ENGINES} (or 'auto' resolved by resolve_auto), "
        f"got {engine!r}"
    )


#: The engine that runs each costed variant (``lmbench.core.cost_model``).
VARIANT_ENGINES: dict[Engine, LMEngine] = {
    engine.variant: engine
    for engine in (InMemoryEngine("primal"), InMemoryEngine("dual"), StreamingEngine(),
                   CacheEngine(), MatrixFreeEngine())
}


def engine_for_solver(solver: str, form: str = "auto", temp_folder: str | Path | None = None,
                      cg_max_iter: int = 500) -> LMEngine:
    """The engine behind the trainer's seed-style ``solver=`` / ``form=`` arguments."""
    if solver == "cholesky":
        return InMemoryEngine(form)  # type: ignore[arg-type]
    if solver == "cg":
        return CacheEngine(temp_folder=temp_folder, cg_max_iter=cg_max_iter)
    if solver == "matrix_free":
        return MatrixFreeEngine(cg_max_iter=cg_max_iter)
    raise ValueError(f"solver must be 'cholesky', 'cg' or 'matrix_free', got {solver!r}")


def streaming_fits(n_params: int, itemsize: int, budget_bytes: int) -> bool:
    """Whether J^T J and its Cholesky factor (the fixed part of the streaming engine) fit."""
    return 2 * itemsize * n_params * n_params <= budget_bytes


def cache_fits(
    n_params: int, itemsize: int, budget_bytes: int, disk_bytes: int | None = None,
    n_rows: int | None = None,
) -> bool:
    """Whether the disk cache runs: its vectors and a one-sample chunk fit the memory budget,
    and (when both are known) its M x P file fits ``disk_bytes``; ``disk_bytes=0``: no folder."""
    if itemsize * (12 + 2) * n_params > budget_bytes or disk_bytes == 0:
        return False
    return disk_bytes is None or n_rows is None or itemsize * n_rows * (n_params + 1) <= disk_bytes


def resolve_auto(
    n_params: int, itemsize: int, budget_bytes: int, disk_bytes: int | None = None,
    n_rows: int | None = None,
) -> EngineName:
    """``auto``: streaming while J^T J and its factor fit the budget, else the disk cache while
    it fits (``cache_fits``), else matrix_free (memory O(P), no disk: the engine of last resort)."""
    if streaming_fits(n_params, itemsize, budget_bytes):
        return "streaming"
    return "cache" if cache_fits(n_params, itemsize, budget_bytes, disk_bytes, n_rows) else (
        "matrix_free"
    )


def choose_form(n_residuals: int, n_params: int) -> Literal["primal", "dual"]:
    """The dual M x M system is smaller exactly when there are fewer residuals than weights."""
    return "dual" if n_residuals < n_params else "primal"


#: The original library's documented limits on a 12 GB GPU.
SEED_MAX_WEIGHTS = 7000
SEED_MAX_ROWS = 7000  # samples x outputs
SEED_GPU_BYTES = 12 * 10**9
