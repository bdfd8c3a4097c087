"""The validated sweep config: the normalised W&B dict, and typed fields read from it once.

``validate`` builds a ``SweepConfig``; code past ``nbsweep/config`` reads its fields, never the
dict. It is still a read-only mapping over the normalised dict, so users index it, unpack it
(``{**config, "method": "bayes"}``), compare it with dicts and dump it with ``yaml.safe_dump``
as they did when ``validate`` returned a dict. The dict is what the store keeps
(``as_dict``); ``from_stored`` turns it back into a ``SweepConfig``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import yaml

from nbsweep.config._validate import _to_mapping, external_scheduler, normalise

if TYPE_CHECKING:
    from nbsweep.space import Space

_ConfigSource = Mapping[str, Any] | str | os.PathLike[str]


@dataclass(frozen=True)
class Metric:
    """``metric``: what the sweep optimises (``goal``) and when it is done (``target``)."""

    name: str
    goal: str = "minimize"
    target: float | None = None
    impute: str = "worst"
    impute_while_running: str = "false"

    @property
    def maximize(self) -> bool:
        return self.goal == "maximize"


@dataclass(frozen=True)
class EarlyTerminate:
    """``early_terminate``: the stopping rule (``type``: hyperband, asha or multifidelity) and
    its settings."""

    type: str
    eta: float = 3
    min_iter: int | None = None
    max_iter: int | None = None
    s: int | None = None
    strict: bool = True


@dataclass(frozen=True)
class SchedulerSpec:
    """``scheduler``: W&B's engine or Launch scheduler job, and what nbsweep takes from it."""

    engine: str | None = None
    job: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)  # Optuna's sampler and pruner
    num_workers: int | None = None  # caps the sweep's agents
    priority: str | None = None  # low, medium, high: the GPU pool's order
    env: tuple[str, ...] = ()  # resource_args.env: variables forwarded to the runs
    search_space: str | None = None
    external: str | None = None  # the scheduler that searches instead of ``method``


