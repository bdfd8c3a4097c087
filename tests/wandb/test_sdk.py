"""``nbsweep.wandb``'s run API: W&B's names and semantics, in a run and outside one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nbsweep
from nbsweep import wandb
from nbsweep.wandb import _sdk

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_notes() -> None:
    """Each test hears its notes (they are said once per process)."""
    _sdk._noted.clear()
    wandb.finish()


def test_import_nbsweep_stays_cheap_and_wandb_is_a_lazy_attribute() -> None:
    code = (
        "import sys, nbsweep; assert 'nbsweep.wandb' not in sys.modules;"
        " w = nbsweep.wandb; assert w.__name__ == 'nbsweep.wandb'; print(w.init.__module__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "nbsweep.wandb._sdk"


def test_outside_a_sweep_init_uses_the_config_and_records_nothing() -> None:
    config = {"learning_rate": 0.001, "batch_size": 32}
    with pytest.warns(_sdk.WandbNote, match="outside a sweep run"):
        run = wandb.init(config=config, project="sanity")
    assert wandb.run is run and wandb.config is run.config
    assert run.config.learning_rate == 0.001 and run.config["batch_size"] == 32
    run.config.update({"epochs": 2})
    wandb.log({"loss": 1.0})
    run.summary["best"] = 0.5
    assert dict(wandb.summary) == {"best": 0.5}
    assert run.project == "sanity" and run.name == run.id
    run.finish()
    assert wandb.run is None
    with pytest.raises(nbsweep.SweepError, match=r"wandb\.init\(\)"):
        wandb.log({"loss": 1.0})
    with pytest.raises(nbsweep.SweepError, match=r"before using wandb\.config"):
        wandb.config.lr  # noqa: B018


def test_other_arguments_and_calls_are_ignored_with_one_note_each() -> None:
    with pytest.warns(_sdk.WandbNote) as notes:
        run = wandb.init(config={"a": 1}, tags=["x"], reinit=True, entity="me")
        wandb.init(tags=["y"])  # said once per session
        for _ in range(2):
            assert wandb.login() is True
            wandb.watch(object())
            wandb.run.log_artifact("model.pt")
            table = wandb.Table(columns=["a"])
            table.add_data(1)
            with wandb.Artifact("model", type="model").new_file("w.bin") as f:
                f.write(b"")
            chart = wandb.plot.line(table, "a", "a")
            wandb.log({"loss": 0.5, "table": table, "image": wandb.Image(None), "chart": chart})
            wandb.log_model("model.pt", name="m")
            wandb.setup()
            wandb.alert(title="t", text="x", level=wandb.AlertLevel.WARN)
    said = [str(n.message) for n in notes]
    assert len(said) == len(set(said))  # each said once, however often it is called
    assert sum("tags=" in s for s in said) == 1
    assert any("reinit=" in s for s in said) and any("entity=" in s for s in said)
    calls = ("login", "watch", "log_artifact", "Table", "Artifact", "Image", "plot.line")
    for call in (*calls, "log_model", "setup", "alert"):
        assert sum(f"wandb.{call}() has no effect" in s for s in said) == 1, (call, said)
    assert any("'table': wandb.Table values are not recorded" in s for s in said)
    assert any("'chart': W&B charts are not recorded" in s for s in said)
    assert run is not wandb.run  # the second init ended the first run, as in W&B


def test_init_takes_w_and_b_positional_arguments_in_w_and_b_order() -> None:
    # W&B's order: entity, project, dir, id, name, notes, tags, config.
    with pytest.warns(_sdk.WandbNote) as notes:
        run = wandb.init("team", "proj", None, None, "first", None, None, {"lr": 0.1})
    assert (run.project, run.name, dict(run.config)) == ("proj", "first", {"lr": 0.1})
    assert any("wandb.init(entity=...) has no effect" in str(n.message) for n in notes)
    try:
        raise wandb.CommError("no server")
    except wandb.Error as error:  # W&B's error classes derive from wandb.Error, as there
        assert isinstance(error, nbsweep.SweepError)


def test_init_reads_config_defaults_and_config_files_as_w_and_b_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config-defaults.yaml").write_text(
        "wandb_version: 1\nepochs: {desc: passes, value: 4}\nlr: {value: 0.1}\n"
    )
    (tmp_path / "run.yaml").write_text("lr: {value: 0.5}\n")
    with pytest.warns(_sdk.WandbNote, match="outside a sweep run"):
        run = wandb.init()
    assert dict(run.config) == {"epochs": 4, "lr": 0.1}
    assert dict(wandb.init(config={"lr": 0.2}).config) == {"epochs": 4, "lr": 0.2}
    assert dict(wandb.init(config="run.yaml").config) == {"epochs": 4, "lr": 0.5}
    (tmp_path / "bad.yaml").write_text("lr: 0.5\n")
    with pytest.raises(nbsweep.SweepError, match=r"write lr: \{value: \.\.\.\}"):
        wandb.init(config="bad.yaml")


def test_in_a_run_wandb_records_into_it(sqlite_store: str) -> None:
    config = {
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"lr": {"values": [0.1, 0.2]}, "layers": {"value": 2}},
    }

    def train(config: Any) -> None:
        import wandb as w  # the real package is not installed: this is nbsweep's

        with w.init(config={"lr": 9.0, "extra": 1}) as run:
            assert run.config.lr in (0.1, 0.2)  # the sweep's value wins
            assert run.config.extra == 1
            run.config.update({"lr": 5.0})  # locked by the sweep: ignored
            assert w.config.lr in (0.1, 0.2)
            w.log({"loss": run.config.lr, "part": 1}, commit=False)
            w.log({"acc": 0.5})
            run.log({"loss": run.config.lr / 2}, step=5)
            run.summary["best_loss"] = run.config.lr / 4
            assert run.id == nbsweep._train.current_run().run_id  # type: ignore[union-attr]

    sweep = nbsweep.sweep(config, train, workers=0, store=sqlite_store)
    nbsweep.agent(sweep.id, function=train, store=sqlite_store)
    assert sweep.wait() == "finished", sweep.message
    runs = sweep.runs
    assert list(runs["state"]) == ["finished"] * 2
    assert list(runs["summary/best_loss"]) == [0.025, 0.05]
    history = sweep.history()
    first = history[history["run_id"] == runs["run_id"].iloc[0]]
    assert first["_step"].tolist() == [0, 5]
    assert first["loss"].tolist() == [0.1, 0.05]
    assert first["part"].tolist()[0] == 1 and first["acc"].tolist()[0] == 0.5
    # The routing ends with the run: outside it, ``import wandb`` finds no package here.
    assert "wandb" not in sys.modules


def test_routing_restores_what_import_wandb_gave_before(monkeypatch: pytest.MonkeyPatch) -> None:
    real = type(sys)("wandb")
    monkeypatch.setitem(sys.modules, "wandb", real)
    with _sdk.routed():
        import wandb as inside
        from wandb.sdk.lib.config_util import ConfigError  # Hugging Face's import

        assert inside is _sdk and ConfigError is _sdk.ConfigError
    import wandb as after

    assert after is real and "wandb.sdk" not in sys.modules


def test_program_env_puts_the_shim_first_on_pythonpath() -> None:
    env = _sdk.program_env({"PYTHONPATH": "/a:/b"})
    assert env["PYTHONPATH"].split(":") == [str(_sdk.SHIM_DIR), "/a", "/b"]
    assert env["WANDB_MODE"] == "offline"
    assert (Path(env["PYTHONPATH"].split(":")[0]) / "wandb" / "__init__.py").is_file()


def test_the_shim_routes_import_wandb_only_in_a_program_run(tmp_path: Path) -> None:
    # The shim folder on the path of a process that is no nbsweep program run (a leaked
    # PYTHONPATH), and the shim imported by its dotted name: `import wandb` stays what it is
    # without them (here, with no W&B package, an ImportError).
    code = """\
