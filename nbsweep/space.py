"""The parameter space of a sweep: W&B's distributions, their quantiles, grid points, unit cube.

Every search method sees parameters the same way W&B's engine does (spec §5): each leaf maps a
quantile ``u`` in [0, 1] to a value with ``ppf``, and a value back into [0, 1] with ``cdf``.
Random search feeds ``ppf`` with uniform draws, bayes with the coordinates it picks, grid
enumerates ``grid_values``.

A parameter with ``when`` (nbsweep's extension, docs/config.md) is active only while the
parameters it names take the given values; an inactive parameter is left out of the run
config, and sits at ``INACTIVE`` in the unit cube so that bayes sees one point for it.

Where W&B's ``ppf`` misbehaves at the very edge of [0, 1] nbsweep clamps to the valid range:
``categorical`` at ``u=0`` gives the first value (W&B: index -1, the last value), ``int_uniform``
at ``u=0`` gives ``min`` (W&B: ``min-1``), ``categorical_w_probabilities`` at ``u=1`` gives the
last value with a positive probability (W&B: the first value), and the unbounded normal and
log-normal families clip ``u`` to ``[1e-12, 1 - 1e-12]`` so no run gets ``-inf``/``inf``.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import heapq
import math
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import yaml

from nbsweep._errors import ConfigError

CONSTANT = "constant"
CATEGORICAL = "categorical"
CATEGORICAL_PROB = "categorical_w_probabilities"
INT_UNIFORM = "int_uniform"
UNIFORM = "uniform"
Q_UNIFORM = "q_uniform"
LOG_UNIFORM = "log_uniform"
LOG_UNIFORM_VALUES = "log_uniform_values"
Q_LOG_UNIFORM = "q_log_uniform"
Q_LOG_UNIFORM_VALUES = "q_log_uniform_values"
INV_LOG_UNIFORM = "inv_log_uniform"
INV_LOG_UNIFORM_VALUES = "inv_log_uniform_values"
NORMAL = "normal"
Q_NORMAL = "q_normal"
LOG_NORMAL = "log_normal"
Q_LOG_NORMAL = "q_log_normal"
BETA = "beta"
Q_BETA = "q_beta"

DISTRIBUTIONS = (
    CONSTANT,
    CATEGORICAL,
    CATEGORICAL_PROB,
    INT_UNIFORM,
    UNIFORM,
    Q_UNIFORM,
    LOG_UNIFORM,
    LOG_UNIFORM_VALUES,
    Q_LOG_UNIFORM,
    Q_LOG_UNIFORM_VALUES,
    INV_LOG_UNIFORM,
    INV_LOG_UNIFORM_VALUES,
    NORMAL,
    Q_NORMAL,
    LOG_NORMAL,
    Q_LOG_NORMAL,
    BETA,
    Q_BETA,
)
GRID_DISTRIBUTIONS = frozenset({CONSTANT, CATEGORICAL, INT_UNIFORM, Q_UNIFORM})
_LOG = frozenset(
    {
        LOG_UNIFORM,
        LOG_UNIFORM_VALUES,
        Q_LOG_UNIFORM,
        Q_LOG_UNIFORM_VALUES,
        INV_LOG_UNIFORM,
        INV_LOG_UNIFORM_VALUES,
        LOG_NORMAL,
        Q_LOG_NORMAL,
    }
)
_Q = frozenset({Q_UNIFORM, Q_LOG_UNIFORM, Q_LOG_UNIFORM_VALUES, Q_NORMAL, Q_LOG_NORMAL, Q_BETA})
# Only these can reach +-inf at the ends of [0, 1], so only these clip u (module docstring).
_UNBOUNDED = frozenset({NORMAL, Q_NORMAL, LOG_NORMAL, Q_LOG_NORMAL})
_U_EPS = 1e-12
# The most points a grid may have (the product of its axes), and so the most values one
# parameter may enumerate. Grid search lists each axis in memory (W&B lists the whole
# product), and a million runs is beyond any sweep a notebook drives.
MAX_GRID_POINTS = 1_000_000
# Where an inactive parameter sits in the unit cube: every run without it is one point there.
INACTIVE = 0.5
# What a ``when`` can name: parameters whose values repeat, so that a run can match them.
CONDITION_DISTRIBUTIONS = frozenset({CONSTANT, CATEGORICAL, CATEGORICAL_PROB, INT_UNIFORM})


def grid_count(spec: Mapping[str, Any]) -> int:
    """How many values grid search enumerates for a normalised leaf spec, counted, not listed.

    ``q_uniform`` counts as ``np.arange`` does; W&B's dedupe may later merge float steps too
    small to tell apart. Raises ``ValueError`` for a distribution grid cannot enumerate.
    """
    dist = spec["distribution"]
    if dist == CONSTANT:
        return 1
    if dist == CATEGORICAL:
        return len(spec["values"])
    if dist == INT_UNIFORM:
        return max(0, spec["max"] - spec["min"] + 1)
    if dist == Q_UNIFORM:
        steps = (float(spec["max"]) - float(spec["min"])) / float(spec["q"])
        if not math.isfinite(steps):  # bounds near the float range: more than can be listed
            return int(sys.float_info.max)
        return max(0, math.ceil(steps))
    raise ValueError(f"grid search cannot enumerate {dist!r}")


def format_count(count: int) -> str:
    """A count for a message: ``1,000,001``, or its order of magnitude when very large."""
    return f"{count:,}" if count < 10**15 else f"about 10^{len(str(count)) - 1}"


def value_key(value: Any) -> str:
    """W&B's identity of a parameter value (spec §6.5): md5 of its sorted-keys YAML dump.

    A float with an integer value counts as that int (``1 == 1.0``) at the top level only;
    ``True != 1``, a list differs from a tuple, NaN equals NaN and dict key order is ignored.
    Plain scalars take a cheap path with the same equalities (numpy scalars count as Python
    ones), since grid search computes this for every run at every call.
    """
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if isinstance(value, (bool, np.bool_)):
        return f"b:{bool(value)}"
    if isinstance(value, (int, np.integer)):
        return f"i:{int(value)}"
    if isinstance(value, (float, np.floating)):
        return f"f:{float(value)!r}"
    if isinstance(value, str):
        return "s:" + value
    if value is None:
        return "n:"
    dumped = yaml.dump(value, default_flow_style=True, sort_keys=True)
    return "y:" + hashlib.md5(dumped.encode()).hexdigest()


class Condition(NamedTuple):
    """One entry of a ``when``: active only while ``parent`` takes a value keyed in ``keys``."""

    parent: tuple[str, ...]
    keys: frozenset[str]
    values: tuple[Any, ...]  # as written, for integer parents and messages


@dataclass(frozen=True)
class Parameter:
    """One leaf of the search space: its path in the nested config and its normalised spec.

    ``when`` holds its own conditions and those of the blocks around it, parents resolved.
    """

    path: tuple[str, ...]
    spec: Mapping[str, Any]
    when: tuple[Condition, ...] = ()
    # Precomputed once: the categorical identity table and cumulative probabilities.
    _keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _cumsum: np.ndarray | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        dist = self.spec.get("distribution")
        if dist not in DISTRIBUTIONS:
            raise ConfigError(
                f"{self.key_path}.distribution: unknown distribution {dist!r} "
                f"(one of: {', '.join(DISTRIBUTIONS)})"
            )
        keys: tuple[str, ...] = ()
        cumsum = None
        if self.is_categorical:
            keys = tuple(self.identity(v) for v in self.spec["values"])
        if dist == CATEGORICAL_PROB:
            cumsum = np.cumsum(np.asarray(self.spec["probabilities"], dtype=float))
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_cumsum", cumsum)

    @property
    def name(self) -> str:
        """The path joined with "/" (``model/depth``), for tables and plots."""
        return "/".join(self.path)

    @property
    def key_path(self) -> str:
        """Where the parameter sits in the sweep config, for error messages."""
        return "parameters." + ".parameters.".join(self.path)

    @property
    def distribution(self) -> str:
        return str(self.spec["distribution"])

    @property
    def is_constant(self) -> bool:
        return self.distribution == CONSTANT

    @property
    def is_categorical(self) -> bool:
        return self.distribution in (CATEGORICAL, CATEGORICAL_PROB)

    @property
    def is_log(self) -> bool:
        """Log-scale distributions: views draw their axis in log scale."""
        return self.distribution in _LOG

    @property
    def is_discrete(self) -> bool:
        """Values come from a countable set (categories, integers, q-rounded numbers)."""
        return self.is_categorical or self.distribution in _Q or self.distribution == INT_UNIFORM

    def identity(self, value: Any) -> str:
        """The identity of ``value`` as a choice of this parameter (grid dedupe, lookups)."""
        # Dict-valued choices are compared on the keys the choices use (W&B #121), so a run
        # config that carries extra keys inside the dict still matches its grid point.
        if isinstance(value, Mapping) and self.is_categorical:
            used = {k for v in self.spec["values"] if isinstance(v, Mapping) for k in v}
            value = {k: v for k, v in value.items() if k in used}
        return value_key(value)

    def index_of(self, value: Any) -> int:
        """The index of ``value`` among a categorical's values (W&B identity rules)."""
        key = self.identity(value)
        try:
            return self._keys.index(key)
        except ValueError:
            raise ValueError(
                f"{value!r} is not one of the values of {self.key_path} "
                f"({list(self.spec['values'])!r})"
            ) from None

    # -- quantile <-> number, vectorised; categoricals use indices as their numbers --

    def _quantile(self, u: np.ndarray) -> np.ndarray:
        """The numeric value (index for categoricals) at quantiles ``u``, before type casts."""
        s, dist = self.spec, self.distribution
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        if dist in _UNBOUNDED:
            u = np.clip(u, _U_EPS, 1.0 - _U_EPS)
        if dist == CATEGORICAL:
            n = len(s["values"])
            return np.clip(_randint_ppf(u, 0, n), 0, n - 1).astype(int)
        if dist == CATEGORICAL_PROB:
            cumsum = self._cumsum
            assert cumsum is not None
            last = int(np.flatnonzero(np.asarray(s["probabilities"], dtype=float) > 0)[-1])
            # First index with u < cumsum[i]; u=1 (or float error in the sum) lands past the
            # end and is clamped to the last value that can actually be drawn.
            return np.minimum(np.searchsorted(cumsum, u, side="right"), last)
        if dist == INT_UNIFORM:
            lo, hi = s["min"], s["max"]
            return np.clip(_randint_ppf(u, lo, hi + 1), lo, hi).astype(int)
        if dist in (UNIFORM, Q_UNIFORM):
            x = np.clip(s["min"] + u * (s["max"] - s["min"]), s["min"], s["max"])
        elif dist in (LOG_UNIFORM, Q_LOG_UNIFORM):
            x = _log_uniform(u, s["min"], s["max"])
        elif dist in (LOG_UNIFORM_VALUES, Q_LOG_UNIFORM_VALUES, INV_LOG_UNIFORM_VALUES):
            # The inverse law of two log-uniform bounds is the log-uniform law (spec §5.2).
            x = _log_uniform(u, math.log(s["min"]), math.log(s["max"]), s["min"], s["max"])
        elif dist == INV_LOG_UNIFORM:
            x = _log_uniform(u, -s["max"], -s["min"])
        elif dist in (NORMAL, Q_NORMAL):
            x = _normal_ppf(u, s["mu"], s["sigma"])
        elif dist in (LOG_NORMAL, Q_LOG_NORMAL):
            x = np.exp(_normal_ppf(u, s["mu"], s["sigma"]))
        elif dist in (BETA, Q_BETA):
            x = _beta_ppf(u, s["a"], s["b"])
        else:
            raise AssertionError(dist)  # constants never reach here
        if dist in _Q:
            # ``+ 0.0`` turns the -0.0 that rounding small negatives gives into 0.0.
            x = np.round(x / s["q"]) * s["q"] + 0.0
        return np.asarray(x, dtype=float)

    def _unit(self, x: np.ndarray) -> np.ndarray:
        """The CDF at numbers ``x`` (indices for categoricals), clipped into [0, 1]."""
        s, dist = self.spec, self.distribution
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if dist == CATEGORICAL:
                u = (x + 1.0) / len(s["values"])
            elif dist == CATEGORICAL_PROB:
                # Midpoint of the value's probability interval: maps back to the same index
                # under ``_quantile`` (W&B's ``cumsum(p)[x]`` crashes here, spec §8.5).
                cumsum = self._cumsum
                assert cumsum is not None
                idx = x.astype(int)
                lower = np.where(idx > 0, cumsum[np.maximum(idx - 1, 0)], 0.0)
                u = (lower + cumsum[idx]) / 2.0
            elif dist == INT_UNIFORM:
                u = (np.floor(x) - s["min"] + 1.0) / (s["max"] - s["min"] + 1.0)
            elif dist in (UNIFORM, Q_UNIFORM):
                u = (x - s["min"]) / (s["max"] - s["min"])
            elif dist in (LOG_UNIFORM, Q_LOG_UNIFORM):
                u = (np.log(x) - s["min"]) / (s["max"] - s["min"])
            elif dist in (LOG_UNIFORM_VALUES, Q_LOG_UNIFORM_VALUES, INV_LOG_UNIFORM_VALUES):
                lo, hi = math.log(s["min"]), math.log(s["max"])
                u = (np.log(x) - lo) / (hi - lo)
            elif dist == INV_LOG_UNIFORM:
                u = 1.0 - (-np.log(x) - s["min"]) / (s["max"] - s["min"])
            elif dist in (NORMAL, Q_NORMAL):
                u = _normal_cdf(x, s["mu"], s["sigma"])
            elif dist in (LOG_NORMAL, Q_LOG_NORMAL):
                u = _normal_cdf(np.log(x), s["mu"], s["sigma"])
            elif dist in (BETA, Q_BETA):
                u = _beta_cdf(x, s["a"], s["b"])
            else:  # constant: W&B encodes it as 0
                u = np.zeros_like(x)
        # log of a non-positive value gives -inf/nan: that value sits below the range.
        return np.clip(np.nan_to_num(u, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)

    def _cast(self, number: Any) -> Any:
        """The run-config value for a number from ``_quantile``."""
        dist = self.distribution
        if self.is_categorical:
            return copy.deepcopy(self.spec["values"][int(number)])
        if dist == INT_UNIFORM:
            return int(number)
        q = self.spec.get("q")
        if dist in _Q and isinstance(q, int) and not isinstance(q, bool):
            return int(number)
        return float(number)

    def _number(self, value: Any) -> float:
        """The number ``_unit`` expects for a run-config value."""
        if self.is_categorical:
            return float(self.index_of(value))
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise ValueError(f"{value!r} is not a number, but {self.key_path} is numeric")
        return float(value)

    # -- public, scalar --

    def ppf(self, u: float) -> Any:
        """The value at quantile ``u`` (W&B's ``ppf`` with the clamps of the module docstring)."""
        if not 0.0 <= u <= 1.0:  # NaN fails this too
            raise ValueError(f"{self.key_path}: quantile {u!r} is outside [0, 1]")
        if self.is_constant:
            return copy.deepcopy(self.spec["value"])
        return self._cast(self._quantile(np.array([u]))[0])

    def cdf(self, value: Any) -> float:
        """Where ``value`` sits in [0, 1] (W&B's ``cdf``, spec §5.3); constants give 0."""
        if self.is_constant:
            return 0.0
        return float(self._unit(np.array([self._number(value)]))[0])

    def snap(self, u: np.ndarray) -> np.ndarray:
        """Move quantiles onto the coordinate of the value they produce (``cdf(ppf(u))``).

        Bayes scores candidates at the coordinates where their runs will be observed, so two
        candidates that give the same integer or category are the same point to the model.
        """
        return self._unit(self._quantile(u))

    def grid_count(self) -> int:
        """How many values ``grid_values`` lists, counted without listing them."""
        if self.distribution not in GRID_DISTRIBUTIONS:
            raise ConfigError(
                f"{self.key_path}: distribution {self.distribution!r} cannot be enumerated by "
                "grid search; use values, int_uniform or q_uniform, or method random or bayes"
            )
        return grid_count(self.spec)

    def grid_values(self) -> list[Any]:
        """The grid points of this parameter, as W&B enumerates them (spec §6.3).

        A parameter with more than ``MAX_GRID_POINTS`` values is a ``ConfigError``, not a list
        that exhausts memory (``validate`` refuses such grids; a stored sweep may predate it).
        """
        count = self.grid_count()
        if count > MAX_GRID_POINTS:
            raise ConfigError(
                f"{self.key_path}: grid search would list {format_count(count)} values, more "
                f"than the {MAX_GRID_POINTS:,} a grid may have"
            )
        s, dist = self.spec, self.distribution
        if dist == CONSTANT:
            return [copy.deepcopy(s["value"])]
        if dist == CATEGORICAL:
            return copy.deepcopy(list(s["values"]))
        if dist == INT_UNIFORM:
            return list(range(s["min"], s["max"] + 1))
        return list(np.arange(s["min"], s["max"], s["q"]).tolist())

    def _distinct_grid_count(self) -> int:
        if self.is_categorical:
            return len(set(self._keys))
        if self.distribution == Q_UNIFORM:  # float steps: only listing them finds equal ones
            return len(self.grid_points()[0])
        return self.grid_count()

    def grid_points(self) -> tuple[list[str], list[Any]]:
        """The distinct grid points: their identity keys and the values emitted.

        Duplicates (by W&B identity) keep the position of their first occurrence and emit the
        value listed last, as W&B's dict-based dedupe does.
        """
        emitted: dict[str, Any] = {}
        for value in self.grid_values():
            emitted[self.identity(value)] = value
        return list(emitted), list(emitted.values())


def _log_uniform(
    u: np.ndarray, lo: float, hi: float, low: float | None = None, high: float | None = None
) -> np.ndarray:
    """exp of a uniform exponent in [lo, hi], kept inside the value range [low, high].

    The range defaults to [e^lo, e^hi]; ``*_values`` pass their own bounds because
    ``exp(log(100))`` is 100.00000000000004, just outside ``max``.
    """
    low = math.exp(lo) if low is None else low
    high = math.exp(hi) if high is None else high
    return np.clip(np.exp(lo + u * (hi - lo)), low, high)


def _special() -> ModuleType:
    """``scipy.special``, imported on first use: agents and programs, which never sample, then
    start without its 0.1-0.2 s import."""
    import scipy.special

    return scipy.special


# scipy.special ufuncs rather than scipy.stats: the same numbers (scipy.stats calls them) without
# the per-call argument checking, which dominated sampling and bayes candidate scoring.
def _randint_ppf(u: np.ndarray, low: int, high: int) -> np.ndarray:
    """``scipy.stats.randint.ppf(u, low, high)``, including its correction for float error."""
    vals = np.ceil(u * (high - low) + low) - 1
    below = np.clip(vals - 1, low, high)
    return np.where((np.floor(below) - low + 1) / (high - low) >= u, below, vals)


def _normal_ppf(u: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    # sigma = 0 is allowed by the schema: a point mass (scipy would give NaN).
    return np.full_like(u, float(mu)) if sigma == 0 else mu + sigma * _special().ndtri(u)


def _normal_cdf(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.where(x >= mu, 1.0, 0.0) if sigma == 0 else _special().ndtr((x - mu) / sigma)


def _beta_ppf(u: np.ndarray, a: float, b: float) -> np.ndarray:
    # a or b = 0 is allowed by the schema: the limits are point masses at 0 or 1 (or both).
    if a == 0 and b == 0:
        return np.where(u < 0.5, 0.0, 1.0)
    if a == 0 or b == 0:
        return np.full_like(u, 0.0 if a == 0 else 1.0)
    return _special().betaincinv(a, b, u)


def _beta_cdf(x: np.ndarray, a: float, b: float) -> np.ndarray:
    if a == 0 or b == 0:
        return np.where(x >= 1.0, 1.0, np.where(x >= 0.0, 0.5 if a == b else float(a == 0), 0.0))
    return _special().betainc(a, b, np.clip(x, 0.0, 1.0))


def _key_path(path: tuple[str, ...]) -> str:
    return "parameters." + ".parameters.".join(path)


def find_parent(
    scope: tuple[str, ...], name: str, paths: Collection[tuple[str, ...]]
) -> tuple[str, ...] | None:
    """The path a ``when`` key names, seen from the block at ``scope``: the block's own
    parameters first, then those of the blocks around it; ``model/depth`` goes inside."""
    parts = tuple(name.split("/"))
    for depth in range(len(scope), -1, -1):
        if (candidate := scope[:depth] + parts) in paths:
            return candidate
    return None


_Found = tuple[
    tuple[str, ...], Mapping[str, Any], tuple[tuple[tuple[str, ...], Mapping[str, Any]], ...]
]


def _conditions(
    found: Sequence[_Found], blocks: Collection[tuple[str, ...]]
) -> tuple[list[Parameter], list[str]]:
    """The parameters with their ``when`` resolved, and every problem with its key path."""
    plain = {path: Parameter(path, spec) for path, spec, _ in found}
    known = {*plain, *blocks}
    problems: list[str] = []
    out = []
    for path, spec, whens in found:
        conditions = []
        for holder, when in whens:
            for name, values in when.items():
                where = f"{_key_path(holder)}.when.{name}"
                values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
                parent = _parent(holder, name, values, plain, known, where, problems)
                if parent is not None:
                    keys = frozenset(parent.identity(v) for v in values)
                    conditions.append(Condition(parent.path, keys, values))
        out.append(Parameter(path, spec, tuple(conditions)))
    # A block's condition is checked for each parameter inside it: report it once.
    return out, list(dict.fromkeys(problems))


def _parent(
    holder: tuple[str, ...],
    name: str,
    values: tuple[Any, ...],
    plain: Mapping[tuple[str, ...], Parameter],
    known: Collection[tuple[str, ...]],
    where: str,
    problems: list[str],
) -> Parameter | None:
    """The parameter a ``when`` key names, checked; None with a problem when it cannot be."""
    found = find_parent(holder[:-1], name, known)
    if found is None:
        names = ["/".join(p) for p in plain]
        match = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        hint = f"; did you mean {match[0]!r}?" if match else ""
        problems.append(f"{where}: no parameter {name!r} to depend on{hint}")
        return None
    if found[: len(holder)] == holder and found != holder:
        problems.append(f"{where}: {name!r} lies inside what it would switch on and off")
        return None
    if found not in plain:
        inside = next(p for p in plain if p[: len(found)] == found)
        problems.append(
            f"{where}: {name!r} is a nested block; name a parameter in it, "
            f"such as {'/'.join(inside)!r}"
        )
        return None
    parent = plain[found]
    if parent.distribution not in CONDITION_DISTRIBUTIONS:
        problems.append(
            f"{where}: {parent.key_path} is {parent.distribution!r}, whose values rarely "
            "repeat; a condition needs a parameter with values, int_uniform or value"
        )
        return None
    allowed = set(parent._keys) if parent.is_categorical else None
    for value in values:
        if allowed is not None:
            ok = parent.identity(value) in allowed
        elif parent.is_constant:
            ok = value_key(value) == value_key(parent.spec["value"])
        else:  # int_uniform
            ok = (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and float(value).is_integer()
                and parent.spec["min"] <= value <= parent.spec["max"]
            )
        if not ok:
            if parent.is_categorical:
                takes = f"one of {list(parent.spec['values'])!r}"
            elif parent.is_constant:
                takes = f"only {parent.spec['value']!r}"
            else:
                takes = f"the integers {parent.spec['min']} to {parent.spec['max']}"
            problems.append(
                f"{where}: {value!r} is not a value of {parent.key_path}: it takes {takes}"
            )
    return parent


def _dependency_order(parameters: Sequence[Parameter]) -> tuple[list[Parameter], list[str]]:
    """The parameters in W&B's order, each moved after the ones it depends on; with the
    cycles found (as problems) when there is no such order."""
    index = {p.path: i for i, p in enumerate(parameters)}
    waiting = [len({c.parent for c in p.when}) for p in parameters]
    children: dict[int, list[int]] = {}
    for i, p in enumerate(parameters):
        for parent in {c.parent for c in p.when}:
            children.setdefault(index[parent], []).append(i)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    order: list[Parameter] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(parameters[i])
        for child in children.get(i, []):
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    if len(order) == len(parameters):
        return order, []
    # Walk parent links from a parameter left over until one repeats: that is a cycle.
    left = {i for i, n in enumerate(waiting) if n > 0}
    walk = [min(left)]
    while True:
        p = parameters[walk[-1]]
        step = next(index[c.parent] for c in p.when if index[c.parent] in left)
        if step in walk:
            cycle = [*walk[walk.index(step) :], step]
            names = " -> ".join(parameters[i].name for i in cycle)
            where = f"{parameters[step].key_path}.when"
            if len(cycle) == 2:
                return order, [f"{where}: {parameters[step].name!r} depends on itself"]
            return order, [f"{where}: the conditions form a cycle ({names})"]
        walk.append(step)


class Space:
    """The flattened parameters of a sweep config, in W&B's order (spec §5.4)."""

    def __init__(self, parameters: Sequence[Parameter]) -> None:
        self.parameters: tuple[Parameter, ...] = tuple(parameters)
        self.searchable: tuple[Parameter, ...] = tuple(
            p for p in self.parameters if not p.is_constant
        )
        self.conditional = any(p.when for p in self.parameters)
        order, problems = _dependency_order(self.parameters)
        if problems:
            raise ConfigError(problems)
        # Each parameter after the ones its ``when`` names: the order values are decided in.
        self.order: tuple[Parameter, ...] = tuple(order)
        self._by_path = {p.path: p for p in self.parameters}
        self._parents = {c.parent for p in self.parameters for c in p.when}

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> Space:
        """Flatten a normalised ``parameters`` block depth-first, keys code-point sorted at each
        level (``SweepConfig.space`` builds a sweep's); ``when`` resolved and checked."""
        found: list[_Found] = []
        blocks: list[tuple[str, ...]] = []

        def walk(block: Mapping[str, Any], prefix: tuple[str, ...], whens: tuple[Any, ...]) -> None:
            for key in sorted(block):
                spec = block[key]
                path = (*prefix, key)
                if not isinstance(spec, Mapping):
                    raise ConfigError(f"{_key_path(path)}: expected a mapping, got {spec!r}")
                inner = (*whens, (path, spec["when"])) if "when" in spec else whens
                if "distribution" in spec:
                    found.append((path, spec, inner))
                elif "parameters" in spec:
                    blocks.append(path)
                    walk(spec["parameters"], path, inner)
                else:
                    raise ConfigError(
                        f"{_key_path(path)}: no 'distribution' key; pass the config through "
                        "nbsweep.validate first"
                    )

        walk(parameters, (), ())
        resolved, problems = _conditions(found, blocks)
        if problems:
            raise ConfigError(problems)
        return cls(resolved)

    def __len__(self) -> int:
        return len(self.parameters)

    def is_active(self, parameter: Parameter, values: Mapping[tuple[str, ...], Any]) -> bool:
        """Whether ``parameter``'s conditions hold, ``values`` holding the active parents'."""
        return all(
            c.parent in values and self._by_path[c.parent].identity(values[c.parent]) in c.keys
            for c in parameter.when
        )

    def active(self, flat: Mapping[tuple[str, ...], Any]) -> set[tuple[str, ...]]:
        """The paths of the parameters active in a run whose values are ``flat``."""
        on: dict[tuple[str, ...], Any] = {}
        for p in self.order:
            if self.is_active(p, on):
                on[p.path] = flat.get(p.path)
        return set(on)

    def grid_size(self) -> int:
        """How many runs a grid over this space makes (1 when every parameter is constant).

        Counted, never listed past ``MAX_GRID_POINTS`` (a sweep stored before the limit gets
        its counted size). Within the limit, W&B's dedupe counts as grid search will see it:
        equal categorical values once, and ``q_uniform`` steps too small to tell apart once.
        A conditional grid counts its valid combinations only; past the limit, at least.
        """
        if self.conditional:
            return self._conditional_grid_size()
        counted = math.prod(p.grid_count() for p in self.searchable)
        if counted > MAX_GRID_POINTS:
            return counted
        return math.prod(p._distinct_grid_count() for p in self.searchable)

    def _conditional_grid_size(self) -> int:
        """Branch on the values of the parameters others depend on; multiply the rest.

        Every branch holds at least one run, so the walk stops once it has more branches than
        a grid may have points."""
        branches = 0

        def count(start: int, values: dict[tuple[str, ...], Any]) -> int:
            nonlocal branches
            product = 1
            for i in range(start, len(self.order)):
                p = self.order[i]
                if not self.is_active(p, values):
                    continue
                if p.path in self._parents:
                    if branches > MAX_GRID_POINTS:
                        return product
                    branches += 1
                    return product * sum(
                        count(i + 1, {**values, p.path: value}) for value in p.grid_points()[1]
                    )
                product *= 1 if p.is_constant else p._distinct_grid_count()
            return product

        return count(0, {})

    def flatten(self, nested: Mapping[str, Any]) -> dict[tuple[str, ...], Any]:
        """The values of this space's parameters in a nested run config; missing ones left out."""
        flat: dict[tuple[str, ...], Any] = {}
        for p in self.parameters:
            node: Any = nested
            for key in p.path:
                if not isinstance(node, Mapping) or key not in node:
                    break
                node = node[key]
            else:
                flat[p.path] = node
        return flat

    def nest(self, flat: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
        """A nested run config from flat values: constants filled in when absent, inactive
        parameters left out."""
        values: dict[tuple[str, ...], Any] = {}
        for p in self.order:
            if not self.is_active(p, values):
                continue
            if p.path in flat:
                values[p.path] = flat[p.path]
            elif p.is_constant:
                values[p.path] = p.ppf(0.0)
        nested: dict[str, Any] = {}
        for p in self.parameters:
            if p.path not in values:
                continue
            node = nested
            for key in p.path[:-1]:
                node = node.setdefault(key, {})
            node[p.path[-1]] = values[p.path]
        return nested

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One random run config: every searchable parameter at ``ppf(U)``, U ~ uniform."""
        return self.from_unit(rng.random(len(self.searchable)))

    def to_unit(self, nested: Mapping[str, Any]) -> np.ndarray:
        """The run config as a point of [0, 1]^d (searchable parameters); NaN where missing,
        ``INACTIVE`` where the run's values leave a parameter inactive.

        Raises ``ValueError`` naming the parameter when a value is not allowed (a categorical
        value outside its ``values``).
        """
        flat = self.flatten(nested)
        on = self.active(flat) if self.conditional else self._by_path
        return np.array(
            [
                (p.cdf(flat[p.path]) if p.path in flat else np.nan) if p.path in on else INACTIVE
                for p in self.searchable
            ],
            dtype=float,
        )

    def from_unit(self, u: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """The run config at the point ``u`` of [0, 1]^d, constants included, inactive
        parameters left out."""
        u = np.asarray(u, dtype=float)
        if u.shape != (len(self.searchable),):
            raise ValueError(
                f"expected a point with {len(self.searchable)} coordinates, got shape {u.shape}"
            )
        at = {p.path: x for p, x in zip(self.searchable, u, strict=True)}
        values: dict[tuple[str, ...], Any] = {}
        for p in self.order:  # parents first: an inactive parameter is never drawn
            if self.is_active(p, values):  # constants too: they may be parents
                values[p.path] = p.ppf(at.get(p.path, 0.0))
        return self.nest(values)

    def snap(self, points: np.ndarray) -> np.ndarray:
        """Each row of ``points`` moved to the coordinates its run config will have."""
        points = np.asarray(points, dtype=float)
        out = np.empty_like(points)
        for j, p in enumerate(self.searchable):
            out[:, j] = p.snap(points[:, j]) if p.is_discrete else points[:, j]
        if self.conditional:
            out[~self.active_mask(out)] = INACTIVE
        return out

    def active_mask(self, points: np.ndarray) -> np.ndarray:
        """Which coordinates of each row of ``points`` belong to an active parameter."""
        column = {p.path: j for j, p in enumerate(self.searchable)}
        on: dict[tuple[str, ...], np.ndarray] = {}
        for p in self.order:
            mask = np.ones(len(points), dtype=bool)
            for c in p.when:
                mask &= on[c.parent] & self._matches(c, points[:, column.get(c.parent, 0)])
            on[p.path] = mask
        return np.array([on[p.path] for p in self.searchable], dtype=bool).T.reshape(
            len(points), len(self.searchable)
        )

    def _matches(self, condition: Condition, u: np.ndarray) -> np.ndarray:
        """Whether the parent of ``condition`` at coordinates ``u`` takes an allowed value."""
        parent = self._by_path[condition.parent]
        if parent.is_constant:
            return np.full(len(u), parent.identity(parent.spec["value"]) in condition.keys)
        numbers = parent._quantile(u)
        if parent.is_categorical:
            allowed: Iterable[Any] = [
                i for i, key in enumerate(parent._keys) if key in condition.keys
            ]
        else:
            allowed = [v for v in condition.values if isinstance(v, (int, float))]
        return np.isin(numbers, list(allowed))
