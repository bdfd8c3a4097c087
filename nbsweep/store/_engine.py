"""The database under the store: engine, SQLite pragmas, the schema check and upgrade.

SQLite (WAL, ``synchronous=NORMAL``, busy timeout) by default, PostgreSQL with the same code.
Write transactions on SQLite begin ``IMMEDIATE`` so that two writers queue on the busy
timeout instead of failing on a lock upgrade. The hot path (``Database._hot``) goes around
the pool on a thread's own driver connection and survives a lost connection.

Every other statement goes through ``read()``/``write()``, and every public method of the
store's concerns (the ``Store`` facade) runs again, whole, when its connection to the server
was lost before its transaction committed (for up to ``RECONNECT_S``): the controller and the
API survive a failover or a killed backend as the agents do. A COMMIT whose answer was lost
is settled by asking the server (``txid_status``) whether it kept the transaction. A full
disk and a read-only store become a ``StoreFault`` that says what to fix.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import sqlalchemy as sa

from nbsweep._errors import StoreError, StoreFault
from nbsweep._timing import BUSY_S, RECONNECT_S
from nbsweep.store import _schema as s

DEFAULT_STORE = Path(".nbsweep") / "nbsweep.db"
ENV_VAR = "NBSWEEP_STORE"
T = TypeVar("T")
# SQLSTATEs of PostgreSQL: disk_full, read_only_sql_transaction.
_PG_FULL, _PG_READ_ONLY = "53100", "25006"
# The PostgreSQL advisory lock that processes creating the same store's tables queue on.
_CREATE_LOCK = 0x6E627377  # "nbsw"


class ConnectionLost(StoreFault):
    """The connection to the server was lost before the transaction committed: the server
    rolled it back, so running it again on a new connection writes nothing twice."""


def resolve_url(store: str | os.PathLike[str] | None = None) -> str:
    """A SQLAlchemy URL from ``store=``, else ``$NBSWEEP_STORE``, else ``./.nbsweep/nbsweep.db``."""
    if store is None:
        store = os.environ.get(ENV_VAR) or DEFAULT_STORE
    text = os.fspath(store)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def missing(store: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``store`` (as ``resolve_url`` reads it) is a SQLite file that is not there.

    Anything else (a server's URL, a bad one) is for ``Database`` to open, or to refuse.
    """
    try:
        url = sa.engine.make_url(resolve_url(store))
    except sa.exc.ArgumentError:
        return False
    database = url.database or ":memory:"
    return (
        url.get_backend_name() == "sqlite"
        and database != ":memory:"
        and not Path(database).exists()
    )


