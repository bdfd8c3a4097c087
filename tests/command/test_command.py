"""Script sweeps: the argv of a run must be exactly what ``wandb agent`` builds (spec §11).

Expected values are W&B's expansions written out by hand from the spec, not computed by the
code under test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbsweep import ConfigError
from nbsweep._command import (
    build_command,
    check_command,
    default_run_dir,
    program_env,
    run_program,
    run_script_trial,
    write_param_file,
)
from nbsweep._train import Config
from nbsweep.config import SweepConfig, validate

# The run config of spec §11's examples: a nested block arrives as one dict-valued key.
RUN = {
    "lr": 0.01,
    "flag": False,
    "on": True,
    "name": "a b",
    "opt": {"b": 1},
    "none": None,
}


def script(**keys: Any) -> SweepConfig:
    """A validated sweep config with these ``program``/``command`` keys."""
    return validate({"method": "random", "parameters": {"x": {"value": 1}}, **keys})


ARGS = ["--lr=0.01", "--flag=False", "--on=True", "--name=a b", "--opt={'b': 1}", "--none=None"]
ARGS_JSON = '{"lr": 0.01, "flag": false, "on": true, "name": "a b", "opt": {"b": 1}, "none": null}'


def argv(
    command: list[Any] | None, run: dict[str, Any] = RUN, tmp: Path | None = None, **env: str
) -> list[str]:
    config = script(program="train.py", **({} if command is None else {"command": command}))
    return build_command(
        config,
        run,
        sweep_id="sw1",
        run_id="r1",
        run_dir=tmp or Path("/nonexistent/run-dir"),
        environ=env,
    )


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("${args}", ARGS),
        (
            "${args_no_hyphens}",
            ["lr=0.01", "flag=False", "on=True", "name=a b", "opt={'b': 1}", "none=None"],
        ),
        (
            "${args_no_boolean_flags}",
            ["--lr=0.01", "--on", "--name=a b", "--opt={'b': 1}", "--none=None"],
        ),
        (
            "${args_no_equals}",
            [
                "--lr",
                "0.01",
                "--flag",
                "False",
                "--on",
                "True",
                "--name",
                "a b",
                "--opt",
                "{'b': 1}",
                "--none",
                "None",
            ],
        ),
        ("${args_json}", [ARGS_JSON]),
        (
            "${args_append_hydra}",
            ["+lr=0.01", "+flag=False", "+on=True", "+name=a b", "+opt={'b': 1}", "+none=None"],
        ),
        (
            "${args_override_hydra}",
            [
                "++lr=0.01",
                "++flag=False",
                "++on=True",
                "++name=a b",
                "++opt={'b': 1}",
                "++none=None",
            ],
        ),
        ("${env}", ["/usr/bin/env"]),
        ("${interpreter}", [sys.executable]),
        ("${program}", ["train.py"]),
    ],
)
def test_each_macro_expands_as_wandb_agent(macro: str, expected: list[str]) -> None:
    assert argv(["run", macro, "end"]) == ["run", *expected, "end"]


def test_default_command_is_env_interpreter_program_args() -> None:
    expected = ["/usr/bin/env", sys.executable, "train.py", *ARGS]
    assert argv(None) == expected
    # W&B falls back to the default for an empty list too.
    assert argv([]) == expected


def test_values_are_formatted_with_python_str() -> None:
    run = {"epochs": 3, "lr": 1e-05, "layers": [1, 2], "big": 3e6, "s": "x=y"}
    assert argv(["${args}"], run) == [
        "--epochs=3",
        "--lr=1e-05",
        "--layers=[1, 2]",
        "--big=3000000.0",
        "--s=x=y",
    ]


def test_non_string_elements_become_strings_and_embedded_macros_stay_literal() -> None:
    assert argv(["python", 3, 1.5, True, "--x=${args}", "a${program}"]) == [
        "python",
        "3",
        "1.5",
        "True",
        "--x=${args}",
        "a${program}",
    ]


def test_envvar_is_replaced_anywhere_in_an_element() -> None:
    got = argv(
        ["--data=${envvar:MY_VAR}/d", "${envvar:MY_VAR}", "${envvar:A}-${envvar:B_2}"],
        MY_VAR="xyz",
        A="1",
        B_2="2",
    )
    assert got == ["--data=xyz/d", "xyz", "1-2"]


def test_unset_envvar_becomes_its_name() -> None:
    assert argv(["${envvar:NOPE}", "--p=${envvar:NOPE}"]) == ["NOPE", "--p=NOPE"]


def test_envvar_expanding_to_a_macro_is_then_expanded_like_wandb() -> None:
    # W&B substitutes environment variables first, then looks at whole-element macros.
    assert argv(["${envvar:WHICH}"], WHICH="${program}") == ["train.py"]


def test_empty_run_config_gives_no_arguments() -> None:
    assert argv(["${interpreter}", "${program}", "${args}"], {}) == [sys.executable, "train.py"]


def test_args_json_file_holds_the_args_json(tmp_path: Path) -> None:
    run_dir = tmp_path / "wandb" / "sweep-sw1"
    got = argv(["prog", "${args_json_file}"], tmp=run_dir)
    path = run_dir / "config-r1.json"
    assert got == ["prog", str(path)]
    assert path.read_text() == ARGS_JSON
    assert json.loads(path.read_text())["opt"] == {"b": 1}
    assert (path.stat().st_mode & 0o777) == 0o600


def test_args_json_file_is_written_only_when_used(tmp_path: Path) -> None:
    argv(["prog", "${args}"], tmp=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_default_run_dir_follows_wandb_dir(tmp_path: Path) -> None:
    assert default_run_dir("sw1", {"WANDB_DIR": str(tmp_path)}) == tmp_path / "wandb" / "sweep-sw1"
    assert default_run_dir("sw1", {}) == Path.cwd() / "wandb" / "sweep-sw1"


@pytest.mark.parametrize(
    ("command", "config", "path", "hint"),
    [
        (["${arg}"], {"program": "t.py"}, "command[0]", "${args}"),
        (["python", "${envvar:lower}"], {"program": "t.py"}, "command[1]", "upper case"),
        (["python", "${args_dict}"], {"program": "t.py"}, "command[1]", "${args_json}"),
        (["python", "${lr}"], {"program": "t.py"}, "command[1]", "known macros"),
        (["${env}", "${interpreter}", "${program}"], {}, "command[2]", "program: train.py"),
    ],
)
def test_bad_templates_are_refused_with_the_key_path(
    command: Any, config: dict[str, Any], path: str, hint: str
) -> None:
    sweep_config = script(**config, **({} if command is None else {"command": command}))
    problems = check_command(sweep_config)
    assert len(problems) == 1
    assert problems[0].startswith(path + ":")
    assert hint in problems[0]
    with pytest.raises(ConfigError, match=path.replace("[", r"\[").replace("]", r"\]")):
        build_command(sweep_config, RUN, sweep_id="s", run_id="r", run_dir="/nonexistent")


@pytest.mark.parametrize(
    ("keys", "path", "hint"),
    [
        ({"program": "t.py", "command": "python t.py"}, "command", "list"),
        ({"program": 3}, "program", "string"),
    ],
)
def test_a_program_or_command_of_the_wrong_type_is_refused_by_validation(
    keys: dict[str, Any], path: str, hint: str
) -> None:
    with pytest.raises(ConfigError, match=f"{path}: .*{hint}"):
        script(**keys)


def test_the_default_command_without_program_is_refused() -> None:
    assert check_command(script())[0].startswith("command[2]: uses ${program}")


def test_param_file_is_wandbs_config_yaml(tmp_path: Path) -> None:
    path = write_param_file(RUN, run_id="r1", run_dir=tmp_path)
    assert path == tmp_path / "config-r1.yaml"
    text = path.read_text()
    assert text.startswith("wandb_version: 1\n\nlr:\n  value: 0.01\n")
    assert yaml.safe_load(text) == {"wandb_version": 1, **{k: {"value": v} for k, v in RUN.items()}}
    assert list(yaml.safe_load(text)) == ["wandb_version", *RUN]


def test_param_file_of_a_run_config_with_a_nested_block(tmp_path: Path) -> None:
    # What an agent hands a program: sweep's train function, nested blocks as Config too.
    run = Config({"lr": 0.1, "optimizer": {"name": "adam", "beta": 0.9}})
    text = write_param_file(run, run_id="r1", run_dir=tmp_path).read_text()
    assert yaml.safe_load(text)["optimizer"] == {"value": {"name": "adam", "beta": 0.9}}


def test_param_file_of_an_empty_config(tmp_path: Path) -> None:
    assert write_param_file({}, run_id="r1", run_dir=tmp_path).read_text() == "wandb_version: 1"


def test_program_env_names_the_run_for_nbsweep_and_wandb() -> None:
    env = program_env(
        store="sqlite:////tmp/x.db",
        sweep_id="sw1",
        run_id="r1",
        param_file="/d/config-r1.yaml",
        environ={"PATH": "/bin", "WANDB_RUN_ID": "old"},
    )
    assert env["PATH"] == "/bin"
    assert env["NBSWEEP_STORE"] == "sqlite:////tmp/x.db"
    assert (env["NBSWEEP_SWEEP_ID"], env["NBSWEEP_RUN_ID"]) == ("sw1", "r1")
    assert (env["WANDB_SWEEP_ID"], env["WANDB_RUN_ID"]) == ("sw1", "r1")
    assert env["WANDB_SWEEP_PARAM_PATH"] == "/d/config-r1.yaml"
    assert env["WANDB_DIR"] == os.path.abspath(os.getcwd())


# --- real programs -------------------------------------------------------------------------

ECHO = """\
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "run": os.environ.get("NBSWEEP_RUN_ID"),
                  "params": open(os.environ["WANDB_SWEEP_PARAM_PATH"]).read()}))
