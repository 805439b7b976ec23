"""The matrix-free engine's gradient g = J^T r^ and Jacobi diagonal diag(J^T H J), exactly.

With H = A^T A per sample (``lmbench.core.curvature``: A is k x O), diag(J^T H J) is the sum,
over samples m and factor rows k, of the squared per-sample gradients of c_mk . z_m (c_mk the
k-th row of A_m, z_m the sample's outputs). No Jacobian row is formed:

* **linear layers** (``nn.Linear`` called once per forward on (m, in) inputs): the per-sample
  gradient of the weight is the outer product d_mk a_m^T of the cotangent at the layer's output
  and its input, so its square summed over m and k is (sum_k d_mk^2)^T (a_m^2), one (out x m) by
  (m x in) product; the bias gets sum_{m,k} d_mk^2. The cotangents d_mk of all k rows come from
  one batched backward pass over the chunk (``is_grads_batched``) into zero probes added to the
  layer outputs. Cost per row: about k backward products through the layers (2 k P flops), no
  P-sized per-sample tensor; memory: k * m * (sum of layer widths) floats for a chunk of m rows.
* **every other parameter** (convolutions, norms, a Linear reused or applied to sequences):
  per-sample gradients by ``vmap(grad)`` over blocks of ``DIAGONAL_ROWS`` rows, one factor row k
  at a time, squared and summed over the block: memory DIAGONAL_ROWS * (those parameters) floats
  per k (twice that in the system dtype), independent of N and of k.

The gradient is one ordinary batched backward pass per chunk with the cotangent A^T r^.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from lmbench.core.curvature import output_factor
from lmbench.core.distributed import Reducer
from lmbench.core.jacobian import ResidualFunction
from lmbench.core.losses import Loss
from lmbench.core.params import FlatParameters

#: Rows per block of per-sample gradients for parameters outside the linear-layer rule.
DIAGONAL_ROWS = 16

Chunks = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]


@dataclass
class GradientAndDiagonal:
    """g = J^T r^, diag(J^T H J), E's Gauss-Newton value 1/2 ||r^||^2 and the row count."""

    gradient: torch.Tensor
    diagonal: torch.Tensor
    objective: float = 0.0
    n_residuals: int = 0


@dataclass
class LinearProbe:
    """One linear layer's hook state for a chunk: its input and a zero probe on its output."""

    weight: str
    bias: str | None
    inputs: list[torch.Tensor]
    probes: list[torch.Tensor]


def linear_layers(flat: FlatParameters) -> dict[str, LinearProbe]:
    """Trainable ``nn.Linear`` modules by qualified name (weight and bias parameter names)."""
    trainable = set(flat.names)
    layers = {}
    for name, module in flat.model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        prefix = f"{name}." if name else ""
        weight = f"{prefix}weight"
        bias = f"{prefix}bias" if module.bias is not None else None
        if weight in trainable and (bias is None or bias in trainable):
            layers[name] = LinearProbe(weight, bias, [], [])
    return layers


def factor_rows(factor: torch.Tensor | None, n_rows: int, n_outputs: int,
                like: torch.Tensor) -> torch.Tensor:
    """The cotangents c_mk as (k, m, O) in the outputs' dtype (the identity rows for A = I)."""
    if factor is None:
        eye = torch.eye(n_outputs, dtype=like.dtype, device=like.device)
        return eye.unsqueeze(1).expand(n_outputs, n_rows, n_outputs)
    return factor.permute(1, 0, 2).to(like.dtype)


def probe_pass(flat: FlatParameters, theta: torch.Tensor, x: torch.Tensor,
               layers: dict[str, LinearProbe]) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs (m, O) of the chunk, with theta a leaf needing grad and probes on linear layers."""
    modules = dict(flat.model.named_modules())
    leaf = theta.detach().requires_grad_(True)

    def hook_for(state: LinearProbe) -> Callable[..., torch.Tensor]:
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...],
                 output: torch.Tensor) -> torch.Tensor:
            probe = torch.zeros_like(output, requires_grad=True)
            state.inputs.append(inputs[0].detach())
            state.probes.append(probe)
            return output + probe

        return hook

    handles = [modules[name].register_forward_hook(hook_for(state))
               for name, state in layers.items()]
    try:
        out = functional_call(flat.model, (flat.as_dict(leaf), flat.buffers()), (x,))
    finally:
        for handle in handles:
            handle.remove()
    return out.reshape(out.shape[0], -1), leaf


def add_linear_squares(diagonals: dict[str, torch.Tensor], state: LinearProbe,
                       cotangent_rows: torch.Tensor, dtype: torch.dtype) -> None:
    """Fold sum_{m,k} (d_mk a_m^T)^2 and sum_{m,k} d_mk^2 into the layer's diagonal slices."""
    squared_cotangents = torch.zeros(cotangent_rows.shape[1:], dtype=dtype,
                                     device=cotangent_rows.device)  # (m, out)
    for rows in cotangent_rows:  # one factor row at a time: no (k, m, out) copy in dtype
        squared_cotangents.addcmul_(rows.to(dtype), rows.to(dtype))
    squared_inputs = state.inputs[0].to(dtype).square()  # (m, in)
    diagonals[state.weight].add_((squared_cotangents.T @ squared_inputs).reshape(-1))
    if state.bias is not None:
        diagonals[state.bias].add_(squared_cotangents.sum(0))


