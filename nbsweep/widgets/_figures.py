"""One tab's figure: interactive plotly (hover, legend, zoom, log y) when installed, else PNG.

Both draw the same ``views`` info object (``nbsweep._plotly`` and ``nbsweep.plot``). A plotly
figure is updated in place while its traces keep their kind and number (a new run's line makes
a new figure), keeping the user's zoom (``uirevision``); a click on a line names its run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from nbsweep import _plotly, plot

KEEP_UI = "nbsweep"  # plotly keeps zoom and legend clicks across updates with one uirevision


class FigurePane:
    """A box showing one figure, redrawn from each new info object."""

    def __init__(
        self,
        static: Callable[[Any], Any],
        interactive: Callable[[Any], Any] | None = None,
        on_run: Callable[[str], None] | None = None,
    ) -> None:
        self._static = static
        self._interactive = interactive if _plotly.available() else None
        self._on_run = on_run
        self.figure: Any = None  # the plotly FigureWidget, once drawn
        self.width: int | None = None  # px, as the page reports it (None: plotly's own)
        self.image: widgets.Image | None = None
        self.widget = widgets.Box(layout=widgets.Layout(width="100%"))

    @property
    def interactive(self) -> bool:
        return self.figure is not None

    def draw(self, info: Any) -> None:
        """Draw ``info``: in place when the figure keeps its shape, else anew."""
        if self._interactive is not None:
            fig = self._interactive(info)
            fig.update_layout(uirevision=KEEP_UI, width=self.width, autosize=self.width is None)
            if self._update(fig) or self._replace(fig):
                return
            self._interactive = None  # plotly without widget support: images from now on
        if self.image is None:
            self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
            self.widget.children = (self.image,)
        self.image.value = plot.to_png(self._static(info))

    def fit(self, width: int) -> None:
        """Size the figure to ``width`` px (the page's measure of the room it has)."""
        self.width = width
        if self.figure is not None:
            self.figure.layout.width = width

    def _update(self, fig: Any) -> bool:
        """Update the traces in place; False when they changed in number or kind (a run
        started): then the figure is built anew, which the front end draws reliably."""
        figure = self.figure
        if figure is None or [t.type for t in figure.data] != [t.type for t in fig.data]:
            return False
        with figure.batch_update():
            for old, new in zip(figure.data, fig.data, strict=True):
                spec = new.to_plotly_json()
                spec.pop("type", None)
                spec.pop("uid", None)
                old.update(spec, overwrite=True)
            figure.layout.update(fig.layout.to_plotly_json(), overwrite=True)
        return True

    def _replace(self, fig: Any) -> bool:
        try:
            from nbsweep.widgets._plotly_widget import figure_widget

            figure = figure_widget(fig)
        except Exception:  # noqa: BLE001 - e.g. plotly 6+ without anywidget
            return False
        for trace in figure.data:
            trace.on_click(self._clicked)
        old, self.figure = self.figure, figure
        self.widget.children = (figure,)
        if old is not None:
            old.close()
        return True

    def _clicked(self, trace: Any, points: Any, _: Any) -> None:
        # Run lines carry [run id, state] per point (``_plotly.HOVER_RUN``).
        if self._on_run is None or not points.point_inds:
            return
        data = trace.customdata
        if data is None or not len(data):
            return
        row = data[points.point_inds[0]]
        run_id = row[0] if isinstance(row, (list, tuple)) or hasattr(row, "__len__") else row
        if isinstance(run_id, str):
            self._on_run(run_id)
