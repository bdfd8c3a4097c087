"""The dashboard for front ends without a widget manager: HTML updated through a display handle.

Ray Tune's approach: one ``display(..., display_id=True)`` and ``handle.update`` from a thread,
which plain Jupyter, nbconvert, VS Code and terminals all understand. Same header and table as
the widget dashboard, no buttons (use ``%sweep pause`` and friends).
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any

from nbsweep._states import SWEEP_LIVE
from nbsweep.widgets import _static
from nbsweep.widgets._feed import SweepFeed, next_wait

REFRESH_HZ = 2.0
TABLE_ROWS = 50


class HtmlDashboard:
    """Header, agents and runs table as one HTML output that redraws itself while live."""

    def __init__(self, sweep: Any, refresh_hz: float = REFRESH_HZ) -> None:
        self.sweep = sweep
        self.feed = SweepFeed(sweep)
        self.interval = 1.0 / refresh_hz  # the shortest wait between two redraws
        self._handle: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._state: str | None = None  # the sweep's state when last drawn

    def bundle(self) -> dict[str, str]:
        """The current view as a MIME bundle: HTML, and text for terminals. The view that
        sees the sweep ended adds the figures, as the widget dashboard's snapshot does."""
        snap = self.feed.snapshot(history=False)
        ended = snap.state not in SWEEP_LIVE
        if ended:
            snap = self.feed.snapshot(history=True)
        self._state = snap.state
        alive = bool(self.sweep.controller_alive) if not ended else True
        body = _static.snapshot_html(snap, alive, with_figures=ended, rows=TABLE_ROWS)
        return {"text/html": body, "text/plain": _static.plain_text(snap)}

    def _ipython_display_(self) -> None:
        from IPython.display import display

        self.feed.changed()  # what this first view shows: redraw when the store moves on
        self._handle = display(self.bundle(), raw=True, display_id=True)
        if self._state in SWEEP_LIVE:
            self.start()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        return self.bundle()

    def start(self) -> None:
        """Start redrawing (once); it stops by itself after the sweep ends."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop redrawing; the last view stays."""
        self._stop.set()

    @property
    def live(self) -> bool:
        """True while the refresher thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def refresh(self, force: bool = False) -> bool:
        """Redraw through the display handle if the store changed since the last call."""
        if not self.feed.changed() and not force:
            return False
        bundle = self.bundle()
        if self._handle is not None:
            self._handle.update(bundle, raw=True)
        return True

    def _loop(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            start = time.monotonic()
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - a thread has nowhere else to report to
                if self._handle is not None:
                    error = traceback.format_exc(limit=3)
                    self._handle.update({"text/plain": error}, raw=True)
                return
            # The view that saw the sweep end was drawn in full: nothing more will change.
            if self._state not in SWEEP_LIVE:
                return
            wait = next_wait(self.interval, time.monotonic() - start)
