"""The peers' side of the multi-fidelity benchmark; runs inside ``.bench/multifidelity-venv``.

Standalone on purpose (no import of nbsweep or of the harness): it only needs the peers'
packages (``benchmarks/requirements-multifidelity.txt``). One JSON request per stdin line, one
answer per stdout line:

- ``{"op": "versions"}`` -> ``{"versions": {package: version}}``
- ``{"op": "init", "method", "parameters", "seed", "min_iter", "max_iter", "eta", "metric"}``
- ``{"op": "ask", "n"}`` -> ``{"jobs": [{"id", "config", "epochs"}]}``: configs to train, each
  for ``epochs`` epochs unless stopped (DEHB's fidelity; the others ``max_iter``)
- ``{"op": "step", "reports": [[id, epoch, value]], "finishes": [[id, value]]}`` ->
  ``{"stop": [ids]}``: what one simulated epoch of every job in flight logged, which jobs ended
  (with their best value), and which running jobs the method stops now

Every method is driven as its users drive it: W&B's ``sweeps`` with the whole run list (as the
W&B backend calls it), Optuna with ask/tell and ``trial.report``, DEHB with ask/tell, Syne Tune's
schedulers with ``suggest`` / ``on_trial_result`` / ``on_trial_complete``.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import traceback
from datetime import datetime
from importlib import metadata
from typing import Any

PACKAGES = ["sweeps", "optuna", "dehb", "syne-tune", "numpy", "scipy", "scikit-learn"]


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        return value.item()
    return value


def _plain_config(config: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, spec in parameters.items():
        value = _plain(config[name])
        out[name] = int(round(value)) if spec["distribution"] == "int_uniform" else value
    return out


class Method:
    """One search with its stopping rule, told each simulated epoch."""

    def ask(self, n: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def step(self, reports: list[list[Any]], finishes: list[list[Any]]) -> list[Any]:
        raise NotImplementedError


class WandbBayesHyperband(Method):
    """W&B's bayes and hyperband (``sweeps``), as the W&B backend runs them: every call gets
    every run; an early-terminated run is ``killed`` there (W&B has no ``stopped``)."""

    def __init__(self, request: dict[str, Any]) -> None:
        import numpy as np
        import sweeps

        self.sweeps = sweeps
        random.seed(request["seed"])
        np.random.seed(request["seed"])  # sweeps draws from the global generators only
        metric = request["metric"]
        self.metric = metric
        self.config = {
            "method": "bayes",
            "metric": {"name": metric, "goal": "minimize"},
            "parameters": request["parameters"],
            "early_terminate": {
                "type": "hyperband",
                "min_iter": request["min_iter"],
                "eta": request["eta"],
            },
        }
        self.parameters = request["parameters"]
        self.runs: dict[str, dict[str, Any]] = {}

    def _sweep_runs(self) -> list[Any]:
        return [
            self.sweeps.SweepRun(
                name=name,
                state=run["state"],
                config={k: {"value": v} for k, v in run["config"].items()},
                history=[{self.metric: v} for v in run["history"]],
                summary_metrics={self.metric: run["history"][-1]} if run["history"] else {},
            )
            for name, run in self.runs.items()
        ]

    def ask(self, n: int) -> list[dict[str, Any]]:
        jobs = []
        for _ in range(n):
            (run,) = self.sweeps.next_runs(self.config, self._sweep_runs(), n=1)
            name = str(len(self.runs))
            config = _plain_config({k: v["value"] for k, v in run.config.items()}, self.parameters)
            self.runs[name] = {"state": "running", "config": config, "history": []}
            jobs.append({"id": name, "config": config})
        return jobs

    def step(self, reports: list[list[Any]], finishes: list[list[Any]]) -> list[Any]:
        for name, _, value in reports:
            self.runs[name]["history"].append(value)
        for name, _ in finishes:
            self.runs[name]["state"] = "finished"
        stop = [run.name for run in self.sweeps.stop_runs(self.config, self._sweep_runs())]
        for name in stop:
            self.runs[name]["state"] = "killed"
        return stop


class OptunaTpeHyperband(Method):
    """Optuna's TPESampler with its HyperbandPruner, one ``trial.report`` per epoch."""

    def __init__(self, request: dict[str, Any]) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self.optuna = optuna
        d = optuna.distributions
        self.distributions = {}
        for name, spec in request["parameters"].items():
            kind = spec["distribution"]
            if kind == "categorical":
                self.distributions[name] = d.CategoricalDistribution(spec["values"])
            elif kind == "int_uniform":
                self.distributions[name] = d.IntDistribution(spec["min"], spec["max"])
            else:
                log = kind == "log_uniform_values"
                self.distributions[name] = d.FloatDistribution(spec["min"], spec["max"], log=log)
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=request["min_iter"],
            max_resource=request["max_iter"],
            reduction_factor=request["eta"],
        )
        # HyperbandPruner puts a trial in a bracket by a hash of the study's name and the
        # trial's number: a generated name (a UUID) would make every sweep a different one.
        self.study = optuna.create_study(
            study_name=f"curves-{request['seed']}",
            direction="minimize",
            sampler=optuna.samplers.TPESampler(seed=request["seed"]),
            pruner=pruner,
        )
        self.trials: dict[int, Any] = {}

    def ask(self, n: int) -> list[dict[str, Any]]:
        jobs = []
        for _ in range(n):
            trial = self.study.ask(self.distributions)
            self.trials[trial.number] = trial
            jobs.append({"id": trial.number, "config": dict(trial.params)})
        return jobs

    def step(self, reports: list[list[Any]], finishes: list[list[Any]]) -> list[Any]:
        pruned = []
        for number, epoch, value in reports:
            trial = self.trials[number]
            trial.report(value, epoch)
            if trial.should_prune():
                self.study.tell(trial, state=self.optuna.trial.TrialState.PRUNED)
                pruned.append(number)
        for number, value in finishes:
            if number not in pruned:
                self.study.tell(self.trials.pop(number), value)
        return pruned


