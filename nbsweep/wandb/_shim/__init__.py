"""The folder nbsweep puts first on a program's ``PYTHONPATH``, for that program only.

It holds a ``wandb`` package that stands in for W&B's, so that a ``program:`` script's
``import wandb`` records into its nbsweep run. It is never on ``sys.path`` otherwise.
"""
