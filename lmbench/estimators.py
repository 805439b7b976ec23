"""scikit-learn estimators for LM-trained MLPs, so an LM network can sit in the same ``Pipeline``,
``GridSearchCV`` and comparison table as XGBoost and CatBoost.

* ``LMClassifier``: by default cross-entropy on a linear logits head (generalised Gauss-Newton
  steps, ``lmbench.core.losses``) with labels one-hot encoded over ``classes_``;
  ``predict_proba`` is the softmax of the logits. ``loss="bce"`` (binary problems) trains one
  logit on the positive-class indicator; ``loss="mse"`` is the original library's convention
  (softmax head, sum of squares on the one-hot rows, ``predict_proba`` the softmax output).
* ``LMRegressor``: 1-D or 2-D (multi-output) targets, standardised per column inside ``fit`` (so
  ``mu_init``, ``min_error`` and ``huber_delta`` mean the same whatever the target's units) and
  mapped back in ``predict``; MSE by default, or Huber. Features are left alone: scale them in a
  ``Pipeline`` (``StandardScaler``), as for any neural network.

Both train ``build_mlp(hidden_layer_sizes, activation)`` (``hidden_layer_sizes=()``: no hidden
layer, a linear model) in ``dtype`` with ``LevenbergMarquardt`` and the seed's damping rule
(``SeedDamping(mu_init, factor=demping_coef)``); predictions are computed in float64 from the
trained weights. ``validation_fraction > 0`` holds out that share of
the rows (stratified for the classifier); ``min_error`` is then watched on the hold-out loss (the
seed's convention) and ``patience`` enables early stopping with the best-validation weights
restored. ``weight_decay`` (lambda of (lambda / 2) ||w||^2 over all weights and biases) and
``regularization="bayesian"`` (the penalty re-estimated from the evidence, as MATLAB's trainbr;
``lmbench.core.regularization``) regularise the fit; both default to none. The regressor's
penalty acts on the standardised targets' scale. Results are deterministic given
``random_state`` (an int): it seeds the weight initialisation and the hold-out split, without
touching the global torch RNG.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, ClassifierMixin, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted

from lmbench.core import TrainerSettings, TrainingHistory
from lmbench.core.damping import SeedDamping
from lmbench.core.losses import LOSS_NAMES, takes_logits
from lmbench.models import ACTIVATIONS, build_mlp, head_for_task, probabilities

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: The estimators' engine defaults: the harness's 100 epochs and min_error 1e-4, the engine's
#: inner_steps; the seed damping rule's own mu_init and demping_coef.
ESTIMATOR_DEFAULTS = TrainerSettings(max_epochs=100, min_error=1e-4)
#: What each estimator may minimise (``lmbench.core.losses``): the classifier any loss that
#: takes logits (cross-entropy, the default, first) or MSE on a softmax head (the original
#: library's way); the regressor any loss on values.
CLASSIFIER_LOSSES: tuple[str, ...] = (
    "cross_entropy", "mse",
    *(name for name in LOSS_NAMES if takes_logits(name) and name != "cross_entropy"),
)
REGRESSOR_LOSSES: tuple[str, ...] = tuple(name for name in LOSS_NAMES if not takes_logits(name))


def _validate_data(estimator: BaseEstimator, *args: Any, **kwargs: Any) -> Any:
    """``sklearn.utils.validation.validate_data`` (>= 1.6) or the older method."""
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, *args, **kwargs)
    return estimator._validate_data(*args, **kwargs)  # pragma: no cover


def _one_hot_rows(y: Any) -> np.ndarray | None:
    """``y`` as an array when it is one-hot rows ``(n, n_classes)``, else None. scikit-learn
    reads a 2-D 0/1 ``y`` as multilabel; one class per sample is what ``LMClassifier`` predicts,
    so rows with several 1s or none are refused (``prepare_dataset``'s targets have one)."""
    if issparse(y):
        return None
    try:
        kind = type_of_target(y)
    except ValueError:  # not a target at all: _validate_data gives scikit-learn's message
        return None
    if kind != "multilabel-indicator":
        return None
    rows = np.asarray(y)
    ones = np.count_nonzero(rows, axis=1)
    if not np.all(ones == 1):
        bad = int(np.flatnonzero(ones != 1)[0])
        raise ValueError(
            f"y is a 0/1 matrix of shape {rows.shape} but row {bad} holds {ones[bad]} ones: "
            "LMClassifier predicts one class per sample, so pass labels y of shape (n,) or "
            "one-hot rows (exactly one 1 per row)"
        )
    return rows


class _LMNetwork(BaseEstimator):
    """What both estimators share: parameters, checks, training and the forward pass."""

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (16,),
        activation: str = "tanh",
        mu_init: float = SeedDamping.mu_init,
        demping_coef: float = SeedDamping.factor,
        max_epochs: int = ESTIMATOR_DEFAULTS.max_epochs,
        min_error: float | None = ESTIMATOR_DEFAULTS.min_error,
        inner_steps: int = ESTIMATOR_DEFAULTS.inner_steps,
        validation_fraction: float = 0.0,
        patience: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        dtype: str = "float32",
        weight_decay: float = 0.0,
        regularization: str = "none",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.mu_init = mu_init
        self.demping_coef = demping_coef
        self.max_epochs = max_epochs
        self.min_error = min_error
        self.inner_steps = inner_steps
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.dtype = dtype
        self.weight_decay = weight_decay
        self.regularization = regularization

    # ------------------------------------------------------------------ checks
    def _hidden(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        widths = (sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes)
        if not all(isinstance(w, numbers.Integral) and w >= 1 for w in widths):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}"
            )
        return tuple(int(w) for w in widths)

    def _check_params(self) -> None:
        """Validate hyper-parameters at ``fit`` (sklearn: ``__init__`` and ``set_params`` store)."""
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}"
            )
        if self.patience is not None and self.validation_fraction == 0.0:
            raise ValueError(
                "patience needs a hold-out set to watch: set validation_fraction > 0 "
                "(or patience=None)"
            )
        for name, lowest in (("max_epochs", 0), ("inner_steps", 1), ("patience", 1)):
            value = getattr(self, name)
            if name == "patience" and value is None:
                continue
            if not isinstance(value, numbers.Integral) or value < lowest:
                raise ValueError(f"{name} must be an integer >= {lowest}, got {value!r}")

    # ------------------------------------------------------------------ training
    def _fit_network(
        self,
        x: np.ndarray,
        targets: np.ndarray,
        head: str,
        stratify: np.ndarray | None,
        loss: str = "mse",
        huber_delta: float = 1.0,
    ) -> None:
        """Build the MLP, train it with LM minimising ``loss`` on ``targets`` (n, outputs), set
        the fitted attrs."""
        self._check_params()
        hidden = self._hidden()
        if not x.flags.writeable:  # e.g. a read-only memmap: torch.from_numpy warns on those
            x = x.copy()
        dtype = _DTYPES[self.dtype]
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        val = None
        if self.validation_fraction > 0:
            x, x_val, targets, y_val = train_test_split(
                x, targets, test_size=self.validation_fraction, random_state=rng,
                stratify=stratify,
            )  # fmt: skip
            val = (x_val, y_val)
        with torch.random.fork_rng(devices=[]):  # leaves the caller's torch RNG untouched
            torch.manual_seed(seed)
            model = build_mlp(
                x.shape[1], targets.shape[1], hidden=hidden, activation=self.activation,
                head=head, dtype=dtype,
            )  # fmt: skip
        settings = TrainerSettings(
            damping="seed", mu_init=float(self.mu_init), damping_factor=float(self.demping_coef),
            max_epochs=int(self.max_epochs),
            min_error=None if self.min_error is None else float(self.min_error),
            patience=self.patience, inner_steps=int(self.inner_steps), loss=loss,
            huber_delta=float(huber_delta), weight_decay=float(self.weight_decay),
            regularization=self.regularization,
        )
        history = settings.fit(model, x, targets, val=val)
        model.eval()
        self.model_ = model
        self.history_: TrainingHistory = history
        self.n_iter_ = history.epochs

    def _forward(self, x: np.ndarray) -> np.ndarray:
        """The network's output for validated ``x``, float64 ``(n, outputs)``.

        Evaluated in float64 from the trained weights (``model_`` itself is not changed): a
        float32 forward pass rounds differently for a batch and for a single row (~1e-7), and a
        row's prediction should not depend on which other rows are predicted with it.
        """
        state = {k: v.detach().double() for k, v in self.model_.state_dict().items()}
        inputs = torch.from_numpy(np.array(x, dtype=np.float64))  # a writable copy
        with torch.no_grad():
            out = torch.func.functional_call(self.model_, state, (inputs,))
        return out.numpy()