def add_per_sample_squares(flat: FlatParameters, theta: torch.Tensor, names: list[str],
                           x: torch.Tensor, cotangents: torch.Tensor,
                           diagonals: dict[str, torch.Tensor], dtype: torch.dtype) -> None:
    """Squared per-sample gradients of c_mk . z_m for ``names``, by blocks of DIAGONAL_ROWS."""
    params = flat.as_dict(theta.detach())
    fixed = {n: t for n, t in params.items() if n not in names}
    buffers = flat.buffers()

    def weighted_output(free: dict[str, torch.Tensor], row: torch.Tensor,
                        cotangent: torch.Tensor) -> torch.Tensor:
        out = functional_call(flat.model, ({**fixed, **free}, buffers), (row.unsqueeze(0),))
        return out.reshape(-1) @ cotangent

    per_sample = vmap(grad(weighted_output), in_dims=(None, 0, 0))
    free = {n: params[n] for n in names}
    for start in range(0, x.shape[0], DIAGONAL_ROWS):
        rows = x[start : start + DIAGONAL_ROWS]
        for cotangent in cotangents[:, start : start + DIAGONAL_ROWS]:
            for name, piece in per_sample(free, rows, cotangent).items():
                flat_piece = piece.reshape(piece.shape[0], -1).to(dtype)
                diagonals[name].add_(torch.einsum("mn,mn->n", flat_piece, flat_piece))
                del flat_piece


def gradient_and_diagonal(
    residual_fn: ResidualFunction,
    loss: Loss,
    chunks: Chunks,
    theta: torch.Tensor,
    reducer: Reducer,
    dtype: torch.dtype,
    n_outputs: int,
) -> GradientAndDiagonal:
    """One pass over the rows: g, diag(J^T H J), 1/2 ||r^||^2 and the row count, summed over
    workers. Chunks come from the row source as they are; memory per chunk of m rows is the
    chunk's activations, k * m * (linear layer widths) cotangents and, for parameters outside
    the linear rule, DIAGONAL_ROWS * (their count) per-sample gradient floats (module doc)."""
    del n_outputs  # the outputs' width is read from the model's outputs
    flat = residual_fn.flat
    count = theta.numel()
    acc = GradientAndDiagonal(torch.zeros(count, dtype=dtype, device=theta.device),
                              torch.zeros(count, dtype=dtype, device=theta.device))
    diagonals = dict(zip(flat.names, torch.split(acc.diagonal, flat.numels), strict=True))
    diagonals = {n: d.view(-1) for n, d in diagonals.items()}
    layers = linear_layers(flat)
    for x, y in chunks():
        for state in layers.values():
            state.inputs.clear()
            state.probes.clear()
        with torch.enable_grad():
            out, leaf = probe_pass(flat, theta, x, layers)
            factor, residuals = output_factor(loss, out.detach(), y, dtype)
            cotangents = factor_rows(factor, out.shape[0], out.shape[1], out)
            direct = {n: s for n, s in layers.items()
                      if len(s.inputs) == 1 and s.inputs[0].dim() == 2
                      and s.inputs[0].shape[0] == out.shape[0]}
            covered = {p for s in direct.values() for p in (s.weight, s.bias) if p is not None}
            probes = [s.probes[0] for s in direct.values()]
            output_gradient = torch.einsum("kmo,mk->mo", cotangents, residuals.to(out.dtype))
            (gradient,) = torch.autograd.grad(out, leaf, output_gradient, retain_graph=bool(probes))
            acc.gradient.add_(gradient.to(dtype))
            if probes:
                rows = torch.autograd.grad(out, probes, cotangents, is_grads_batched=True)
                for state, cotangent_rows in zip(direct.values(), rows, strict=True):
                    add_linear_squares(diagonals, state, cotangent_rows, dtype)
            del out, leaf, probes
        others = [n for n in flat.names if n not in covered]
        if others:
            add_per_sample_squares(flat, theta, others, x, cotangents, diagonals, dtype)
        flat_residuals = residuals.reshape(-1)
        acc.objective += 0.5 * float(flat_residuals @ flat_residuals)
        acc.n_residuals += residuals.numel()
    for state in layers.values():
        state.inputs.clear()
        state.probes.clear()
    totals = torch.tensor([acc.objective, acc.n_residuals], dtype=torch.float64,
                          device=theta.device)
    reducer.sum_(totals)
    acc.objective, acc.n_residuals = float(totals[0]), int(totals[1])
    reducer.sum_(acc.gradient)
    reducer.sum_(acc.diagonal)
    return acc
