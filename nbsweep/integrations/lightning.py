"""PyTorch Lightning metrics into the sweep's run.

    from nbsweep.integrations.lightning import NbsweepCallback

    trainer = lightning.Trainer(..., callbacks=[NbsweepCallback()])

What the module logs with ``self.log`` (``trainer.callback_metrics``) becomes one nbsweep row
per epoch, at step ``trainer.current_epoch``, with ``epoch``. The row is written when
validation ends (so early termination judges ``val_loss`` at once) and completed when the
training epoch ends; a metric is sent only when Lightning has a new value for it, so a
validation run every few epochs is not counted again in between. The sanity check is not
logged. When early termination stops the run, ``nbsweep.log`` raises ``nbsweep.RunStopped``
out of ``trainer.fit()`` and the run ends ``stopped``. Works with ``lightning`` and with
``pytorch_lightning``, whichever the module imports.
"""

from __future__ import annotations

import sys
from typing import Any

import nbsweep
from nbsweep.integrations._logs import numbers

if "pytorch_lightning" in sys.modules and "lightning" not in sys.modules:
    from pytorch_lightning import Callback
else:
    try:
        from lightning.pytorch import Callback
    except ModuleNotFoundError:  # only the older package is installed
        from pytorch_lightning import Callback

__all__ = ["NbsweepCallback"]


class NbsweepCallback(Callback):
    """Forwards Lightning's logged metrics to ``nbsweep.log`` (step: epoch)."""

    def __init__(self) -> None:
        super().__init__()
        self._sent: dict[str, Any] = {}  # the value objects last sent (kept: ids stay unique)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._forward(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._forward(trainer)

    def _forward(self, trainer: Any) -> None:
        fresh = {
            key: value
            for key, value in trainer.callback_metrics.items()
            if value is not self._sent.get(key)  # Lightning keeps an old value's object
        }
        row = numbers(fresh)
        if row and trainer.is_global_zero:
            self._sent.update(fresh)
            nbsweep.log({**row, "epoch": trainer.current_epoch}, step=trainer.current_epoch)
