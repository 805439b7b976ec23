"""Streaming LM at scale on the largest packaged real dataset, and data-parallel scaling on CPU.

Two checks of the large-data engines, each run in a fresh subprocess so that peak memory is
the run's own:

* **streaming**: UCI Census-Income (KDD) (``prepare_dataset("census_income", seed=0)``, all
  three splits, ~299k rows, 212 features, 2 one-hot outputs) is written once to ``.npy`` files
  and served by a DataLoader over ``np.load(..., mmap_mode="r")`` whose sampler yields one
  whole chunk (a slice of rows) per call (``lmbench.data.memmap``).
  ``train_distributed_levenberg(engine="streaming")`` trains a 212-9-2 tanh+softmax MLP
  (P = 1937) for 2 epochs on the first ``--rows`` rows. The
  child reports peak RSS (``ru_maxrss``), the peak anonymous RSS (sampled from
  /proc/self/status, i.e. without the memory-mapped data pages), the C heap peak above the start
  of training (``lmbench.bench.memory.PeakMemoryInUse``), the data bytes and each epoch's time
  split (history.time_jacobian / time_system / time_solve / time_evaluate).
* **data parallel**: ``lmbench.examples.data_parallel`` as 1 process (2 threads, and 1 thread)
  and under ``torchrun --standalone --nproc-per-node 2`` (gloo, 1 thread per rank): the ratio
  of epoch times.

Commands::

    python -m lmbench.bench.scale all --workdir /tmp/lmbench-scale   # everything + markdown
    python -m lmbench.bench.scale prepare --workdir W                # write W/x.npy, W/y.npy
    python -m lmbench.bench.scale stream --workdir W --rows 50000    # one run, JSON (child)
    python -m lmbench.bench.scale dp --rows 40000                    # the DP comparison
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lmbench.bench.markdown import scale_markdown
from lmbench.bench.memory import AnonRssPeak, PeakMemoryInUse, status_kib
from lmbench.data.memmap import CHUNK_ROWS, MemmapRows, chunk_loader

DATASET = "census_income"
DEFAULT_WORKDIR = Path("/tmp/lmbench-scale")
HIDDEN = 9


# ------------------------------------------------------------------------------ the data
def prepare(workdir: Path, seed: int = 0) -> dict[str, Any]:
    """Prepare census_income (all splits, in train/val/test order) into ``workdir``."""
    from lmbench.data import prepare_dataset

    started = time.perf_counter()
    data = prepare_dataset(DATASET, seed=seed)
    x = np.concatenate([data.x_train, data.x_val, data.x_test]).astype(np.float32)
    y = np.concatenate([data.y_train, data.y_val, data.y_test]).astype(np.float32)
    workdir.mkdir(parents=True, exist_ok=True)
    np.save(workdir / "x.npy", x)
    np.save(workdir / "y.npy", y)
    meta = {
        "dataset": DATASET,
        "seed": seed,
        "rows": int(x.shape[0]),
        "train_rows": int(data.x_train.shape[0]),
        "features": int(x.shape[1]),
        "outputs": int(y.shape[1]),
        "hash": data.hash,
        "prepare_s": round(time.perf_counter() - started, 2),
        "bytes": int(x.nbytes + y.nbytes),
    }
    (workdir / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


# ----------------------------------------------------------------------- streaming run
def streaming_model(features: int, outputs: int, hidden: int = HIDDEN) -> nn.Module:
    """features -> hidden (tanh) -> outputs (softmax): P = hidden*(f+1) + o*(hidden+1)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, outputs), nn.Softmax(dim=1)
    )


