"""The benchmark suite of issue 16: its tasks, the fixed development / held-out split, the
conditional task, and the report's sections."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

import nbsweep
from benchmarks import tasks
from benchmarks.harness import (
    FLAT,
    NATIVE,
    Activity,
    Trace,
    flat_parameters,
    grid_parameters,
    open_session,
    run_search,
    sample_config,
)
from benchmarks.run import FULL, QUICK, TASK_SETS
from benchmarks.tasks import CONDITIONAL, DEVELOPMENT, HELD_OUT, TABLE, TASKS

# The split as it was fixed; changing it means every held-out figure so far was tuned on.
FIXED_DEVELOPMENT = (
    "branin",
    "hartmann6",
    "svm_breast_cancer",
    "svr_diabetes",
    "tree_digits",
    "sgd_digits",
    "hartmann3",
    "ackley_10",
    "styblinski_tang_8",
    "rastrigin_4",
    "noisy_hartmann6",
    "mixed6",
)
FIXED_HELD_OUT = (
    "rosenbrock_log_6",
    "levy_5",
    "mixed8",
    "michalewicz_5",
    "griewank_8",
    "dixon_price_10",
    "levy_20",
    "noisy_rosenbrock_log_4",
    "categorical8",
)


def test_the_split_is_fixed_disjoint_and_covers_every_task() -> None:
    assert DEVELOPMENT == FIXED_DEVELOPMENT and HELD_OUT == FIXED_HELD_OUT
    assert len(DEVELOPMENT) == 12 and len(HELD_OUT) == 9 and len(CONDITIONAL) == 1
    sets = [set(DEVELOPMENT), set(HELD_OUT), set(CONDITIONAL)]
    assert all(not a & b for a, b in itertools.combinations(sets, 2))
    assert set.union(*sets) == set(TASKS) and len(TABLE) == len(TASKS)
    assert len(TASKS) >= 16
    # Where bayes lost in issue 16's table: never tuned on.
    assert {"rosenbrock_log_6", "levy_5", "mixed8"} <= set(HELD_OUT)
    # The previously measured tasks are development tasks.
    assert {"branin", "hartmann6", "svm_breast_cancer", "sgd_digits"} <= set(DEVELOPMENT)
    assert TASK_SETS == {
        "development": DEVELOPMENT,
        "held-out": HELD_OUT,
        "conditional": CONDITIONAL,
    }


def test_the_full_plan_reads_best_so_far_at_10_25_50_and_100_trials() -> None:
    assert FULL.budgets == [10, 25, 50, 100] and FULL.seeds == 20
    assert set(FULL.tasks) == set(TASKS)


def test_dimensions_span_2_to_20() -> None:
    dims = {len(task.parameters) for task in TASKS.values()}
    assert min(dims) == 2 and max(dims) == 20


@pytest.mark.parametrize("name", list(TASKS))
def test_every_config_validates_and_its_objective_evaluates(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Computed afresh, not read from or written to the shared .bench cache.
    monkeypatch.setattr(tasks.CACHE, "get_or_compute", lambda key, compute: compute())
    task = TASKS[name]
    for method in ("random", "bayes"):
        nbsweep.validate(task.sweep_config(method, seed=0))
    config = sample_config(task.parameters, np.random.default_rng(0))
    value = task.objective(config, 0)
    assert isinstance(value, float) and math.isfinite(value)
    if task.optimum is not None and not name.startswith("noisy_"):
        assert value >= task.optimum - 1e-9


def test_known_optima_of_the_new_functions() -> None:
    def at(name: str, x: list[float]) -> float:
        return TASKS[name].objective({f"x{i}": v for i, v in enumerate(x, start=1)}, 0)

    assert math.isclose(at("hartmann3", [0.114614, 0.555649, 0.852547]), -3.86278, abs_tol=1e-4)
    assert at("ackley_10", [0.0] * 10) == pytest.approx(0.0, abs=1e-12)
    assert at("levy_5", [1.0] * 5) == pytest.approx(0.0, abs=1e-12)
    assert at("rosenbrock_log_6", [1.0] * 6) == 0.0
    assert at("styblinski_tang_8", [-2.903534] * 8) == pytest.approx(
        TASKS["styblinski_tang_8"].optimum, abs=1e-6
    )
    michalewicz = [2.20290552, 1.57079633, 1.28499157, 1.92305846, 1.72046977]
    assert at("michalewicz_5", michalewicz) == pytest.approx(-4.687658, abs=1e-6)
    assert at("griewank_8", [0.0] * 8) == pytest.approx(0.0, abs=1e-12)
    dixon = [2 ** (-(2**i - 2) / 2**i) for i in range(1, 11)]
    assert at("dixon_price_10", dixon) == pytest.approx(0.0, abs=1e-12)
    best8 = {
        "lr": 10 ** (-5 + 5 * 0.35),
        "weight_decay": 10 ** (-6 + 5 * 0.3),
        "eps": 10 ** (-10 + 6 * 0.6),
        "layers": 3,
        "width": 128,
        "dropout": 0.3,
        "optimizer": "adam",
        "activation": "relu",
    }
    assert TASKS["mixed8"].objective(best8, 0) == pytest.approx(TASKS["mixed8"].optimum)
    # The categorical task's optimum is the brute-force minimum over its 3^8 configs.
    brute = min(
        TASKS["categorical8"].objective({f"c{i}": v for i, v in enumerate(values, start=1)}, 0)
        for values in itertools.product(tasks.CATEGORIES, repeat=8)
    )
    assert TASKS["categorical8"].optimum == pytest.approx(brute, abs=1e-12)


def test_noise_is_fixed_by_config_and_seed() -> None:
    task = TASKS["noisy_hartmann6"]
    config = sample_config(task.parameters, np.random.default_rng(1))
    assert task.objective(config, 0) == task.objective(config, 0)
    assert task.objective(config, 0) != task.objective(config, 1)
    clean = tasks.hartmann6(config)
    assert abs(task.objective(config, 0) - clean) < 0.05 * 6


def test_each_test_function_row_describes_its_own_space() -> None:
    # The table writes dimension and bounds once; the description is made from them.
    for name, _, _, row in TABLE:
        task = TASKS[name]
        if hasattr(row, "dimension"):
            assert len(task.parameters) == row.dimension
            assert f"{row.dimension} uniform parameters in [" in task.description
            assert ("noise" in task.description) == bool(row.noise)


@pytest.fixture
def uncached(monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluate afresh, never reading or writing the shared .bench cache."""
    monkeypatch.setattr(tasks.CACHE, "get_or_compute", lambda key, compute: compute())


