"""The tracking store's schema: every name a writer logs and a report reads.

Writers (``lmbench.tracking``, the harness, the limits and performance scripts) and readers
(``lmbench.reports``) import the names from here, so a renamed tag, param, metric or series is
renamed on both sides at once. Engine names and the seed's limits come from
``lmbench.core.engines`` (re-exported, not restated).

Layout of a run as the reports read it (``mlflow.search_runs`` columns): ``tags.<tag>``,
``params.<param>`` (flattened config keys such as ``trainer.mu_init``), ``metrics.<metric>``;
per-epoch series are metrics logged with ``step`` = epoch and read as metric histories.
"""

from __future__ import annotations

# Re-exported: the engine vocabulary (tag ``engine`` of limits runs holds an ``ENGINES`` variant)
# and the seed's documented limits.
from lmbench.core.engines import ENGINE_NAMES as ENGINE_NAMES
from lmbench.core.engines import ENGINES as ENGINES
from lmbench.core.engines import SEED_GPU_BYTES as SEED_GPU_BYTES
from lmbench.core.engines import SEED_MAX_ROWS as SEED_MAX_ROWS
from lmbench.core.engines import SEED_MAX_WEIGHTS as SEED_MAX_WEIGHTS

# A weight penalty's series (``TrainingHistory.regularization_series``): F = E + lambda E_W,
# lambda, the Bayesian alpha and beta, gamma (effective parameters) and E_W = 1/2 ||w||^2.
from lmbench.core.history import REGULARIZATION_SERIES as REGULARIZATION_SERIES

# ---------------------------------------------------------------------- run kinds (tag ``kind``)
#: Runs without a ``kind`` tag are benchmark runs (a method trained on a dataset).
KIND_BENCHMARK = "benchmark"
KIND_LIMITS = "limits"
KIND_PERFORMANCE = "performance"
KIND_PAPER_CHECK = "paper_check"
#: Quality at scale (``lmbench.bench.quality_at_scale``): one run per trained network.
KIND_SCALE = "scale"
RUN_KINDS = (KIND_BENCHMARK, KIND_LIMITS, KIND_PERFORMANCE, KIND_PAPER_CHECK, KIND_SCALE)
#: The parent run of a --multirun (a sweep or a named experiment): its jobs nest under it.
KIND_SWEEP = "sweep"
#: One grid point of the grid searches older stores hold (tuning is Optuna's now:
#: ``KIND_TUNING_TRIAL``); still skipped by readers that count results.
KIND_GRID_TRIAL = "grid_trial"
#: One tuning trial (the default configuration or one sampled from the search space) of a
#: method's hyperparameter search, nested under its job's run.
KIND_TUNING_TRIAL = "tuning_trial"
#: Runs that group or detail other runs and are not results themselves; readers that count
#: results skip them.
GROUPING_KINDS = (KIND_SWEEP, KIND_GRID_TRIAL, KIND_TUNING_TRIAL)

# ---------------------------------------------------------------------- tags set on every run
TAG_GIT_COMMIT = "git_commit"
TAG_GIT_DIRTY = "git_dirty"
TAG_LMBENCH_VERSION = "lmbench_version"
TAG_TORCH_VERSION = "torch_version"
TAG_MLFLOW_VERSION = "mlflow_version"
TAG_PYTHON_VERSION = "python_version"
TAG_DEVICE = "device"
TAG_DATASET_HASH = "dataset_hash"
TAG_SWEEP_ID = "sweep_id"
TAG_ERROR = "error"
#: MLflow's own tag for nesting a run under a parent run in the UI.
TAG_PARENT_RUN_ID = "mlflow.parentRunId"
#: MLflow's own tag for the source commit (shown in the UI).
TAG_MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"

