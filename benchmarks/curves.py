"""Learning-curve tasks for the multi-fidelity benchmark, tabulated once and looked up.

Training a model for every config that every method suggests, on every seed, would take hours
on two shared cores. So each task is a table, as in the tabular benchmarks of the
multi-fidelity literature (LCBench, HPOBench, Syne Tune's blackbox repository): ``TABLE_SIZE``
configs spread over the task's W&B space by a scrambled Sobol sequence, each trained once for
``EPOCHS`` epochs, its validation log-loss after every epoch stored in
``benchmarks/data/curves-<task>.json.gz``. A suggested config gets the curve of the nearest
tabulated config (same categories, nearest in the unit cube where log-scale parameters are
spread evenly), so every method sees exactly the same curves and the best value of the table
is the best any method can find.

``python -m benchmarks.curves [task ...]`` builds the missing tables (deterministic: the Sobol
seed and each model's seed are fixed); the files are committed, so a benchmark round costs
only the lookups.

The three tasks have curves that cross: a small learning rate starts slowly and ends best, a
large one drops fast and then stalls or overfits, which is what a stopping rule must not
mistake for a bad run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.tasks import _int, _log, _uniform  # the suite's space helpers

DATA = Path(__file__).resolve().parent / "data"
EPOCHS = 27  # rungs at 1, 3, 9 with eta 3: every method gets the same fidelity ladder
TABLE_SIZE = 1024
TABLE_SEED = 0
LOSS_CAP = 10.0  # a diverged run scores this log-loss instead of inf/NaN
# The target of a task: the best value of this share of the table's configs (5 of 1,024).
TARGET_QUANTILE = 0.005


@cache
def _split(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A fixed stratified 2/3 - 1/3 split of a dataset shipped in scikit-learn, standardised."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    loader = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer}[name]
    x, y = loader(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=1 / 3, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_val), y_train, y_val


def _capped(loss: float) -> float:
    return float(min(loss, LOSS_CAP)) if math.isfinite(loss) else LOSS_CAP


def sgd_curve(config: Mapping[str, Any], seed: int) -> list[float]:
    """sgd_digits' curve, exactly as ``benchmarks.tasks`` computes it."""
    from benchmarks.tasks import sgd_curve as curve

    return curve(config, seed)


def mlp_curve(config: Mapping[str, Any], seed: int) -> list[float]:
    """An MLP on digits, SGD with Nesterov momentum: validation log-loss after each epoch."""
    from sklearn.metrics import log_loss
    from sklearn.neural_network import MLPClassifier

    x_train, x_val, y_train, y_val = _split("digits")
    classes = np.unique(y_train)
    model = MLPClassifier(
        hidden_layer_sizes=(int(config["units"]),),
        solver="sgd",
        learning_rate_init=float(config["lr"]),
        momentum=float(config["momentum"]),
        nesterovs_momentum=True,
        alpha=float(config["alpha"]),
        batch_size=int(config["batch_size"]),
        random_state=seed,
    )
    curve = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for _ in range(EPOCHS):
            model.partial_fit(x_train, y_train, classes=classes)
            proba = model.predict_proba(x_val)
            loss = (
                log_loss(y_val, proba, labels=classes) if np.all(np.isfinite(proba)) else math.inf
            )
            curve.append(_capped(loss))
    return curve


GBM_ROUNDS_PER_EPOCH = 3


