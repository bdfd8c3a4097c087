"""The benchmark suite's own code still works: Branin, nbsweep random and bayes, no peer venvs."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks.harness import Trace, grid_parameters, run_search, sample_config
from benchmarks.metrics import best_spread, compare, target_of, trials_to_target
from benchmarks.run import FULL
from benchmarks.tasks import TASKS, branin, hartmann6


def test_known_optima_of_the_test_functions() -> None:
    # The reference values the report measures gaps against.
    assert math.isclose(branin({"x1": math.pi, "x2": 2.275}), TASKS["branin"].optimum, abs_tol=1e-6)
    point = {
        f"x{i + 1}": v
        for i, v in enumerate([0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573])
    }
    assert math.isclose(hartmann6(point), TASKS["hartmann6"].optimum, abs_tol=1e-4)


def test_harness_runs_nbsweep_random_and_bayes_on_branin() -> None:
    task = TASKS["branin"]
    traces = {
        method: [run_search(task, method, seed, 8) for seed in range(2)]
        for method in ("nbsweep-random", "nbsweep-bayes")
    }
    for method, runs in traces.items():
        assert [t.seed for t in runs] == [0, 1]
        for trace in runs:
            assert isinstance(trace, Trace) and trace.method == method and trace.agents == 1
            assert len(trace.values) == 8 and len(trace.latencies) == 8
            assert all(v >= task.optimum - 1e-9 for v in trace.values)
            assert trace.running_best() == sorted(trace.running_best(), reverse=True)
            assert trace.best_after(8) == min(trace.values)
        # The seed drives the search: two seeds do not replay the same configs.
        assert runs[0].values != runs[1].values
    # Same method, same seed: the same trace (the harness adds no randomness of its own).
    again = run_search(task, "nbsweep-bayes", 0, 8)
    assert again.values == traces["nbsweep-bayes"][0].values

    spread = best_spread(traces["nbsweep-bayes"], 8)
    assert spread.q25 <= spread.median <= spread.q75
    comparison = compare(
        [t.best_after(8) for t in traces["nbsweep-bayes"]],
        [t.best_after(8) for t in traces["nbsweep-random"]],
    )
    assert comparison.wins + comparison.ties + comparison.losses == 2
    assert comparison.verdict in {"better", "tie", "worse"}


def test_parallel_agents_keep_the_budget() -> None:
    trace = run_search(TASKS["branin"], "nbsweep-bayes", 0, 8, agents=4)
    assert len(trace.values) == 8
    # One batch of 4, then one suggestion per finished run with the 3 others pending.
    assert len(trace.latencies) == 5


def test_metrics_on_hand_made_traces() -> None:
    a = Trace("t", "m", 0, 1, values=[5.0, 3.0, 4.0, 1.0])
    assert trials_to_target(a, 3.0) == 2.0
    assert trials_to_target(a, 0.5) == math.inf
    assert target_of([a, Trace("t", "m", 1, 1, values=[2.0, 9.0])], budget=4) == 1.5
    tie = compare([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (tie.ties, tie.verdict, tie.p_value) == (3, "tie", 1.0)
    better = compare([float(i) for i in range(10)], [float(i) + 1 for i in range(10)])
    assert (better.wins, better.verdict) == (10, "better")


def test_grid_fits_the_budget_and_sample_stays_in_the_space() -> None:
    import numpy as np

    tree = TASKS["tree_digits"]
    grid = grid_parameters(tree.parameters, 50)
    size = 1
    for spec in grid.values():
        size *= len(spec["values"])
    assert size <= 50
    assert all(1 <= v <= 30 for v in grid["max_depth"]["values"])
    config = sample_config(tree.parameters, np.random.default_rng(0))
    assert 1 <= config["min_samples_leaf"] <= 30 and config["criterion"] in ("gini", "entropy")
    # The report reads best@10/25/50/100 up to the budget, and always the budget itself.
    assert FULL.budgets == [10, 25, 50, 100]
    assert dataclasses.replace(FULL, budget=30).budgets == [10, 25, 30]


def test_the_held_out_report_judges_the_targets_and_leaves_the_whole_report_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import peers
    from benchmarks.run import main
    from benchmarks.tasks import HELD_OUT

    # Where no peer environment was built, the report installs none (it once built all three,
    # a minute of pip); their versions read "not measured".
    monkeypatch.setattr(peers, "BENCH_DIR", tmp_path / "bench")

    results = tmp_path / "results.jsonl"
    # nbsweep-bayes ends lower than either Optuna sampler on every held-out task but the
    # first, where Optuna's GP ends lower.
    ends = {"nbsweep-bayes": 1.0, "optuna-gp": 2.0, "optuna-tpe": 3.0}
    rows = []
    for task in HELD_OUT:
        for method, end in ends.items():
            for agents in [1, 4] if method == "nbsweep-bayes" else [1]:
                for seed in range(2):
                    last = 0.5 if (task, method) == (HELD_OUT[0], "optuna-gp") else end
                    values = [9.0] * 99 + [last + seed]
                    trace = Trace(task, method, seed, agents, values=values, latencies=[0.0])
                    key = f"search/{task}/{method}/{agents}/{seed}/100"
                    rows.append(json.dumps({"key": key, "kind": "search", **asdict(trace)}))
    results.write_text("\n".join(rows) + "\n")
    out = tmp_path / "docs" / "held-out.md"
    main(
        ["--report-only", "--held-out-report", "--set", "held-out", "--seeds", "2"]
        + ["--methods", *ends, "--results", str(results), "--out", str(out)]
    )
    text = out.read_text()
    assert f"{len(HELD_OUT) - 1} of {len(HELD_OUT)} by median ({HELD_OUT[0]} ✗" in text
    assert f"{len(HELD_OUT)} of {len(HELD_OUT)} by median ({HELD_OUT[0]} ✓" in text
    assert "**met**" in text and "fewer than the 20 issue 16 asks for" in text
    assert all(f"### {task} (held out)" in text for task in HELD_OUT)
    # Only the held-out part: no plots, no development task, no early termination.
    assert not (out.parent / "img").exists()
    assert "## Early termination" not in text and "### branin" not in text
    optuna = next(line for line in text.splitlines() if line.startswith("| `.bench/optuna-venv`"))
    assert optuna.endswith("| not measured |")
    # The multi-fidelity peers are on the whole report's page.
    assert "[Multi-fidelity search](benchmarks.md#multi-fidelity-search)" in text
    assert not list((tmp_path / "bench").glob("*-venv"))