# ---------------------------------------------------------------------- tags set by the harness
TAG_KIND = "kind"
TAG_METHOD = "method"
TAG_DATASET = "dataset"
TAG_TASK = "task"
TAG_MODEL = "model"
TAG_PRIMARY_METRIC = "primary_metric"
TAG_STOP_REASON = "stop_reason"
#: LM runs: the loss LM minimised (``loss: auto`` resolved by task).
TAG_LOSS = "loss"
#: Tuned methods: the selected trial's settings, one tag per setting (``best.<name>``).
TAG_BEST_PREFIX = "best."
#: Limits runs: the engine variant (one of ``ENGINES``), whether it was measured, the device.
#: Tuned LM job runs: the engine (one of ``ENGINE_NAMES``, ``auto`` resolved) of the selected
#: trial.
TAG_ENGINE = "engine"
TAG_MEASURED = "measured"
TAG_DEVICE_NAME = "device_name"
#: Limits runs imported from a measurement file: that file's name.
TAG_SOURCE = "source"
#: Performance runs: the implementation (one of ``IMPLEMENTATIONS``).
TAG_IMPLEMENTATION = "implementation"
#: Paper checks: the problem, and its settings as ``check.<name>`` tags.
TAG_PROBLEM = "problem"
TAG_CHECK_PREFIX = "check."
#: Quality-at-scale runs: which network and trainer (one of ``SCALE_ARMS``).
TAG_ARM = "arm"
#: Runs with an MLflow model: its URI (``models:/<id>``, for ``mlflow.pyfunc.load_model``).
TAG_MODEL_URI = "model_uri"
#: Tuning trials: the trial's number (0 = the default configuration).
TAG_TRIAL = "trial"
#: Tuning trials: ``true`` on the trial the tuning selected.
TAG_SELECTED = "selected"
#: Tuning trials: ``default`` (the method's default configuration) or ``sampled``.
TAG_TRIAL_ORIGIN = "trial_origin"
TRIAL_ORIGIN_DEFAULT = "default"
TRIAL_ORIGIN_SAMPLED = "sampled"
#: Tuning trials: ``true`` when the trial reached its time limit (its model is the one trained
#: until then, recorded and scored like any other trial).
TAG_TIMED_OUT = "timed_out"
#: Every job run: hash of its code-relevant configuration (what a resumed study compares to
#: skip jobs already FINISHED, and what reports use to count reruns of one configuration once).
TAG_CONFIG_HASH = "config_hash"
#: Study runs: the study tier (quick, standard, full).
TAG_TIER = "tier"

# ---------------------------------------------------------------------- params
PARAM_SEED = "seed"
#: Tuned job runs: the selected trial's hyper-parameters, one param per setting
#: (``selected.<name>``, e.g. ``selected.hidden`` = ``[32, 16]``), also kept as the artifact
#: ``SELECTED_PARAMS_ARTIFACT``: every table can be recomputed from the run table alone.
PARAM_SELECTED_PREFIX = "selected."
PARAM_MU_INIT = "trainer.mu_init"
PARAM_DAMPING_COEF = "trainer.demping_coef"
PARAM_HIDDEN = "model.hidden"
#: Param prefixes that make two runs of a method different configurations (not seeds).
PARAM_CONFIG_PREFIXES = ("trainer.", "model.")
#: Limits and performance runs: the problem's size.
PARAM_N_PARAMS = "n_params"
PARAM_N_ROWS = "n_rows"
PARAM_N_OUTPUTS = "n_outputs"
PARAM_N_RESIDUALS = "n_residuals"
PARAM_CHUNK_ROWS = "chunk_rows"
PARAM_DTYPE = "dtype"
PARAM_TRIALS = "trials"