CONDITIONS = {"linear": {"kernel", "C"}, "rbf": {"kernel", "C", "gamma"}}
CONDITIONS["poly"] = {"kernel", "C", "degree", "coef0"}


def test_the_conditional_task_uses_when_and_every_draw_has_only_its_active_parameters() -> None:
    (name,) = CONDITIONAL
    parameters = TASKS[name].parameters
    assert {p for p, spec in parameters.items() if "when" in spec} == {"gamma", "degree", "coef0"}
    rng = np.random.default_rng(3)
    kernels = set()
    for _ in range(60):
        config = sample_config(parameters, rng)
        assert set(config) == CONDITIONS[config["kernel"]]
        kernels.add(config["kernel"])
    assert kernels == set(CONDITIONS)
    # What a peer without conditions is given, and what the harness keeps of its answer.
    flat = flat_parameters(parameters)
    assert set(flat) == set(parameters) and not any("when" in spec for spec in flat.values())
    drawn = {"kernel": "linear", "C": 1.0, "gamma": 0.1, "degree": 3, "coef0": 0.5}
    assert Activity(parameters).active(drawn) == {"kernel": "linear", "C": 1.0}


def test_a_conditional_grid_counts_its_valid_combinations_within_the_budget() -> None:
    parameters = TASKS[CONDITIONAL[0]].parameters
    grid = grid_parameters(parameters, 100)
    assert all(grid[p]["when"] == parameters[p]["when"] for p in ("gamma", "degree", "coef0"))
    # k points per numeric axis: linear k, rbf k^2, poly k^3 runs; k = 4 is the largest <= 100.
    assert {len(grid[p]["values"]) for p in ("C", "gamma", "degree", "coef0")} == {4}
    assert Activity(grid).space.grid_size() == 4 + 16 + 64
    # A space without conditions keeps the plain rule (the grids measured so far).
    assert len(grid_parameters(TASKS["branin"].parameters, 100)["x1"]["values"]) == 10
    # 2 points on each of levy_20's 20 axes would pass nbsweep's 1,000,000-point limit: the
    # last axis keeps its middle point only, and nbsweep accepts the grid.
    levy = grid_parameters(TASKS["levy_20"].parameters, 100)
    assert [len(spec["values"]) for spec in levy.values()] == [2] * 19 + [1]
    assert levy["x20"]["values"] == [0.0]
    assert nbsweep.validate({"method": "grid", "parameters": levy}).space.grid_size() == 2**19


