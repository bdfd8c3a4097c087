"""Which GPUs the machine has (NVML) and which of them each agent gets.

NVML is the only source: it sees every GPU without initialising CUDA in the kernel (which
would poison forked children and hold memory). Agents get their GPUs by UUID in
``CUDA_VISIBLE_DEVICES`` with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so a renumbering can never
put two agents on one GPU. NVML is injectable (``set_nvml``, ``nvml=``) and ``FakeNVML``
presents made-up GPUs, for tests and to rehearse a GPU sweep on a laptop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from nbsweep._errors import SweepError

_nvml: Any = None


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
    (bytes), ``used`` (bytes) and ``util`` (percent).
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
                    "used": int(given.get("used", 0)),
                    "util": int(given.get("util", 0)),
                }
            )

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
        return SimpleNamespace(
            total=gpu["memory"], used=gpu["used"], free=gpu["memory"] - gpu["used"]
        )

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(gpu=self.gpus[handle]["util"], memory=0)


def set_nvml(nvml: Any) -> None:
    """Use ``nvml`` (e.g. a ``FakeNVML``) instead of ``pynvml`` from now on; None resets."""
    global _nvml
    _nvml = nvml


def get_nvml(nvml: Any = None) -> Any:
    """The NVML to ask: the argument, else the one set, else ``pynvml`` (None if absent)."""
    if nvml is not None:
        return nvml
    if _nvml is not None:
        return _nvml
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
    except Exception as exc:  # pynvml raises NVMLError_* (no driver, no library) here
        if type(exc).__name__.startswith("NVMLError"):
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
            raise SweepError(
                f"CUDA_VISIBLE_DEVICES={setting!r} names GPU {token!r}, which NVML does not"
                f" see (GPUs: {seen}); fix CUDA_VISIBLE_DEVICES"
            )
        chosen.append(match[0])
    return chosen


def plan_slots(workers: int | None = None, gpus_per_run: int = 1, nvml: Any = None) -> list[Slot]:
    """One slot per agent: ``gpus_per_run`` GPUs each, or CPU slots when there is no GPU.

    ``workers`` defaults to one agent per GPU group (one per core on CPU). More workers than
    GPU groups share GPUs in turn.
    """
    if workers is not None and (isinstance(workers, bool) or workers < 0):
        raise SweepError(f"workers={workers!r} must be a count of agents (0 or more)")
    if isinstance(gpus_per_run, bool) or not isinstance(gpus_per_run, int) or gpus_per_run < 0:
        raise SweepError(f"gpus_per_run={gpus_per_run!r} must be a whole number of GPUs")
    gpus = visible_gpus(detect_gpus(nvml)) if gpus_per_run else []
    if not gpus:
        count = (os.cpu_count() or 1) if workers is None else workers
        return [Slot() for _ in range(count)]
    groups = [tuple(gpus[i : i + gpus_per_run]) for i in range(0, len(gpus), gpus_per_run)]
    groups = [g for g in groups if len(g) == gpus_per_run]
    if not groups:
        raise SweepError(
            f"gpus_per_run={gpus_per_run} but only {len(gpus)} GPU(s) are visible;"
            " lower gpus_per_run"
        )
    count = len(groups) if workers is None else workers
    slots = []
    for i in range(count):
        group = groups[i % len(groups)]
        env = {
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
            "CUDA_VISIBLE_DEVICES": ",".join(g.uuid for g in group),
        }
        slots.append(Slot(gpus=group, env=env))
    return slots
