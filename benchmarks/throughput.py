"""``python -m benchmarks.throughput [--quick]``: how fast the runtime moves trials.

Measured, never asserted: no-op trials per second with 2 workers (nbsweep against Optuna on
SQLite, on a journal file and on PostgreSQL, one process per worker, every trial in the
store; nbsweep also with its agents on a 2-worker Dask cluster), worker busy time on 1 s and
10 ms trials, and how long after the row that reaches a hyperband band the run is told to
stop. Writes the ``## Throughput`` section of ``docs/benchmarks.md``. PostgreSQL is the
server at ``$NBSWEEP_TEST_PG`` (the tests' one); each measurement gets its own schema.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbsweep

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Throughput"
WORKERS = 2
PG_SERVER = os.environ.get("NBSWEEP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# -- train functions (importable, so agents get them by reference) -----------------------------


def noop(config: Any) -> None:
    """Does nothing: what is left is the sweep machinery."""


def one_row(config: Any) -> None:
    """Logs one metric row: the run and its row are both durable before the trial ends."""
    nbsweep.log({"loss": config.x})


def sleeper(config: Any) -> None:
    time.sleep(config.seconds)


def probe(config: Any) -> None:
    """A flat curve at level x; a stopped run writes how long its stopping ``log`` took."""
    from nbsweep._train import current_run

    run = current_run()
    assert run is not None
    for _ in range(config.epochs):
        started = time.perf_counter()
        try:
            nbsweep.log({"loss": float(config.x)})
        except nbsweep.RunStopped:
            delay = time.perf_counter() - started
            (Path(config.out) / f"{run.run_id}.txt").write_text(repr(delay))
            raise
        time.sleep(0.005)


# -- nbsweep ---------------------------------------------------------------------------------


def _random(trials: int, **constants: Any) -> dict[str, Any]:
    parameters: dict[str, Any] = {"x": {"min": 0.0, "max": 1.0}}
    parameters.update({k: {"value": v} for k, v in constants.items()})
    return {"method": "random", "run_cap": trials, "parameters": parameters}


@contextmanager
def pg_schema() -> Iterator[str]:
    """A store URL on a fresh PostgreSQL schema of the tests' server, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


def nbsweep_rate(
    function: Callable[..., Any], trials: int, store: Any, executor: Any = None
) -> dict[str, float]:
    """Trials per second from the first run's start to the last run's end, all in the store."""
    sweep = nbsweep.sweep(
        _random(trials), function, workers=WORKERS, store=store, executor=executor
    )
    sweep.wait()
    runs = sweep.runs
    assert len(runs) == trials and set(runs["state"]) == {"finished"}, runs["state"].unique()
    span = (runs["ended_at"].max() - runs["started_at"].min()).total_seconds()
    rows = len(sweep.history())
    return {"trials": trials, "seconds": span, "rate": trials / span, "rows": rows}


def dask_rate(function: Callable[..., Any], trials: int, store: str) -> dict[str, float]:
    """``nbsweep_rate`` with the agents as tasks on a local Dask cluster of WORKERS workers."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=WORKERS, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        return nbsweep_rate(function, trials, store, executor=client)


def busy_time(seconds: float, trials: int, work: Path) -> dict[str, float]:
    """Share of each agent's time (first claim to last finish) spent inside the train function."""
    store = work / f"busy-{seconds}.db"
    sweep = nbsweep.sweep(_random(trials, seconds=seconds), sleeper, workers=WORKERS, store=store)
    sweep.wait()
    runs = sweep.runs
    shares = []
    for _, own in runs.groupby("agent"):
        span = (own["ended_at"].max() - own["started_at"].min()).total_seconds()
        shares.append(float(own["summary/_runtime"].sum()) / span)
    return {"trials": trials, "busy": min(shares), "mean": statistics.fmean(shares)}


def stop_latency(work: Path, bad_runs: int) -> dict[str, float]:
    """Seconds from the ``log`` call whose row reaches a band to ``RunStopped`` in train."""
    out = work / "stops"
    out.mkdir()
    values = [0.0] + [1.0 + i for i in range(bad_runs)]
    config = {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {
            "x": {"values": values},
            "epochs": {"value": 30},
            "out": {"value": str(out)},
        },
        "early_terminate": {"type": "hyperband", "min_iter": 3, "eta": 3},
    }
    sweep = nbsweep.sweep(config, probe, workers=1, store=work / "stops.db")
    sweep.wait()
    runs = sweep.runs
    stopped = runs[runs["state"] == "stopped"]
    delays = [float(p.read_text()) for p in out.glob("*.txt")]
    assert len(delays) == len(stopped) == bad_runs, (len(delays), len(stopped))
    assert set(stopped["steps"]) == {3}, "a run logged past its band"
    return {
        "stops": len(delays),
        "median_ms": 1000 * statistics.median(delays),
        "max_ms": 1000 * max(delays),
    }


# -- Optuna ----------------------------------------------------------------------------------


def _optuna_storage(kind: str, path: str) -> Any:
    import optuna

    if kind == "sqlite":
        return optuna.storages.RDBStorage(f"sqlite:///{path}")
    if kind == "postgresql":
        return optuna.storages.RDBStorage(path)  # the URL of a fresh schema
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(path))


def _optuna_worker(kind: str, path: str, trials: int, times: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Random sampling, as nbsweep's side: the comparison is of the machinery, not of TPE.
    study = optuna.load_study(
        study_name="bench",
        storage=_optuna_storage(kind, path),
        sampler=optuna.samplers.RandomSampler(),
    )
    started = time.time()
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=trials)
    times.put((started, time.time()))


