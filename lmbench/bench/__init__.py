"""Benchmarking code: one-point measurements, the memory meter, timing, the reference LM, the
GEMM + Cholesky floor, comparisons with other libraries, scale runs, the CI speed gate and the
GPU check.

Modules (import them directly; this package imports nothing, so that the light ones stay light):

* ``memory``: the one peak-memory meter (C heap / CUDA allocator, RSS, anonymous RSS);
* ``timing``: device sync, timed calls, best of repeats, other processes' load;
* ``floor``: the GEMM + Cholesky floor, also the speed gate's calibration kernel;
* ``reference``: the plain-torch seed-rule LM compared against, and ``LMSettings``;
* ``workloads``: the synthetic MLP problems;
* ``implementations``: one timed epoch per implementation (lmbench, torch-levenberg-marquardt,
  plain vmap, floor);
* ``results``, ``performance``, ``markdown``: the side-by-side comparison and its tables
  (``python -m lmbench.bench.performance``);
* ``measure``: one epoch of one engine at one size (``python -m lmbench.bench.measure``);
* ``scale``: streaming at scale and data-parallel scaling (``python -m lmbench.bench.scale``);
* ``gate``: the CI speed gate (``python -m lmbench.bench.gate``);
* ``gpu_check``: the GPU limits check (``python -m lmbench.bench.gpu_check``);
* ``matrix_free``: the matrix-free engine's memory against P and epoch time on the CPU
  (``python -m lmbench.bench.matrix_free scale``); ``gpu_matrix_free``: its GPU sibling, the
  largest P within a budget and epoch times at 1M and 10M weights.
* ``quality_at_scale`` (with ``quality_arms``): matrix-free LM on a ~1M-weight MLP against Adam
  at equal wall time and Cholesky LM on the largest network it trains in time, on ``letter``
  (``python -m lmbench.bench.quality_at_scale --out DIR``; MLflow experiment ``scale``).
"""
