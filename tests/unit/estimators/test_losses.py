"""LMClassifier's losses (cross-entropy by default, BCE for binary problems, the original MSE on a
softmax head) and LMRegressor's Huber option: probabilities against independent computations of
the network's outputs, and linear models against scikit-learn's exact optimum."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.special import expit, softmax
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.estimator_checks import parametrize_with_checks

from lmbench.core import TrainerSettings
from lmbench.estimators import CLASSIFIER_LOSSES, REGRESSOR_LOSSES, LMClassifier, LMRegressor
from lmbench.models import build_mlp


def _outputs(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """The network's raw output in float64, computed on a copy (independent of the estimator)."""
    with torch.no_grad():
        return copy.deepcopy(model).double()(torch.as_tensor(x, dtype=torch.float64)).numpy()


def _multinomial(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping Gaussian classes in 4-D: not separable, so the MLE is finite."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return rng.normal(size=(3, 4))[y] + rng.normal(size=(n, 4)), y


def _binary(n: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return 0.8 * np.outer(2 * y - 1, [1.0, 0.5, 0.0]) + rng.normal(size=(n, 3)), y


# The non-default losses keep every scikit-learn check passing too (bce is binary-only, so the
# multiclass checks would fail by design: it is covered by the tests below instead).
@parametrize_with_checks(
    [
        LMClassifier(loss="mse", max_epochs=20, random_state=0),
        LMRegressor(loss="huber", huber_delta=0.5, max_epochs=20, random_state=0),
    ]
)
def test_sklearn_estimator_checks_other_losses(estimator, check) -> None:
    check(estimator)


def test_default_is_cross_entropy_and_proba_is_softmax_of_the_logits() -> None:
    x, y = load_iris(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    clf = LMClassifier(max_epochs=5, random_state=0)
    assert clf.get_params()["loss"] == "cross_entropy"
    clf.fit(x, y)
    assert type(clf.model_[-1]) is torch.nn.Linear and clf.model_[-1].out_features == 3
    proba = clf.predict_proba(x)
    assert proba.shape == (150, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(proba, softmax(_outputs(clf.model_, x), axis=1), rtol=1e-10)
    np.testing.assert_array_equal(clf.predict(x), clf.classes_[proba.argmax(axis=1)])
    # what LM minimised is the cross-entropy: the reported training loss is the mean log-loss
    assert clf.history_.loss[-1] == pytest.approx(log_loss(y, proba), rel=1e-5)
    assert clf.score(x, y) > 0.9


def test_default_cross_entropy_in_pipeline_on_breast_cancer() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    labels = np.where(y == 1, "benign", "malignant")
    x_train, x_test, y_train, y_test = train_test_split(
        x, labels, test_size=0.3, random_state=0, stratify=labels
    )
    pipe = make_pipeline(StandardScaler(), LMClassifier(max_epochs=30, random_state=0))
    pipe.fit(x_train, y_train)
    assert pipe.score(x_test, y_test) > 0.9
    proba = pipe.predict_proba(x_test)
    assert proba.shape == (len(x_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    clf = pipe[-1]
    assert type(clf.model_[-1]) is torch.nn.Linear and clf.model_[-1].out_features == 2
    np.testing.assert_array_equal(pipe.predict(x_test), clf.classes_[proba.argmax(axis=1)])


@pytest.mark.parametrize("loss", ["cross_entropy", "sqrt_cross_entropy"])
def test_linear_cross_entropy_reaches_the_logistic_regression_optimum(loss) -> None:
    """With no hidden layer the model is multinomial logistic regression; the unpenalised MLE is
    unique in probabilities, so LM must reach sklearn's log-loss (lbfgs to tol 1e-12)."""
    x, y = _multinomial()
    reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(x, y)
    best = log_loss(y, reference.predict_proba(x))
    clf = LMClassifier(
        hidden_layer_sizes=(), loss=loss, max_epochs=30, min_error=None, validation_fraction=0.0,
        patience=None, dtype="float64", random_state=0,
    ).fit(x, y)  # fmt: skip
    assert [type(m) for m in clf.model_] == [torch.nn.Linear]
    reached = log_loss(y, clf.predict_proba(x))
    assert reached == pytest.approx(best, rel=1e-3)
    assert reached >= best * (1 - 1e-9)  # sklearn's value is the optimum, not just a number

    # the test can tell the objectives apart: MSE on a softmax head stops short of the MLE
    mse = LMClassifier(
        hidden_layer_sizes=(), loss="mse", max_epochs=30, min_error=None, dtype="float64",
        random_state=0,
    ).fit(x, y)  # fmt: skip
    assert log_loss(y, mse.predict_proba(x)) > best * (1 + 1e-3)


def test_bce_binary_has_one_logit_and_proba_is_one_minus_sigmoid_sigmoid() -> None:
    x, y = _binary()
    labels = np.where(y == 1, "yes", "no")  # classes_ == ["no", "yes"]: "yes" is the positive
    clf = LMClassifier(hidden_layer_sizes=(4,), loss="bce", max_epochs=10, random_state=0)
    clf.fit(x, labels)
    assert list(clf.classes_) == ["no", "yes"]
    assert type(clf.model_[-1]) is torch.nn.Linear and clf.model_[-1].out_features == 1
    logit = _outputs(clf.model_, x)[:, 0]
    proba = clf.predict_proba(x)
    assert proba.shape == (len(x), 2)
    np.testing.assert_allclose(proba[:, 1], expit(logit), rtol=1e-10)
    np.testing.assert_allclose(proba[:, 0], 1.0 - expit(logit), rtol=1e-10)
    np.testing.assert_array_equal(clf.predict(x), np.where(logit > 0, "yes", "no"))
    assert clf.score(x, labels) > 0.7


def test_linear_bce_reaches_the_binary_logistic_regression_optimum() -> None:
    x, y = _binary()
    reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(x, y)
    best = log_loss(y, reference.predict_proba(x))
    clf = LMClassifier(
        hidden_layer_sizes=(), loss="bce", max_epochs=30, min_error=None, dtype="float64",
        random_state=0,
    ).fit(x, y)  # fmt: skip
    assert log_loss(y, clf.predict_proba(x)) == pytest.approx(best, rel=1e-3)
    # one logit: the same weights as sklearn's (unique MLE), up to the optimiser's tolerance
    np.testing.assert_allclose(clf.model_[0].weight.detach().numpy()[0], reference.coef_[0],
                               rtol=1e-3)  # fmt: skip


def test_bce_with_more_than_two_classes_is_refused() -> None:
    x, y = _multinomial(60)
    with pytest.raises(ValueError, match=r"3 classes.*loss='cross_entropy'"):
        LMClassifier(loss="bce").fit(x, y)


def test_mse_reproduces_the_original_softmax_head_training() -> None:
    """loss="mse" is the original estimator: the same seed, a softmax head and MSE on one-hot
    rows, trained through TrainerSettings with its default (MSE) loss, gives the same network."""
    x, y = load_iris(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    clf = LMClassifier(hidden_layer_sizes=(5,), loss="mse", max_epochs=8, random_state=3)
    clf.fit(x, y)
    assert isinstance(clf.model_[-1], torch.nn.Softmax)

    seed = int(check_random_state(3).randint(np.iinfo(np.int32).max))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_mlp(4, 3, hidden=(5,), activation="tanh", head="softmax")
    one_hot = np.eye(3, dtype=np.float32)[y]
    TrainerSettings(
        damping="seed", mu_init=10.0, damping_factor=10.0, max_epochs=8, min_error=1e-4,
        inner_steps=10,
    ).fit(model, x.astype(np.float32), one_hot)  # fmt: skip
    expected = _outputs(model, x)
    np.testing.assert_allclose(clf.predict_proba(x), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(clf.predict_proba(x).sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (LMClassifier(loss="hinge"), "loss must be one of"),
        (LMClassifier(loss="huber"), "loss must be one of"),
        (LMRegressor(loss="cross_entropy"), "loss must be one of"),
        (LMRegressor(loss="huber", huber_delta=0.0), "huber_delta must be"),
    ],
)
def test_bad_loss_fails_at_fit_naming_the_choices(estimator, message) -> None:
    x, y = _binary(20)
    with pytest.raises(ValueError, match=message):
        estimator.fit(x, y)


def test_each_estimator_offers_the_losses_of_its_kind() -> None:
    """The classifier: every loss on logits (the default first) and MSE; the regressor: the
    losses on values (both lists read from the loss classes)."""
    assert CLASSIFIER_LOSSES[0] == "cross_entropy"
    assert set(CLASSIFIER_LOSSES) == {"cross_entropy", "mse", "sqrt_cross_entropy", "bce"}
    assert REGRESSOR_LOSSES == ("mse", "huber")


def test_regressor_huber_resists_outliers_that_pull_mse() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(200, 1))
    y = 3 * x[:, 0] + 1 + 0.1 * rng.normal(size=200)
    y[:20] += 30.0  # 10% gross outliers
    grid = np.linspace(-2, 2, 9)[:, None]
    truth = 3 * grid[:, 0] + 1
    kwargs = {"hidden_layer_sizes": (), "max_epochs": 50, "min_error": None, "dtype": "float64"}
    mse = LMRegressor(**kwargs).fit(x, y)
    huber = LMRegressor(loss="huber", huber_delta=0.05, **kwargs).fit(x, y)
    assert LMRegressor().get_params()["loss"] == "mse"
    assert {"loss", "huber_delta"} <= set(huber.get_params())
    mse_error = np.abs(mse.predict(grid) - truth).max()
    huber_error = np.abs(huber.predict(grid) - truth).max()
    assert mse_error > 2.0  # the outliers shift the least-squares line by ~3
    assert huber_error < 0.5
