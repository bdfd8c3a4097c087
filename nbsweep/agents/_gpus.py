"""Which GPUs the machine has (NVML) and which of them each agent gets.

NVML is the only source: it sees every GPU without initialising CUDA in the kernel (which
would poison forked children and hold memory). Agents get their GPUs by UUID in
``CUDA_VISIBLE_DEVICES`` with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so a renumbering can never
put two agents on one GPU. NVML is injectable (``set_nvml``, ``nvml=``) and ``FakeNVML``
presents made-up GPUs, for tests and to rehearse a GPU sweep on a laptop; agents spawned on
fake GPUs get the same fake (through ``NBSWEEP_FAKE_NVML``). ``GpuMeter`` samples what a run
uses of its GPUs.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from nbsweep._errors import PlacementError, SweepError
from nbsweep._timing import GPU_SAMPLE_S
from nbsweep.store import GpuUse

_nvml: Any = None
# The FakeNVML an agent process gets from the kernel that spawned it (JSON of its GPUs).
FAKE_ENV = "NBSWEEP_FAKE_NVML"


@dataclass(frozen=True)
class GPU:
    """One GPU as NVML reports it."""

    index: int
    uuid: str
    name: str
    memory_total: int = 0


@dataclass(frozen=True)
class Slot:
    """What one agent runs on: its GPUs (none for a CPU agent) and the environment it gets."""

    gpus: tuple[GPU, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def gpu(self) -> str:
        return ",".join(g.uuid for g in self.gpus)

    @property
    def gpu_name(self) -> str:
        return ",".join(g.name for g in self.gpus)


class FakeNVML:
    """Made-up GPUs behind the pynvml functions nbsweep calls.

    ``gpus`` is a count, or a list of names or of dicts with ``name``, ``uuid``, ``memory``
    (bytes), ``used`` (bytes) and ``util`` (percent). ``used`` and ``util`` may be lists: one
    value per reading, the last one repeated. A train function scripts its own GPU's load
    with ``get_nvml().set(uuid, util=..., used=...)`` (each process has its own fake).
    """

    def __init__(self, gpus: int | Sequence[str | Mapping[str, Any]] = 1) -> None:
        specs: Sequence[str | Mapping[str, Any]] = (
            ["Fake GPU"] * gpus if isinstance(gpus, int) else gpus
        )
        self.gpus: list[dict[str, Any]] = []
        for index, spec in enumerate(specs):
            given = {"name": spec} if isinstance(spec, str) else dict(spec)
            self.gpus.append(
                {
                    "name": given.get("name", "Fake GPU"),
                    "uuid": given.get("uuid", f"GPU-00000000-0000-0000-0000-{index:012d}"),
                    "memory": int(given.get("memory", 16 * 2**30)),
                    "used": given.get("used", 0),
                    "util": given.get("util", 0),
                }
            )
        self._reads: dict[tuple[int, str], int] = {}

    def set(self, gpu: int | str, **values: Any) -> None:
        """Change a GPU (by index or UUID): ``util``, ``used``, ``name``, ``memory``."""
        index = gpu if isinstance(gpu, int) else [g["uuid"] for g in self.gpus].index(gpu)
        self.gpus[index].update(values)
        for key in values:
            self._reads.pop((index, key), None)

    def to_env(self) -> str:
        """This fake as JSON, for ``NBSWEEP_FAKE_NVML`` in the agents' environment."""
        return json.dumps(self.gpus)

    def _read(self, index: int, key: str) -> int:
        value = self.gpus[index][key]
        if not isinstance(value, (list, tuple)):
            return int(value)
        count = self._reads.get((index, key), 0)
        self._reads[(index, key)] = count + 1
        return int(value[min(count, len(value) - 1)])

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        return None

    def nvmlShutdown(self) -> None:  # noqa: N802
        return None

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        if not 0 <= index < len(self.gpus):
            raise ValueError(f"no fake GPU {index}")
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> str:  # noqa: N802
        return self.gpus[handle]["uuid"]

    def nvmlDeviceGetName(self, handle: int) -> str:  # noqa: N802
        return self.gpus[handle]["name"]

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:  # noqa: N802
        gpu = self.gpus[handle]
        used = self._read(handle, "used")
        return SimpleNamespace(total=gpu["memory"], used=used, free=gpu["memory"] - used)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(gpu=self._read(handle, "util"), memory=0)


def set_nvml(nvml: Any) -> None:
    """Use ``nvml`` (e.g. a ``FakeNVML``) instead of ``pynvml`` from now on; None resets."""
    global _nvml
    _nvml = nvml