@pytest.mark.parametrize("method", ["nbsweep-random", "nbsweep-bayes", "nbsweep-grid"])
def test_nbsweep_suggests_only_active_parameters_on_the_conditional_task(
    method: str, uncached: None
) -> None:
    task = TASKS[CONDITIONAL[0]]
    session = open_session(task, method, seed=0, budget=12)
    trace = run_search(task, method, 0, 12, session=session)
    assert trace.space == NATIVE and len(trace.values) == 12
    for run in session.runs.values():
        assert set(run.config) == CONDITIONS[run.config["kernel"]]
    assert all(0.0 <= v <= 1.0 for v in trace.values)
    # Only a conditional task records how the space was taken.
    assert run_search(TASKS["branin"], method, 0, 3).space == ""


def _traces(task: str, method: str, values: list[float], seeds: int = 3) -> list[Trace]:
    return [Trace(task, method, seed, 1, [v + seed for v in values]) for seed in range(seeds)]


def _write_small_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fidelity: str = "", held: int = 9
) -> str:
    """The report from a small results fixture: the first ``held`` held-out tasks, the
    conditional task, one latency point, 3 seeds of 50 trials; ``fidelity`` is the
    multi-fidelity page ("" if none). On held-out task i bayes scores 3; Optuna GP 4 on the
    first 7 and 2 on the rest; Optuna TPE 4 on the first 8 and 2 on the last."""
    from benchmarks import report

    multifidelity = tmp_path / "benchmarks-multifidelity.md"
    if fidelity:
        multifidelity.write_text(fidelity)
    monkeypatch.setattr(report, "MULTIFIDELITY", multifidelity)
    plan = dataclasses.replace(QUICK, seeds=3, budget=50, target_trials=50)
    cond = CONDITIONAL[0]
    search = []
    for i, task in enumerate(HELD_OUT[:held]):
        search += [
            *_traces(task, "nbsweep-bayes", [3.0] * 50),
            *_traces(task, "optuna-gp", [4.0 if i < 7 else 2.0] * 50),
            *_traces(task, "optuna-tpe", [4.0 if i < 8 else 2.0] * 50),
            *_traces(task, "nbsweep-random", [5.0] * 50),
        ]
    search += [
        *_traces(cond, "nbsweep-bayes", [0.03] * 50),
        *_traces(cond, "optuna-tpe", [0.04] * 50),
    ]
    for trace in search:
        trace.space = {"nbsweep-bayes": NATIVE, "optuna-tpe": FLAT}.get(trace.method, "")
    latency = [{"task": plan.latency_task, "method": "nbsweep-bayes", "completed": 1000,
                "seconds": [0.004, 0.006, 0.02]}]  # fmt: skip
    env = {
        "nbsweep_commit": "0" * 40,
        "peers": {"optuna": {"optuna": "9.9"}},
        "python": "3.11",
        "harness": {"numpy": "2"},
        "machine": "test",
        "date": "today",
    }
    out = tmp_path / "benchmarks.md"
    report.write_report(plan, {"search": search, "latency": latency, "stop": []}, env, out)
    return out.read_text()


def _rows(text: str) -> dict[str, str]:
    return {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()}


GP50 = "median best ≤ Optuna GPSampler's on ≥75% of held-out tasks at 50 trials"
TPE50 = "median best better than Optuna TPE's on ≥90% of held-out tasks at 50 trials"


