"""A peer's side of the JSON-lines protocol; runs inside a peer's own virtual environment.

Standalone on purpose (no import of nbsweep or of the harness): it only needs the peer's
package. One request per stdin line, one answer per stdout line:

- ``{"op": "versions"}`` -> ``{"versions": {package: version}}``
- ``{"op": "init", "method", "parameters", "seed"}``: start a search over a W&B space
- ``{"op": "ask", "n"}`` -> ``{"trials": [{"id", "config"}], "seconds"}`` (suggestion time)
- ``{"op": "tell", "id", "value"}``: the result of an asked trial
- ``{"op": "add", "config", "value"}``: a finished trial the peer did not ask for
- ``{"op": "hb_stop", "config", "runs"}`` -> ``{"stop": [names]}`` (W&B's hyperband rule)
- ``{"op": "es_init", "pruner", "min_resource", "max_resource", "eta"}`` then
  ``{"op": "es_step", "starts", "reports", "finishes"}`` -> ``{"prune": [ids]}`` (Optuna)
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
import traceback
from importlib import metadata
from typing import Any

PACKAGES = ["optuna", "torch", "hyperopt", "sweeps", "numpy", "scipy", "scikit-learn"]


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        return value.item()
    return value


def _active(when: dict[str, Any] | None, config: dict[str, Any]) -> bool:
    """nbsweep's ``when`` on a flat space: every named parameter was suggested and took one of
    the listed values."""
    return all(
        name in config and config[name] in (wanted if isinstance(wanted, list) else [wanted])
        for name, wanted in (when or {}).items()
    )


class OptunaSearch:
    """Optuna's sampler; on a space with ``when``, define-by-run: a parameter is suggested only
    when its conditions hold, as an Optuna user writes such a space."""

    def __init__(self, method: str, parameters: dict[str, Any], seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        if method == "optuna-gp":
            sampler = optuna.samplers.GPSampler(seed=seed)
        else:
            sampler = optuna.samplers.TPESampler(seed=seed)
        self.study = optuna.create_study(direction="minimize", sampler=sampler)
        self.distributions = {name: self._distribution(spec) for name, spec in parameters.items()}
        self.when = {name: spec["when"] for name, spec in parameters.items() if "when" in spec}
        self.pending: dict[int, Any] = {}

    def _distribution(self, spec: dict[str, Any]) -> Any:
        d = self.optuna.distributions
        kind = spec["distribution"]
        if kind == "categorical":
            return d.CategoricalDistribution(spec["values"])
        if kind == "int_uniform":
            return d.IntDistribution(spec["min"], spec["max"])
        if kind == "uniform":
            return d.FloatDistribution(spec["min"], spec["max"])
        if kind == "log_uniform_values":
            return d.FloatDistribution(spec["min"], spec["max"], log=True)
        raise ValueError(f"no Optuna translation for distribution {kind!r}")

    def _suggest(self, trial: Any, name: str) -> Any:
        d = self.distributions[name]
        if isinstance(d, self.optuna.distributions.CategoricalDistribution):
            return trial.suggest_categorical(name, d.choices)
        if isinstance(d, self.optuna.distributions.IntDistribution):
            return trial.suggest_int(name, d.low, d.high)
        return trial.suggest_float(name, d.low, d.high, log=d.log)

    def ask(self, n: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            if self.when:
                trial = self.study.ask()
                config: dict[str, Any] = {}
                for name in self.distributions:
                    if _active(self.when.get(name), config):
                        config[name] = self._suggest(trial, name)
            else:
                trial = self.study.ask(self.distributions)
                config = dict(trial.params)
            self.pending[trial.number] = trial
            out.append({"id": trial.number, "config": config})
        return out

    def tell(self, trial_id: int, value: float) -> None:
        self.study.tell(self.pending.pop(trial_id), value)

    def add(self, config: dict[str, Any], value: float) -> None:
        distributions = {name: self.distributions[name] for name in config}
        self.study.add_trial(
            self.optuna.trial.create_trial(params=config, distributions=distributions, value=value)
        )


class HyperoptSearch:
    def __init__(self, method: str, parameters: dict[str, Any], seed: int) -> None:
        import hyperopt
        import numpy as np

        self.hyperopt = hyperopt
        self.specs = parameters
        space = {name: self._space(name, spec) for name, spec in parameters.items()}
        self.space = space
        self.domain = hyperopt.Domain(lambda config: 0.0, space)
        self.trials = hyperopt.Trials()
        self.rng = np.random.default_rng(seed)

    def _space(self, name: str, spec: dict[str, Any]) -> Any:
        hp = self.hyperopt.hp
        kind = spec["distribution"]
        if kind == "categorical":
            return hp.choice(name, spec["values"])
        if kind == "int_uniform":
            return hp.uniformint(name, spec["min"], spec["max"])
        if kind == "uniform":
            return hp.uniform(name, spec["min"], spec["max"])
        if kind == "log_uniform_values":
            return hp.loguniform(name, math.log(spec["min"]), math.log(spec["max"]))
        raise ValueError(f"no hyperopt translation for distribution {kind!r}")

    def _config(self, vals: dict[str, list[Any]]) -> dict[str, Any]:
        flat = {k: v[0] for k, v in vals.items()}
        config = self.hyperopt.space_eval(self.space, flat)
        for name, spec in self.specs.items():
            if spec["distribution"] == "int_uniform":
                config[name] = int(round(config[name]))
            else:
                config[name] = _plain(config[name])
        return config

    def ask(self, n: int) -> list[dict[str, Any]]:
        ids = self.trials.new_trial_ids(n)
        docs = self.hyperopt.tpe.suggest(
            ids, self.domain, self.trials, int(self.rng.integers(2**31 - 1))
        )
        self.trials.insert_trial_docs(docs)
        self.trials.refresh()
        return [{"id": doc["tid"], "config": self._config(doc["misc"]["vals"])} for doc in docs]

    def _finish(self, doc: dict[str, Any], value: float) -> None:
        doc["state"] = self.hyperopt.JOB_STATE_DONE
        doc["result"] = {"loss": value, "status": self.hyperopt.STATUS_OK}

    def tell(self, trial_id: int, value: float) -> None:
        for doc in self.trials._dynamic_trials:
            if doc["tid"] == trial_id:
                self._finish(doc, value)
        self.trials.refresh()

    def add(self, config: dict[str, Any], value: float) -> None:
        (tid,) = self.trials.new_trial_ids(1)
        vals = {}
        for name, spec in self.specs.items():
            v = config[name]
            vals[name] = [spec["values"].index(v) if spec["distribution"] == "categorical" else v]
        misc = {"tid": tid, "cmd": self.domain.cmd, "workdir": None}
        misc["idxs"] = {name: [tid] for name in self.specs}
        misc["vals"] = vals
        (doc,) = self.trials.new_trial_docs([tid], [None], [{"status": "new"}], [misc])
        self._finish(doc, value)
        self.trials.insert_trial_docs([doc])
        self.trials.refresh()


class WandbSearch:
    def __init__(self, method: str, parameters: dict[str, Any], seed: int) -> None:
        import numpy as np
        import sweeps

        self.sweeps = sweeps
        # sweeps draws from the global generators only: seeding them is its seeding.
        random.seed(seed)
        np.random.seed(seed)
        self.config = {
            "method": method.split("-", 1)[1],
            "metric": {"name": "loss", "goal": "minimize"},
            "parameters": parameters,
        }
        self.runs: list[Any] = []
        self.by_name: dict[str, int] = {}

    def _run(self, name: str, config: dict[str, Any], state: str, value: Any = None) -> Any:
        history = [] if value is None else [{"loss": value}]
        summary = {} if value is None else {"loss": value}
        return self.sweeps.SweepRun(
            name=name,
            state=state,
            config={k: {"value": v} for k, v in config.items()},
            history=history,
            summary_metrics=summary,
        )

    def ask(self, n: int) -> list[dict[str, Any]]:
        suggested = self.sweeps.next_runs(self.config, self.runs, n=n)
        out = []
        for run in suggested:
            name = str(len(self.runs))
            config = {k: _plain(v["value"]) for k, v in run.config.items()}
            self.by_name[name] = len(self.runs)
            self.runs.append(self._run(name, config, "pending"))
            out.append({"id": name, "config": config})
        return out

    def tell(self, trial_id: str, value: float) -> None:
        index = self.by_name[trial_id]
        config = {k: v["value"] for k, v in self.runs[index].config.items()}
        self.runs[index] = self._run(trial_id, config, "finished", value)

    def add(self, config: dict[str, Any], value: float) -> None:
        self.runs.append(self._run(str(len(self.runs)), config, "finished", value))


def hyperband_stop(config: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    import sweeps

    sweep_runs = [
        sweeps.SweepRun(
            name=run["name"],
            state=run["state"],
            history=[{"loss": v} for v in run["history"]],
        )
        for run in runs
    ]
    return [run.name for run in sweeps.stop_runs(config, sweep_runs)]


class OptunaPruning:
    """Optuna's pruners fed the same learning curves, one report per epoch."""

    def __init__(self, pruner: str, min_resource: int, max_resource: int, eta: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        if pruner == "optuna-sha":
            rule = optuna.pruners.SuccessiveHalvingPruner(
                min_resource=min_resource, reduction_factor=eta
            )
        else:
            rule = optuna.pruners.HyperbandPruner(
                min_resource=min_resource, max_resource=max_resource, reduction_factor=eta
            )
        self.study = optuna.create_study(
            direction="minimize", pruner=rule, sampler=optuna.samplers.RandomSampler(seed=0)
        )
        self.trials: dict[str, Any] = {}

    def step(
        self, starts: list[str], reports: list[list[Any]], finishes: list[list[Any]]
    ) -> list[str]:
        for run_id in starts:
            self.trials[run_id] = self.study.ask()
        pruned = []
        for run_id, epoch, value in reports:
            trial = self.trials[run_id]
            trial.report(value, epoch)
            if trial.should_prune():
                self.study.tell(trial, state=self.optuna.trial.TrialState.PRUNED)
                pruned.append(run_id)
        for run_id, value in finishes:
            if run_id not in pruned:
                self.study.tell(self.trials[run_id], value)
        return pruned


def main() -> None:
    search: Any = None
    pruning: OptunaPruning | None = None
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            answer: dict[str, Any] = {}
            if op == "quit":
                print(json.dumps({}), flush=True)
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
                method = request["method"]
                cls = {"optuna": OptunaSearch, "hyperopt": HyperoptSearch, "wandb": WandbSearch}
                search = cls[method.split("-")[0]](method, request["parameters"], request["seed"])
                if getattr(search, "when", None):
                    answer = {"conditions": "define-by-run"}
            elif op == "ask":
                start = time.perf_counter()
                trials = search.ask(request["n"])
                answer = {"trials": trials, "seconds": time.perf_counter() - start}
            elif op == "tell":
                search.tell(request["id"], request["value"])
            elif op == "add":
                search.add(request["config"], request["value"])
            elif op == "hb_stop":
                answer = {"stop": hyperband_stop(request["config"], request["runs"])}
            elif op == "es_init":
                pruning = OptunaPruning(
                    request["pruner"],
                    request["min_resource"],
                    request["max_resource"],
                    request["eta"],
                )
            elif op == "es_step":
                assert pruning is not None, "es_step before es_init"
                answer = {
                    "prune": pruning.step(
                        request["starts"], request["reports"], request["finishes"]
                    )
                }
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # the harness shows the peer's traceback
            answer = {"error": f"{exc!r}\n{traceback.format_exc()}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