def gbm_curve(config: Mapping[str, Any], seed: int) -> list[float]:
    """Histogram gradient boosting on breast_cancer; one epoch is 3 boosting rounds."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import log_loss

    x_train, x_val, y_train, y_val = _split("breast_cancer")
    model = HistGradientBoostingClassifier(
        learning_rate=float(config["learning_rate"]),
        max_iter=EPOCHS * GBM_ROUNDS_PER_EPOCH,
        max_leaf_nodes=int(config["max_leaf_nodes"]),
        min_samples_leaf=int(config["min_samples_leaf"]),
        l2_regularization=float(config["l2_regularization"]),
        max_features=float(config["max_features"]),
        early_stopping=False,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x_train, y_train)
        stages = list(model.staged_predict_proba(x_val))
    return [
        _capped(log_loss(y_val, stages[k], labels=[0, 1]))
        for k in range(GBM_ROUNDS_PER_EPOCH - 1, len(stages), GBM_ROUNDS_PER_EPOCH)
    ]


@dataclass(frozen=True)
class CurveTask:
    """One learning-curve task: a W&B space and how one config's curve is computed."""

    name: str
    description: str
    parameters: dict[str, Any]
    compute: Callable[[Mapping[str, Any], int], list[float]]
    metric: str = "val_loss"
    epochs: int = EPOCHS

    def sweep_config(self, method: str) -> dict[str, Any]:
        """The W&B sweep config of this task for a search method (no early_terminate yet)."""
        return {
            "method": method,
            "metric": {"name": self.metric, "goal": "minimize"},
            "parameters": json.loads(json.dumps(self.parameters)),
        }

    @property
    def path(self) -> Path:
        return DATA / f"curves-{self.name}.json.gz"


def _sgd_parameters() -> dict[str, Any]:
    from benchmarks.tasks import TASKS

    return json.loads(json.dumps(TASKS["sgd_digits"].parameters))


CURVE_TASKS: dict[str, CurveTask] = {
    task.name: task
    for task in [
        CurveTask(
            "sgd_digits",
            f"SGD logistic regression on digits, validation log-loss over {EPOCHS} epochs;"
            " 3 numeric and 2 categorical parameters",
            _sgd_parameters(),
            sgd_curve,
        ),
        CurveTask(
            "mlp_digits",
            f"MLP (one hidden layer, SGD with Nesterov momentum) on digits, validation log-loss"
            f" over {EPOCHS} epochs; 5 numeric parameters",
            {
                "lr": _log(1e-3, 1.0),
                "momentum": _uniform(0.0, 0.99),
                "alpha": _log(1e-6, 1e-1),
                "units": _int(8, 256),
                "batch_size": _int(16, 256),
            },
            mlp_curve,
        ),
        CurveTask(
            "gbm_breast_cancer",
            f"Histogram gradient boosting on breast_cancer, validation log-loss every"
            f" {GBM_ROUNDS_PER_EPOCH} rounds ({EPOCHS} epochs); 5 numeric parameters",
            {
                "learning_rate": _log(1e-2, 1.0),
                "max_leaf_nodes": _int(2, 64),
                "min_samples_leaf": _int(1, 100),
                "l2_regularization": _log(1e-6, 10.0),
                "max_features": _uniform(0.1, 1.0),
            },
            gbm_curve,
        ),
    ]
}


# --- the tables -------------------------------------------------------------------------------


def _space(task: CurveTask) -> Any:
    import nbsweep

    return nbsweep.validate(task.sweep_config("random")).space


def table_configs(task: CurveTask, size: int = TABLE_SIZE) -> list[dict[str, Any]]:
    """``size`` configs over the task's space, by a scrambled Sobol sequence (fixed seed)."""
    from scipy.stats import qmc

    space = _space(task)
    points = qmc.Sobol(len(space.searchable), scramble=True, seed=TABLE_SEED).random(size)
    return [space.from_unit(p) for p in points]


def build_table(task: CurveTask, size: int = TABLE_SIZE, log: Any = sys.stderr) -> Path:
    """Train every config of the task's table once and write the curves file."""
    import sklearn

    configs = table_configs(task, size)
    curves = []
    started = time.perf_counter()
    for i, config in enumerate(configs):
        curves.append([float(f"{v:.6g}") for v in task.compute(config, TABLE_SEED)])
        if log is not None and (i + 1) % 64 == 0:
            print(
                f"{task.name}: {i + 1}/{size} curves, {time.perf_counter() - started:.0f}s",
                file=log,
            )
    DATA.mkdir(exist_ok=True)
    payload = {
        "task": task.name,
        "description": task.description,
        "epochs": task.epochs,
        "seed": TABLE_SEED,
        "scikit-learn": sklearn.__version__,
        "parameters": task.parameters,
        "configs": configs,
        "curves": curves,
    }
    with gzip.open(task.path, "wt") as out:
        json.dump(payload, out, separators=(",", ":"))
    return task.path


