"""Agents: the processes that run trials, the GPUs they get, and ``nbsweep.agent``."""

from __future__ import annotations

from nbsweep.agents._agent import agent
from nbsweep.agents._dask import DaskExecutor, dask_agents
from nbsweep.agents._gpus import GPU, FakeNVML, Slot, detect_gpus, plan_slots, set_nvml
from nbsweep.agents._loop import Agent

__all__ = [
    "GPU",
    "Agent",
    "DaskExecutor",
    "FakeNVML",
    "Slot",
    "agent",
    "dask_agents",
    "detect_gpus",
    "plan_slots",
    "set_nvml",
]