def stream(
    workdir: Path,
    rows: int | None,
    epochs: int = 2,
    chunk: int = CHUNK_ROWS,
    hidden: int = HIDDEN,
    threads: int = 2,
) -> dict[str, Any]:
    """One streaming run in this process (run it in a fresh one); a JSON-able summary."""
    from lmbench import train_distributed_levenberg
    from lmbench.core import EpochInfo, TrainingHistory

    torch.set_num_threads(threads)
    dataset = MemmapRows(workdir, rows)
    loader = chunk_loader(dataset, chunk)
    model = streaming_model(dataset.x.shape[1], dataset.y.shape[1], hidden)
    n_params = sum(p.numel() for p in model.parameters())
    captured: list[TrainingHistory] = []

    def keep_history(info: EpochInfo) -> None:
        if not captured:
            captured.append(info.history)

    rss_before_kib = status_kib("VmRSS")
    maxrss_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with PeakMemoryInUse("cpu") as heap, AnonRssPeak() as anon:
        train_distributed_levenberg(
            model,
            loader,
            nn.MSELoss(),
            min_error=0.0,
            max_epochs=epochs,
            engine="streaming",
            metrics_callbacks=[keep_history],
        )
    wall = time.perf_counter() - started
    history = captured[0]
    per_epoch = []
    for k in range(1, history.epochs + 1):
        split = {
            name: round(getattr(history, name)[k], 3)
            for name in ("time_jacobian", "time_system", "time_solve", "time_evaluate")
        }
        epoch_time = history.epoch_time[k]
        per_epoch.append(
            {
                "epoch": k,
                "epoch_time_s": round(epoch_time, 3),
                "trials": history.trials[k],
                "accepted": history.accepted[k],
                "loss": history.loss[k],
                **split,
                "other_s": round(epoch_time - sum(split.values()), 3),
            }
        )
    return {
        "rows": len(dataset),
        "features": int(dataset.x.shape[1]),
        "outputs": int(dataset.y.shape[1]),
        "params": n_params,
        "chunk_rows": chunk,
        "threads": threads,
        "data_bytes": dataset.nbytes,
        "rss_before_mib": round(rss_before_kib / 1024, 1),
        "maxrss_before_mib": round(maxrss_before_kib / 1024, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_anon_rss_mib": round(anon.peak_kib / 1024, 1),
        "anon_rss_before_mib": round(anon.start_kib / 1024, 1),
        "heap_peak_mib": round(heap.bytes / 2**20, 1),
        "heap_method": heap.method,
        "wall_s": round(wall, 2),
        "loss": history.loss,
        "epochs": per_epoch,
        "stop_reason": history.stop_reason,
    }


def run_child(args: Sequence[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """``python -m lmbench.bench.scale ARGS`` in a fresh process; its last stdout line (JSON)."""
    done = subprocess.run(
        [sys.executable, "-m", "lmbench.bench.scale", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------- data parallel
_EPOCH_TIME = re.compile(r"epoch_time=([0-9.]+)s")


def _data_parallel_epoch(ranks: int, threads: int, dp_args: Sequence[str]) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if ranks == 1:
        command = [sys.executable, "-m", "lmbench.examples.data_parallel", *dp_args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc-per-node", str(ranks), "-m", "lmbench.examples.data_parallel",
                   *dp_args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    match = _EPOCH_TIME.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return float(match.group(1))


def data_parallel(
    rows: int, features: int, hidden: int, epochs: int, dtype: str, repeats: int
) -> dict[str, Any]:
    """Epoch time of 1 process (2 and 1 threads) and 2 gloo ranks (1 thread each); min of runs."""
    dp_args = ["--rows", str(rows), "--features", str(features), "--hidden", str(hidden),
               "--epochs", str(epochs), "--dtype", dtype]
    setups = {"1 process x 2 threads": (1, 2), "1 process x 1 thread": (1, 1),
              "2 gloo ranks x 1 thread": (2, 1)}
    best = {name: float("inf") for name in setups}
    for _ in range(repeats):
        for name, (ranks, threads) in setups.items():
            best[name] = min(best[name], _data_parallel_epoch(ranks, threads, dp_args))
    params = hidden * (features + 1) + 2 * (hidden + 1)
    return {
        "rows": rows,
        "features": features,
        "hidden": hidden,
        "params": params,
        "epochs": epochs,
        "dtype": dtype,
        "repeats": repeats,
        "epoch_time_s": {name: round(value, 4) for name, value in best.items()},
        "ratio_2ranks_over_1proc_2threads": round(
            best["2 gloo ranks x 1 thread"] / best["1 process x 2 threads"], 3
        ),
        "ratio_2ranks_over_1proc_1thread": round(
            best["2 gloo ranks x 1 thread"] / best["1 process x 1 thread"], 3
        ),
    }


# ------------------------------------------------------------------------------- report
def growth(small: dict[str, Any], large: dict[str, Any]) -> dict[str, float]:
    """Percent growth of each memory measure from the small to the large run."""

    def pct(a: float, b: float) -> float:
        return round(100.0 * (b - a) / a, 1)

    mib = 2**20
    return {
        "peak_rss": pct(small["peak_rss_mib"], large["peak_rss_mib"]),
        "peak_rss_minus_data": pct(
            small["peak_rss_mib"] - small["data_bytes"] / mib,
            large["peak_rss_mib"] - large["data_bytes"] / mib,
        ),
        "peak_anon_rss": pct(small["peak_anon_rss_mib"], large["peak_anon_rss_mib"]),
        "heap_peak": pct(small["heap_peak_mib"], large["heap_peak_mib"]),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: prepare | stream | dp | all (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m lmbench.bench.scale",
        description="Streaming LM at scale (census_income) and data-parallel scaling.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_prep = sub.add_parser("prepare", help="write census_income to WORKDIR/x.npy, y.npy")
    p_stream = sub.add_parser("stream", help="one streaming run, JSON on stdout")
    p_dp = sub.add_parser("dp", help="1 process vs 2 gloo ranks (torchrun), JSON on stdout")
    p_all = sub.add_parser("all", help="prepare, stream at each --rows, dp; markdown + JSON")
    for p in (p_prep, p_stream, p_all):
        p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    for p in (p_stream, p_all):
        p.add_argument("--epochs", type=int, default=2)
        p.add_argument("--chunk", type=int, default=CHUNK_ROWS)
        p.add_argument("--hidden", type=int, default=HIDDEN)
        p.add_argument("--threads", type=int, default=2)
    p_stream.add_argument("--rows", type=int, default=None, help="first ROWS rows (all if unset)")
    p_all.add_argument("--rows", default="50000,all", help="comma list; 'all' = every row")
    p_all.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    p_all.add_argument("--skip-dp", action="store_true")
    for p in (p_dp, p_all):
        p.add_argument("--dp-rows", type=int, default=40000)
        p.add_argument("--dp-features", type=int, default=16)
        p.add_argument("--dp-hidden", type=int, default=48)
        p.add_argument("--dp-epochs", type=int, default=3)
        p.add_argument("--dp-dtype", default="float32", choices=["float32", "float64"])
        p.add_argument("--dp-repeats", type=int, default=3)
    args = parser.parse_args(argv)

    if args.command == "prepare":
        print(json.dumps(prepare(args.workdir)))
    elif args.command == "stream":
        print(json.dumps(stream(args.workdir, args.rows, args.epochs, args.chunk, args.hidden,
                                args.threads)))
    elif args.command == "dp":
        print(json.dumps(data_parallel(args.dp_rows, args.dp_features, args.dp_hidden,
                                       args.dp_epochs, args.dp_dtype, args.dp_repeats)))
    else:
        if not (args.workdir / "x.npy").exists():
            prepared = run_child(["prepare", "--workdir", str(args.workdir)])
            print(json.dumps(prepared), file=sys.stderr, flush=True)
        meta = json.loads((args.workdir / "meta.json").read_text())
        result: dict[str, Any] = {"meta": meta, "streaming": []}
        for rows in args.rows.split(","):
            child = ["stream", "--workdir", str(args.workdir), "--epochs", str(args.epochs),
                     "--chunk", str(args.chunk), "--hidden", str(args.hidden),
                     "--threads", str(args.threads)]
            if rows != "all":
                child += ["--rows", rows]
            result["streaming"].append(run_child(child))
            print(f"streamed {result['streaming'][-1]['rows']} rows", file=sys.stderr, flush=True)
        result["growth"] = growth(result["streaming"][0], result["streaming"][-1])
        if not args.skip_dp:
            result["data_parallel"] = data_parallel(args.dp_rows, args.dp_features,
                                                    args.dp_hidden, args.dp_epochs,
                                                    args.dp_dtype, args.dp_repeats)
        load = os.getloadavg()
        result["loadavg"] = [round(v, 2) for v in load]
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2))
        print(scale_markdown(result))


if __name__ == "__main__":
    main()
