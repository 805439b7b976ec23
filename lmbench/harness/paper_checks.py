"""Published-results checks from the command line: every (or the named) problem, one run each.

    python -m lmbench.harness.paper_checks [--problems xor parity3 ...] [--starts 50]
    lmbench-run +experiment=paper_checks        # the same runs through Hydra (job=paper_check)

Both compose the same config (``conf/job/paper_check.yaml``) and call the ``paper_check``
runner (``lmbench.harness.runners.paper_check``); the problems live in
``lmbench.data.problems``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig

from lmbench.data.problems import PROBLEMS
from lmbench.harness.runners.paper_check import run_paper_checks
from lmbench.paths import CONF_DIR
from lmbench.tracking import Tracker, schema, tracker_from_config


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """The same composed config ``lmbench-run`` would build (job=paper_check + overrides)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=["job=paper_check", *overrides])


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m lmbench.harness.paper_checks``: every (or the named) check, one run each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--starts", type=int, default=None,
                        help="random starts per problem (default: 50; sinc 3)")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="epochs per start (default: 1000; sinc_minibatch 50)")
    parser.add_argument("--tracking-uri", default=None,
                        help="store URI (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    parser.add_argument("--experiment-name", default="paper_checks")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. seed=1")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in args.problems:
        overrides = [f"job.problem={name}", f"tracking.experiment_name={args.experiment_name}"]
        if args.starts is not None:
            overrides.append(f"job.starts={args.starts}")
        if args.max_epochs is not None:
            overrides.append(f"job.max_epochs={args.max_epochs}")
        if args.tracking_uri:
            overrides.append(f"tracking.tracking_uri={args.tracking_uri}")
        cfg = compose_config([*overrides, *args.overrides])

        def factory(cfg: DictConfig = cfg, **kwargs: Any) -> Tracker:
            return tracker_from_config(cfg.tracking, **kwargs)

        outcome = run_paper_checks(cfg, factory)
        m = outcome.extra_metrics
        print(
            f"{name:9s} success {m['success_rate']:.0%} of {int(m['n_starts'])}  "
            f"epochs {m['epochs_mean']:.1f} +- {m['epochs_std']:.1f}  "
            f"time {m['time_mean_s']:.3f} +- {m['time_std_s']:.3f} s  "
            f"final MSE median {m['final_mse_median']:.3g}  run {outcome.run_id}",
            flush=True,
        )
        if schema.METRIC_REFERENCE_FINAL_MSE in m:
            print(
                f"{'':9s} lmbench final MSE {m[schema.METRIC_LMBENCH_FINAL_MSE]:.3g} in "
                f"{m[schema.METRIC_LMBENCH_TIME]:.2f} s;  torch-levenberg-marquardt final MSE "
                f"{m[schema.METRIC_REFERENCE_FINAL_MSE]:.3g} (loss_epoch "
                f"{m[schema.METRIC_REFERENCE_LOSS_EPOCH]:.3g}) in "
                f"{m[schema.METRIC_REFERENCE_TIME]:.2f} s  (medians / means over starts)",
                flush=True,
            )


if __name__ == "__main__":
    main()
