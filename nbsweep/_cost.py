"""What a sweep cost in GPU time, and what early termination saved of it.

GPU-seconds of a run are its runtime times the GPUs its agent held (busy or not), as the
agent measured them. A run stopped early (hyperband, ASHA, a pruner) saved the epochs it did
not run, each worth its own measured GPU-seconds per epoch; the full length of a run is the
longest finished run of the sweep, else ``early_terminate.max_iter``. Epochs are the
iterations early termination counts: the logged values of the sweep metric.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nbsweep._states import RunState
from nbsweep.config import SweepConfig
from nbsweep.store import StoredRun


@dataclass(frozen=True)
class Cost:
    """GPU-hours a sweep used and those early termination saved (0 for runs on CPU)."""

    gpu_hours: float
    gpu_hours_saved: float
    epochs_saved: int  # epochs the stopped runs did not run (on GPU or CPU)
    gpu_runs: int
    cpu_runs: int  # runs on CPU agents: no GPU time, nothing counted in the hours

    def __str__(self) -> str:
        text = (
            f"{self.gpu_hours:.3g} GPU-hours used, {self.gpu_hours_saved:.3g} saved by early"
            f" termination ({self.epochs_saved} epochs not run)"
        )
        if self.cpu_runs:
            text += f"; {self.cpu_runs} runs on CPU (no GPU time)"
        return text


def sweep_cost(config: SweepConfig, runs: Iterable[StoredRun]) -> Cost:
    """The cost of the runs of a sweep with ``config``."""
    started = [r for r in runs if r.state != RunState.PENDING]
    finished = [_epochs(r) for r in started if r.state == RunState.FINISHED]
    early_terminate = config.early_terminate
    full = max(finished, default=0) or (early_terminate and early_terminate.max_iter) or 0
    used = saved = 0.0
    epochs_saved = 0
    for run in started:
        seconds = run.gpu_seconds
        used += seconds or 0.0
        done = _epochs(run)
        if run.state != RunState.STOPPED or not done or full <= done:
            continue
        epochs_saved += full - done
        if seconds:
            saved += (full - done) * seconds / done
    gpu_runs = sum(1 for r in started if r.gpu_seconds is not None)
    return Cost(used / 3600, saved / 3600, epochs_saved, gpu_runs, len(started) - gpu_runs)


def _epochs(run: StoredRun) -> int:
    return int(run.metric_count or run.steps or 0)
