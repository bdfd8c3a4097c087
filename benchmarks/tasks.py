"""The benchmark tasks: two test functions and four models on data shipped inside scikit-learn.

Every task is minimised and deterministic given ``(config, seed)``, and every evaluation is
cached on disk (``.bench/cache.sqlite``) so that each method, and each early-termination rule,
consumes exactly the same numbers; the learning curves of the SGD task are computed once per
``(config, seed)`` and shared by every stopper.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from benchmarks.peers import BENCH_DIR

SGD_EPOCHS = 27
LOSS_CAP = 10.0  # a diverged SGD run scores this log-loss instead of inf/NaN


@dataclass(frozen=True)
class Task:
    """One objective with its W&B search space; ``curve`` is set for learning-curve tasks."""

    name: str
    description: str
    parameters: dict[str, Any]
    objective: Callable[[Mapping[str, Any], int], float]
    optimum: float | None = None  # the known global minimum, for the test functions
    curve: Callable[[Mapping[str, Any], int], list[float]] | None = None
    metric: str = "loss"

    def sweep_config(self, method: str, seed: int | None = None) -> dict[str, Any]:
        """The W&B sweep config for this task and a search method."""
        config: dict[str, Any] = {
            "method": method,
            "metric": {"name": self.metric, "goal": "minimize"},
            "parameters": json.loads(json.dumps(self.parameters)),
        }
        if seed is not None:
            config["seed"] = seed
        return config


class _Cache:
    """A disk cache of evaluations keyed by task, config and seed (shared by every method)."""

    def __init__(self) -> None:
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            BENCH_DIR.mkdir(exist_ok=True)
            self._connection = sqlite3.connect(BENCH_DIR / "cache.sqlite", check_same_thread=False)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=OFF")
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS evals (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
        return self._connection

    @staticmethod
    def key(task: str, config: Mapping[str, Any], seed: int) -> str:
        text = json.dumps([task, _plain(config), seed], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()

    def get_or_compute(self, key: str, compute: Callable[[], Any]) -> Any:
        with self._lock:
            row = self._db().execute("SELECT value FROM evals WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return json.loads(row[0])
        value = compute()
        with self._lock:
            self._db().execute(
                "INSERT OR REPLACE INTO evals VALUES (?, ?)", (key, json.dumps(value))
            )
            self._db().commit()
        return value


CACHE = _Cache()


def _plain(value: Any) -> Any:
    """Numpy scalars to plain Python, so cache keys do not depend on who made the config."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _cached(task: str, fn: Callable[[Mapping[str, Any], int], Any]) -> Callable[..., Any]:
    def wrapped(config: Mapping[str, Any], seed: int) -> Any:
        plain = _plain(config)
        return CACHE.get_or_compute(CACHE.key(task, plain, seed), lambda: fn(plain, seed))

    return wrapped


# --- test functions -----------------------------------------------------------------------


def branin(config: Mapping[str, Any], seed: int = 0) -> float:
    x1, x2 = float(config["x1"]), float(config["x2"])
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(config: Mapping[str, Any], seed: int = 0) -> float:
    x = np.array([float(config[f"x{i}"]) for i in range(1, 7)])
    return float(-np.sum(_H6_ALPHA * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))


# --- models on scikit-learn's bundled data ------------------------------------------------


@cache
def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    loader = {
        "breast_cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
        "digits": datasets.load_digits,
    }[name]
    x, y = loader(return_X_y=True)
    return x, y


def _cv(estimator: Any, data: str, scoring: str, stratified: bool) -> float:
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    x, y = _data(data)
    # One fixed split for everyone: the objective must be a function of the config alone.
    folds = (StratifiedKFold if stratified else KFold)(n_splits=3, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.mean(cross_val_score(estimator, x, y, cv=folds, scoring=scoring)))


def svm_error(config: Mapping[str, Any], seed: int = 0) -> float:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    model = make_pipeline(StandardScaler(), SVC(C=config["C"], gamma=config["gamma"]))
    return 1.0 - _cv(model, "breast_cancer", "accuracy", stratified=True)


def svr_rmse(config: Mapping[str, Any], seed: int = 0) -> float:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    model = make_pipeline(
        StandardScaler(),
        SVR(C=config["C"], gamma=config["gamma"], epsilon=config["epsilon"], max_iter=200_000),
    )
    return -_cv(model, "diabetes", "neg_root_mean_squared_error", stratified=False)


