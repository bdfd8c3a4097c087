"""The live sweep dashboard: ``dashboard(sweep)`` is what a ``Sweep`` displays as."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbsweep.widgets._dashboard import Dashboard
    from nbsweep.widgets._handle import HtmlDashboard

__all__ = ["Dashboard", "HtmlDashboard", "dashboard", "detect_mode"]

MODES = ("widgets", "html")


def detect_mode() -> str:
    """``widgets`` inside a Jupyter kernel with ipywidgets, ``html`` anywhere else.

    ``NBSWEEP_DASHBOARD=html`` (or ``widgets``) overrides it, e.g. for front ends that run a
    kernel without a widget manager (nbconvert to HTML, some editors).
    """
    forced = os.environ.get("NBSWEEP_DASHBOARD", "").strip().lower()
    if forced in MODES:
        return forced
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return "html"
    shell = get_ipython()
    # A terminal IPython has no kernel and so no comms for widgets to talk through.
    return "widgets" if shell is not None and getattr(shell, "kernel", None) else "html"


def dashboard(sweep: Any, mode: str | None = None) -> Dashboard | HtmlDashboard:
    """The live view of a sweep; display it (or return it from a cell) to show it."""
    mode = mode or detect_mode()
    if mode not in MODES:
        raise ValueError(f"dashboard mode must be one of {MODES}, not {mode!r}")
    if mode == "html":
        from nbsweep.widgets._handle import HtmlDashboard

        return HtmlDashboard(sweep)
    from nbsweep.widgets._dashboard import Dashboard

    return Dashboard(sweep)


def __getattr__(name: str) -> Any:
    # The widget classes import ipywidgets; load them only when asked for.
    if name == "Dashboard":
        from nbsweep.widgets._dashboard import Dashboard

        return Dashboard
    if name == "HtmlDashboard":
        from nbsweep.widgets._handle import HtmlDashboard

        return HtmlDashboard
    raise AttributeError(f"module 'nbsweep.widgets' has no attribute {name!r}")
