"""The store: the single truth of every sweep, shared by the kernel, agents and dashboards.

SQLite (WAL, ``synchronous=NORMAL``, busy timeout) by default, PostgreSQL with the same code.
Write transactions on SQLite begin ``IMMEDIATE`` so that two writers queue on the busy
timeout instead of failing on a lock upgrade. A run is claimed by a single ``UPDATE`` whose
``WHERE state = 'pending'`` makes a double claim impossible (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL lets concurrent agents pass each other instead of waiting).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import sqlalchemy as sa

from nbsweep._errors import StoreError
from nbsweep._runs import CRASHED, PENDING, RUNNING, STOPPED
from nbsweep.store import _schema as s

DEFAULT_STORE = Path(".nbsweep") / "nbsweep.db"
ENV_VAR = "NBSWEEP_STORE"
_ID_ALPHABET = string.ascii_lowercase + string.digits

# A judge gets the metric histories (up to a band) of every other run that reached it and
# answers a stop reason, or None to let the run go on.
Judge = Callable[[dict[str, list[float]]], "str | None"]
T = TypeVar("T")
# How long an agent's write waits for a lost database connection to come back (a server
# restart, a failover) before the run fails.
RECONNECT_S = 60.0


def new_id(length: int = 8) -> str:
    """A short random id in W&B's style (lowercase letters and digits)."""
    return "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in secrets.token_bytes(length))