"""


@pytest.fixture
def echo(tmp_path: Path) -> Path:
    path = tmp_path / "echo.py"
    path.write_text(ECHO)
    return path


def spawn(echo: Path, command: list[str], run: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    config = script(program=str(echo), command=command)
    run_dir = tmp_path / "wandb" / "sweep-sw1"
    args = build_command(config, run, sweep_id="sw1", run_id="r1", run_dir=run_dir)
    param = write_param_file(run, run_id="r1", run_dir=run_dir)
    env = program_env(store="sqlite:///x.db", sweep_id="sw1", run_id="r1", param_file=param)
    result = run_program(args, env)
    assert result.ok, result.describe()
    return json.loads(result.output_tail.splitlines()[-1])


HOSTILE = {
    "cmd": "; rm -rf ~",
    "sub": "$(touch PWNED)",
    "tick": "`touch PWNED`",
    "quote": 'it\'s "q" \\ | > out',
}


def test_shell_metacharacters_reach_the_program_as_literal_arguments(
    echo: Path, tmp_path: Path
) -> None:
    got = spawn(echo, ["${env}", "${interpreter}", "${program}", "${args}"], HOSTILE, tmp_path)
    assert got["argv"] == [
        "--cmd=; rm -rf ~",
        "--sub=$(touch PWNED)",
        "--tick=`touch PWNED`",
        '--quote=it\'s "q" \\ | > out',
    ]
    got = spawn(echo, ["${interpreter}", "${program}", "${args_no_equals}"], HOSTILE, tmp_path)
    assert got["argv"][:2] == ["--cmd", "; rm -rf ~"]
    assert not any(p.name == "PWNED" for p in tmp_path.rglob("*"))
    assert not (Path.cwd() / "PWNED").exists()


def test_nested_params_arrive_as_one_dict_argument(echo: Path, tmp_path: Path) -> None:
    run = {"opt": {"b": 1, "c": "x"}, "lr": 0.1}
    got = spawn(echo, ["${interpreter}", "${program}", "${args}"], run, tmp_path)
    assert got["argv"] == ["--opt={'b': 1, 'c': 'x'}", "--lr=0.1"]
    got = spawn(echo, ["${interpreter}", "${program}", "${args_json}"], run, tmp_path)
    assert json.loads(got["argv"][0]) == run


def test_program_without_args_macro_finds_its_parameters_in_the_param_file(
    echo: Path, tmp_path: Path
) -> None:
    got = spawn(echo, ["${interpreter}", "${program}"], {"lr": 0.5}, tmp_path)
    assert got["argv"] == []
    assert got["run"] == "r1"
    assert yaml.safe_load(got["params"]) == {"wandb_version": 1, "lr": {"value": 0.5}}


def test_failing_program_reports_exit_code_and_output_tail(tmp_path: Path) -> None:
    code = "import sys; print('epoch 1'); print('boom', file=sys.stderr); sys.exit(3)"
    result = run_program([sys.executable, "-c", code], dict(os.environ))
    assert (result.ok, result.returncode, result.stopped) == (False, 3, False)
    assert "epoch 1" in result.output_tail and "boom" in result.output_tail
    assert result.describe().startswith("program output (last lines):\n")
    assert result.describe().endswith("\nprogram exited with code 3")


def test_missing_program_is_a_failed_run_not_an_agent_crash(tmp_path: Path) -> None:
    result = run_program([str(tmp_path / "nope")], dict(os.environ))
    assert result.returncode == 127
    assert "nope" in result.describe()


def test_stop_sends_sigterm(tmp_path: Path) -> None:
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('got term', flush=True), sys.exit(7)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    marker = tmp_path / "out.txt"
    with marker.open("w") as out:
        result = run_program(
            [sys.executable, "-c", code],
            dict(os.environ),
            should_stop=lambda: "ready" in marker.read_text(),
            output=out,
        )
    assert (result.returncode, result.stopped) == (7, True)
    assert "got term" in result.output_tail


def test_stop_escalates_to_sigkill_after_the_grace(tmp_path: Path) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    marker = tmp_path / "out.txt"
    with marker.open("w") as out:
        result = run_program(
            [sys.executable, "-c", code],
            dict(os.environ),
            should_stop=lambda: "ready" in marker.read_text(),
            output=out,
            grace_s=0.3,
        )
    assert (result.returncode, result.stopped) == (-signal.SIGKILL, True)
    assert result.describe().endswith("program killed by SIGKILL")


def test_script_trial_runs_the_program_with_wandbs_files(
    echo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    log = tmp_path / "run.log"
    with log.open("w") as out:
        result = run_script_trial(
            script(
                program=str(echo), command=["${interpreter}", "${program}", "${args_json_file}"]
            ),
            {"lr": 0.5},
            store="sqlite:///x.db",
            sweep_id="sw1",
            run_id="r1",
            output=out,
        )
    assert result.ok, result.describe()
    run_dir = tmp_path / "wandb" / "sweep-sw1"
    got = json.loads(result.output_tail.splitlines()[-1])
    assert got["argv"] == [str(run_dir / "config-r1.json")]
    assert got["run"] == "r1"
    assert (run_dir / "config-r1.yaml").exists()
    assert log.read_text().startswith(f"$ {sys.executable} {echo} {run_dir}/config-r1.json\n")


def test_program_gets_sigterm_when_its_agent_is_killed(tmp_path: Path) -> None:
    # A cancelled sweep SIGKILLs its agents; their programs must not run on as orphans.
    program = tmp_path / "prog.py"
    program.write_text(
        "import pathlib, signal, sys, time\n"
        "def term(*_):\n"
        "    pathlib.Path(sys.argv[1]).write_text('term')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, term)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import os, sys\n"
        "from nbsweep._command import run_program\n"
        f"run_program([sys.executable, {str(program)!r}, {str(tmp_path / 'term')!r}],"
        " dict(os.environ), output=sys.stdout)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, str(agent)], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.kill()
    proc.wait()
    for _ in range(300):
        if (tmp_path / "term").exists():
            break
        time.sleep(0.1)
    assert (tmp_path / "term").read_text() == "term"