def get_nvml(nvml: Any = None) -> Any:
    """The NVML to ask: the argument, else the one set, else ``pynvml`` (None if absent).

    An agent spawned on fake GPUs finds its kernel's fake in ``NBSWEEP_FAKE_NVML``.
    """
    global _nvml
    if nvml is not None:
        return nvml
    if _nvml is None and os.environ.get(FAKE_ENV):
        _nvml = FakeNVML(json.loads(os.environ[FAKE_ENV]))
    if _nvml is not None:
        return _nvml
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nvml_error(exc: Exception) -> bool:
    """pynvml raises NVMLError_* (no driver, no library, GPU lost)."""
    return type(exc).__name__.startswith("NVMLError")


def detect_gpus(nvml: Any = None) -> list[GPU]:
    """Every GPU NVML sees; [] when there is no driver or no GPU."""
    lib = get_nvml(nvml)
    if lib is None:
        return []
    try:
        lib.nvmlInit()
        found = []
        for index in range(lib.nvmlDeviceGetCount()):
            handle = lib.nvmlDeviceGetHandleByIndex(index)
            found.append(
                GPU(
                    index=index,
                    uuid=_text(lib.nvmlDeviceGetUUID(handle)),
                    name=_text(lib.nvmlDeviceGetName(handle)),
                    memory_total=int(lib.nvmlDeviceGetMemoryInfo(handle).total),
                )
            )
        return found
    except Exception as exc:
        if _nvml_error(exc):
            return []
        raise


def visible_gpus(gpus: Sequence[GPU], environ: Mapping[str, str] | None = None) -> list[GPU]:
    """The GPUs a ``CUDA_VISIBLE_DEVICES`` already set in the kernel allows, in its order."""
    env = os.environ if environ is None else environ
    setting = env.get("CUDA_VISIBLE_DEVICES")
    if setting is None:
        return list(gpus)
    chosen = []
    for token in (t.strip() for t in setting.split(",")):
        if not token:
            continue
        if token.lstrip("-").isdigit():
            index = int(token)
            if index < 0:
                break  # CUDA stops at the first invalid index: "-1" hides every GPU
            match = [g for g in gpus if g.index == index]
        else:
            match = [g for g in gpus if g.uuid == token or g.uuid.startswith(token)]
        if not match:
            seen = ", ".join(f"{g.index} ({g.uuid})" for g in gpus) or "none"
            raise PlacementError(
                f"CUDA_VISIBLE_DEVICES={setting!r} names GPU {token!r}, which NVML does not"
                f" see (GPUs: {seen}); fix CUDA_VISIBLE_DEVICES"
            )
        chosen.append(match[0])
    return chosen


def own_gpus(nvml: Any = None) -> list[GPU]:
    """The GPUs this process may use: those its ``CUDA_VISIBLE_DEVICES`` names, all when unset.

    For agents started outside a kernel's sweep (``nbsweep.agent``, ``nbsweep agent``), so
    their runs are measured as a spawned agent's are. None when NVML is missing or does not
    list a GPU it names (a MIG slice): the agent then runs unmeasured, it does not fail.
    """
    try:
        return visible_gpus(detect_gpus(nvml))
    except SweepError:
        return []


def plan_slots(workers: int | None = None, gpus_per_run: int = 1, nvml: Any = None) -> list[Slot]:
    """One slot per agent: ``gpus_per_run`` GPUs each, or CPU slots when there is no GPU.

    ``workers`` defaults to one agent per GPU group (one per core on CPU). More workers than
    GPU groups share GPUs in turn.
    """
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 0
    ):
        raise PlacementError(f"workers={workers!r} must be a count of agents (0 or more)")
    groups = gpu_groups(gpus_per_run, nvml)
    if not groups:
        count = (os.cpu_count() or 1) if workers is None else workers
        return [Slot() for _ in range(count)]
    count = len(groups) if workers is None else workers
    return [groups[i % len(groups)] for i in range(count)]