class LMClassifier(ClassifierMixin, _LMNetwork):
    """MLP classifier trained by Levenberg-Marquardt.

    ``loss`` chooses what LM minimises (generalised Gauss-Newton steps, ``lmbench.core.losses``):

    * ``"cross_entropy"`` (default): a linear head giving one logit per class, softmax
      cross-entropy on the one-hot labels; ``predict_proba`` is the softmax of the logits.
    * ``"sqrt_cross_entropy"``: the same model and objective, stepped with the square-root trick
      (one residual ``sqrt(CE)`` per sample; plain Gauss-Newton curvature rather than the GGN).
    * ``"bce"`` (two classes only): ONE output logit, binary cross-entropy on the indicator of
      ``classes_[1]``; ``predict_proba`` is ``[1 - sigmoid, sigmoid]``. More than two classes
      raise ``ValueError`` (use ``cross_entropy``).
    * ``"mse"``: the original library's convention: a softmax head and the sum of squares on the
      one-hot rows; ``predict_proba`` is the softmax output.

    The other parameters are shared with ``LMRegressor`` (see the module docstring).
    ``predict`` returns ``classes_[argmax predict_proba]``. ``y`` may also be one-hot rows
    ``(n, n_classes)``, as ``lmbench.data.prepare_dataset`` returns them: ``classes_`` is then
    ``0 .. n_classes - 1`` (the columns) and ``predict`` returns one-hot rows, as scikit-learn's
    classifiers give back a target in the representation they were fitted on.
    Attributes after ``fit``: ``classes_``, ``model_`` (the ``nn.Sequential``; it outputs logits
    unless ``loss="mse"``), ``history_`` (``TrainingHistory``), ``n_iter_`` (LM epochs run),
    ``n_features_in_``.
    """

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (16,),
        activation: str = "tanh",
        mu_init: float = SeedDamping.mu_init,
        demping_coef: float = SeedDamping.factor,
        max_epochs: int = ESTIMATOR_DEFAULTS.max_epochs,
        min_error: float | None = ESTIMATOR_DEFAULTS.min_error,
        inner_steps: int = ESTIMATOR_DEFAULTS.inner_steps,
        validation_fraction: float = 0.0,
        patience: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        dtype: str = "float32",
        loss: str = "cross_entropy",
        weight_decay: float = 0.0,
        regularization: str = "none",
    ) -> None:
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, mu_init=mu_init,
            demping_coef=demping_coef, max_epochs=max_epochs, min_error=min_error,
            inner_steps=inner_steps, validation_fraction=validation_fraction, patience=patience,
            random_state=random_state, dtype=dtype, weight_decay=weight_decay,
            regularization=regularization,
        )  # fmt: skip
        self.loss = loss

    def fit(self, X: Any, y: Any) -> LMClassifier:
        """Train on ``X`` (n, features) and labels ``y`` (n,) of at least two classes, or
        one-hot rows ``y`` (n, n_classes), e.g. ``lmbench.data.prepare_dataset``'s ``y_train``
        (``classes_`` is then the column indices and ``predict`` returns one-hot rows)."""
        if self.loss not in CLASSIFIER_LOSSES:
            raise ValueError(f"loss must be one of {CLASSIFIER_LOSSES}, got {self.loss!r}")
        one_hot = _one_hot_rows(y)
        if one_hot is not None:
            y = one_hot.argmax(axis=1)
        X, y = _validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        if one_hot is not None:  # every column is a class, present in y or not
            self.classes_, encoded = np.arange(one_hot.shape[1]), y
        else:
            self.classes_, encoded = np.unique(y, return_inverse=True)
        self._one_hot_dtype = None if one_hot is None else one_hot.dtype
        if len(np.unique(encoded)) < 2:
            raise ValueError(
                f"LMClassifier needs samples of at least 2 classes in y; got 1 class "
                f"({self.classes_[encoded[0]]!r})"
            )
        if self.loss == "bce":
            if len(self.classes_) > 2:
                raise ValueError(
                    f"loss='bce' trains one logit for a binary problem, but y has "
                    f"{len(self.classes_)} classes; use loss='cross_entropy' for multiclass"
                )
            targets = (encoded == 1).astype(X.dtype).reshape(-1, 1)
        else:
            targets = np.eye(len(self.classes_), dtype=X.dtype)[encoded]
        head = head_for_task("multiclass", self.loss)  # linear logits, or softmax for mse
        self._fit_network(X, targets, head=head, stratify=encoded, loss=self.loss)
        self._fitted_loss = self.loss
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` in the order of ``classes_``."""
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        out = probabilities(torch.from_numpy(self._forward(X)), self._fitted_loss).numpy()
        if self._fitted_loss == "bce":  # one sigmoid column: P(classes_[1])
            return np.column_stack([1.0 - out[:, 0], out[:, 0]])
        return out

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row: a label from ``classes_``, or a one-hot row (in
        ``y``'s dtype) when ``fit`` was given one-hot rows, so ``score`` takes the same ``y``."""
        check_is_fitted(self)
        best = np.argmax(self.predict_proba(X), axis=1)
        if self._one_hot_dtype is not None:
            return np.eye(len(self.classes_), dtype=self._one_hot_dtype)[best]
        return self.classes_[best]


class LMRegressor(MultiOutputMixin, RegressorMixin, _LMNetwork):
    """MLP regressor trained by Levenberg-Marquardt: linear head, MSE on standardised targets.

    ``loss="huber"`` minimises the Huber loss instead, with threshold ``huber_delta`` in
    standardised units (target standard deviations); ``huber_delta`` is unused with ``mse``.
    ``y`` may be 1-D (predictions 1-D) or 2-D (one column per output, predictions 2-D).
    Attributes after ``fit``: ``model_``, ``history_``, ``n_iter_``, ``n_features_in_``,
    ``n_outputs_``, ``y_mean_`` and ``y_scale_`` (the per-column standardisation of ``y``).
    """

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (16,),
        activation: str = "tanh",
        mu_init: float = SeedDamping.mu_init,
        demping_coef: float = SeedDamping.factor,
        max_epochs: int = ESTIMATOR_DEFAULTS.max_epochs,
        min_error: float | None = ESTIMATOR_DEFAULTS.min_error,
        inner_steps: int = ESTIMATOR_DEFAULTS.inner_steps,
        validation_fraction: float = 0.0,
        patience: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        dtype: str = "float32",
        loss: str = "mse",
        huber_delta: float = 1.0,
        weight_decay: float = 0.0,
        regularization: str = "none",
    ) -> None:
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, mu_init=mu_init,
            demping_coef=demping_coef, max_epochs=max_epochs, min_error=min_error,
            inner_steps=inner_steps, validation_fraction=validation_fraction, patience=patience,
            random_state=random_state, dtype=dtype, weight_decay=weight_decay,
            regularization=regularization,
        )  # fmt: skip
        self.loss = loss
        self.huber_delta = huber_delta

    def fit(self, X: Any, y: Any) -> LMRegressor:
        """Train on ``X`` (n, features) and numeric targets ``y`` (n,) or (n, outputs)."""
        if self.loss not in REGRESSOR_LOSSES:
            raise ValueError(f"loss must be one of {REGRESSOR_LOSSES}, got {self.loss!r}")
        if not (isinstance(self.huber_delta, numbers.Real) and self.huber_delta > 0):
            raise ValueError(f"huber_delta must be a number > 0, got {self.huber_delta!r}")
        X, y = _validate_data(
            self, X, y, dtype=[np.float64, np.float32], multi_output=True, y_numeric=True
        )
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        targets = y.reshape(-1, 1) if self._y_1d else y
        self.n_outputs_ = targets.shape[1]
        self.y_mean_ = targets.mean(axis=0)
        scale = targets.std(axis=0)
        self.y_scale_ = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        standardised = ((targets - self.y_mean_) / self.y_scale_).astype(X.dtype)
        self._fit_network(
            X, standardised, head="linear", stratify=None, loss=self.loss,
            huber_delta=float(self.huber_delta),
        )  # fmt: skip
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions in the target's units: ``(n,)`` if ``y`` was 1-D, else ``(n, outputs)``."""
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        out = self._forward(X) * self.y_scale_ + self.y_mean_
        return out.reshape(-1) if self._y_1d else out
