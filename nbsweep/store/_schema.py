"""The store's tables, in SQLAlchemy Core, identical on SQLite and PostgreSQL.

Every name carries the ``nbsweep_`` prefix so a shared PostgreSQL database can hold other
tables. Configs, summaries and rows are JSON text (portable, cheap to write); the sweep's
metric is also kept as a number with its valid-iteration index so that hyperband thresholds
at a band are one indexed query. No column ever holds pickled code.
"""

from __future__ import annotations

import sqlalchemy as sa

# Bumped on any change. A store of an older version gets the tables and nullable columns
# added since, and its integer columns widened to 64 bits, when it is opened
# (``Database._upgrade``); any other difference is refused on open.
# 2: GPU pool tables, GPU figures of runs.
# 3: a row's step and a run's steps are 64-bit (int4 on PostgreSQL before).
# 4: a run's GPU memory at its start; a sweep's fresh_process.
# 5: the GPUs promised to a waiting sweep by agents giving way.
SCHEMA_VERSION = 5

metadata = sa.MetaData()

# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid); PostgreSQL wants BIGINT.
_RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

meta = sa.Table(
    "nbsweep_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

sweeps = sa.Table(
    "nbsweep_sweeps",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False, default=""),
    # "module:qualname" of an importable train function, so a restart can find it again.
    sa.Column("train_ref", sa.Text),
    sa.Column("seed", sa.BigInteger),
    # How many GPUs each agent gets, so that a resumed sweep shares them out the same way.
    sa.Column("gpus_per_run", sa.Integer, nullable=False, default=1),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    # Armed until a run succeeds or the guard trips once, so a resume is not paused again.
    sa.Column("failure_guard", sa.Boolean, nullable=False, default=True),
    # JSON list of the sweeps whose finished runs bayes observes first (``warm_start=``).
    sa.Column("warm_start", sa.Text),
    # Each run in a process of its own (``fresh_process=``); NULL: false.
    sa.Column("fresh_process", sa.Boolean),
)

runs = sa.Table(
    "nbsweep_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("sweep_id", sa.String(32), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("summary", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("started_at", sa.Double),
    sa.Column("ended_at", sa.Double),
    sa.Column("heartbeat_at", sa.Double),
    sa.Column("agent", sa.Integer),
    sa.Column("gpu", sa.Text),
    sa.Column("steps", sa.BigInteger, nullable=False, default=0),
    sa.Column("metric_count", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text),
    sa.Column("requeued_from", sa.String(32)),
    # Sampled from NVML by a GPU agent while the run is live (NULL for a CPU run).
    sa.Column("gpu_util", sa.Double),  # mean utilisation, percent
    sa.Column("gpu_mem_mb", sa.Double),  # peak memory used, MiB
    sa.Column("gpu_seconds", sa.Double),  # runtime x GPUs held
    # Memory its GPUs held at its start beyond the agent's baseline, MiB: what earlier runs
    # of the same agent left behind.
    sa.Column("gpu_mem_start_mb", sa.Double),
    sa.UniqueConstraint("sweep_id", "seq", name="uq_nbsweep_runs_seq"),
    sa.Index("ix_nbsweep_runs_claim", "sweep_id", "state", "seq"),
)

rows = sa.Table(
    "nbsweep_rows",
    metadata,
    sa.Column("id", _RowId, primary_key=True, autoincrement=True),
    sa.Column("sweep_id", sa.String(32), nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),  # any step nbsweep.log accepts
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("metric", sa.Double),
    sa.Column("metric_iter", sa.Integer),
    sa.Index("ix_nbsweep_rows_run", "run_id", "step"),
    sa.Index("ix_nbsweep_rows_band", "sweep_id", "metric_iter", "metric"),
)

events = sa.Table(
    "nbsweep_events",
    metadata,
    sa.Column("id", _RowId, primary_key=True, autoincrement=True),
    sa.Column("sweep_id", sa.String(32), nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("run_id", sa.String(32)),
    sa.Column("agent", sa.Integer),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Index("ix_nbsweep_events_sweep", "sweep_id", "id"),
)

agents = sa.Table(
    "nbsweep_agents",
    metadata,
    sa.Column("sweep_id", sa.String(32), primary_key=True),
    sa.Column("agent", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("pid", sa.Integer),
    sa.Column("host", sa.Text),
    sa.Column("gpu", sa.Text, nullable=False, default=""),
    sa.Column("gpu_name", sa.Text, nullable=False, default=""),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("run_id", sa.String(32)),
    sa.Column("drain", sa.Boolean, nullable=False, default=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("heartbeat_at", sa.Double, nullable=False),
)

# One controller per sweep: whoever holds an unexpired lease row runs it.
leases = sa.Table(
    "nbsweep_leases",
    metadata,
    sa.Column("sweep_id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
)

# The GPUs of a host shared by every sweep of the store: a GPU is held by one sweep at a
# time, as long as its controller renews the row (``owner`` is the controller's lease owner).
gpu_leases = sa.Table(
    "nbsweep_gpu_leases",
    metadata,
    sa.Column("host", sa.String(255), primary_key=True),
    sa.Column("gpu", sa.String(128), primary_key=True),
    sa.Column("sweep_id", sa.String(32), nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("since", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
)

# A sweep that wants more GPUs of a host than it holds: free GPUs go to the highest
# ``priority``, then to the sweep waiting ``since`` the longest. ``promised`` GPUs are on their
# way to it from agents that gave way, until ``promised_until``: no other agent leaves for them.
gpu_waits = sa.Table(
    "nbsweep_gpu_waits",
    metadata,
    sa.Column("sweep_id", sa.String(32), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("wanted", sa.Integer, nullable=False),  # GPUs
    sa.Column("since", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
    sa.Column("promised", sa.Integer),
    sa.Column("promised_until", sa.Double),
)