def optuna_rate(kind: str, trials: int, work: Path, url: str = "") -> dict[str, float]:
    """Optuna with one process per worker on a shared storage, timed inside the workers."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = url or str(work / f"optuna-{kind}.{'db' if kind == 'sqlite' else 'log'}")
    optuna.create_study(study_name="bench", storage=_optuna_storage(kind, path))
    context = multiprocessing.get_context("spawn")
    times = context.Queue()
    workers = [
        context.Process(target=_optuna_worker, args=(kind, path, trials // WORKERS, times))
        for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    spans = [times.get() for _ in workers]
    for worker in workers:
        worker.join()
    span = max(end for _, end in spans) - min(start for start, _ in spans)
    done = len(optuna.load_study(study_name="bench", storage=_optuna_storage(kind, path)).trials)
    return {"trials": done, "seconds": span, "rate": done / span}


def _ratio(results: dict[str, dict[str, float]], ours: str, theirs: str) -> str:
    return f"{results[ours]['rate'] / results[theirs]['rate']:.0f}x"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput")
    parser.add_argument("--quick", action="store_true", help="fewer trials (a smoke run)")
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    args = parser.parse_args()
    from benchmarks import throughput as me  # by reference, not as __main__

    scale = 1 if args.quick else 4
    with tempfile.TemporaryDirectory(prefix="nbsweep-throughput-") as tmp:
        work = Path(tmp)
        results = {
            "nbsweep no-op": nbsweep_rate(me.noop, 2500 * scale, work / "noop.db"),
            "nbsweep one row": nbsweep_rate(me.one_row, 2500 * scale, work / "one_row.db"),
            "optuna sqlite": optuna_rate("sqlite", 200 if args.quick else 400, work),
            "optuna journal": optuna_rate("journal", 400 if args.quick else 1000, work),
        }
        with pg_schema() as url:
            results["nbsweep no-op, PostgreSQL"] = nbsweep_rate(me.noop, 1000 * scale, url)
        with pg_schema() as url:
            results["nbsweep no-op, Dask, PostgreSQL"] = dask_rate(me.noop, 1000 * scale, url)
        with pg_schema() as url:
            trials = 200 if args.quick else 400
            results["optuna PostgreSQL"] = optuna_rate("postgresql", trials, work, url)
        busy_1s = busy_time(1.0, 10 if args.quick else 30, work)
        busy_10ms = busy_time(0.01, 200 * scale, work)
        stops = stop_latency(work, 8 if args.quick else 20)
    for name, value in {**results, "busy 1 s": busy_1s, "busy 10 ms": busy_10ms}.items():
        print(f"{name}: {value}")
    print(f"stop latency: {stops}")
    load = os.getloadavg()[0]
    lines = [
        "_Written by `python -m benchmarks.throughput`; measured, never asserted in tests._",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}),"
        f" Python {platform.python_version()}, SQLite store files in a temp directory,"
        " PostgreSQL on the same machine (a fresh schema per row of the table);"
        f" load average {load:.1f} at the end (other work shared the cores). {WORKERS} workers:"
        " nbsweep agents are spawned processes (with Dask: tasks of a `LocalCluster` of"
        f" {WORKERS} worker processes, each starting its agent process); Optuna runs one"
        " process per worker on the same storage. Both sample at random (Optuna's"
        " RandomSampler).",
        "",
        "| what | trials | seconds | trials/s |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {r['trials']:.0f} | {r['seconds']:.2f} | {r['rate']:.0f} |"
            for name, r in results.items()
        ),
        "",
        "nbsweep counts from the first run's start to the last run's end as the store records"
        " them; every run (and in 'one row' its logged row, committed before `log` returns)"
        " is in the store. Optuna is timed inside its workers, from their start to their end."
        " The cores are shared with other work, so absolute rates moved by up to 2x between"
        " our runs of this script; compare within one run: here nbsweep moved"
        f" {results['nbsweep no-op']['rate'] / results['optuna sqlite']['rate']:.0f}x as many"
        " no-op trials per second as Optuna on SQLite and"
        f" {results['nbsweep no-op']['rate'] / results['optuna journal']['rate']:.0f}x as many"
        " as Optuna on a journal file; on PostgreSQL"
        f" {_ratio(results, 'nbsweep no-op, PostgreSQL', 'optuna PostgreSQL')} as many as"
        " Optuna on PostgreSQL, and through Dask"
        f" {_ratio(results, 'nbsweep no-op, Dask, PostgreSQL', 'optuna PostgreSQL')}. The"
        " Dask row counts from the first run's start too, so it leaves out the cluster's and"
        " the agents' start-up.",
        "",
        "| worker busy time | trials | worst agent | mean |",
        "|---|---:|---:|---:|",
        f"| 1 s trials | {busy_1s['trials']} | {busy_1s['busy']:.2%} | {busy_1s['mean']:.2%} |",
        f"| 10 ms trials | {busy_10ms['trials']} | {busy_10ms['busy']:.2%}"
        f" | {busy_10ms['mean']:.2%} |",
        "",
        "Busy time is the time inside the train function over each agent's span from its"
        " first claim to its last finish.",
        "",
        f"Hyperband stop decision: {stops['stops']} runs stopped at their band; the `log`"
        " call whose row reached the band raised `RunStopped` after a median of"
        f" {stops['median_ms']:.1f} ms (max {stops['max_ms']:.1f} ms), the rule being"
        " evaluated from the store in the same transaction as the row; no stopped run logged"
        " a row past its band.",
    ]
    if not args.no_write:
        # Imported here: agents import this module for its train functions, and the report's
        # imports (numpy, the task table) would count in their start-up, not nbsweep's.
        from benchmarks.report import write_section

        write_section(HEADING, lines)


if __name__ == "__main__":
    main()