def dumps(value: Any) -> str:
    """JSON text for configs, summaries and rows; numpy values become plain numbers."""
    return json.dumps(value, default=_plain, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


def _plain(value: Any) -> Any:
    # numpy is optional at this layer: duck-type its scalars and arrays.
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def resolve_url(store: str | os.PathLike[str] | None = None) -> str:
    """A SQLAlchemy URL from ``store=``, else ``$NBSWEEP_STORE``, else ``./.nbsweep/nbsweep.db``."""
    if store is None:
        store = os.environ.get(ENV_VAR) or DEFAULT_STORE
    text = os.fspath(store)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents readable by the owner only (0700)."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
    return path


@dataclass(frozen=True)
class Claim:
    """A run an agent now owns: its id, position in the sweep and config."""

    run_id: str
    seq: int
    config: dict[str, Any]


@dataclass(frozen=True)
class GpuUse:
    """What a run used of its GPUs, sampled from NVML (None where NVML gave nothing)."""

    util: float | None  # mean utilisation, percent
    mem_mb: float | None  # peak memory used, MiB
    seconds: float  # runtime x GPUs held


@dataclass(frozen=True)
class Finish:
    """How an agent's run ended, written in the same transaction as the next claim."""

    run_id: str
    state: str
    summary: dict[str, Any]
    error: str | None = None
    gpu: GpuUse | None = None  # None for a run on CPU


class Store:
    """One process's connection pool to one store; use :func:`open_store` to share it."""

    def __init__(self, url: str, create: bool = True) -> None:
        self.url = url
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise StoreError(f"store {url!r} is not a SQLAlchemy URL or a path: {exc}") from exc
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            database = parsed.database or ""
            if not database or database == ":memory:":
                raise StoreError(
                    "store: an in-memory SQLite store cannot be shared with agent processes;"
                    " pass a file path"
                )
            self.path: Path | None = Path(database).resolve()
            self.root = self.path.parent
            if not create and not self.path.exists():
                raise StoreError(
                    f"store {self.path} does not exist: pass the store= the sweep was started"
                    f" with (or set {ENV_VAR}); nothing was created"
                )
            try:
                private_dir(self.root)
                if not self.path.exists():
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise StoreError(
                    f"store {self.path} cannot be created: {exc.strerror}; pass a path in a"
                    f" directory you can write (store= or {ENV_VAR})"
                ) from exc
            self._file = _file_id(self.path)
            # Connections never create the file (mode=rw): a store removed while in use is
            # an error, never a new empty store in its place.
            rw = parsed.set(
                database=f"file:{quote(str(self.path))}",
                query={**parsed.query, "mode": "rw", "uri": "true"},
            )
            # Named parameters: the precompiled hot statements take dicts on both drivers.
            self.engine = sa.create_engine(rw, pool_size=4, max_overflow=8, paramstyle="named")
            sa.event.listen(self.engine, "connect", _sqlite_connect)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.path = None
            self.root = Path.cwd().resolve() / ".nbsweep"
            try:
                # pool_pre_ping: a pooled connection the server dropped is replaced on checkout.
                self.engine = sa.create_engine(url, pool_size=4, max_overflow=8, pool_pre_ping=True)
            except (sa.exc.ArgumentError, ImportError) as exc:
                raise StoreError(
                    f"store {url!r} cannot be opened: {exc}. Pass a file path (SQLite) or a"
                    " SQLAlchemy URL whose driver is installed, such as"
                    " postgresql+psycopg://user@host/db"
                ) from exc
        self._check_schema()
        self._sql = _HotStatements(self.engine.dialect, self.is_sqlite)
        self._local = threading.local()

    # -- opening ---------------------------------------------------------------------------

    def _check_schema(self) -> None:
        """Create a new store, accept one of our version, refuse anything else."""
        try:
            names = set(sa.inspect(self.engine).get_table_names())
            if s.meta.name not in names:
                ours = sorted(n for n in names if n.startswith("nbsweep_"))
                if ours or (self.is_sqlite and names):
                    raise StoreError(
                        f"store {self._where()} is not an nbsweep store (it holds tables "
                        f"{', '.join(sorted(names))}); pass another store= or {ENV_VAR}"
                    )
                s.metadata.create_all(self.engine)
                try:
                    with self.write() as conn:
                        conn.execute(
                            s.meta.insert().values(
                                key="schema_version", value=str(s.SCHEMA_VERSION)
                            )
                        )
                except sa.exc.IntegrityError:
                    pass  # another process created the same store at the same moment
            with self.engine.connect() as conn:
                version = conn.execute(
                    sa.select(s.meta.c.value).where(s.meta.c.key == "schema_version")
                ).scalar()
            if version is not None and version.isdigit() and int(version) < s.SCHEMA_VERSION:
                self._upgrade(version)
                version = str(s.SCHEMA_VERSION)
        except StoreError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            why = getattr(exc, "orig", None) or exc  # the driver's words, without SQLAlchemy's
            raise StoreError(
                f"store {self._where()} cannot be opened: {why}\nPass another store= (or"
                f" {ENV_VAR}); nbsweep left this one as it was"
            ) from exc
        if version != str(s.SCHEMA_VERSION):
            newer = version is not None and version.isdigit() and int(version) > s.SCHEMA_VERSION
            hint = "upgrade nbsweep" if newer else "it was written by another nbsweep version"
            raise StoreError(
                f"store {self._where()} has schema version {version}, this nbsweep reads version "
                f"{s.SCHEMA_VERSION}: {hint}, or pass another store="
            )

    def _upgrade(self, version: str) -> None:
        """Add the tables and nullable columns of later versions to a store of ``version``.

        One transaction that reads the version again, so that processes opening the same old
        store at once upgrade it once; a change that is not additive is refused.
        """
        with self.write() as conn:
            pick = sa.select(s.meta.c.value).where(s.meta.c.key == "schema_version")
            if conn.execute(pick if self.is_sqlite else pick.with_for_update()).scalar() != version:
                return  # another process upgraded it meanwhile
            inspector = sa.inspect(conn)
            names = set(inspector.get_table_names())
            new = [t for t in s.metadata.sorted_tables if t.name not in names]
            s.metadata.create_all(conn, tables=new)
            for table in s.metadata.sorted_tables:
                if table in new:
                    continue
                have = {c["name"] for c in inspector.get_columns(table.name)}
                for column in table.columns:
                    if column.name in have:
                        continue
                    if not column.nullable:
                        raise StoreError(
                            f"store {self._where()} has schema version {version}, which this"
                            f" nbsweep (version {s.SCHEMA_VERSION}) cannot upgrade: open it with"
                            " the nbsweep that wrote it, or pass another store="
                        )
                    kind = column.type.compile(dialect=conn.dialect)
                    conn.exec_driver_sql(
                        f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"
                    )
            conn.execute(
                s.meta.update()
                .where(s.meta.c.key == "schema_version")
                .values(value=str(s.SCHEMA_VERSION))
            )

    def _where(self) -> str:
        return str(self.path) if self.path else self.engine.url.render_as_string()

    def _check_file(self) -> None:
        """Refuse to go on when the SQLite file was removed or replaced while in use.

        Open connections would go on writing into the removed file, where nothing is kept.
        """
        if self.path is not None and _file_id(self.path) != self._file:
            raise StoreError(
                f"store {self.path} was removed or replaced while in use: nbsweep stops"
                " rather than write where nothing is kept. Once the file is back, load the"
                " sweep in a new kernel; or start again with another store="
            )

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit."""
        self._check_file()
        with self.engine.connect() as conn:
            conn.execution_options(nbsweep_write=True)
            with conn.begin():
                yield conn

    def _hot(self, work: Callable[[Any], T]) -> T:
        """``work(cursor)`` as a write transaction on this thread's own driver connection.

        An agent claims, finishes and logs thousands of times a second at most; going around
        the pool and SQLAlchemy's events for these keeps a trial to one short transaction.
        A connection lost before the commit (server restart, failover, a killed backend) is
        replaced and ``work`` runs again, for up to ``RECONNECT_S``: the server rolled the
        lost transaction back, so nothing is written twice and nothing reported is lost.
        """
        deadline = time.monotonic() + RECONNECT_S
        while True:
            raw = cursor = None
            committing = False
            try:
                raw = getattr(self._local, "raw", None)
                if raw is None:
                    raw = self._local.raw = self.engine.raw_connection()
                cursor = raw.cursor()
                if self.is_sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                result = work(cursor)
                committing = True
                raw.commit()
                return result
            except BaseException as exc:
                lost = self._lost(exc, raw, cursor)
                if lost:
                    self._local.raw = None
                    if raw is not None:
                        raw.invalidate()
                elif raw is not None:
                    raw.rollback()
                if not lost or time.monotonic() > deadline:
                    raise
                if committing:
                    raise StoreError(
                        f"store {self._where()}: the connection was lost while committing;"
                        " this write may or may not be kept"
                    ) from exc
                time.sleep(0.2)
            finally:
                if cursor is not None:
                    with contextlib.suppress(Exception):
                        cursor.close()

    def _lost(self, exc: BaseException, raw: Any, cursor: Any) -> bool:
        """Whether ``exc`` means the database connection is gone (not a failed statement)."""
        if isinstance(exc, sa.exc.DBAPIError):  # raised while connecting
            return exc.connection_invalidated or raw is None
        dbapi = self.engine.dialect.loaded_dbapi
        if self.is_sqlite or not isinstance(exc, dbapi.Error):
            return False
        connection = raw.dbapi_connection if raw is not None else None
        return bool(self.engine.dialect.is_disconnect(exc, connection, cursor))

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        self._check_file()
        with self.engine.connect() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()

    # -- sweeps ----------------------------------------------------------------------------

    def create_sweep(
        self,
        sweep_id: str,
        name: str,
        method: str,
        config: Mapping[str, Any],
        train_ref: str | None,
        seed: int | None,
        state: str,
        gpus_per_run: int = 1,
        warm_start: Sequence[str] = (),
    ) -> None:
        now = time.time()
        with self.write() as conn:
            conn.execute(
                s.sweeps.insert().values(
                    id=sweep_id,
                    name=name,
                    method=method,
                    config=dumps(config),
                    state=state,
                    message="",
                    train_ref=train_ref,
                    seed=seed,
                    gpus_per_run=gpus_per_run,
                    created_at=now,
                    updated_at=now,
                    failure_guard=True,
                    warm_start=dumps(list(warm_start)) if warm_start else None,
                )
            )
            _event(conn, sweep_id, "created", message=f"sweep {name} created ({method})")

    def sweep(self, sweep_id: str) -> dict[str, Any] | None:
        with self.read() as conn:
            row = conn.execute(s.sweeps.select().where(s.sweeps.c.id == sweep_id)).first()
        return dict(row._mapping) if row else None

    def sweeps(self) -> list[dict[str, Any]]:
        with self.read() as conn:
            found = conn.execute(s.sweeps.select().order_by(s.sweeps.c.created_at)).all()
            counts = conn.execute(
                sa.select(s.runs.c.sweep_id, s.runs.c.state, sa.func.count()).group_by(
                    s.runs.c.sweep_id, s.runs.c.state
                )
            ).all()
        per: dict[str, dict[str, int]] = {}
        for sweep_id, state, count in counts:
            per.setdefault(sweep_id, {})[state] = count
        return [dict(row._mapping, run_counts=per.get(row.id, {})) for row in found]

    def update_sweep(
        self,
        sweep_id: str,
        *,
        only_from: Iterable[str] | None = None,
        event: str | None = None,
        **values: Any,
    ) -> bool:
        """Set sweep fields (``state``, ``message``...), only from the given states if any."""
        stmt = s.sweeps.update().where(s.sweeps.c.id == sweep_id)
        if only_from is not None:
            stmt = stmt.where(s.sweeps.c.state.in_(list(only_from)))
        with self.write() as conn:
            changed = conn.execute(stmt.values(updated_at=time.time(), **values)).rowcount > 0
            if changed and event:
                _event(conn, sweep_id, values.get("state", "sweep"), message=event)
        return changed

    # -- runs: the controller's side -------------------------------------------------------

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
                        if state != "running":
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
                                "state": PENDING,
                                "config": dumps(config),
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

    def runs(self, sweep_id: str, min_seq: int = 0) -> list[dict[str, Any]]:
        """Runs of a sweep from position ``min_seq`` on, in queue order."""
        stmt = s.runs.select().where(s.runs.c.sweep_id == sweep_id)
        if min_seq:
            stmt = stmt.where(s.runs.c.seq >= min_seq)
        with self.read() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt.order_by(s.runs.c.seq))]

    def changed_runs(
        self, sweep_id: str, min_seq: int, known_top: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Runs from ``min_seq`` on that left ``pending`` or are new, and the pending count.

        What a controller needs each tick without reading back the queue it wrote itself.
        """
        runs = s.runs
        stmt = (
            runs.select()
            .where(
                runs.c.sweep_id == sweep_id,
                runs.c.seq >= min_seq,
                sa.or_(runs.c.state != PENDING, runs.c.seq > known_top),
            )
            .order_by(runs.c.seq)
        )
        count = sa.select(sa.func.count()).where(
            runs.c.sweep_id == sweep_id, runs.c.state == PENDING
        )
        with self.read() as conn:
            found = [dict(r._mapping) for r in conn.execute(stmt)]
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

    def run(self, run_id: str) -> dict[str, Any] | None:
        with self.read() as conn:
            row = conn.execute(s.runs.select().where(s.runs.c.id == run_id)).first()
        return dict(row._mapping) if row else None

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
                if state == CRASHED:
                    values["error"] = reasons.get(run_id)
                done = conn.execute(
                    s.runs.update()
                    .where(s.runs.c.id == run_id, s.runs.c.state == RUNNING)
                    .values(**values)
                ).rowcount
                if done:
                    moved.append(run_id)
                    _event(conn, sweep_id, state, run_id=run_id, message=reasons.get(run_id, ""))
        return moved

    def running_ids(self, sweep_id: str, agent: int | None = None) -> list[str]:
        stmt = sa.select(s.runs.c.id).where(
            s.runs.c.sweep_id == sweep_id, s.runs.c.state == RUNNING
        )
        if agent is not None:
            stmt = stmt.where(s.runs.c.agent == agent)
        with self.read() as conn:
            return list(conn.execute(stmt.order_by(s.runs.c.seq)).scalars())

    def drop_pending(self, sweep_id: str) -> int:
        """Forget queued runs no agent started (stop, cancel, target, run_cap)."""
        with self.write() as conn:
            return conn.execute(
                s.runs.delete().where(s.runs.c.sweep_id == sweep_id, s.runs.c.state == PENDING)
            ).rowcount

    # -- runs: the agent's side ------------------------------------------------------------

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
        return Claim(run_id=row[0], seq=row[1], config=loads(row[2]))

    def finish(self, finish: Finish) -> None:
        now = time.time()
        self._hot(lambda cursor: self._finish(cursor, finish, now))

    def _finish(self, cursor: Any, finish: Finish, now: float) -> None:
        params = {
            "run_id": finish.run_id,
            "state": finish.state,
            "now": now,
            "summary": dumps(finish.summary),
            "error": finish.error,
            **_gpu_params(finish.gpu),
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
        in the same transaction, whether the run stops here.
        """
        now = time.time()
        params = {
            "sweep_id": sweep_id,
            "run_id": run_id,
            "step": step,
            "now": now,
            "data": dumps(data),
            "metric": metric,
            "metric_iter": metric_iter,
            "steps": steps,
            "summary": dumps(summary),
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
            if not _driver(conn, touch, params).rowcount:
                return None, None
            if replace_row is None:
                row_id = _driver(conn, sql.insert_row, params).fetchone()[0]
            else:
                _driver(conn, sql.replace_row, params)
                row_id = replace_row
            band, rule = judge
            reason = rule(_band_histories(conn, sweep_id, band, run_id))
            if reason is not None:
                conn.execute(
                    s.runs.update().where(s.runs.c.id == run_id).values(state=STOPPED, ended_at=now)
                )
                _event(conn, sweep_id, STOPPED, run_id=run_id, message=reason)
        return row_id, reason

    def run_state(self, run_id: str) -> str | None:
        with self.read() as conn:
            return conn.execute(sa.select(s.runs.c.state).where(s.runs.c.id == run_id)).scalar()

    def heartbeat(
        self, sweep_id: str, agent: int, run_id: str | None, gpu: GpuUse | None = None
    ) -> bool:
        """Mark the agent (and its run) alive; False when the agent was told to drain.

        ``gpu``: the run's GPU figures so far, so that a run that crashes keeps them.
        """
        now = time.time()
        with self.write() as conn:
            if run_id is not None:
                figures = _gpu_params(gpu) if gpu is not None else {}
                conn.execute(
                    s.runs.update()
                    .where(s.runs.c.id == run_id, s.runs.c.state == RUNNING)
                    .values(heartbeat_at=now, **figures)
                )
            conn.execute(
                s.agents.update()
                .where(s.agents.c.sweep_id == sweep_id, s.agents.c.agent == agent)
                .values(heartbeat_at=now)
            )
            drain = conn.execute(
                sa.select(s.agents.c.drain).where(
                    s.agents.c.sweep_id == sweep_id, s.agents.c.agent == agent
                )
            ).scalar()
        return not drain

    # -- history ---------------------------------------------------------------------------

    def history(
        self, sweep_id: str, run_id: str | None = None
    ) -> list[tuple[str, int, float, str]]:
        """(run_id, step, at, data JSON) of every row, runs in queue order, rows as logged."""
        rows = s.rows
        stmt = (
            sa.select(rows.c.run_id, rows.c.step, rows.c.at, rows.c.data)
            .join(s.runs, s.runs.c.id == rows.c.run_id)
            .where(rows.c.sweep_id == sweep_id)
        )
        if run_id is not None:
            stmt = stmt.where(rows.c.run_id == run_id)
        with self.read() as conn:
            return [tuple(r) for r in conn.execute(stmt.order_by(s.runs.c.seq, rows.c.id))]

    # -- events ----------------------------------------------------------------------------

    def add_event(
        self,
        sweep_id: str,
        kind: str,
        message: str = "",
        run_id: str | None = None,
        agent: int | None = None,
    ) -> None:
        with self.write() as conn:
            _event(conn, sweep_id, kind, run_id=run_id, agent=agent, message=message)

    def events(self, sweep_id: str) -> list[dict[str, Any]]:
        with self.read() as conn:
            found = conn.execute(
                s.events.select().where(s.events.c.sweep_id == sweep_id).order_by(s.events.c.id)
            )
            return [dict(r._mapping) for r in found]

    # -- agents ----------------------------------------------------------------------------

    def add_agent(
        self, sweep_id: str, pid: int | None, gpu: str = "", gpu_name: str = "", host: str = ""
    ) -> int:
        """Register an agent; returns its number in the sweep (0, 1, ...)."""
        for _ in range(5):
            now = time.time()
            try:
                with self.write() as conn:
                    top = conn.execute(
                        sa.select(sa.func.max(s.agents.c.agent)).where(
                            s.agents.c.sweep_id == sweep_id
                        )
                    ).scalar()
                    number = 0 if top is None else top + 1
                    conn.execute(
                        s.agents.insert().values(
                            sweep_id=sweep_id,
                            agent=number,
                            pid=pid,
                            host=host or socket.gethostname(),
                            gpu=gpu,
                            gpu_name=gpu_name,
                            state="starting",
                            drain=False,
                            started_at=now,
                            heartbeat_at=now,
                        )
                    )
                return number
            except sa.exc.IntegrityError:
                continue
        raise StoreError(f"sweep {sweep_id}: could not register an agent after 5 tries")

    def update_agent(self, sweep_id: str, agent: int, **values: Any) -> None:
        with self.write() as conn:
            conn.execute(
                s.agents.update()
                .where(s.agents.c.sweep_id == sweep_id, s.agents.c.agent == agent)
                .values(**values)
            )

    def agents(self, sweep_id: str) -> list[dict[str, Any]]:
        """Every agent of the sweep with the run it is on (from the runs table)."""
        with self.read() as conn:
            found = [
                dict(r._mapping)
                for r in conn.execute(
                    s.agents.select()
                    .where(s.agents.c.sweep_id == sweep_id)
                    .order_by(s.agents.c.agent)
                )
            ]
            busy = dict(
                conn.execute(
                    sa.select(s.runs.c.agent, s.runs.c.id).where(
                        s.runs.c.sweep_id == sweep_id, s.runs.c.state == RUNNING
                    )
                ).all()
            )
        for row in found:
            row["run_id"] = busy.get(row["agent"])
        return found

    # -- GPU pool ---------------------------------------------------------------------------

    def pool_request(
        self,
        host: str,
        sweep_id: str,
        owner: str,
        priority: int,
        groups: Sequence[Sequence[str]],
        count: int,
        ttl: float,
    ) -> list[int]:
        """Lease up to ``count`` of the GPU ``groups`` that are wholly free; returns their indices.

        Free GPUs go first to the sweeps waiting ahead (higher priority, then waiting longer).
        What this sweep still lacks is written as its wait row, or the row is dropped.
        """
        now = time.time()
        leases, waits = s.gpu_leases, s.gpu_waits
        with self.write() as conn:
            if not self.is_sqlite:  # SQLite's BEGIN IMMEDIATE already serialises this
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7319)")
            _pool_expire(conn, host, now)
            held = set(conn.execute(sa.select(leases.c.gpu).where(leases.c.host == host)).scalars())
            waiting = conn.execute(sa.select(waits).where(waits.c.host == host)).all()
            mine = next((w for w in waiting if w.sweep_id == sweep_id), None)
            since = mine.since if mine is not None else now
            ahead = sum(
                max(0, w.wanted)
                for w in waiting
                if w.sweep_id != sweep_id and (w.priority, -w.since) > (priority, -since)
            )
            free = [i for i, group in enumerate(groups) if not held.intersection(group)]
            spare = len({gpu for i in free for gpu in groups[i]}) - ahead
            granted: list[int] = []
            taken: set[str] = set()
            for i in free:
                if len(granted) == count or len(taken) + len(groups[i]) > spare:
                    break
                if not taken.intersection(groups[i]):
                    granted.append(i)
                    taken.update(groups[i])
            if taken:
                conn.execute(
                    leases.insert(),
                    [
                        {
                            "host": host,
                            "gpu": gpu,
                            "sweep_id": sweep_id,
                            "owner": owner,
                            "priority": priority,
                            "since": now,
                            "expires_at": now + ttl,
                        }
                        for gpu in sorted(taken)
                    ],
                )
            lacking = (count - len(granted)) * max((len(g) for g in groups), default=0)
            if lacking > 0 and mine is None:
                conn.execute(
                    waits.insert().values(
                        sweep_id=sweep_id,
                        host=host,
                        owner=owner,
                        priority=priority,
                        wanted=lacking,
                        since=now,
                        expires_at=now + ttl,
                    )
                )
            elif lacking > 0:
                conn.execute(
                    waits.update()
                    .where(waits.c.sweep_id == sweep_id)
                    .values(owner=owner, priority=priority, wanted=lacking, expires_at=now + ttl)
                )
            elif mine is not None:
                conn.execute(waits.delete().where(waits.c.sweep_id == sweep_id))
        return granted

    def pool_release(self, host: str, gpus: Iterable[str], owner: str) -> None:
        """Give GPUs back to the pool."""
        leases = s.gpu_leases
        with self.write() as conn:
            conn.execute(
                leases.delete().where(
                    leases.c.host == host, leases.c.gpu.in_(list(gpus)), leases.c.owner == owner
                )
            )

    def pool_renew(self, owner: str, priority: int, ttl: float) -> None:
        """Keep the owner's GPUs and wait alive for ``ttl`` more seconds, at ``priority``."""
        values = {"priority": priority, "expires_at": time.time() + ttl}
        with self.write() as conn:
            for table in (s.gpu_leases, s.gpu_waits):
                conn.execute(table.update().where(table.c.owner == owner).values(**values))

    def pool_leave(self, owner: str) -> None:
        """Drop the owner's GPUs and wait (its controller is ending)."""
        with self.write() as conn:
            for table in (s.gpu_leases, s.gpu_waits):
                conn.execute(table.delete().where(table.c.owner == owner))

    def pool_set_priority(self, sweep_id: str, priority: int) -> None:
        with self.write() as conn:
            for table in (s.gpu_leases, s.gpu_waits):
                conn.execute(
                    table.update().where(table.c.sweep_id == sweep_id).values(priority=priority)
                )

    def pool_yield(self, host: str, sweep_id: str, gpus: Sequence[str], busy: bool) -> bool:
        """Whether an agent of ``sweep_id`` on ``gpus`` gives them to a waiting sweep now.

        After a run (``busy``) it gives way to a higher priority only; an idle agent to any
        sweep that waits. The waiter's want is lowered at once, so one freed GPU does not send
        several agents away.
        """
        leases, waits = s.gpu_leases, s.gpu_waits
        now = time.time()
        anyone = (
            sa.select(waits.c.sweep_id)
            .where(
                waits.c.host == host,
                waits.c.sweep_id != sweep_id,
                waits.c.wanted > 0,
                waits.c.expires_at > now,
            )
            .limit(1)
        )
        with self.read() as conn:
            if conn.execute(anyone).first() is None:
                return False  # the usual case, answered without a write
        with self.write() as conn:
            mine = conn.execute(
                sa.select(sa.func.max(leases.c.priority)).where(
                    leases.c.host == host,
                    leases.c.gpu.in_(list(gpus)),
                    leases.c.sweep_id == sweep_id,
                )
            ).scalar()
            if mine is None:
                return False  # not a pooled agent (or its lease expired): nothing to give
            pick = sa.select(waits.c.sweep_id).where(
                waits.c.host == host,
                waits.c.sweep_id != sweep_id,
                waits.c.wanted > 0,
                waits.c.expires_at > now,
                waits.c.priority > (mine if busy else -1),
            )
            waiter = conn.execute(
                pick.order_by(waits.c.priority.desc(), waits.c.since).limit(1)
            ).scalar()
            if waiter is None:
                return False
            conn.execute(
                waits.update()
                .where(waits.c.sweep_id == waiter)
                .values(wanted=waits.c.wanted - len(gpus))
            )
        return True

    def pool(self, host: str | None = None) -> list[dict[str, Any]]:
        """The live GPU leases and waits (of ``host``, else of every host), oldest first."""
        leases, waits = s.gpu_leases, s.gpu_waits
        now = time.time()
        out = []
        with self.read() as conn:
            for table, kind in ((leases, "holds"), (waits, "waits")):
                stmt = sa.select(table).where(table.c.expires_at > now)
                if host is not None:
                    stmt = stmt.where(table.c.host == host)
                out += [dict(r._mapping, state=kind) for r in conn.execute(stmt)]
        return sorted(
            (r for r in out if owner_alive(r["owner"])), key=lambda r: (r["host"], r["since"])
        )

    # -- controller lease ------------------------------------------------------------------

    def acquire_lease(self, sweep_id: str, owner: str, ttl: float) -> str | None:
        """Take (or renew) the sweep's controller lease; returns the other owner if held."""
        now = time.time()
        try:
            with self.write() as conn:
                pick = sa.select(s.leases).where(s.leases.c.sweep_id == sweep_id)
                if not self.is_sqlite:
                    pick = pick.with_for_update()
                row = conn.execute(pick).first()
                if row is None:
                    conn.execute(
                        s.leases.insert().values(
                            sweep_id=sweep_id, owner=owner, expires_at=now + ttl
                        )
                    )
                    return None
                if row.owner != owner and row.expires_at > now and owner_alive(row.owner):
                    return row.owner
                conn.execute(
                    s.leases.update()
                    .where(s.leases.c.sweep_id == sweep_id)
                    .values(owner=owner, expires_at=now + ttl)
                )
                return None
        except sa.exc.IntegrityError:
            return self.acquire_lease(sweep_id, owner, ttl)

    def renew_lease(self, sweep_id: str, owner: str, ttl: float) -> bool:
        with self.write() as conn:
            return (
                conn.execute(
                    s.leases.update()
                    .where(s.leases.c.sweep_id == sweep_id, s.leases.c.owner == owner)
                    .values(expires_at=time.time() + ttl)
                ).rowcount
                > 0
            )

    def release_lease(self, sweep_id: str, owner: str) -> None:
        with self.write() as conn:
            conn.execute(
                s.leases.delete().where(s.leases.c.sweep_id == sweep_id, s.leases.c.owner == owner)
            )

    def lease_owner(self, sweep_id: str) -> str | None:
        """The live controller's owner id, or None when no controller holds the sweep."""
        with self.read() as conn:
            row = conn.execute(sa.select(s.leases).where(s.leases.c.sweep_id == sweep_id)).first()
        if row is None or row.expires_at < time.time() or not owner_alive(row.owner):
            return None
        return row.owner


def owner_id() -> str:
    """``host:pid:random``: unique per controller, and says where to look for its process."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id(6)}"


def owner_alive(owner: str) -> bool:
    """False only when the owner is a process of this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    return pid_alive(int(pid_text))


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a file, None when it is missing: tells a replaced file apart."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _event(
    conn: sa.Connection,
    sweep_id: str,
    kind: str,
    *,
    run_id: str | None = None,
    agent: int | None = None,
    message: str = "",
) -> None:
    conn.execute(
        s.events.insert().values(
            sweep_id=sweep_id,
            at=time.time(),
            kind=kind,
            run_id=run_id,
            agent=agent,
            message=message,
        )
    )


def _pool_expire(conn: sa.Connection, host: str, now: float) -> None:
    """Drop the GPU leases and waits of controllers that stopped renewing them or died."""
    for table in (s.gpu_leases, s.gpu_waits):
        owners = conn.execute(
            sa.select(table.c.owner).where(table.c.host == host).distinct()
        ).scalars()
        dead = [o for o in owners if not owner_alive(o)]
        conn.execute(
            table.delete().where(
                table.c.host == host, sa.or_(table.c.expires_at < now, table.c.owner.in_(dead))
            )
        )


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


def _gpu_params(gpu: GpuUse | None) -> dict[str, float | None]:
    if gpu is None:
        return {"gpu_util": None, "gpu_mem_mb": None, "gpu_seconds": None}
    return {"gpu_util": gpu.util, "gpu_mem_mb": gpu.mem_mb, "gpu_seconds": gpu.seconds}


def _driver(conn: sa.Connection, sql: str, params: Mapping[str, Any]) -> Any:
    """Run precompiled SQL on the connection's driver cursor, inside its transaction."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(sql, params)
    return cursor


class _HotStatements:
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
                runs.c.state == sa.literal_column(f"'{PENDING}'"),
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
        is_running = runs.c.state == sa.literal_column(f"'{RUNNING}'")

        def sql(stmt: Any) -> str:
            return str(stmt.compile(dialect=dialect))

        self.claim = sql(
            runs.update()
            .where(
                runs.c.id == pick.scalar_subquery(),
                runs.c.state == sa.literal_column(f"'{PENDING}'"),
            )
            .values(
                state=sa.literal_column(f"'{RUNNING}'"),
                started_at=p("now"),
                heartbeat_at=p("now"),
                agent=p("agent"),
                gpu=p("gpu"),
            )
            .returning(runs.c.id, runs.c.seq, runs.c.config)
        )
        gpu = {name: p(name) for name in ("gpu_util", "gpu_mem_mb", "gpu_seconds")}
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


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # We issue BEGIN ourselves (see _sqlite_begin); pysqlite's own handling would defer it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA journal_mode = WAL")
    # In WAL mode NORMAL keeps every commit across a process crash (only power loss can undo
    # the last ones), at a fraction of FULL's fsyncs.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    immediate = conn.get_execution_options().get("nbsweep_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def open_store(store: str | os.PathLike[str] | Store | None = None, create: bool = True) -> Store:
    """The process's one :class:`Store` for ``store`` (URL, path, or None for the default).

    Without ``create`` a SQLite file that does not exist is an error, not a new store.
    """
    if isinstance(store, Store):
        return store
    url = resolve_url(store)
    with _stores_lock:
        found = _stores.get(url)
        if found is None:
            found = _stores[url] = Store(url, create=create)
        return found