def private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents readable by the owner only (0700)."""
    absent = []
    probe = path
    while not probe.exists():
        absent.append(probe)
        probe = probe.parent
    for directory in reversed(absent):
        directory.mkdir(mode=0o700, exist_ok=True)
    return path


class Database:
    """One process's connection pool to one store database, checked on open.

    Each public method of a subclass (a concern of the store) is one unit of work: at most
    one write transaction, and reads. It runs again, whole, when its connection was lost.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            if not name.startswith("_") and callable(value):
                setattr(cls, name, _reconnecting(value))

    def __init__(self, url: str, create: bool = True) -> None:
        self.url = url
        self._local = threading.local()
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
                    f"store {self.path} does not exist: pass the store= (or ${ENV_VAR}) the"
                    f" sweep was started with, or unset a ${ENV_VAR} left over from another"
                    " run; nothing was created"
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

    def _check_schema(self) -> None:
        """Create a new store, accept one of our version, refuse anything else."""
        try:
            if s.meta.name not in sa.inspect(self.engine).get_table_names():
                self._create()
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
                f"store {self.where} cannot be opened: {why}\nPass another store= (or"
                f" {ENV_VAR}); nbsweep left this one as it was"
            ) from exc
        if version != str(s.SCHEMA_VERSION):
            newer = version is not None and version.isdigit() and int(version) > s.SCHEMA_VERSION
            hint = "upgrade nbsweep" if newer else "it was written by another nbsweep version"
            raise StoreError(
                f"store {self.where} has schema version {version}, this nbsweep reads version "
                f"{s.SCHEMA_VERSION}: {hint}, or pass another store="
            )

    def _create(self) -> None:
        """Create the tables of a new store, in one write transaction that looks again.

        Processes that open the same new store at once (the tasks of a SLURM job array)
        queue on it (SQLite's busy timeout, an advisory lock on PostgreSQL); the first one
        creates the store, the others find it created.
        """
        with self.write() as conn:
            if not self.is_sqlite:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_CREATE_LOCK)))
            names = set(sa.inspect(conn).get_table_names())
            if s.meta.name in names:
                return
            ours = sorted(n for n in names if n.startswith("nbsweep_"))
            if ours or (self.is_sqlite and names):
                raise StoreError(
                    f"store {self.where} is not an nbsweep store (it holds tables "
                    f"{', '.join(sorted(names))}); pass another store= or {ENV_VAR}"
                )
            s.metadata.create_all(conn)
            conn.execute(s.meta.insert().values(key="schema_version", value=str(s.SCHEMA_VERSION)))

    def _upgrade(self, version: str) -> None:
        """Add the tables and nullable columns of later versions to a store of ``version``,
        and widen the integer columns that later versions made 64-bit.

        One transaction that reads the version again, so that processes opening the same old
        store at once upgrade it once; any other change is refused.
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
                have = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
                for column in table.columns:
                    if column.name in have:
                        self._widen(conn, column, have[column.name])
                        continue
                    if not column.nullable:
                        raise StoreError(
                            f"store {self.where} has schema version {version}, which this"
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

    def _widen(self, conn: sa.Connection, column: sa.Column[Any], stored: Any) -> None:
        """Make an int4 column of an older store the BIGINT the schema now declares.

        SQLite's INTEGER is 64-bit already.
        """
        if self.is_sqlite or not isinstance(column.type, sa.BigInteger):
            return
        if isinstance(stored, sa.Integer) and not isinstance(stored, sa.BigInteger):
            conn.exec_driver_sql(
                f"ALTER TABLE {column.table.name} ALTER COLUMN {column.name} TYPE BIGINT"
            )

    @property
    def where(self) -> str:
        """The store as messages name it: its file, or its URL with the password hidden."""
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
        connected = committing = False
        xid = None
        try:
            with self.engine.connect() as conn:
                connected = True
                conn.execution_options(nbsweep_write=True)
                with conn.begin():
                    yield conn
                    if not self.is_sqlite:
                        # Its id, to ask the server about it should the COMMIT go unanswered.
                        xid = conn.exec_driver_sql("SELECT txid_current_if_assigned()").scalar()
                    committing = True
        except sa.exc.DBAPIError as exc:
            lost = not connected or exc.connection_invalidated
            if lost and committing and not self.is_sqlite:
                kept = self._committed(xid)
                if kept:
                    return  # the server kept it: done, not to be written twice
                if kept is False:
                    committing = False  # rolled back: the method runs again
            fault = self._fault(exc, lost, committing)
            if fault is None:
                raise
            raise fault from exc

    def _committed(self, xid: int | None) -> bool | None:
        """Whether transaction ``xid``, whose COMMIT got no answer (the connection broke), was
        kept, as the server says on a new connection; None when it cannot tell in time."""
        if xid is None:
            return False  # it wrote nothing
        deadline = time.monotonic() + RECONNECT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(sa.exc.DBAPIError):
                with self.engine.connect() as conn:
                    status = conn.exec_driver_sql(f"SELECT txid_status({int(xid)})").scalar()
                if status in ("committed", "aborted", None):  # None: too old to tell
                    return None if status is None else status == "committed"
            time.sleep(0.05)  # in progress: its backend has not seen the break yet
        return None

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
                fault = self._fault(exc, lost, committing) if isinstance(exc, Exception) else None
                if fault is None:
                    raise
                if not isinstance(fault, ConnectionLost) or time.monotonic() > deadline:
                    raise fault from exc
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
        connected = False
        try:
            with self.engine.connect() as conn:
                connected = True
                yield conn
        except sa.exc.DBAPIError as exc:
            fault = self._fault(exc, not connected or exc.connection_invalidated, False)
            if fault is None:
                raise
            raise fault from exc

    def _fault(self, exc: BaseException, lost: bool, committing: bool) -> StoreError | None:
        """The ``StoreError`` that says what ``exc`` means for the user, or None when it is
        an ordinary failed statement (a constraint, a bug) to raise as it is.

        ``lost``: the connection is gone (never on SQLite, which has no server).
        """
        orig = getattr(exc, "orig", None) or exc  # the driver's words, without SQLAlchemy's
        state = getattr(orig, "sqlstate", None)
        if lost and not self.is_sqlite:
            # A server that answered the COMMIT with an error (it is shutting the backend
            # down) did not commit; a connection that broke without an answer leaves it open.
            if committing and state is None:
                return StoreError(
                    f"store {self.where}: the connection was lost while committing; this"
                    f" write may or may not be kept ({orig})"
                )
            return ConnectionLost(
                f"store {self.where}: the connection to the server was lost and did not"
                f" come back within {RECONNECT_S:g} s ({orig}): check the server"
            )
        code = (getattr(orig, "sqlite_errorcode", None) or 0) & 0xFF
        if code == sqlite3.SQLITE_FULL or state == _PG_FULL:
            return StoreFault(
                f"store {self.where} cannot be written: its disk is full ({orig}): free"
                " space on that disk"
            )
        if code == sqlite3.SQLITE_READONLY or state == _PG_READ_ONLY:
            return StoreFault(
                f"store {self.where} cannot be written: it is read-only ({orig}): make it"
                " writable again (the file's and its directory's permissions, a read-write"
                " mount, the primary server)"
            )
        return None

    def dispose(self) -> None:
        self.engine.dispose()


def _reconnecting(method: Callable[..., T]) -> Callable[..., T]:
    """``method`` run again while its connection is lost, for up to ``RECONNECT_S``.

    Only the outermost store method of a thread retries: one it calls is part of its work.
    """

    @functools.wraps(method)
    def run(self: Database, *args: Any, **kwargs: Any) -> T:
        if getattr(self._local, "retrying", False):
            return method(self, *args, **kwargs)
        self._local.retrying = True
        deadline = time.monotonic() + RECONNECT_S
        try:
            while True:
                try:
                    return method(self, *args, **kwargs)
                except ConnectionLost:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        finally:
            self._local.retrying = False

    return run


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a file, None when it is missing: tells a replaced file apart."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def driver(conn: sa.Connection, sql: str, params: Mapping[str, Any]) -> Any:
    """Run precompiled SQL on the connection's driver cursor, inside its transaction."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(sql, params)
    return cursor


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # We issue BEGIN ourselves (see _sqlite_begin); pysqlite's own handling would defer it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_S * 1000)}")
    _wal(cursor)
    # In WAL mode NORMAL keeps every commit across a process crash (only power loss can undo
    # the last ones), at a fraction of FULL's fsyncs.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _wal(cursor: sqlite3.Cursor) -> None:
    """Put the store in WAL mode, waiting as long as the busy timeout for other processes.

    Switching a new store to WAL answers "database is locked" at once, without SQLite's
    busy handler, while another process opening it holds a lock: processes that open one
    new store together (a job array's tasks) would fail where they must queue.
    """
    deadline = time.monotonic() + BUSY_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_begin(conn: sa.Connection) -> None:
    immediate = conn.get_execution_options().get("nbsweep_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