class Dehb(Method):
    """DEHB's ask/tell: each job trains a config for DEHB's fidelity, from scratch (DEHB's own
    contract), and tells its best value with the fidelity as its cost."""

    def __init__(self, request: dict[str, Any]) -> None:
        import ConfigSpace as CS
        from dehb import DEHB

        space = CS.ConfigurationSpace(seed=request["seed"])
        for name, spec in request["parameters"].items():
            kind = spec["distribution"]
            if kind == "categorical":
                hp = CS.CategoricalHyperparameter(name, spec["values"])
            elif kind == "int_uniform":
                hp = CS.UniformIntegerHyperparameter(name, spec["min"], spec["max"])
            else:
                log = kind == "log_uniform_values"
                hp = CS.UniformFloatHyperparameter(name, spec["min"], spec["max"], log=log)
            space.add(hp)
        self.parameters = request["parameters"]
        self.output = tempfile.mkdtemp(prefix="dehb-")
        self.dehb = DEHB(
            cs=space,
            min_fidelity=request["min_iter"],
            max_fidelity=request["max_iter"],
            eta=request["eta"],
            n_workers=1,  # the harness keeps the jobs in flight; DEHB only answers ask/tell
            seed=request["seed"],
            output_path=self.output,
            save_freq="end",
            log_level="ERROR",
        )
        self.jobs: dict[int, dict[str, Any]] = {}  # in flight
        self.count = 0

    def ask(self, n: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            job = self.dehb.ask()
            number = self.count
            self.count += 1
            self.jobs[number] = job
            config = _plain_config(dict(job["config"]), self.parameters)
            out.append({"id": number, "config": config, "epochs": int(round(job["fidelity"]))})
        return out

    def step(self, reports: list[list[Any]], finishes: list[list[Any]]) -> list[Any]:
        for number, value in finishes:
            job = self.jobs.pop(number)
            self.dehb.tell(job, {"fitness": value, "cost": float(job["fidelity"])})
        return []


class SyneTune(Method):
    """A Syne Tune scheduler (ASHA, MOBSTER, HyperTune, BOHB), its defaults but for the shared
    grace period, reduction factor and ``max_t``; ``type="stopping"`` (its default)."""

    def __init__(self, request: dict[str, Any]) -> None:
        from syne_tune.backend.trial_status import Trial
        from syne_tune.config_space import choice, loguniform, randint, uniform
        from syne_tune.optimizer import legacy_baselines
        from syne_tune.optimizer.scheduler import SchedulerDecision

        self.Trial, self.STOP = Trial, SchedulerDecision.STOP
        space: dict[str, Any] = {}
        for name, spec in request["parameters"].items():
            kind = spec["distribution"]
            if kind == "categorical":
                space[name] = choice(spec["values"])
            elif kind == "int_uniform":
                space[name] = randint(spec["min"], spec["max"])
            elif kind == "log_uniform_values":
                space[name] = loguniform(spec["min"], spec["max"])
            else:
                space[name] = uniform(spec["min"], spec["max"])
        self.parameters = request["parameters"]
        self.metric = request["metric"]
        cls = {
            "synetune-asha": legacy_baselines.ASHA,
            "synetune-mobster": legacy_baselines.MOBSTER,
            "synetune-hypertune": legacy_baselines.HyperTune,
            "synetune-bohb": legacy_baselines.BOHB,
        }[request["method"]]
        kwargs: dict[str, Any] = {}
        if cls is not legacy_baselines.ASHA:
            kwargs["search_options"] = {"debug_log": False}
        self.scheduler = cls(
            space,
            metric=self.metric,
            mode="min",
            resource_attr="epoch",
            max_t=request["max_iter"],
            grace_period=request["min_iter"],
            reduction_factor=request["eta"],
            random_seed=request["seed"],
            **kwargs,
        )
        self.trials: dict[int, Any] = {}
        self.last: dict[int, dict[str, Any]] = {}

    def ask(self, n: int) -> list[dict[str, Any]]:
        jobs = []
        for _ in range(n):
            number = len(self.trials)
            suggestion = self.scheduler.suggest(number)
            assert suggestion is not None and suggestion.spawn_new_trial_id, suggestion
            config = _plain_config(suggestion.config, self.parameters)
            trial = self.Trial(
                trial_id=number, config=suggestion.config, creation_time=datetime.now()
            )
            self.scheduler.on_trial_add(trial)
            self.trials[number] = trial
            jobs.append({"id": number, "config": config})
        return jobs

    def step(self, reports: list[list[Any]], finishes: list[list[Any]]) -> list[Any]:
        stop = []
        for number, epoch, value in reports:
            result = {self.metric: value, "epoch": epoch}
            self.last[number] = result
            if self.scheduler.on_trial_result(self.trials[number], result) == self.STOP:
                stop.append(number)
        for number, _ in finishes:
            if number not in stop:
                self.scheduler.on_trial_complete(self.trials[number], self.last[number])
        return stop


METHODS = {
    "wandb-bayes-hyperband": WandbBayesHyperband,
    "optuna-tpe-hyperband": OptunaTpeHyperband,
    "dehb": Dehb,
    "synetune-asha": SyneTune,
    "synetune-mobster": SyneTune,
    "synetune-hypertune": SyneTune,
    "synetune-bohb": SyneTune,
}


def main() -> None:
    # Answers go to the real stdout; anything a package prints (DEHB logs to stdout) goes to
    # stderr, which the harness writes to a file.
    out, sys.stdout = sys.stdout, sys.stderr
    method: Method | None = None
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            answer: dict[str, Any] = {}
            if op == "quit":
                print(json.dumps({}), file=out, flush=True)
                return
            if op == "versions":
                found = {}
                for package in PACKAGES:
                    try:
                        found[package] = metadata.version(package)
                    except metadata.PackageNotFoundError:
                        continue
                answer = {"versions": found}
            elif op == "init":
                method = METHODS[request["method"]](request)
            elif op == "ask":
                assert method is not None, "ask before init"
                answer = {"jobs": method.ask(request["n"])}
            elif op == "step":
                assert method is not None, "step before init"
                answer = {"stop": method.step(request["reports"], request["finishes"])}
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # the harness shows the peer's traceback
            answer = {"error": f"{exc!r}\n{traceback.format_exc()}"}
        print(json.dumps(answer, default=_plain), file=out, flush=True)


if __name__ == "__main__":
    main()
