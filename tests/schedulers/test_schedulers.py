"""Schedulers: nbsweep's own, Optuna's (samplers, pruners, pruning through the controller),
and custom ones registered by name or declared by a package's entry point."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import nbsweep
from nbsweep import ConfigError, SweepError
from nbsweep._runs import RunRecord
from nbsweep.config import SweepConfig
from nbsweep.schedulers import agent_scheduler, make_scheduler, scheduler_name
from nbsweep.schedulers._nbsweep import NbsweepScheduler
from nbsweep.schedulers._optuna import OptunaScheduler
from tests.schedulers import trainfns
from tests.schedulers.custom import Checkpoint, Countdown

pytestmark = pytest.mark.timeout(120)

OPTUNA_JOB = "wandb/sweep-jobs/job-optuna-sweep-scheduler:latest"


def optuna_config(**settings: Any) -> SweepConfig:
    return nbsweep.validate(
        {
            "metric": {"name": "loss", "goal": "minimize"},
            "scheduler": {"job": OPTUNA_JOB, "num_workers": 1, "settings": settings},
            "parameters": {
                "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1.0},
                "epochs": {"value": 10},
            },
        }
    )


@pytest.fixture(autouse=True)
def no_registrations(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbsweep import schedulers

    monkeypatch.setattr(schedulers, "_registered", {})


# -- which scheduler a config names -----------------------------------------------------------


@pytest.mark.parametrize(
    ("scheduler", "method", "name"),
    [
        ({}, "random", "nbsweep"),
        ({"job": "wandb/sweep-jobs/job-wandb-sweep-scheduler:latest"}, "grid", "nbsweep"),
        ({"engine": "wandb"}, "bayes", "nbsweep"),
        ({"job": OPTUNA_JOB}, "custom", "optuna"),
        ({"engine": "optuna"}, "custom", "optuna"),
        ({"job": "me/project/job-CustomWandbScheduler:latest"}, "random", "nbsweep"),
    ],
)
def test_the_config_names_its_scheduler(scheduler: dict[str, Any], method: str, name: str) -> None:
    config = {"method": method, "scheduler": scheduler, "metric": {"name": "loss"}}
    config["parameters"] = {"x": {"values": [1, 2]}}
    assert scheduler_name(nbsweep.validate(config)) == name


def test_nbsweeps_own_scheduler_runs_method_and_early_terminate() -> None:
    config = nbsweep.validate(
        {
            "method": "random",
            "metric": {"name": "loss"},
            "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2},
            "parameters": {"x": {"values": [1, 2]}},
        }
    )
    scheduler = make_scheduler(config, seed=0)
    assert isinstance(scheduler, NbsweepScheduler)
    assert scheduler.queue_ahead and scheduler.reads_histories
    runs = [RunRecord(f"good{i}", {"x": 1}, "finished", (1.0, 0.5)) for i in range(2)]
    runs.append(RunRecord("bad", {"x": 2}, "running", (9.0,)))
    assert scheduler.stop(runs) == {"bad": "early_terminate: stopped at 1 iterations"}
    assert len(scheduler.suggest(runs, 3)) == 3
    # The agent asks the same rule at each band, as it logs the row reaching it.
    assert 1 in scheduler.checkpoints
    why = scheduler.on_result(runs[-1], runs[:-1])
    assert why == "early_terminate: stopped at band 1 (loss=9, threshold 1)"
    assert scheduler.on_result(runs[0], runs[1:]) is None


def test_an_unknown_engine_says_which_schedulers_exist() -> None:
    config = nbsweep.validate(
        {"method": "custom", "scheduler": {"engine": "ax"}, "parameters": {"x": {"value": 1}}}
    )
    with pytest.raises(ConfigError, match="no scheduler named 'ax' here \\(known: nbsweep, optuna"):
        make_scheduler(config)


# -- Optuna -----------------------------------------------------------------------------------


def test_optuna_defaults_to_tpe_and_the_median_pruner() -> None:
    scheduler = make_scheduler(optuna_config(), seed=3)
    assert isinstance(scheduler, OptunaScheduler)
    assert type(scheduler.study.sampler).__name__ == "TPESampler"
    assert type(scheduler.study.pruner).__name__ == "MedianPruner"
    assert not scheduler.queue_ahead


def test_optuna_samplers_and_pruners_by_class_name_with_their_args() -> None:
    scheduler = make_scheduler(
        optuna_config(
            sampler={"type": "RandomSampler", "args": {"seed": 7}},
            pruner={
                "type": "PatientPruner",
                "args": {
                    "wrapped_pruner": {"type": "PercentilePruner", "args": {"percentile": 25.0}},
                    "patience": 2,
                },
            },
        )
    )
    pruner = scheduler.study.pruner
    assert type(scheduler.study.sampler).__name__ == "RandomSampler"
    assert type(pruner).__name__ == "PatientPruner" and pruner._patience == 2
    assert type(pruner._wrapped_pruner).__name__ == "PercentilePruner"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"pruner": {"type": "PercentilPruner"}},
            "scheduler.settings.pruner.type: Optuna has no pruner 'PercentilPruner';"
            " did you mean 'PercentilePruner'?",
        ),
        (
            {"sampler": {"type": "TPESampler", "args": {"n_startup": 3}}},
            "scheduler.settings.sampler.args: TPESampler(n_startup=3) refused them",
        ),
    ],
)
def test_a_bad_optuna_setting_names_what_to_change(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        make_scheduler(optuna_config(**settings))
    assert error.value.problems[0].startswith(message)


def test_the_optuna_scheduler_needs_a_metric() -> None:
    config = optuna_config().replace(metric=None)
    with pytest.raises(ConfigError, match="metric: the Optuna scheduler learns and prunes"):
        make_scheduler(config)


def test_a_new_optuna_scheduler_rebuilds_its_study_from_the_runs() -> None:
    config = optuna_config(sampler={"type": "RandomSampler"})
    first = make_scheduler(config, seed=0)
    configs = first.suggest([], 3)
    runs = [
        RunRecord("a", configs[0], "finished", (3.0, 2.0), 2.0),
        RunRecord("b", configs[1], "stopped", (5.0,)),
        RunRecord("c", configs[2], "running", (4.0,)),
    ]
    again = make_scheduler(config, seed=0)  # as after a resume
    assert len(again.suggest(runs, 1)) == 1
    states = [t.state.name for t in again.study.trials]
    assert states == ["COMPLETE", "PRUNED", "RUNNING", "RUNNING"]
    assert again.study.trials[0].value == 2.0
    assert again.study.trials[0].params["lr"] == pytest.approx(configs[0]["lr"])


def test_optuna_percentile_pruner_stops_the_bad_runs_of_a_sweep(sqlite_store: str) -> None:
    pruner = {
        "type": "PercentilePruner",
        "args": {"percentile": 25.0, "n_warmup_steps": 2, "n_startup_trials": 2},
    }
    config = optuna_config(pruner=pruner).replace(run_cap=10)
    sweep = nbsweep.sweep(config, trainfns.learning_curve, workers=1, store=sqlite_store, seed=0)
    assert sweep.wait(timeout=100) == "finished"
    runs = sweep.runs.set_index("run_id")
    stopped = runs[runs["state"] == "stopped"]
    assert len(runs) == 10 and 1 <= len(stopped) < 8
    assert (stopped["steps"] < 10).all()
    events = sweep.events()
    reasons = events[events["kind"] == "stopped"].set_index("run_id")["message"]
    for run_id in stopped.index:
        assert reasons[run_id].startswith("optuna PercentilePruner: pruned at step ")
    # Pruned runs were clearly worse than the best one where they were stopped.
    best = sweep.best_run
    assert best is not None and best.state == "finished"
    distance = (runs["config/lr"].map(math.log10) + 2).abs()
    assert distance[stopped.index].min() > distance[best.id]


# -- custom schedulers ------------------------------------------------------------------------


CUSTOM: Mapping[str, Any] = {
    "method": "custom",
    "metric": {"name": "loss"},
    "parameters": {"x": {"values": [1, 2, 3]}},
}


def test_method_custom_runs_the_registered_scheduler(sqlite_store: str) -> None:
    nbsweep.register_scheduler("countdown", Countdown)
    sweep = nbsweep.sweep(dict(CUSTOM), trainfns.busy, workers=1, store=sqlite_store)
    assert sweep.wait(timeout=60) == "finished"
    runs = sweep.runs
    assert list(runs["config/x"]) == [1, 2, 3]
    assert list(runs["state"]) == ["finished", "stopped", "finished"]
    assert list(runs["steps"])[::2] == [5, 5]
    assert sweep.message == "search exhausted: 3 runs"
    events = sweep.events()
    assert list(events.loc[events["kind"] == "stopped", "message"]) == ["countdown: x is 2"]


def test_a_registered_scheduler_is_asked_by_the_agent_as_it_logs(sqlite_store: str) -> None:
    nbsweep.register_scheduler("checkpoint", Checkpoint)
    config = {**CUSTOM, "scheduler": {"engine": "checkpoint"}}
    with pytest.warns(UserWarning, match="workers=0: no agent runs sweep"):
        sweep = nbsweep.sweep(config, trainfns.quick, workers=0, store=sqlite_store)
    assert nbsweep.agent(sweep.id, trainfns.quick, store=sqlite_store) == 3
    assert sweep.wait(timeout=60) == "finished"
    runs = sweep.runs
    assert list(runs["state"]) == ["finished", "stopped", "finished"]
    # Stopped in the transaction of its 2nd row: the controller never saw it go past.
    assert list(runs["steps"]) == [5, 2, 5]
    events = sweep.events()
    assert list(events.loc[events["kind"] == "stopped", "message"]) == ["checkpoint: x is 2"]


def test_agents_ask_only_schedulers_they_can_build_and_that_have_checkpoints() -> None:
    assert agent_scheduler(optuna_config()) is None  # its study lives with the controller
    plain = {**CUSTOM, "method": "grid", "parameters": {"x": {"values": [1]}}}
    assert agent_scheduler(nbsweep.validate(plain)) is None  # no early_terminate
    nbsweep.register_scheduler("countdown", Countdown)
    assert agent_scheduler(nbsweep.validate(dict(CUSTOM))) is None  # no checkpoints


def test_a_registered_scheduler_is_named_by_engine_among_several() -> None:
    nbsweep.register_scheduler("countdown", Countdown)
    nbsweep.register_scheduler("other", Countdown)
    with pytest.raises(SweepError, match="method: 'custom' needs a scheduler"):
        make_scheduler(nbsweep.validate(dict(CUSTOM)))
    config = nbsweep.validate({**CUSTOM, "scheduler": {"engine": "countdown"}})
    assert isinstance(make_scheduler(config), Countdown)


def test_register_scheduler_takes_only_scheduler_classes() -> None:
    with pytest.raises(SweepError, match="is not a subclass of nbsweep.schedulers.Scheduler"):
        nbsweep.register_scheduler("x", dict)  # type: ignore[arg-type]
    with pytest.raises(SweepError, match="'wandb' cannot name a scheduler"):
        nbsweep.register_scheduler("wandb", Countdown)


def test_method_custom_without_a_scheduler_says_how_to_get_one(sqlite_store: str) -> None:
    with pytest.raises(SweepError, match="register one with nbsweep.register_scheduler"):
        nbsweep.sweep(dict(CUSTOM), trainfns.busy, workers=0, store=sqlite_store)


def test_a_package_declares_a_scheduler_by_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = tmp_path / "nbsweep_countdown-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nbsweep-countdown\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[nbsweep.schedulers]\ncountdown = tests.schedulers.custom:Countdown\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = nbsweep.validate({**CUSTOM, "scheduler": {"engine": "countdown"}})
    assert isinstance(make_scheduler(config), Countdown)
    job = {**CUSTOM, "scheduler": {"job": "me/project/job-countdown:latest"}}
    assert scheduler_name(nbsweep.validate(job)) == "countdown"


def test_the_scheduler_benchmark_replays_a_sweep_through_each_scheduler() -> None:
    from benchmarks.harness import random_configs
    from benchmarks.schedulers import RULES, SchedulerRule, sweep_config
    from benchmarks.stopping import replay
    from benchmarks.tasks import TASKS

    task = TASKS["sgd_digits"]
    configs = random_configs(task, 12, 0)
    # Run i sits at level i on every epoch: each run is worse than the ones before it.
    curves = [[level + 1.0 / (epoch + 1) for epoch in range(9)] for level in range(12)]
    for name, rule in RULES.items():
        runs = replay(curves, SchedulerRule(sweep_config(task, rule), configs), workers=2)
        assert runs[0].state == "finished", name  # the best run is never stopped
        stopped = [r for r in runs if r.state == "stopped"]
        if "warm-up 10" in name:
            assert not stopped  # 9 epochs never get past the warm-up
        else:
            assert stopped and all(len(r.history) < 9 for r in stopped), name
