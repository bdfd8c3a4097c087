"""Every sweep config of the W&B Launch documents our users come from validates and runs here.

The configs are in tests/data/seed_configs (verbatim) and tests/data/launch (the document's
fragments completed from the text around them); each file's header says where it comes from.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import nbsweep
from nbsweep import ConfigError
from nbsweep.config import ConfigWarning, SweepConfig
from nbsweep.schedulers import scheduler_name
from tests.schedulers import trainfns

pytestmark = pytest.mark.timeout(120)

DATA = Path(__file__).resolve().parents[1] / "data"
# Grid search over a continuous range: W&B accepts these, then its grid search fails at the
# first run. nbsweep refuses them at once (docs/config.md, differences from W&B).
GRID_OF_UNIFORM = ("000_wandb_scheduler_job.yaml", "001_custom_scheduler_job.yaml")
# Fragments of the documents, run in their completed form from tests/data/launch.
FRAGMENTS = ("001_multi_queue_routing.yaml", "001_shared_queue_priority.yaml")
CONFIGS = [
    *(p for p in sorted((DATA / "seed_configs").glob("*.yaml")) if p.name not in GRID_OF_UNIFORM),
    *sorted((DATA / "launch").glob("*.yaml")),
]
RUNNABLE = [p for p in CONFIGS if p.name not in FRAGMENTS]


def load(path: Path) -> SweepConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)  # W&B's deprecated log_uniform
        return nbsweep.validate(path)


def test_the_fragments_are_completed_from_their_documents() -> None:
    names = {p.name for p in CONFIGS}
    for fragment in FRAGMENTS:
        completed = fragment.replace(".yaml", "_completed.yaml")
        assert completed in names, completed
        with pytest.raises(ConfigError, match="method: required"):
            nbsweep.validate(DATA / "seed_configs" / fragment)


@pytest.mark.parametrize("path", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_seed_document_config_validates(path: Path) -> None:
    config = load(path)
    assert config["parameters"]
    expected = "optuna" if "optuna" in path.name else "nbsweep"
    assert scheduler_name(config) == expected


@pytest.mark.parametrize("name", GRID_OF_UNIFORM)
def test_grid_over_a_continuous_range_is_refused_saying_what_to_change(name: str) -> None:
    with pytest.raises(ConfigError) as error:
        nbsweep.validate(DATA / "seed_configs" / name)
    (problem,) = error.value.problems
    assert problem == (
        "parameters.learning_rate: grid search cannot enumerate 'uniform'; use values: [...],"
        " int_uniform, q_uniform or value, or another method (random, bayes)"
    )


@pytest.mark.parametrize("path", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_seed_document_config_runs(path: Path, sqlite_store: str) -> None:
    config = load(path).replace(run_cap=3)  # a short sweep: the documents' caps go up to 500
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sweep = nbsweep.sweep(config, trainfns.seed_job, workers=0, store=sqlite_store)
    assert nbsweep.agent(sweep.id, trainfns.seed_job, count=3, store=sqlite_store) == 3
    assert sweep.wait(timeout=60) == "finished"
    runs = sweep.runs
    assert len(runs) == 3 and set(runs["state"]) <= {"finished", "stopped"}  # hyperband stops
    if "metric" in config:
        assert sweep.best_run is not None and sweep.best_run.state == "finished"
    notes = [str(w.message) for w in caught if "Launch keys" in str(w.message)]
    events = sweep.events()
    launch = list(events.loc[events["kind"] == "launch", "message"])
    if "job" in config:
        # The W&B-only keys are reported once, as a warning and in the sweep's events.
        assert len(notes) == 1 and launch == notes
        assert f"job {config['job']!r}" in notes[0]
    if "queue" in config:
        assert f"queue {config['queue']!r} is not registered here" in launch[0]
