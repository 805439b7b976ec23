"""The classic LM problems of the published-results checks: their data, network and defaults.

XOR with a 2-3-1 net, parity-N (N = 3..7) with an N-N-1 net (N hidden neurons, a choice
stated in the report); both with bipolar inputs and targets (+-1), and the sinc(10x) curve fit
of the torch-levenberg-marquardt README (20,000 points, 1-20-1, 61 weights,
``y = torch.sinc(10 x) = sin(10 pi x) / (10 pi x)``), full-batch and, as the README trains it,
in mini-batches of 1,000 rows for 50 epochs (``sinc_minibatch``, run side by side with that
library). Every net is ``Linear -> tanh -> Linear``.
``PROBLEMS`` is the registry, in report order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Problem:
    """One classic LM problem: its data, network and the defaults of its check."""

    name: str
    description: str
    n_inputs: int
    n_hidden: int
    data: Callable[[torch.dtype], tuple[torch.Tensor, torch.Tensor]]
    target_mse: float
    max_epochs: int
    starts: int
    dtype: str
    stop_at_target: bool = True
    record_at: tuple[int, ...] = ()
    #: Rows per LM step (mini-batch LM, run side by side with torch-levenberg-marquardt on the
    #: same batches); None: one full-batch step per epoch, lmbench only.
    batch_size: int | None = None

    @property
    def network(self) -> str:
        return f"{self.n_inputs}-{self.n_hidden}-1 tanh"


def bipolar_parity(bits: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
    """All 2**bits bipolar input patterns and the bipolar parity target (+1 for an odd number
    of +1 inputs); XOR is ``bits=2``."""
    x = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=bits)), dtype=dtype)
    odd = (x > 0).sum(dim=1, keepdim=True) % 2 == 1
    return x, torch.where(odd, 1.0, -1.0).to(dtype)


def sinc_data(dtype: torch.dtype = torch.float32, n: int = 20_000) -> tuple[torch.Tensor, ...]:
    """The README's curve: ``x = linspace(-1, 1, 20000)``, ``y = torch.sinc(10 x)``."""
    x = torch.linspace(-1, 1, n, dtype=dtype).unsqueeze(1)
    return x, torch.sinc(10 * x)


def _parity(bits: int) -> Problem:
    name = "xor" if bits == 2 else f"parity{bits}"
    hidden = 3 if bits == 2 else bits
    return Problem(
        name=name,
        description=(
            f"{'XOR' if bits == 2 else f'parity-{bits}'}: all {2**bits} bipolar patterns, "
            f"bipolar target, {bits}-{hidden}-1 tanh net"
        ),
        n_inputs=bits,
        n_hidden=hidden,
        data=lambda dtype, b=bits: bipolar_parity(b, dtype),
        target_mse=1e-4,
        max_epochs=1000,
        starts=50,
        dtype="float64",
    )


#: The registry, in report order.
PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in [
        _parity(2),
        *(_parity(n) for n in range(3, 8)),
        Problem(
            name="sinc",
            description="sinc(10x) = sin(10 pi x)/(10 pi x) on 20,000 points in [-1, 1], "
            "1-20-1 tanh net (61 weights), float32 as in the README",
            n_inputs=1,
            n_hidden=20,
            data=sinc_data,
            target_mse=1e-6,
            max_epochs=1000,
            starts=3,
            dtype="float32",
            stop_at_target=False,
            record_at=(50,),
        ),
        Problem(
            name="sinc_minibatch",
            description="sinc(10x) as in `sinc`, trained as the torch-levenberg-marquardt "
            "README does: 50 epochs of 20 shuffled mini-batches of 1,000 points (one LM step "
            "per batch), lmbench and torch-levenberg-marquardt on the same batches",
            n_inputs=1,
            n_hidden=20,
            data=sinc_data,
            target_mse=1e-6,
            max_epochs=50,
            starts=3,
            dtype="float32",
            stop_at_target=False,
            record_at=(50,),
            batch_size=1000,
        ),
    ]
}
