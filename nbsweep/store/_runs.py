"""Runs and their logged rows: queued by the controller, claimed, logged and finished by agents.

A run is claimed by a single ``UPDATE`` whose ``WHERE state = 'pending'`` makes a double
claim impossible (``FOR UPDATE SKIP LOCKED`` on PostgreSQL lets concurrent agents pass each
other instead of waiting). What an agent does for every run and row runs as precompiled
driver SQL on the hot path (``HotStatements``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from nbsweep._errors import StoreError
from nbsweep._runs import RunRecord
from nbsweep._states import RunState, SweepState
from nbsweep.store import _schema as s
from nbsweep.store._codec import capped, decode, encode, encode_row, logged_step
from nbsweep.store._engine import Database, driver
from nbsweep.store._events import record_event
from nbsweep.store._liveness import new_id
from nbsweep.store._records import Claim, Finish, GpuUse, StoredRow, StoredRun

# A judge gets the metric histories (up to a band) of every other run that reached it and
# answers a stop reason, or None to let the run go on.
Judge = Callable[[dict[str, list[float]]], "str | None"]


class Runs(Database):
    """The runs and rows tables: the controller queues, agents claim, log and finish."""

    def __init__(self, url: str, create: bool = True) -> None:
        super().__init__(url, create)
        self._sql = HotStatements(self.engine.dialect, self.is_sqlite)

    # -- the controller's side -------------------------------------------------------------

    def add_runs(
        self,
        sweep_id: str,
        configs: Sequence[Mapping[str, Any]],
        requeued_from: Sequence[str | None] | None = None,
        only_running: bool = False,
    ) -> list[str]:
        """Queue new pending runs; returns their ids in order.

        With ``only_running`` nothing is queued unless the sweep is running at that moment,
        so a controller acting on a state read a moment ago cannot refill a stopped sweep.
        """
        if not configs:
            return []
        sources = list(requeued_from) if requeued_from is not None else [None] * len(configs)
        for _ in range(5):
            now = time.time()
            ids = [new_id() for _ in configs]
            try:
                with self.write() as conn:
                    if only_running:
                        state = conn.execute(
                            sa.select(s.sweeps.c.state).where(s.sweeps.c.id == sweep_id)
                        ).scalar()
                        if state != SweepState.RUNNING:
                            return []
                    top = conn.execute(
                        sa.select(sa.func.max(s.runs.c.seq)).where(s.runs.c.sweep_id == sweep_id)
                    ).scalar()
                    first = (top or 0) + 1
                    conn.execute(
                        s.runs.insert(),
                        [
                            {
                                "id": run_id,
                                "sweep_id": sweep_id,
                                "seq": first + i,
                                "state": RunState.PENDING,
                                "config": encode(config),
                                "summary": "{}",
                                "created_at": now,
                                "steps": 0,
                                "metric_count": 0,
                                "requeued_from": source,
                            }
                            for i, (run_id, config, source) in enumerate(
                                zip(ids, configs, sources, strict=True)
                            )
                        ],
                    )
                return ids
            except sa.exc.IntegrityError:
                continue  # a concurrent writer took the same seq (PostgreSQL): try again
        raise StoreError(f"sweep {sweep_id}: could not queue runs after 5 tries")

    def runs(self, sweep_id: str, min_seq: int = 0) -> list[StoredRun]:
        """Runs of a sweep from position ``min_seq`` on, in queue order."""
        stmt = s.runs.select().where(s.runs.c.sweep_id == sweep_id)
        if min_seq:
            stmt = stmt.where(s.runs.c.seq >= min_seq)
        with self.read() as conn:
            return [StoredRun.of(r) for r in conn.execute(stmt.order_by(s.runs.c.seq))]

    def changed_runs(
        self, sweep_id: str, min_seq: int, known_top: int
    ) -> tuple[list[StoredRun], int]:
        """Runs from ``min_seq`` on that left ``pending`` or are new, and the pending count.

        What a controller needs each tick without reading back the queue it wrote itself.
        """
        runs = s.runs
        stmt = (
            runs.select()
            .where(
                runs.c.sweep_id == sweep_id,
                runs.c.seq >= min_seq,
                sa.or_(runs.c.state != RunState.PENDING, runs.c.seq > known_top),
            )
            .order_by(runs.c.seq)
        )
        count = sa.select(sa.func.count()).where(
            runs.c.sweep_id == sweep_id, runs.c.state == RunState.PENDING
        )
        with self.read() as conn:
            found = [StoredRun.of(r) for r in conn.execute(stmt)]
            pending = conn.execute(count).scalar() or 0
        return found, pending

    def probe(self, sweep_id: str) -> tuple[Any, ...]:
        """A fingerprint of what a view of the sweep shows, from one aggregate row.

        Every write a view would show moves it: the sweep row (``updated_at``), a run queued,
        claimed, ended or dropped, a logged step, a summary, a GPU figure, an agent's state.
        Heartbeats alone do not. A live dashboard reads the runs only when it changed.
        """
        runs, agents = s.runs, s.agents
        aggregate = sa.select(
            sa.func.count(),
            sa.func.max(runs.c.seq),
            sa.func.count(runs.c.started_at),
            sa.func.count(runs.c.ended_at),
            sa.func.sum(runs.c.steps),
            sa.func.sum(runs.c.metric_count),
            sa.func.sum(sa.func.length(runs.c.summary)),
            sa.func.sum(sa.func.length(runs.c.error)),
            sa.func.sum(runs.c.gpu_util),
            sa.func.sum(runs.c.gpu_mem_mb),
            sa.func.sum(runs.c.gpu_seconds),
        ).where(runs.c.sweep_id == sweep_id)
        with self.read() as conn:
            updated = conn.execute(
                sa.select(s.sweeps.c.updated_at).where(s.sweeps.c.id == sweep_id)
            ).scalar()
            counts = tuple(conn.execute(aggregate).one())
            workers = conn.execute(
                sa.select(agents.c.agent, agents.c.state, agents.c.drain, agents.c.gpu)
                .where(agents.c.sweep_id == sweep_id)
                .order_by(agents.c.agent)
            ).all()
        return updated, counts, tuple(map(tuple, workers))

    def run(self, run_id: str) -> StoredRun | None:
        with self.read() as conn:
            row = conn.execute(s.runs.select().where(s.runs.c.id == run_id)).first()
        return StoredRun.of(row) if row else None

    def run_records(
        self, sweep_id: str, metric: str | None, histories: bool = True
    ) -> list[RunRecord]:
        """Every run of the sweep as the engine sees it, judged on ``metric``.

        Without ``histories`` (another sweep's metric of another name) the records carry the
        summary value of ``metric`` only.
        """
        runs = self.runs(sweep_id)
        found = (
            self.metric_histories([r.id for r in runs], sweep_id=sweep_id)
            if metric and histories
            else {}
        )
        return [r.record(metric, found.get(r.id, ())) for r in runs]

    def metric_histories(
        self, run_ids: Sequence[str], sweep_id: str | None = None
    ) -> dict[str, list[float]]:
        """Each run's valid metric values in order (only those count as iterations).

        With ``sweep_id`` (runs all of that sweep) the rows are found by sweep: one indexed
        query at any size, where a list of 10,000 ids is slow (and SQLite caps it at 32,766).
        """
        out: dict[str, list[float]] = {run_id: [] for run_id in run_ids}
        if not run_ids:
            return out
        rows = s.rows
        which = rows.c.sweep_id == sweep_id if sweep_id else rows.c.run_id.in_(list(run_ids))
        with self.read() as conn:
            found = conn.execute(
                sa.select(rows.c.run_id, rows.c.metric)
                .where(which, rows.c.metric_iter.is_not(None))
                .order_by(rows.c.run_id, rows.c.metric_iter)
            )
            for run_id, value in found:
                if run_id in out:
                    out[run_id].append(value)
        return out

    def end_runs(
        self, sweep_id: str, run_ids: Sequence[str], state: str, reasons: Mapping[str, str]
    ) -> list[str]:
        """Move running runs to a final state (stopped, killed, crashed); returns those moved."""
        moved = []
        now = time.time()
        with self.write() as conn:
            for run_id in run_ids:
                values: dict[str, Any] = {"state": state, "ended_at": now}
                if state == RunState.CRASHED:
                    values["error"] = capped(reasons.get(run_id))
                done = conn.execute(
                    s.runs.update()
                    .where(s.runs.c.id == run_id, s.runs.c.state == RunState.RUNNING)
                    .values(**values)
                ).rowcount
                if done:
                    moved.append(run_id)
                    record_event(
                        conn, sweep_id, state, run_id=run_id, message=reasons.get(run_id, "")
                    )
        return moved

    def running_ids(self, sweep_id: str, agent: int | None = None) -> list[str]:
        stmt = sa.select(s.runs.c.id).where(
            s.runs.c.sweep_id == sweep_id, s.runs.c.state == RunState.RUNNING
        )
        if agent is not None:
            stmt = stmt.where(s.runs.c.agent == agent)
        with self.read() as conn:
            return list(conn.execute(stmt.order_by(s.runs.c.seq)).scalars())

    def drop_pending(self, sweep_id: str) -> int:
        """Forget queued runs no agent started (stop, cancel, target, run_cap)."""
        with self.write() as conn:
            return conn.execute(
                s.runs.delete().where(
                    s.runs.c.sweep_id == sweep_id, s.runs.c.state == RunState.PENDING
                )
            ).rowcount

    # -- the agent's side ------------------------------------------------------------------

    def claim(
        self, sweep_id: str, agent: int, gpu: str = "", finish: Finish | None = None
    ) -> Claim | None:
        """Finish the agent's last run (if any) and claim the next pending one, atomically."""
        now = time.time()

        def work(cursor: Any) -> Any:
            if finish is not None:
                self._finish(cursor, finish, now)
            cursor.execute(
                self._sql.claim, {"sweep_id": sweep_id, "now": now, "agent": agent, "gpu": gpu}
            )
            return cursor.fetchone()

        row = self._hot(work)
        if row is None:
            return None
        return Claim(run_id=row[0], seq=row[1], config=decode(row[2]))

    def finish(self, finish: Finish) -> None:
        now = time.time()
        self._hot(lambda cursor: self._finish(cursor, finish, now))

    def _finish(self, cursor: Any, finish: Finish, now: float) -> None:
        params = {
            "run_id": finish.run_id,
            "state": finish.state,
            "now": now,
            "summary": encode(finish.summary),
            "error": capped(finish.error),
            **gpu_params(finish.gpu),
        }
        cursor.execute(self._sql.finish, params)
        if not cursor.rowcount:
            # Stopped or killed meanwhile: that state stands, the summary is still the run's.
            cursor.execute(self._sql.set_summary, params)

    def log_row(
        self,
        sweep_id: str,
        run_id: str,
        *,
        step: int,
        data: Mapping[str, Any],
        metric: float | None,
        metric_iter: int | None,
        steps: int,
        summary: Mapping[str, Any],
        replace_row: int | None = None,
        judge: tuple[int, Judge] | None = None,
    ) -> tuple[int | None, str | None]:
        """Write one history row of a running run; returns (row id, stop reason).

        The row id is None when the run is no longer running (stopped, killed): the row is
        not kept. With ``judge=(band, rule)`` the row reaches that band and the rule decides,
        in the same transaction, whether the run stops here. ``step`` and ``data`` are checked
        by the codec's value policy first: a ``ValueError`` names what it refuses.
        """
        now = time.time()
        params = {
            "sweep_id": sweep_id,
            "run_id": run_id,
            "step": logged_step(step),
            "now": now,
            "data": encode_row(data),
            "metric": metric,
            "metric_iter": metric_iter,
            "steps": steps,
            "summary": encode(summary),
            "row_id": replace_row,
        }
        sql = self._sql
        touch = sql.touch_run if metric_iter is None else sql.touch_run_metric
        if judge is None:

            def work(cursor: Any) -> tuple[int | None, str | None]:
                cursor.execute(touch, params)
                if not cursor.rowcount:
                    return None, None
                if replace_row is None:
                    cursor.execute(sql.insert_row, params)
                    return cursor.fetchone()[0], None
                cursor.execute(sql.replace_row, params)
                return replace_row, None

            return self._hot(work)
        with self.write() as conn:
            if not driver(conn, touch, params).rowcount:
                return None, None
            if replace_row is None:
                row_id = driver(conn, sql.insert_row, params).fetchone()[0]
            else:
                driver(conn, sql.replace_row, params)
                row_id = replace_row
            band, rule = judge
            reason = None
            if not _is_last_band(conn, sweep_id, band):
                reason = rule(_band_histories(conn, sweep_id, band, run_id))
            if reason is not None:
                stop = s.runs.update().where(s.runs.c.id == run_id)
                conn.execute(stop.values(state=RunState.STOPPED, ended_at=now))
                record_event(conn, sweep_id, RunState.STOPPED, run_id=run_id, message=reason)
        return row_id, reason

    def set_summary(self, run_id: str, summary: Mapping[str, Any]) -> bool:
        """Replace a running run's summary (a program's ``run.summary[k] = v``); False once
        the run has ended (its final summary is its agent's)."""
        stmt = (
            s.runs.update()
            .where(s.runs.c.id == run_id, s.runs.c.state == RunState.RUNNING)
            .values(summary=encode(summary))
        )
        with self.write() as conn:
            return conn.execute(stmt).rowcount > 0

    def run_state(self, run_id: str) -> str | None:
        with self.read() as conn:
            return conn.execute(sa.select(s.runs.c.state).where(s.runs.c.id == run_id)).scalar()

    # -- history ---------------------------------------------------------------------------

    def history(self, sweep_id: str, run_id: str | None = None) -> list[StoredRow]:
        """Every row of the sweep (or of one run), runs in queue order, rows as logged."""
        rows = s.rows
        stmt = (
            sa.select(rows.c.run_id, rows.c.step, rows.c.at, rows.c.data)
            .join(s.runs, s.runs.c.id == rows.c.run_id)
            .where(rows.c.sweep_id == sweep_id)
        )
        if run_id is not None:
            stmt = stmt.where(rows.c.run_id == run_id)
        with self.read() as conn:
            found = conn.execute(stmt.order_by(s.runs.c.seq, rows.c.id))
            return [StoredRow(run_id, step, at, decode(data)) for run_id, step, at, data in found]


def _is_last_band(conn: sa.Connection, sweep_id: str, band: int) -> bool:
    """Whether runs of the sweep end at ``band``: a finished run logged exactly that many values
    and no run logged more. A run reaching it has had its whole budget: stopping it would save
    nothing, and it ends ``finished`` (the controller's ``last_iteration`` rule, in SQL)."""
    rows = s.rows
    longest = conn.execute(
        sa.select(sa.func.max(rows.c.metric_iter)).where(rows.c.sweep_id == sweep_id)
    ).scalar()
    if longest is None or longest > band:
        return False
    finished = conn.execute(
        sa.select(rows.c.run_id)
        .join(s.runs, s.runs.c.id == rows.c.run_id)
        .where(
            rows.c.sweep_id == sweep_id,
            rows.c.metric_iter == band,
            s.runs.c.state == RunState.FINISHED,
        )
        .limit(1)
    ).first()
    return finished is not None


def _band_histories(
    conn: sa.Connection, sweep_id: str, band: int, exclude: str
) -> dict[str, list[float]]:
    """Metric histories, cut at ``band``, of the other runs that reached ``band``."""
    reached = (
        sa.select(s.rows.c.run_id)
        .where(
            s.rows.c.sweep_id == sweep_id,
            s.rows.c.metric_iter == band,
            s.rows.c.run_id != exclude,
        )
        .scalar_subquery()
    )
    found = conn.execute(
        sa.select(s.rows.c.run_id, s.rows.c.metric)
        .where(
            s.rows.c.sweep_id == sweep_id,
            s.rows.c.metric_iter <= band,
            s.rows.c.run_id.in_(reached),
        )
        .order_by(s.rows.c.run_id, s.rows.c.metric_iter)
    )
    out: dict[str, list[float]] = {}
    for run_id, value in found:
        out.setdefault(run_id, []).append(value)
    return out


# What a run's GpuUse is stored as.
GPU_COLUMNS = ("gpu_util", "gpu_mem_mb", "gpu_seconds", "gpu_mem_start_mb")


def gpu_params(gpu: GpuUse | None) -> dict[str, float | None]:
    if gpu is None:
        return dict.fromkeys(GPU_COLUMNS)
    return {
        "gpu_util": gpu.util,
        "gpu_mem_mb": gpu.mem_mb,
        "gpu_seconds": gpu.seconds,
        "gpu_mem_start_mb": gpu.mem_start_mb,
    }


class HotStatements:
    """The statements an agent runs for every run and row, compiled once for the dialect.

    Building and caching a SQLAlchemy statement costs more than running it on SQLite; these
    run as driver SQL with named parameters, so a trial costs one short transaction.
    """

    def __init__(self, dialect: sa.Dialect, is_sqlite: bool) -> None:
        p = sa.bindparam
        runs, rows = s.runs, s.rows
        pick = (
            sa.select(runs.c.id)
            .where(
                runs.c.sweep_id == p("sweep_id"),
                runs.c.state == sa.literal_column(f"'{RunState.PENDING}'"),
                sa.exists().where(
                    s.sweeps.c.id == p("sweep_id"),
                    s.sweeps.c.state == sa.literal_column("'running'"),
                ),
            )
            .order_by(runs.c.seq)
            .limit(sa.literal_column("1"))
            .offset(sa.literal_column("0"))  # else SQLite renders an OFFSET parameter
        )
        if not is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        is_running = runs.c.state == sa.literal_column(f"'{RunState.RUNNING}'")

        def sql(stmt: Any) -> str:
            return str(stmt.compile(dialect=dialect))

        self.claim = sql(
            runs.update()
            .where(
                runs.c.id == pick.scalar_subquery(),
                runs.c.state == sa.literal_column(f"'{RunState.PENDING}'"),
            )
            .values(
                state=sa.literal_column(f"'{RunState.RUNNING}'"),
                started_at=p("now"),
                heartbeat_at=p("now"),
                agent=p("agent"),
                gpu=p("gpu"),
            )
            .returning(runs.c.id, runs.c.seq, runs.c.config)
        )
        gpu = {name: p(name) for name in GPU_COLUMNS}
        self.finish = sql(
            runs.update()
            .where(runs.c.id == p("run_id"), is_running)
            .values(
                state=p("state"), ended_at=p("now"), summary=p("summary"), error=p("error"), **gpu
            )
        )
        self.set_summary = sql(
            runs.update().where(runs.c.id == p("run_id")).values(summary=p("summary"), **gpu)
        )
        touch = {"steps": p("steps"), "summary": p("summary"), "heartbeat_at": p("now")}
        self.touch_run = sql(
            runs.update().where(runs.c.id == p("run_id"), is_running).values(**touch)
        )
        self.touch_run_metric = sql(
            runs.update()
            .where(runs.c.id == p("run_id"), is_running)
            .values(metric_count=p("metric_iter"), **touch)
        )
        row = {
            "step": p("step"),
            "at": p("now"),
            "data": p("data"),
            "metric": p("metric"),
            "metric_iter": p("metric_iter"),
        }
        self.insert_row = sql(
            rows.insert()
            .values(sweep_id=p("sweep_id"), run_id=p("run_id"), **row)
            .returning(rows.c.id)
        )
        self.replace_row = sql(rows.update().where(rows.c.id == p("row_id")).values(**row))
