"""GPU utilisation and memory for the agents' rows, from NVML; empty where there is none."""

from __future__ import annotations

import importlib
from typing import Any


def gpu_stats() -> dict[int, dict[str, float]]:
    """``{index: {"util": %, "mem_used": bytes, "mem_total": bytes}}`` for every visible GPU.

    Uses the agents' NVML helper when the runtime provides one, so both read the same
    devices; an empty dict (shown as "—") on machines without NVML.
    """
    try:
        agents = importlib.import_module("nbsweep.agents")
    except ImportError:
        agents = None
    helper = getattr(agents, "gpu_stats", None)
    if callable(helper):
        return dict(helper())
    return _nvml_stats()


_nvml: Any = None
_nvml_failed = False


def _nvml_stats() -> dict[int, dict[str, float]]:
    global _nvml, _nvml_failed
    if _nvml_failed:
        return {}
    try:
        if _nvml is None:
            import pynvml

            pynvml.nvmlInit()
            _nvml = pynvml
        stats = {}
        for index in range(_nvml.nvmlDeviceGetCount()):
            handle = _nvml.nvmlDeviceGetHandleByIndex(index)
            util = _nvml.nvmlDeviceGetUtilizationRates(handle)
            memory = _nvml.nvmlDeviceGetMemoryInfo(handle)
            stats[index] = {
                "util": float(util.gpu),
                "mem_used": float(memory.used),
                "mem_total": float(memory.total),
            }
        return stats
    except Exception:  # noqa: BLE001 - no driver, no GPU, or NVML too old: show "—"
        _nvml_failed = True
        return {}