def test_the_report_renders_the_held_out_targets_peers_and_conditional_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _write_small_report(tmp_path, monkeypatch)
    for heading in (
        "## Tasks: development and held out",
        "## Targets: issue 16, on the held-out tasks",
        "## Targets: issue 6, on its six tasks",
        "## Peers: versions, and the ones left out",
        "## Search: best value after",
        "## Conditional task",
        "## Suggestion latency",
        "## Early termination",
        "## Multi-fidelity search",
        "## Throughput",
    ):
        assert heading in text
    rows = _rows(text)
    # 7 of 9 as low as GP's (7 needed: met); 8 of 9 below TPE's (9 needed: missed).
    assert rows[GP50].endswith("| **met** |") and "7 of 9 by median" in rows[GP50]
    assert rows[TPE50].endswith("| **missed** |") and "8 of 9 by median" in rows[TPE50]
    # A verdict on fewer seeds than the issue asks for says so, in its row and above the table.
    for row in (rows[GP50], rows[TPE50]):
        assert (
            "3 seeds, fewer than the 20 asked for" in row and "held-out tasks measured" not in row
        )
    assert "These figures rest on 3 seeds, fewer than the 20 issue 16 asks for." in text
    gp100 = rows["median best ≤ Optuna GPSampler's on ≥75% of held-out tasks at 100 trials"]
    assert "not measured: this plan stops at 50 trials" in gp100 and gp100.endswith("| n/a |")
    at_1000 = rows["suggestion ≤10 ms at 1,000 runs (median)"]
    assert at_1000.endswith("| **met** |") and "median 6.0 ms" in at_1000
    assert rows["suggestion ≤50 ms at 10,000 runs (median)"].endswith("| n/a |")
    # The held-out table: each task's medians, ✓/✗ against each target's condition.
    lines = text.splitlines()
    assert f"| {HELD_OUT[0]} | 4 | 5 ✓ | 5 ✓ |" in lines
    assert f"| {HELD_OUT[7]} | 4 | 3 ✗ | 5 ✓ |" in lines
    assert f"| {HELD_OUT[8]} | 4 | 3 ✗ | 3 ✗ |" in lines
    # The conditional task: its space with `when`, how each method took it, its results.
    assert f"| optuna-tpe | {FLAT} |" in text and f"| nbsweep-bayes | {NATIVE} |" in text
    gamma = "gamma: {distribution: log_uniform_values, min: 1.0e-05, max: 10.0, when: {kernel: rbf"
    assert gamma in text
    assert f"### {CONDITIONAL[0]} (conditional)" in text
    # The peers' versions, and HEBO's standing either way.
    assert "`.bench/optuna-venv` | optuna-tpe, optuna-gp" in text and "optuna 9.9" in text
    assert "HEBO" in text.split("## Peers")[1].split("## Search")[0]
    assert "Not run yet: `python -m benchmarks.multifidelity`" in text


def test_a_held_out_verdict_waits_while_unmeasured_tasks_could_change_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(_write_small_report(tmp_path, monkeypatch, held=3))
    # 3 of 3 measured tasks pass; with 6 unmeasured, 7 of 9 (GP) and 9 of 9 (TPE) stay open.
    for target in (GP50, TPE50):
        assert rows[target].endswith("| n/a |")
        assert "only 3 of the 9 held-out tasks measured" in rows[target]
    assert "undecided: 7 of 9 needed, 6 not measured" in rows[GP50]
    assert "undecided: 9 of 9 needed, 6 not measured" in rows[TPE50]


def test_the_report_embeds_the_multifidelity_page_when_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = "# Multi-fidelity search: epochs to a target\n\n| method | sgd_digits |\n|---|---|\n"
    page += "| DEHB | 123 (3/3) |\n\n## Targets\n\n- fewest epochs: missed (1 of 3)\n"
    text = _write_small_report(tmp_path, monkeypatch, fidelity=page)
    section = text.split("## Multi-fidelity search\n")[1]
    assert "| DEHB | 123 (3/3) |" in section and "- fewest epochs: missed (1 of 3)" in section
    # Its sections sit one level down, inside this page's section, and its title is dropped.
    assert "### Targets" in section and "\n## Targets\n" not in section
    assert "# Multi-fidelity search: epochs to a target" not in text
    assert "[benchmarks-multifidelity.md](benchmarks-multifidelity.md)" in section
    # Written again, the page keeps one copy of the section (it is this report's own).
    again = _write_small_report(tmp_path, monkeypatch, fidelity=page)
    assert again.count("## Multi-fidelity search\n") == 1 and again.count("| DEHB |") == 1