import sys

import nbsweep.wandb._shim.wandb

shadowed = [name for name in sys.modules if name.split(".")[0] == "wandb"]
assert not shadowed, shadowed
try:
    import wandb
except ModuleNotFoundError as error:
    assert error.name == "wandb" and "wandb" not in sys.modules
    print("no wandb")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBSWEEP_")}
    env["PYTHONPATH"] = os.pathsep.join([str(_sdk.SHIM_DIR), str(REPO)])
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "no wandb\n"


def test_wandb_sweep_creates_the_sweep_without_starting_it(sqlite_store: str) -> None:
    config = {"method": "grid", "parameters": {"x": {"values": [1, 2]}}}
    with pytest.warns(_sdk.WandbNote) as notes:
        sweep_id = wandb.sweep(config, project="p", store=sqlite_store)
        wandb.sweep(config, project="p", store=sqlite_store)
    assert [str(n.message) for n in notes] == [
        "nbsweep.wandb: wandb.sweep(project=...) has no effect here"
    ]
    sweep = nbsweep.load(sweep_id, store=sqlite_store)
    assert sweep.state == "pending" and sweep.runs.empty
    with pytest.raises(nbsweep.ConfigError, match="parameters.x"):
        wandb.sweep({"method": "grid", "parameters": {"x": {"valuez": [1]}}}, store=sqlite_store)


def test_wandb_agent_returns_when_the_sweep_ends_before_count(sqlite_store: str) -> None:
    config = {"method": "grid", "parameters": {"x": {"values": [1, 2]}}}

    def train() -> None:
        import wandb as w  # in the agent process: nbsweep's, by the agent's routing

        with w.init() as run:
            w.log({"y": run.config.x * 10})

    sweep_id = wandb.sweep(config, store=sqlite_store)
    wandb.agent(sweep_id, train, count=5, workers=1, store=sqlite_store)
    # The grid ended the sweep after two runs: the call returned without waiting for five.
    sweep = nbsweep.load(sweep_id, store=sqlite_store)
    assert sweep.state == "finished"
    assert list(sweep.runs["state"]) == ["finished"] * 2
    assert sorted(sweep.history()["y"]) == [10, 20]
    assert "wandb.agent: 1 agents for 5 runs" in sweep.events()["message"].str.cat()
