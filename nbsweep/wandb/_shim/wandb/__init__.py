"""``import wandb`` in a program an nbsweep agent runs: nbsweep's run API in W&B's names.

This module replaces itself in ``sys.modules`` with ``nbsweep.wandb._sdk``.
"""

from nbsweep.wandb._sdk import route

route()