# ---------------------------------------------------------------------- scalar metrics
#: Test-split scores are logged as ``test_<metric name>`` (see :func:`test_metric`).
TEST_METRIC_PREFIX = "test_"
METRIC_N_PARAMETERS = "n_parameters"
METRIC_TRAIN_TIME = "train_time_s"
METRIC_WALL_TIME = "wall_time_s"
METRIC_PEAK_RSS = "peak_rss_bytes"
METRIC_EPOCHS = "epochs"
METRIC_FINAL_MU = "final_mu"
METRIC_BEST_EPOCH = "best_epoch"
METRIC_N_SAMPLES = "n_samples"
#: LM runs: validation loss of the weights the run returns (the best epoch's under patience,
#: else the last epoch's). The ``val_loss`` series' latest value is the last epoch's, which is
#: not the model's validation loss when the best weights were restored.
METRIC_BEST_VAL_LOSS = "best_val_loss"
# sweep parent runs
METRIC_SWEEP_JOBS = "n_jobs"
METRIC_SWEEP_FINISHED = "n_finished"
METRIC_SWEEP_FAILED = "n_failed"
METRIC_SWEEP_KILLED = "n_killed"
METRIC_SWEEP_UNFINISHED = "n_unfinished"
#: Jobs not trained because a FINISHED run of their configuration was already in the store.
METRIC_SWEEP_SKIPPED = "n_skipped"
# tuning trial runs (the trial's validation scores are ``val_<metric name>``)
VAL_METRIC_PREFIX = "val_"
METRIC_VAL_SCORE = "val_score"
METRIC_FIT_TIME = "fit_time_s"
METRIC_BEST_ITERATION = "best_iteration"
# tuning (default configuration + K sampled trials, selected on validation)
#: Test scores of the default configuration's model, beside the tuned model's ``test_*``.
DEFAULT_TEST_METRIC_PREFIX = "default_test_"
METRIC_DEFAULT_VAL_SCORE = "default_val_score"
METRIC_N_TRIALS = "n_trials"
METRIC_N_TIMED_OUT = "n_timed_out_trials"
#: Tuned runs: the selected model's size counts (``BaselineResult.model_size``) as
#: ``model_size_<count>`` (see :func:`model_size_metric`): ``n_parameters`` for networks; for
#: tree ensembles ``n_trees``, ``n_leaves``, ``n_internal_nodes``, ``n_nodes``,
#: ``n_leaf_values`` and (CatBoost) ``n_split_conditions``.
MODEL_SIZE_METRIC_PREFIX = "model_size_"
MODEL_SIZE_TREES = "n_trees"
MODEL_SIZE_LEAVES = "n_leaves"
MODEL_SIZE_INTERNAL_NODES = "n_internal_nodes"
#: Tuned job runs: the number of the selected trial (0 = the default configuration).
METRIC_SELECTED_TRIAL = "selected_trial"
#: Every dataset job run: rows of its test split (how far one error moves a score).
METRIC_N_TEST_ROWS = "n_test_rows"
#: Tuned job runs: one record per trial on the job run itself, ``trial.<n>.<field>``
#: (:func:`trial_record`): the metrics ``epochs`` (boosting rounds for GBDT), ``best_epoch``
#: (best epoch, or boosting rounds kept), ``fit_time_s``, ``timed_out`` (1/0) and
#: ``val_score``, and the tag ``stop_reason``. The selected trial's values are also the job
#: run's ``epochs`` and ``best_epoch`` metrics and its ``stop_reason`` tag.
TRIAL_RECORD_PREFIX = "trial."
TRIAL_EPOCHS = "epochs"
TRIAL_BEST_EPOCH = "best_epoch"
TRIAL_FIT_TIME = "fit_time_s"
TRIAL_TIMED_OUT = "timed_out"
TRIAL_VAL_SCORE = "val_score"
TRIAL_STOP_REASON = "stop_reason"
TRIAL_METRIC_FIELDS = (TRIAL_EPOCHS, TRIAL_BEST_EPOCH, TRIAL_FIT_TIME, TRIAL_TIMED_OUT,
                       TRIAL_VAL_SCORE)