@dataclass
class Table:
    """A task's tabulated curves and the nearest-config lookup every method goes through."""

    task: CurveTask
    configs: list[dict[str, Any]]
    curves: np.ndarray  # (configs, epochs)
    _units: np.ndarray = field(init=False, repr=False)
    _keys: list[tuple[Any, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        space = _space(self.task)
        self._space = space
        self._numeric = [j for j, p in enumerate(space.searchable) if not p.is_categorical]
        self._categorical = [j for j, p in enumerate(space.searchable) if p.is_categorical]
        units = np.array([space.to_unit(c) for c in self.configs])
        self._units = units[:, self._numeric]
        self._keys = [self._key(u) for u in units]

    def _key(self, unit: np.ndarray) -> tuple[Any, ...]:
        searchable = self._space.searchable
        return tuple(searchable[j]._quantile(np.array([unit[j]]))[0] for j in self._categorical)

    def nearest(self, config: Mapping[str, Any]) -> int:
        """The index of the tabulated config nearest to ``config`` (same categories)."""
        unit = np.asarray(self._space.to_unit(config), dtype=float)
        key = self._key(unit)
        same = np.array([k == key for k in self._keys])
        distance = np.sum((self._units - unit[self._numeric]) ** 2, axis=1)
        distance[~same] = np.inf
        return int(np.argmin(distance))

    def curve(self, config: Mapping[str, Any]) -> list[float]:
        return [float(v) for v in self.curves[self.nearest(config)]]

    @property
    def bests(self) -> np.ndarray:
        """Each tabulated config's best value over its whole curve."""
        return self.curves.min(axis=1)

    @property
    def target(self) -> float:
        """The task's target: the best value of the top ``TARGET_QUANTILE`` of the table."""
        return float(np.quantile(self.bests, TARGET_QUANTILE, method="lower"))


@cache
def load_table(name: str) -> Table:
    """A task's table, built first if its file is missing (minutes, once)."""
    task = CURVE_TASKS[name]
    if not task.path.exists():
        print(f"building {task.path} (first use only)", file=sys.stderr)
        build_table(task)
    with gzip.open(task.path, "rt") as data:
        payload = json.load(data)
    return Table(task, payload["configs"], np.array(payload["curves"], dtype=float))


def crossing_share(table: Table, rung: int) -> float:
    """How much curves cross where it matters: of the configs that reach the target, the share
    that rank below the best third at ``rung`` epochs among the best tenth of the table (the
    runs a good search ends up comparing), i.e. what ASHA would stop there."""
    best_so_far = np.minimum.accumulate(table.curves, axis=1)
    final = best_so_far[:, -1]
    top = final <= np.quantile(final, 0.1)
    early = best_so_far[top, rung - 1]
    rank = np.argsort(np.argsort(early)) / len(early)
    return float(np.mean(rank[final[top] <= table.target] >= 1 / 3))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.curves", description=__doc__)
    parser.add_argument("tasks", nargs="*", help=f"some of {', '.join(CURVE_TASKS)} (all)")
    parser.add_argument("--size", type=int, default=TABLE_SIZE)
    parser.add_argument("--force", action="store_true", help="rebuild existing tables")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.tasks) - set(CURVE_TASKS))
    if unknown:
        parser.error(f"unknown task {unknown[0]!r}; choose from {', '.join(CURVE_TASKS)}")
    for name in args.tasks or list(CURVE_TASKS):
        task = CURVE_TASKS[name]
        if task.path.exists() and not args.force:
            print(f"{task.path} exists (--force rebuilds it)", file=sys.stderr)
        else:
            build_table(task, args.size)
        table = load_table(name)
        print(
            f"{name}: {len(table.configs)} configs, target {table.target:.4g},"
            f" best {table.bests.min():.4g}; of the configs at the target, stopped by ASHA"
            f" among the best tenth at epoch 1: {crossing_share(table, 1):.0%},"
            f" at 3: {crossing_share(table, 3):.0%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
