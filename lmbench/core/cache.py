"""On-disk Jacobian cache: memory-mapped ``.npy`` chunks of J and r for one epoch.

Used by the matrix-free engine: conjugate gradients needs J^T (J v) many times per damping
trial, and re-reading J from disk is far cheaper than recomputing it through the model. The
cache size is about ``(L*O*P + L*O) * itemsize`` bytes for L samples, O outputs, P weights
(the seed's estimate), checked against the free space before anything is written.

Every cache lives in its own fresh sub-folder of ``temp_folder`` (two runs never share files)
and is removed by ``close()``, which the trainer calls on success, on exceptions and on
KeyboardInterrupt alike.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmbench.core.checks import check_temp_folder
from lmbench.core.errors import DiskSpaceError

#: Fraction added to the raw estimate for .npy headers and file-system slack.
CACHE_OVERHEAD = 0.02


def write_array(fh: Any, array: np.ndarray) -> None:
    """Write one .npy array (a seam for tests that simulate a full disk)."""
    np.save(fh, array)


def estimate_cache_bytes(n_samples: int, n_outputs: int, n_params: int, itemsize: int = 4) -> int:
    """Bytes of one epoch's cache: the seed's formula (L*O*P + L*O) * itemsize, plus overhead."""
    raw = (n_samples * n_outputs * n_params + n_samples * n_outputs) * itemsize
    return int(raw * (1 + CACHE_OVERHEAD))


def free_bytes(folder: str | Path) -> int:
    """Free space of the file system holding ``folder`` (the nearest existing ancestor)."""
    path = Path(folder).resolve()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def check_disk_space(
    folder: str | Path,
    needed: int,
    free_fn: Callable[[str | Path], int] | None = None,
) -> None:
    """Refuse, naming the numbers and the knobs, if ``needed`` bytes do not fit in ``folder``."""
    available = (free_fn or free_bytes)(folder)
    if needed > available:
        raise DiskSpaceError(
            f"the Jacobian cache needs about {needed / 2**30:.2f} GiB in {folder} but only "
            f"{available / 2**30:.2f} GiB is free. Point temp_folder at a larger disk, use "
            "engine='streaming' (no cache; needs P x P in memory), or train on fewer samples."
        )


class JacobianCache:
    """Jacobian and residual chunks of the current epoch, memory-mapped from a private folder."""

    def __init__(self, temp_folder: str | Path, dtype: torch.dtype,
                 expected_bytes: int | None = None) -> None:
        root = Path(temp_folder)
        self.expected_bytes = expected_bytes
        self._created_root = not root.exists()
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.folder = Path(tempfile.mkdtemp(prefix="lmbench-cache-", dir=root))
        self.np_dtype = torch.empty((), dtype=dtype).numpy().dtype
        self.dtype = dtype
        self._chunks: list[tuple[Path, Path]] = []
        self._written = 0

    # writing -----------------------------------------------------------------------
    def start_epoch(self) -> None:
        """Overwrite chunks from the beginning (files of equal shape are reused)."""
        self._written = 0

    def append(self, jac: torch.Tensor, residuals: torch.Tensor) -> None:
        """Write one chunk's J (m, P) and r (m,) as .npy files (read back memory-mapped)."""
        index = self._written
        if index < len(self._chunks):
            jac_path, res_path = self._chunks[index]
        else:
            jac_path = self.folder / f"jac_{index:06d}.npy"
            res_path = self.folder / f"res_{index:06d}.npy"
            self._chunks.append((jac_path, res_path))
        for path, tensor in ((jac_path, jac), (res_path, residuals)):
            array = tensor.detach().to("cpu", self.dtype).numpy()
            existing = path.stat().st_size if path.exists() else 0
            check_disk_space(self.folder, array.nbytes + 4096 - existing)
            # Plain writes (not a writable memmap): a full disk then raises OSError, not SIGBUS.
            try:
                with path.open("wb") as fh:
                    write_array(fh, array)
            except OSError as exc:
                path.unlink(missing_ok=True)
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                    raise
                raise self._disk_full(path, array.nbytes, exc) from exc
        self._written += 1

    def _disk_full(self, path: Path, nbytes: int, exc: OSError) -> DiskSpaceError:
        """A full disk (or quota) while writing, as a DiskSpaceError with the numbers."""
        total = (f"; one epoch's cache needs about {self.expected_bytes / 2**30:.2f} GiB in all"
                 if self.expected_bytes else "")
        return DiskSpaceError(
            f"the disk filled up while writing the Jacobian cache: {path.name} needed "
            f"{nbytes / 2**20:.1f} MiB in {self.folder} ({exc.strerror or exc}){total}. Free "
            "space there, point temp_folder at a larger disk, or use engine='streaming'."
        )

    def finish_epoch(self) -> None:
        """Drop files of chunks beyond this epoch's count (the loader yielded fewer)."""
        for jac_path, res_path in self._chunks[self._written :]:
            jac_path.unlink(missing_ok=True)
            res_path.unlink(missing_ok=True)
        del self._chunks[self._written :]

    # reading -----------------------------------------------------------------------
    def gram_matvec(self, vector: torch.Tensor) -> torch.Tensor:
        """J^T (J v), streamed chunk by chunk from the memory-mapped files."""
        out = torch.zeros_like(vector)
        for jac_path, _ in self._chunks[: self._written]:
            mapped = np.load(jac_path, mmap_mode="r")
            jac = torch.from_numpy(np.array(mapped)).to(vector.device, vector.dtype)
            out.addmv_(jac.T, jac @ vector)
        return out

    @property
    def nbytes(self) -> int:
        return sum(p.stat().st_size for pair in self._chunks for p in pair if p.exists())

    def close(self) -> None:
        """Remove this run's cache folder, and ``temp_folder`` too if this run created it and
        nothing else is in it (idempotent)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self._chunks.clear()
        if self._created_root:
            # another run's cache or the user's files may be there: then keep it
            with contextlib.suppress(OSError):
                self.root.rmdir()

    def __enter__(self) -> JacobianCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



def open_cache(
    temp_folder: str | Path | None,
    dtype: torch.dtype,
    n_samples: int | None,
    n_outputs: int,
    n_params: int,
) -> JacobianCache:
    """Check the disk for one epoch of J (when the rows are known), then create the cache."""
    if temp_folder is None:
        raise ValueError("the disk cache needs temp_folder=...")
    check_temp_folder(temp_folder)
    needed = None
    if n_samples is not None:
        itemsize = torch.finfo(dtype).bits // 8
        needed = estimate_cache_bytes(n_samples, n_outputs, n_params, itemsize)
        check_disk_space(temp_folder, needed)
    return JacobianCache(temp_folder, dtype, needed)