# limits runs
METRIC_PEAK_MEMORY = "peak_memory_bytes"
METRIC_PREDICTED_MEMORY = "predicted_memory_bytes"
METRIC_PREDICTED_DISK = "predicted_disk_bytes"
METRIC_PREDICTED_FLOPS = "predicted_flops"
METRIC_BUDGET = "budget_bytes"
METRIC_MEMORY_RATIO = "memory_ratio"
METRIC_EPOCH_TIME = "epoch_time_s"
METRIC_TIME_JACOBIAN = "time_jacobian_s"
METRIC_TIME_SYSTEM = "time_system_s"
METRIC_TIME_SOLVE = "time_solve_s"
# performance runs
METRIC_RATIO_TO_FLOOR = "ratio_to_floor"
METRIC_RATIO_TO_REFERENCE = "ratio_to_reference"
# paper checks
METRIC_SUCCESS_RATE = "success_rate"
METRIC_N_STARTS = "n_starts"
METRIC_EPOCHS_MEAN = "epochs_mean"
METRIC_EPOCHS_STD = "epochs_std"
METRIC_EPOCHS_MEDIAN = "epochs_median"
METRIC_TIME_MEAN = "time_mean_s"
METRIC_TIME_STD = "time_std_s"
METRIC_TIME_TOTAL = "time_total_s"
METRIC_FINAL_MSE_MEDIAN = "final_mse_median"
METRIC_MSE_AT_EPOCH_50_MEDIAN = "mse_at_epoch_50_median"
#: Mini-batch paper checks run side by side with torch-levenberg-marquardt on the same batches:
#: per implementation, the median final training MSE (full pass) and mean wall time over starts;
#: the reference's median ``loss_epoch`` (its README's figure: mean of the last epoch's batch
#: losses).
METRIC_LMBENCH_FINAL_MSE = "lmbench_final_mse_median"
METRIC_LMBENCH_TIME = "lmbench_time_mean_s"
METRIC_REFERENCE_FINAL_MSE = "torch_levenberg_marquardt_final_mse_median"
METRIC_REFERENCE_LOSS_EPOCH = "torch_levenberg_marquardt_loss_epoch_median"
METRIC_REFERENCE_TIME = "torch_levenberg_marquardt_time_mean_s"

# quality-at-scale runs (test scores: ``test_accuracy``, ``test_cross_entropy``)
#: Training loss (mean cross-entropy) of the weights a run returns, on the whole train split.
METRIC_FINAL_TRAIN_LOSS = "final_train_loss"
#: CPU time of the process while the run trained (below its wall time on a shared core).
METRIC_CPU_TIME = "cpu_time_s"
#: The matrix-free engine's peak memory above model and data, per million weights.
METRIC_BYTES_PER_MILLION_WEIGHTS = "bytes_per_million_weights"
PARAM_HIDDEN_LAYERS = "hidden"
PARAM_CG_MAX_ITER = "cg_max_iter"
PARAM_N_TRAIN_ROWS = "n_train_rows"

# ---------------------------------------------------------------------- per-epoch series
SERIES_TRAIN_LOSS = "train_loss"
SERIES_VAL_LOSS = "val_loss"
SERIES_MU = "mu"
SERIES_EPOCH_TIME = "epoch_time_s"
#: Damping trials (loss evaluations) per epoch.
SERIES_DAMPING_TRIALS = "damping_trials"
SERIES_GRADIENT_NORM = "gradient_norm"
SERIES_GAIN_RATIO = "gain_ratio"
SERIES_TIME_JACOBIAN = "time_jacobian_s"
SERIES_TIME_SYSTEM = "time_system_s"
SERIES_TIME_SOLVE = "time_solve_s"
SERIES_TIME_EVALUATE = "time_evaluate_s"
#: Older names of a series, still read from existing stores (first found wins).
SERIES_ALIASES: dict[str, tuple[str, ...]] = {SERIES_DAMPING_TRIALS: ("trials",)}
#: Paper checks: one value per random start (step = start index).
SERIES_START_EPOCHS = "start_epochs"
SERIES_START_TIME = "start_time_s"
SERIES_START_SUCCESS = "start_success"
SERIES_START_FINAL_MSE = "start_final_mse"
#: Side-by-side paper checks: the reference library's value per start.
SERIES_START_REFERENCE_FINAL_MSE = "start_reference_final_mse"
SERIES_START_REFERENCE_TIME = "start_reference_time_s"

# ---------------------------------------------------------------------- artifacts
CONFIG_ARTIFACT = "config.yaml"
ERROR_ARTIFACT = "error.txt"
WEIGHTS_ARTIFACT_DIR = "weights"
DATASET_HASHES_ARTIFACT = "dataset_hashes.json"
LIMITS_POINT_ARTIFACT = "limits_point.yaml"
TRAINING_REPORT_ARTIFACT = "training_report.png"
#: A tuned run's Optuna trials (settings, validation scores, fit times), the selected trial
#: and its settings. Stores written before it was named so hold it as ``grid_search.json``.
TUNING_ARTIFACT = "tuning.json"
#: Tuned job runs: the selected trial's hyper-parameters (as the ``selected.*`` params).
SELECTED_PARAMS_ARTIFACT = "selected_params.yaml"
#: The MLflow model (``mlflow.pytorch`` / ``mlflow.xgboost`` / ``mlflow.catboost`` flavour,
#: loadable with ``mlflow.pyfunc.load_model``) of a run: ``runs:/<run id>/model``.
MODEL_ARTIFACT_PATH = "model"
#: Sweep parent runs: the sweep's composed config (without the ``hydra`` node).
SWEEP_CONFIG_ARTIFACT = "sweep_config.yaml"