def gpu_groups(gpus_per_run: int = 1, nvml: Any = None) -> list[Slot]:
    """Every group of ``gpus_per_run`` visible GPUs, as one slot each ([] without GPUs)."""
    if isinstance(gpus_per_run, bool) or not isinstance(gpus_per_run, int) or gpus_per_run < 0:
        raise PlacementError(f"gpus_per_run={gpus_per_run!r} must be a whole number of GPUs")
    lib = get_nvml(nvml)
    gpus = visible_gpus(detect_gpus(lib)) if gpus_per_run else []
    if not gpus:
        return []
    groups = [tuple(gpus[i : i + gpus_per_run]) for i in range(0, len(gpus), gpus_per_run)]
    groups = [g for g in groups if len(g) == gpus_per_run]
    if not groups:
        raise PlacementError(
            f"gpus_per_run={gpus_per_run} but only {len(gpus)} GPU(s) are visible;"
            " lower gpus_per_run"
        )
    fake = {FAKE_ENV: lib.to_env()} if isinstance(lib, FakeNVML) else {}
    return [
        Slot(
            gpus=group,
            env={
                "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
                "CUDA_VISIBLE_DEVICES": ",".join(g.uuid for g in group),
                **fake,
            },
        )
        for group in groups
    ]


class GpuMeter:
    """What one run uses of the agent's GPUs: mean utilisation, peak memory, GPU-seconds,
    and the memory they held at its start beyond the agent's baseline.

    ``sample`` is called every ``GPU_SAMPLE_S`` while the run is live (from the heartbeat
    thread); ``start`` begins a new run. GPU-seconds count the GPUs held, busy or not. The
    baseline is what the GPUs held when the meter was made, before the agent's first run:
    memory above it at a run's start is what earlier runs of the process left behind (the
    CUDA context of a process that used CUDA included), or what another process took.
    """

    def __init__(self, uuids: Sequence[str], nvml: Any = None) -> None:
        self.count = len(uuids)
        self._lib = get_nvml(nvml)
        self._handles: list[Any] = []
        self._lock = threading.Lock()
        if self._lib is not None and uuids:
            try:
                self._lib.nvmlInit()
                for index in range(self._lib.nvmlDeviceGetCount()):
                    handle = self._lib.nvmlDeviceGetHandleByIndex(index)
                    if _text(self._lib.nvmlDeviceGetUUID(handle)) in uuids:
                        self._handles.append(handle)
            except Exception as exc:
                if not _nvml_error(exc):
                    raise
                self._handles = []  # no readings: GPU-seconds still count
        self.baseline = self.memory()
        self.start(self.baseline)

    @staticmethod
    def interval() -> float:
        return GPU_SAMPLE_S

    def start(self, at_start: tuple[float, float] | None = None) -> None:
        """Begin a run; ``at_start``: the memory reading just taken, if any."""
        at_start = at_start or self.memory()
        with self._lock:
            self._began = time.monotonic()
            self._utils: list[float] = []
            self._peak: float | None = None
            self._start_mb = (
                None
                if at_start is None or self.baseline is None
                else (at_start[0] - self.baseline[0]) / 2**20
            )

    @property
    def start_mb(self) -> float | None:
        """MiB the GPUs held at the run's start above the baseline."""
        return self._start_mb

    def memory(self) -> tuple[float, float] | None:
        """Bytes used and in all on the run's GPUs now; None when NVML cannot tell."""
        if not self._handles:
            return None
        try:
            found = [self._lib.nvmlDeviceGetMemoryInfo(h) for h in self._handles]
        except Exception as exc:
            if _nvml_error(exc):
                return None
            raise
        return float(sum(m.used for m in found)), float(sum(m.total for m in found))

    def sample(self) -> None:
        if not self._handles:
            return
        # Each reading on its own: a MIG slice has memory figures but no utilisation.
        util = self._read(lambda h: self._lib.nvmlDeviceGetUtilizationRates(h).gpu)
        used = self._read(lambda h: self._lib.nvmlDeviceGetMemoryInfo(h).used)
        with self._lock:
            if util is not None:
                self._utils.append(util / len(self._handles))
            if used is not None:
                self._peak = max(self._peak or 0.0, used)

    def _read(self, reading: Any) -> float | None:
        """The sum of ``reading`` over the run's GPUs; None when NVML cannot give it."""
        try:
            return float(sum(reading(h) for h in self._handles))
        except Exception as exc:
            if _nvml_error(exc):
                return None
            raise

    def use(self) -> GpuUse:
        """The figures of the run so far (a run shorter than one interval gets one reading)."""
        if not self._utils and self._peak is None:
            self.sample()
        with self._lock:
            return GpuUse(
                util=sum(self._utils) / len(self._utils) if self._utils else None,
                mem_mb=None if self._peak is None else self._peak / 2**20,
                seconds=(time.monotonic() - self._began) * self.count,
                mem_start_mb=self._start_mb,
            )
