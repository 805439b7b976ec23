"""LMClassifier / LMRegressor: scikit-learn's estimator checks, use in Pipeline and GridSearchCV,
accuracy on small real data, a known smooth function, determinism and parameter handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from lmbench.core import TrainingHistory
from lmbench.data import prepare_dataset
from lmbench.estimators import LMClassifier, LMRegressor


# Every check of scikit-learn 1.9 passes, so no expected_failed_checks are declared.
# check_array_api_input reports itself as skipped unless SCIPY_ARRAY_API=1 is set (sklearn's own
# skip); these estimators take NumPy input only. max_epochs=20 keeps the ~110 checks to seconds
# while check_classifiers_train (accuracy > 0.83) and check_regressors_train (R^2 > 0.5) still
# need real training to pass.
@parametrize_with_checks(
    [LMClassifier(max_epochs=20, random_state=0), LMRegressor(max_epochs=20, random_state=0)]
)
def test_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)


def _smooth_problem(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """y = sin(2 x0) + 0.5 x1^2 - x0 x1 on [-1.5, 1.5]^2: smooth, nonlinear, noise-free."""
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, size=(n, 2))
    return x, np.sin(2 * x[:, 0]) + 0.5 * x[:, 1] ** 2 - x[:, 0] * x[:, 1]


def test_classifier_in_grid_search_cv_on_iris() -> None:
    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=0, stratify=y
    )
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LMClassifier(max_epochs=30, random_state=0)),
        {"lmclassifier__mu_init": [1.0, 10.0], "lmclassifier__hidden_layer_sizes": [(4,), (8,)]},
        cv=3,
    )
    search.fit(x_train, y_train)
    assert search.best_score_ > 0.9
    assert search.score(x_test, y_test) > 0.9
    assert len(search.cv_results_["params"]) == 4
    assert list(search.best_estimator_[-1].classes_) == [0, 1, 2]


def test_classifier_in_pipeline_on_breast_cancer() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    labels = np.where(y == 1, "benign", "malignant")  # string labels round-trip via classes_
    x_train, x_test, y_train, y_test = train_test_split(
        x, labels, test_size=0.3, random_state=0, stratify=labels
    )
    pipe = make_pipeline(
        StandardScaler(), LMClassifier(loss="mse", max_epochs=30, random_state=0)
    )
    pipe.fit(x_train, y_train)
    assert pipe.score(x_test, y_test) > 0.9
    proba = pipe.predict_proba(x_test)
    assert proba.shape == (len(x_test), 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    clf = pipe[-1]
    assert list(clf.classes_) == ["benign", "malignant"]
    np.testing.assert_array_equal(pipe.predict(x_test), clf.classes_[proba.argmax(axis=1)])
    assert clf.n_features_in_ == 30
    assert isinstance(clf.history_, TrainingHistory)
    assert clf.n_iter_ == clf.history_.epochs >= 1
    assert isinstance(clf.model_[-1], torch.nn.Softmax)


def test_regressor_recovers_a_smooth_function() -> None:
    x_train, y_train = _smooth_problem(300, seed=0)
    x_test, y_test = _smooth_problem(200, seed=1)
    reg = LMRegressor(hidden_layer_sizes=(16,), max_epochs=60, random_state=0)
    reg.fit(x_train, y_train)
    prediction = reg.predict(x_test)
    assert prediction.shape == (200,) and prediction.dtype == np.float64
    assert reg.score(x_test, y_test) > 0.95
    assert reg.model_[-1].__class__ is torch.nn.Linear  # linear head


def test_regressor_multi_output_and_column_targets() -> None:
    x_train, y_train = _smooth_problem(300, seed=0)
    x_test, y_test = _smooth_problem(200, seed=1)
    two = np.column_stack([y_train, np.cos(x_train[:, 1])])
    reg = LMRegressor(max_epochs=60, random_state=0).fit(x_train, two)
    assert reg.n_outputs_ == 2
    prediction = reg.predict(x_test)
    assert prediction.shape == (200, 2)
    assert reg.score(x_test, np.column_stack([y_test, np.cos(x_test[:, 1])])) > 0.95

    flat = LMRegressor(max_epochs=10, random_state=0).fit(x_train, y_train).predict(x_test)
    column = LMRegressor(max_epochs=10, random_state=0).fit(x_train, y_train[:, None])
    assert column.predict(x_test).shape == (200, 1)
    np.testing.assert_allclose(column.predict(x_test)[:, 0], flat)


def test_regressor_targets_are_standardised_so_units_do_not_matter() -> None:
    """mu_init / min_error act on standardised targets: changing the target's units changes the
    predictions' units and nothing else (without standardisation, y * 1000 would make the same
    mu_init a far weaker damping and give a different network)."""
    x, y = _smooth_problem(200, seed=0)
    kwargs = {"max_epochs": 15, "random_state": 0, "dtype": "float64"}
    base = LMRegressor(**kwargs).fit(x, y)
    scaled = LMRegressor(**kwargs).fit(x, 1000.0 * y + 5.0)
    np.testing.assert_allclose(scaled.predict(x), 1000.0 * base.predict(x) + 5.0, rtol=1e-6)
    np.testing.assert_allclose(scaled.y_scale_, 1000.0 * base.y_scale_)
    assert scaled.history_.loss == pytest.approx(base.history_.loss, rel=1e-6)


def test_deterministic_given_random_state_and_global_rng_untouched() -> None:
    x, y = load_iris(return_X_y=True)
    state = torch.random.get_rng_state()
    first = LMClassifier(max_epochs=5, random_state=0).fit(x, y).predict_proba(x)
    again = LMClassifier(max_epochs=5, random_state=0).fit(x, y).predict_proba(x)
    other = LMClassifier(max_epochs=5, random_state=1).fit(x, y).predict_proba(x)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_validation_fraction_with_patience_restores_the_best_weights() -> None:
    x, y = _smooth_problem(120, seed=0)
    y = y + np.random.default_rng(0).normal(scale=0.5, size=y.shape)  # noisy: LM overfits
    reg = LMRegressor(
        hidden_layer_sizes=(32,), max_epochs=200, min_error=None, validation_fraction=0.3,
        patience=3, random_state=0,
    )  # fmt: skip
    reg.fit(x, y)
    history = reg.history_
    assert history.stop_reason == "validation_patience"
    assert history.best_epoch is not None
    assert history.epochs == history.best_epoch + 3 == reg.n_iter_
    assert history.val_loss[history.best_epoch] == min(history.val_loss)
    assert not np.isnan(history.val_loss).any()

    plain = LMRegressor(max_epochs=3, random_state=0).fit(x, y)
    assert np.isnan(plain.history_.val_loss).all()  # no hold-out unless asked for


def test_get_params_set_params_clone_round_trip() -> None:
    clf = LMClassifier(hidden_layer_sizes=(8, 4), mu_init=3.0, random_state=7, loss="mse")
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (8, 4) and params["mu_init"] == 3.0
    assert set(params) == {
        "hidden_layer_sizes", "activation", "mu_init", "demping_coef", "max_epochs",
        "min_error", "inner_steps", "validation_fraction", "patience", "random_state", "dtype",
        "loss", "weight_decay", "regularization",
    }  # fmt: skip
    assert clf.set_params(demping_coef=3.0, activation="relu") is clf
    assert clf.get_params()["demping_coef"] == 3.0 and clf.activation == "relu"
    copy = clone(clf)
    assert copy is not clf and copy.get_params() == clf.get_params()

    x, y = load_iris(return_X_y=True)
    clf.set_params(max_epochs=2).fit(x, y)
    refit_copy = clone(clf)
    assert refit_copy.get_params() == clf.get_params()
    with pytest.raises(NotFittedError):
        refit_copy.predict(x)
    # the params reached the network: Linear-ReLU-Linear-ReLU-Linear-Softmax, widths 8 and 4
    assert [type(m).__name__ for m in clf.model_] == [
        "Linear", "ReLU", "Linear", "ReLU", "Linear", "Softmax"
    ]  # fmt: skip
    assert clf.model_[0].out_features == 8 and clf.model_[2].out_features == 4


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"patience": 5}, "validation_fraction > 0"),
        ({"validation_fraction": 1.0}, "validation_fraction must be in"),
        ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes must be positive"),
        ({"activation": "swish"}, "activation must be one of"),
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"max_epochs": -1}, "max_epochs must be an integer >= 0"),
        ({"inner_steps": 0}, "inner_steps must be an integer >= 1"),
        ({"demping_coef": 1.0}, "demping_coef"),
        ({"mu_init": 0.0}, "mu_init"),
    ],
)
def test_bad_parameters_fail_at_fit_naming_the_knob(params, message) -> None:
    estimator = LMRegressor(**params)  # construction only stores (sklearn's rule)
    x, y = _smooth_problem(20, seed=0)
    with pytest.raises(ValueError, match=message):
        estimator.fit(x, y)


def test_classifier_rejects_a_single_class_and_continuous_targets() -> None:
    x = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="at least 2 classes"):
        LMClassifier().fit(x, np.ones(10))
    with pytest.raises(ValueError, match="Unknown label type"):
        LMClassifier().fit(x, np.linspace(0, 1, 10))


def test_classifier_takes_the_one_hot_targets_of_the_data_api() -> None:
    ds = prepare_dataset("wine", seed=0)
    clf = LMClassifier(max_epochs=20, random_state=0).fit(ds.x_train, ds.y_train)
    assert list(clf.classes_) == [0, 1, 2]
    predicted = clf.predict(ds.x_test)  # one-hot rows, like the y it was fitted on
    assert predicted.shape == ds.y_test.shape and predicted.dtype == ds.y_test.dtype
    np.testing.assert_array_equal(predicted.sum(axis=1), 1)
    assert clf.score(ds.x_test, ds.y_test) > 0.85
    # the same fit as on the labels the one-hot rows encode
    on_labels = LMClassifier(max_epochs=20, random_state=0).fit(ds.x_train, ds.y_train.argmax(1))
    np.testing.assert_array_equal(predicted.argmax(axis=1), on_labels.predict(ds.x_test))
    np.testing.assert_allclose(clf.predict_proba(ds.x_test), on_labels.predict_proba(ds.x_test))


def test_classifier_refuses_rows_of_several_classes() -> None:
    x = np.random.default_rng(0).normal(size=(4, 2))
    multilabel = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match=r"row 2 holds 2 ones.*labels y of shape \(n,\)"):
        LMClassifier().fit(x, multilabel)