# ---------------------------------------------------------------------- dataset inputs
#: ``mlflow.log_input`` contexts of a run's split.
INPUT_CONTEXT_TRAIN = "train"
INPUT_CONTEXT_VALIDATION = "validation"
INPUT_CONTEXT_TEST = "test"

# ---------------------------------------------------------------------- tag vocabularies
#: Performance runs: lmbench, the reference library, a plain torch.func LM, the FLOP floor.
IMPLEMENTATIONS = ("lmbench", "torch_levenberg_marquardt", "plain_vmap", "floor")
#: Quality-at-scale runs: matrix-free LM and Adam on the large network, Cholesky and
#: matrix-free LM on the largest network Cholesky LM trains in reasonable time, and one
#: matrix-free memory point (``lmbench.bench.matrix_free``).
ARM_MATRIX_FREE_LARGE = "matrix_free_large"
ARM_ADAM_LARGE = "adam_large"
ARM_CHOLESKY_SMALL = "cholesky_small"
ARM_MATRIX_FREE_SMALL = "matrix_free_small"
ARM_MEMORY_POINT = "matrix_free_memory"
SCALE_ARMS = (ARM_MATRIX_FREE_LARGE, ARM_ADAM_LARGE, ARM_CHOLESKY_SMALL, ARM_MATRIX_FREE_SMALL,
              ARM_MEMORY_POINT)
#: The benchmark methods (tag ``method``), in the comparison's column order.
METHOD_LM = "lm"
METHOD_XGBOOST = "xgboost"
METHOD_CATBOOST = "catboost"
METHOD_ADAM = "adam"
#: The reference LM library (torch-levenberg-marquardt) trained on the same splits.
METHOD_TLM = "tlm"
METHODS = (METHOD_LM, METHOD_XGBOOST, METHOD_CATBOOST, METHOD_ADAM, METHOD_TLM)

# ---------------------------------------------------------------------- reader columns
TAGS_PREFIX = "tags."
PARAMS_PREFIX = "params."
METRICS_PREFIX = "metrics."


def test_metric(name: str) -> str:
    """The metric name of a test-split score: ``test_<name>``."""
    return f"{TEST_METRIC_PREFIX}{name}"


test_metric.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def trial_record(number: int, field: str) -> str:
    """The job-run metric (or tag, for ``stop_reason``) of trial ``number``'s ``field``:
    ``trial.<number>.<field>``."""
    return f"{TRIAL_RECORD_PREFIX}{number}.{field}"


def selected_param(name: str) -> str:
    """The job-run param of the selected trial's setting ``name``: ``selected.<name>``."""
    return f"{PARAM_SELECTED_PREFIX}{name}"


def default_test_metric(name: str) -> str:
    """The metric name of the default configuration's test score: ``default_test_<name>``."""
    return f"{DEFAULT_TEST_METRIC_PREFIX}{name}"


def model_size_metric(count: str) -> str:
    """The metric name of a tuned run's model-size count: ``model_size_<count>``."""
    return f"{MODEL_SIZE_METRIC_PREFIX}{count}"


def tag_column(name: str) -> str:
    """The run-table column of tag ``name`` (``tags.<name>``)."""
    return f"{TAGS_PREFIX}{name}"


def param_column(name: str) -> str:
    """The run-table column of param ``name`` (``params.<name>``)."""
    return f"{PARAMS_PREFIX}{name}"


def metric_column(name: str) -> str:
    """The run-table column of metric ``name`` (``metrics.<name>``)."""
    return f"{METRICS_PREFIX}{name}"


def series_names(name: str) -> tuple[str, ...]:
    """``name`` and the older names it was logged under, in the order a reader tries them."""
    return (name, *SERIES_ALIASES.get(name, ()))
