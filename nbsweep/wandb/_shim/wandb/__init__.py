"""``import wandb`` in a program an nbsweep agent runs: nbsweep's run API in W&B's names.

In the program of an nbsweep run (``NBSWEEP_RUN_ID`` set by its agent, with this folder's
parent first on ``PYTHONPATH``), this module replaces itself in ``sys.modules`` with
``nbsweep.wandb._sdk``. Anywhere else it shadows nothing: a process that got this folder on its
path some other way gets W&B's own package (or the ``ImportError`` of a machine without it),
and imported by its dotted name (a tool walking nbsweep's modules) it does nothing.
"""

import os
import sys

if __name__ == "wandb":
    if os.environ.get("NBSWEEP_RUN_ID"):
        from nbsweep.wandb._sdk import route

        route()
    else:
        from importlib.machinery import PathFinder
        from importlib.util import module_from_spec

        _shim = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        _path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _shim]
        _spec = PathFinder.find_spec("wandb", _path)
        if _spec is None or _spec.loader is None:
            raise ModuleNotFoundError("No module named 'wandb'", name="wandb")
        _real = module_from_spec(_spec)
        sys.modules["wandb"] = _real  # the import system returns what is there after this
        _spec.loader.exec_module(_real)
