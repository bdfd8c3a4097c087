"""GPU utilisation and memory for the agents' rows, from NVML; empty where there is none."""

from __future__ import annotations

from typing import Any


def gpu_stats() -> dict[str, dict[str, float]]:
    """``{uuid: {"util": %, "mem_used": bytes, "mem_total": bytes}}`` for every GPU NVML sees.

    Asks the NVML the agents use (``nbsweep.agents`` may swap in a fake one to rehearse a GPU
    sweep), keyed by UUID as the agents' ``gpu`` column is; empty (shown as "—") without NVML.
    """
    from nbsweep.agents._gpus import get_nvml

    nvml = get_nvml()
    if nvml is None:
        return {}
    try:
        nvml.nvmlInit()
        stats: dict[str, dict[str, float]] = {}
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            util = nvml.nvmlDeviceGetUtilizationRates(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            stats[_text(nvml.nvmlDeviceGetUUID(handle))] = {
                "util": float(util.gpu),
                "mem_used": float(memory.used),
                "mem_total": float(memory.total),
            }
        return stats
    except Exception as exc:  # pynvml raises NVMLError_* without a driver or a GPU
        if type(exc).__name__.startswith("NVMLError"):
            return {}
        raise


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