def tree_error(config: Mapping[str, Any], seed: int = 0) -> float:
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(
        max_depth=int(config["max_depth"]),
        min_samples_leaf=int(config["min_samples_leaf"]),
        max_features=float(config["max_features"]),
        criterion=config["criterion"],
        splitter=config["splitter"],
        random_state=0,
    )
    return 1.0 - _cv(model, "digits", "accuracy", stratified=True)


@cache
def _digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = _data("digits")
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=1 / 3, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_val), y_train, y_val


def sgd_curve(config: Mapping[str, Any], seed: int) -> list[float]:
    """Validation log-loss after each of the 27 epochs; ``seed`` drives init and shuffling."""
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import log_loss

    x_train, x_val, y_train, y_val = _digits_split()
    classes = np.unique(y_train)
    model = SGDClassifier(
        loss="log_loss",
        alpha=config["alpha"],
        penalty=config["penalty"],
        l1_ratio=config["l1_ratio"],
        learning_rate=config["learning_rate"],
        eta0=config["eta0"],
        random_state=seed,
    )
    rng = np.random.default_rng(seed)
    curve = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for _ in range(SGD_EPOCHS):
            order = rng.permutation(len(y_train))
            model.partial_fit(x_train[order], y_train[order], classes=classes)
            loss = log_loss(y_val, model.predict_proba(x_val), labels=classes)
            curve.append(float(min(loss, LOSS_CAP)) if math.isfinite(loss) else LOSS_CAP)
    return curve


_sgd_curve_cached = _cached("sgd_digits_curve", sgd_curve)


def sgd_best(config: Mapping[str, Any], seed: int) -> float:
    """The run's best validation log-loss: what W&B's bayes takes as a finished run's value."""
    return min(_sgd_curve_cached(config, seed))


def _log(lo: float, hi: float) -> dict[str, Any]:
    return {"distribution": "log_uniform_values", "min": lo, "max": hi}


def _uniform(lo: float, hi: float) -> dict[str, Any]:
    return {"distribution": "uniform", "min": lo, "max": hi}


def _int(lo: int, hi: int) -> dict[str, Any]:
    return {"distribution": "int_uniform", "min": lo, "max": hi}


def _categorical(*values: Any) -> dict[str, Any]:
    return {"distribution": "categorical", "values": list(values)}


TASKS: dict[str, Task] = {
    task.name: task
    for task in [
        Task(
            "branin",
            "Branin function, 2 uniform parameters",
            {"x1": _uniform(-5.0, 10.0), "x2": _uniform(0.0, 15.0)},
            branin,
            optimum=0.39788735772973816,
        ),
        Task(
            "hartmann6",
            "Hartmann 6-d function, 6 uniform parameters in [0, 1]",
            {f"x{i}": _uniform(0.0, 1.0) for i in range(1, 7)},
            hartmann6,
            optimum=-3.322368011391339,
        ),
        Task(
            "svm_breast_cancer",
            "RBF SVM on breast_cancer, 3-fold CV error; log-scale C and gamma",
            {"C": _log(1e-3, 1e3), "gamma": _log(1e-5, 1e1)},
            _cached("svm_breast_cancer", svm_error),
        ),
        Task(
            "svr_diabetes",
            "SVR on diabetes, 3-fold CV RMSE; log-scale C, gamma, epsilon",
            {"C": _log(1e-2, 1e4), "gamma": _log(1e-4, 1e1), "epsilon": _log(1e-2, 1e2)},
            _cached("svr_diabetes", svr_rmse),
        ),
        Task(
            "tree_digits",
            "Decision tree on digits, 3-fold CV error; int, real and categorical parameters",
            {
                "max_depth": _int(1, 30),
                "min_samples_leaf": _int(1, 30),
                "max_features": _uniform(0.05, 1.0),
                "criterion": _categorical("gini", "entropy"),
                "splitter": _categorical("best", "random"),
            },
            _cached("tree_digits", tree_error),
        ),
        Task(
            "sgd_digits",
            f"SGD logistic regression on digits, best validation log-loss over {SGD_EPOCHS} "
            "epochs; mixed parameters (learning-curve task)",
            {
                "alpha": _log(1e-7, 1e-1),
                "eta0": _log(1e-4, 1.0),
                "l1_ratio": _uniform(0.0, 1.0),
                "learning_rate": _categorical("constant", "optimal", "invscaling"),
                "penalty": _categorical("l2", "l1", "elasticnet"),
            },
            sgd_best,
            curve=_sgd_curve_cached,
        ),
    ]
}
