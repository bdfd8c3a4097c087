"""Hugging Face ``transformers.Trainer`` logs into the sweep's run.

    from nbsweep.integrations.huggingface import NbsweepCallback

    trainer = Trainer(..., callbacks=[NbsweepCallback()], report_to="none")

Every ``Trainer.log`` call (training loss every ``logging_steps``, evaluation metrics such as
``eval_loss`` after each evaluation) becomes one nbsweep row at ``state.global_step``; rows of
the same step merge. Evaluation metrics reach ``on_log`` too (``Trainer.evaluate`` logs them),
so ``on_evaluate`` adds nothing. When early termination stops the run, ``nbsweep.log`` raises
``nbsweep.RunStopped`` out of ``trainer.train()`` and the run ends ``stopped``.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

import nbsweep
from nbsweep.integrations._logs import numbers

__all__ = ["NbsweepCallback"]


class NbsweepCallback(TrainerCallback):
    """Forwards the numbers of each ``Trainer`` log to ``nbsweep.log`` (step: global step)."""

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        row = numbers(logs)
        if row and state.is_world_process_zero:
            nbsweep.log(row, step=state.global_step)