@dataclass(frozen=True, eq=False, repr=False)
class SweepConfig(Mapping[str, Any]):
    """A validated sweep config: build it with ``nbsweep.validate``; immutable."""

    _data: dict[str, Any]
    method: str
    metric: Metric | None
    parameters: Mapping[str, Any]  # the normalised block; read it, never change it
    run_cap: int | None
    early_terminate: EarlyTerminate | None
    scheduler: SchedulerSpec
    queue: str | None
    program: str | None
    command: tuple[Any, ...] | None
    seed: int | None
    name: str | None
    # Launch keys that mean something to W&B's cloud only (reported when the sweep starts).
    idle_launch_keys: tuple[str, ...]

    @classmethod
    def _of(cls, data: dict[str, Any]) -> SweepConfig:
        metric = data.get("metric")
        early = data.get("early_terminate")
        scheduler = data.get("scheduler") or {}
        command = data.get("command")
        return cls(
            _data=data,
            method=data["method"],
            metric=Metric(**metric) if metric else None,
            parameters=data.get("parameters") or {},
            run_cap=data.get("run_cap"),
            early_terminate=EarlyTerminate(**early) if early else None,
            scheduler=SchedulerSpec(
                engine=scheduler.get("engine"),
                job=scheduler.get("job"),
                settings=scheduler.get("settings") or {},
                num_workers=scheduler.get("num_workers"),
                priority=scheduler.get("priority"),
                env=tuple((scheduler.get("resource_args") or {}).get("env") or ()),
                search_space=scheduler.get("search_space"),
                external=external_scheduler(scheduler),
            ),
            queue=data.get("queue"),
            program=data.get("program"),
            command=tuple(command) if command is not None else None,
            seed=data.get("seed"),
            name=data.get("name"),
            idle_launch_keys=_idle_launch_keys(data, scheduler),
        )

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> SweepConfig:
        """The config of a stored sweep, validated again without repeating its warnings."""
        return cls._of(normalise(data, stored=True, quiet=True))

    def replace(self, **changes: Any) -> SweepConfig:
        """A copy with top-level keys replaced (``None`` removes one), validated again."""
        data = {**self._data, **changes}
        return SweepConfig._of(
            normalise({k: v for k, v in data.items() if v is not None}, quiet=True)
        )

    def with_priority(self, level: str) -> SweepConfig:
        """A copy with ``scheduler.priority`` set to ``level``."""
        return self.replace(scheduler={**self._data.get("scheduler", {}), "priority": level})

    def updated(self, given: _ConfigSource) -> SweepConfig:
        """``given``'s keys replace this config's (W&B's resume); its ``scheduler`` updates
        the scheduler key by key. ``given`` is a dict, YAML text or a YAML file."""
        changes = dict(_to_mapping(given))
        old = self._data.get("scheduler")
        new = changes.get("scheduler")
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            changes["scheduler"] = {**old, **new}
        return validate({**self._data, **changes})

    def changed_keys(self, other: SweepConfig) -> list[str]:
        """The top-level keys whose values differ between this config and ``other``."""
        keys = dict.fromkeys([*self._data, *other._data])
        return [k for k in keys if self._data.get(k) != other._data.get(k)]

    def as_dict(self) -> dict[str, Any]:
        """A deep copy of the normalised dict: what the store keeps."""
        return copy.deepcopy(self._data)

    @property
    def metric_name(self) -> str | None:
        """The name of the metric runs are compared on; None without ``metric``."""
        return self.metric.name if self.metric is not None else None

    @cached_property
    def space(self) -> Space:
        """The flattened parameters, in W&B's order, that every searcher works in."""
        from nbsweep.space import Space  # numpy: agents and CLIs that never search skip it

        return Space.from_parameters(self.parameters)

    @cached_property
    def grid_size(self) -> int | None:
        """How many runs the grid makes in all (1 for an all-constant grid); None unless
        ``method`` is grid."""
        return self.space.grid_size() if self.method == "grid" else None

    # -- a read-only mapping: each value handed out is the caller's own copy ------------------

    def __getitem__(self, key: str) -> Any:
        return copy.deepcopy(self._data[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SweepConfig):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to dicts, which are unhashable

    def __repr__(self) -> str:
        return f"SweepConfig({self._data!r})"

    def __copy__(self) -> SweepConfig:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SweepConfig:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # The dict travels, not the cached space: agents rebuild what they use.
        return (SweepConfig.from_stored, (self._data,))


def _idle_launch_keys(data: Mapping[str, Any], scheduler: Mapping[str, Any]) -> tuple[str, ...]:
    idle = [f"{key} {data[key]!r}" for key in ("job", "image_uri") if key in data]
    if "launch" in data:
        idle.append("launch")
    idle += [
        f"scheduler.{key} {scheduler[key]!r}"
        for key in ("docker_image", "resource")
        if key in scheduler
    ]
    other = [k for k in scheduler.get("resource_args") or {} if k != "env"]
    idle += [f"scheduler.resource_args.{key}" for key in other]
    return tuple(idle)


def validate(config: _ConfigSource) -> SweepConfig:
    """Check a sweep config and return it normalised (distributions and defaults filled).

    ``config`` is a dict, YAML text, or a path to a YAML file; the caller's dict is never
    changed. Every problem is reported at once in one ``ConfigError``; configs that run but
    probably not as meant emit a ``ConfigWarning``.
    """
    if isinstance(config, SweepConfig):
        config = config._data
    return SweepConfig._of(normalise(config))


def _represent(dumper: yaml.SafeDumper, config: SweepConfig) -> yaml.Node:
    return dumper.represent_dict(config._data)


for _dumper in (yaml.SafeDumper, yaml.Dumper):
    _dumper.add_representer(SweepConfig, _represent)
