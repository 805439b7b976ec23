"""Trained models as MLflow models: ``mlflow.pytorch`` for networks, ``mlflow.xgboost`` and
``mlflow.catboost`` for the GBDT baselines, each with a signature and an input example, so that
``mlflow.pyfunc.load_model(model_uri)`` serves them.

MLflow 3 stores a model as a *logged model* linked to the run (``models:/<model id>``), not
under the run's artifacts; the run gets its URI as tag ``model_uri``. The pip requirements are
given (the installed versions) rather than inferred, which would load the model in a
subprocess (seconds per job). Measured on the 2-core machine: ~0.15 s per job for a small
network or a GBDT once the flavour is imported (the first model of a process pays ~1 s of
imports).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmbench.tracking.provenance import package_version
from lmbench.tracking.schema import MODEL_ARTIFACT_PATH
from lmbench.tracking.store import process_tracking_uri

__all__ = ["flavor_of", "log_model", "predict_like_pyfunc"]


def flavor_of(model: Any) -> str | None:
    """``pytorch``, ``xgboost`` or ``catboost`` for a model MLflow can log; else ``None``."""
    module = type(model).__module__ or ""
    if module.startswith("xgboost"):
        return "xgboost"
    if module.startswith("catboost"):
        return "catboost"
    try:
        from torch import nn
    except ImportError:  # pragma: no cover - torch is a dependency
        return None
    return "pytorch" if isinstance(model, nn.Module) else None


def predict_like_pyfunc(model: Any, x: np.ndarray) -> np.ndarray:
    """What the model's pyfunc returns for ``x``: the network's outputs (eval mode, no grad),
    or the estimator's ``predict`` (class labels for classifiers)."""
    if flavor_of(model) == "pytorch":
        import torch

        dtype = next(model.parameters()).dtype
        device = next(model.parameters()).device
        model.eval()
        with torch.no_grad():
            return model(torch.as_tensor(x, dtype=dtype, device=device)).cpu().numpy()
    return np.asarray(model.predict(x))


def example_rows(model: Any, x: np.ndarray, rows: int = 5) -> np.ndarray:
    """A few rows of ``x`` in the dtype the model takes (the network's, else float64)."""
    example = np.asarray(x[:rows])
    if flavor_of(model) == "pytorch":
        import torch

        dtype = next(model.parameters()).dtype
        return example.astype(np.float64 if dtype == torch.float64 else np.float32)
    return example.astype(np.float64)


def log_model(tracking_uri: str, run_id: str, model: Any, x_example: np.ndarray) -> str | None:
    """Log ``model`` as an MLflow model of run ``run_id`` with a signature inferred from
    ``x_example`` (a few rows) and its predictions, and that example; returns the model URI
    (``models:/<id>``), or ``None`` for a model no flavour here handles."""
    flavor = flavor_of(model)
    if flavor is None:
        return None
    from mlflow.models import infer_signature

    example = example_rows(model, x_example)
    signature = infer_signature(example, predict_like_pyfunc(model, example))
    kwargs: dict[str, Any] = {
        "name": MODEL_ARTIFACT_PATH,
        "signature": signature,
        "input_example": example,
        "run_id": run_id,
        "pip_requirements": [_requirement(flavor), _requirement("numpy")],
    }
    # The model belongs to the run's experiment (its artifacts under that experiment's
    # location): without an active run MLflow would file it under the Default experiment,
    # whose artifact root is ./mlruns of whatever folder the process runs in.
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment_id = client.get_run(run_id).info.experiment_id
    kwargs["model_id"] = client.create_logged_model(
        experiment_id, name=MODEL_ARTIFACT_PATH, source_run_id=run_id
    ).model_id
    with process_tracking_uri(tracking_uri):
        if flavor == "pytorch":
            info = _mlflow_pytorch().log_model(_cpu(model), **kwargs)
        elif flavor == "xgboost":
            import mlflow.xgboost

            info = mlflow.xgboost.log_model(model, **kwargs)
        else:
            import mlflow.catboost

            info = mlflow.catboost.log_model(model, **kwargs)
    return str(info.model_uri)


def _mlflow_pytorch() -> Any:
    """``mlflow.pytorch``, imported without its optional Lightning autologging: with
    ``pytorch_lightning`` installed (the ``bench`` extra pulls it in) that import costs ~5 s
    per process, and lmbench never trains with Lightning. An already imported Lightning is
    left alone; later imports of it work as usual."""
    import sys

    if "mlflow.pytorch" in sys.modules or "pytorch_lightning" in sys.modules:
        import mlflow.pytorch

        return mlflow.pytorch
    sys.modules["pytorch_lightning"] = None  # type: ignore[assignment]  # ImportError inside
    try:
        import mlflow.pytorch
    finally:
        if sys.modules.get("pytorch_lightning", 0) is None:
            del sys.modules["pytorch_lightning"]
    return mlflow.pytorch


def _cpu(model: Any) -> Any:
    """The network on the CPU (a copy when it is elsewhere): served models load on the CPU."""
    parameter = next(model.parameters(), None)
    if parameter is None or parameter.device.type == "cpu":
        return model
    import copy

    return copy.deepcopy(model).cpu()


def _requirement(package: str) -> str:
    name = {"pytorch": "torch"}.get(package, package)
    version = package_version(name).split("+")[0]
    return name if version in ("", "unknown") else f"{name}=={version}"
