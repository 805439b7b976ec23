"""Checks that turn raw PyTorch / OS errors into ones naming the argument and the fix:
the device, a model on the ``meta`` device, x of the wrong width, and ``temp_folder``."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import torch
from torch import nn

from lmbench.core.errors import InvalidInputError, NonFiniteLossError, TempFolderError

#: File-system types that hold no files of their own (kernel views, not disks).
PSEUDO_FILESYSTEMS = frozenset({
    "proc", "sysfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs",
    "pstore", "bpf", "configfs", "fusectl", "mqueue", "autofs", "binfmt_misc", "efivarfs",
    "nsfs", "rpc_pipefs", "hugetlbfs",
})


def check_device(device: str | torch.device | None) -> None:
    """Refuse a device that this machine does not have, before the model is moved."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidInputError(
            f"device={device!r} is not a device name; pass e.g. device='cpu' or 'cuda:0', or "
            "None to train where the model already is"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInputError(
                f"device={device!r} but CUDA is not available here (no GPU, or a CPU-only "
                "torch build). Pass device='cpu', or device=None to train where the model is."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidInputError(
                f"device={device!r} but only {torch.cuda.device_count()} CUDA device(s) are "
                f"visible (cuda:0 .. cuda:{torch.cuda.device_count() - 1}); pick one of them."
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidInputError(f"device={device!r} but MPS is not available; use 'cpu'.")
    if dev.type == "meta":
        raise InvalidInputError("device='meta' holds no data: LM needs real weights and data.")


def check_materialised(model: nn.Module) -> None:
    """A model whose weights are on the ``meta`` device has shapes but no values."""
    meta = [n for n, p in list(model.named_parameters()) + list(model.named_buffers())
            if p.device.type == "meta"]
    if meta:
        raise InvalidInputError(
            f"the model's weights are on the 'meta' device (shapes only, no values): "
            f"{', '.join(meta[:5])}{' ...' if len(meta) > 5 else ''}. Materialise them first, "
            "e.g. model.to_empty(device='cpu') then initialise or load_state_dict(...), or pass "
            "device='cpu' to a model built normally."
        )


def first_layer(model: nn.Module) -> tuple[str, nn.Linear | nn.modules.conv._ConvNd] | None:
    """The first (built) Linear or Conv layer and its name, or None if the model has none."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear | nn.modules.conv._ConvNd) and not isinstance(
            module.weight, nn.parameter.UninitializedParameter
        ):
            return name or type(model).__name__, module
    return None


def expected_input(model: nn.Module) -> str | None:
    """What the first Linear/Conv layer expects, in words (None if no such layer comes first)."""
    found = first_layer(model)
    if found is None:
        return None
    label, module = found
    if isinstance(module, nn.Linear):
        return (f"its first layer {label} (Linear) takes {module.in_features} features: "
                f"x should be (n_samples, {module.in_features})")
    dims = ", ".join(["H", "W", "D"][: len(module.kernel_size)])
    return (f"its first layer {label} ({type(module).__name__}) takes "
            f"{module.in_channels} channels: x should be (n_samples, "
            f"{module.in_channels}, {dims})")


def _fits_first_layer(model: nn.Module, x_row: torch.Tensor) -> bool:
    """Whether one row of x has the width (features or channels) the first layer takes."""
    found = first_layer(model)
    if found is None:
        return True
    module = found[1]
    if isinstance(module, nn.Linear):
        return x_row.shape[-1] == module.in_features
    return x_row.dim() > 1 and x_row.shape[1] == module.in_channels


def other_dtype_tensors(model: nn.Module, dtype: torch.dtype) -> dict[str, torch.dtype]:
    """The model's floating-point parameters and buffers (frozen ones included) whose dtype is
    not ``dtype``, by name."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return {name: t.dtype for name, t in tensors if t.is_floating_point() and t.dtype != dtype}


def forward_error(model: nn.Module, x_row: torch.Tensor, name: str,
                  exc: Exception) -> InvalidInputError:
    """The model's first forward pass failed on ``name``: say why (the model mixes dtypes, or
    x's shape is not what the first layer expects)."""
    others = other_dtype_tensors(model, x_row.dtype)
    if others and _fits_first_layer(model, x_row):  # x is cast to the trainable weights' dtype
        names = list(others)
        listed = ", ".join(f"{n} ({str(others[n]).removeprefix('torch.')})" for n in names[:5])
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        dtype = str(x_row.dtype).removeprefix("torch.")
        return InvalidInputError(
            f"the model's first forward pass failed because its dtypes differ: {name} is "
            f"{dtype}, the dtype of the trainable weights that LM trains in, but the model also "
            f"holds {listed}{more}: frozen weights and buffers must have that dtype too. Cast "
            f"the whole model to one dtype before training: model.to({x_row.dtype}) (or "
            f"model.float() / model.double()). Original error: {type(exc).__name__}: {exc}"
        )
    shape = (f"{name} has {x_row.shape[1:].numel()} feature(s) per sample (one row: "
             f"{tuple(x_row.shape)})")
    expected = expected_input(model)
    hint = f"; {expected}" if expected else ""
    return InvalidInputError(
        f"the model's first forward pass failed: {shape}{hint}. Check that {name} has the "
        f"columns the model was built for. Original error: {type(exc).__name__}: {exc}"
    )


def _existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _fs_type(path: Path) -> str | None:
    """The mount's file-system type (Linux /proc/mounts), or None where unknown."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    best, kind = "", None
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, parts[2]
    return kind


def check_temp_folder(folder: str | Path) -> None:
    """``temp_folder`` must be (or be creatable in) a writable directory on a real disk."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise TempFolderError(f"temp_folder={str(folder)!r} is a file, not a folder; "
                              "point temp_folder at a directory on a local disk.")
    anchor = _existing(path)
    kind = _fs_type(anchor)
    total = shutil.disk_usage(anchor).total
    if kind in PSEUDO_FILESYSTEMS or total == 0:
        what = f"a {kind} pseudo-filesystem" if kind else "a pseudo-filesystem (size 0)"
        raise TempFolderError(
            f"temp_folder={str(folder)!r} is on {what} ({anchor}), which cannot hold files: "
            "point temp_folder at a folder on a real disk, e.g. './temp' or /tmp."
        )
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise TempFolderError(
            f"temp_folder={str(folder)!r} is not writable ({anchor} does not allow this user "
            "to create files): choose a folder you can write to, e.g. './temp'."
        )


def check_finite_objective(objective: float, when: str) -> None:
    """Refuse a non-finite training objective with what to check."""
    if not math.isfinite(objective):
        raise NonFiniteLossError(
            f"the training loss {when} is not finite; check the inputs' scale and the "
            "model's initialisation (e.g. exploding activations or log of zero)."
        )
