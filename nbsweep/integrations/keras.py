"""Keras 3 ``Model.fit`` logs into the sweep's run.

    import os
    os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported
    from nbsweep.integrations.keras import NbsweepCallback

    model.fit(..., callbacks=[NbsweepCallback()])

At the end of each epoch, ``logs`` (``loss``, ``val_loss``, the compiled metrics) becomes one
nbsweep row at step ``epoch``, with ``epoch``. When early termination stops the run,
``nbsweep.log`` raises ``nbsweep.RunStopped`` out of ``model.fit()`` and the run ends
``stopped``. Agents inherit the kernel's environment, so a ``KERAS_BACKEND`` set before the
sweep starts reaches them; import keras inside the train function.
"""

from __future__ import annotations

from typing import Any

import nbsweep
from nbsweep._errors import NbsweepError
from nbsweep.integrations._logs import numbers

try:
    import keras
except ModuleNotFoundError as exc:
    if exc.name != "tensorflow":
        raise
    raise NbsweepError(
        "keras needs a backend and tensorflow is not installed: set KERAS_BACKEND=torch"
        " (or jax) before keras is first imported, e.g. os.environ['KERAS_BACKEND'] = 'torch'"
    ) from exc

__all__ = ["NbsweepCallback"]


class NbsweepCallback(keras.callbacks.Callback):
    """Forwards the numbers of each epoch's ``logs`` to ``nbsweep.log`` (step: epoch)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row = numbers(logs)
        if row:
            nbsweep.log({**row, "epoch": epoch}, step=epoch)
