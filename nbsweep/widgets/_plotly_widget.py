"""plotly's FigureWidget with plotly.js sent to the browser once per kernel, not once per figure.

plotly 6+ builds FigureWidget on anywidget, whose front-end code (``_esm``, 5 MB: all of
plotly.js) travels with every figure and is evaluated anew for each: a dashboard drawing
seven tabs, and a new figure whenever a run adds a line, sent megabytes over the comm and
kept the browser busy for a second or more per figure. Here one hidden loader widget per
kernel carries that code, and each figure's ``_esm`` is a few lines that wait for the
loader's module and hand over to it. Older plotly (its own widget extension, as Colab ships)
is used as it is.
"""

from __future__ import annotations

import json
from typing import Any

# The page-wide place where the loader leaves plotly's module for the figures (by version).
SLOT_JS = """
function slot(version) {
  const all = (globalThis.__nbsweepPlotly ??= {});
  if (!all[version]) {
    const entry = { loading: false };
    entry.module = new Promise((resolve, reject) => Object.assign(entry, { resolve, reject }));
    all[version] = entry;
  }
  return all[version];
}
"""

# Its model is created in the browser (with every other model of the kernel, also after a
# page reload) even though it is never displayed: ``initialize`` loads plotly.js once.
LOADER_JS = (
    SLOT_JS
    + """
export default {
  async initialize({ model }) {
    const entry = slot(model.get("version"));
    if (entry.loading) return;
    entry.loading = true;
    const url = URL.createObjectURL(new Blob([model.get("bundle")], { type: "text/javascript" }));
    try {
      entry.resolve(await import(url));
    } catch (error) {
      entry.loading = false;
      entry.reject(error);
    } finally {
      URL.revokeObjectURL(url);
    }
  },
};
"""
)

# A figure's front end: plotly's own (its default export makes {initialize, render}).
FIGURE_JS = (
    SLOT_JS
    + """
export default async () => (await slot(%s).module).default();
"""
)

_classes: dict[str, Any] = {}  # "figure" and "loader", made on first use
_loader: Any = None


def figure_widget(*args: Any, **kwargs: Any) -> Any:
    """A ``go.FigureWidget(*args, **kwargs)`` whose plotly.js the kernel's loader carries."""
    import plotly
    import plotly.graph_objects as go

    if "figure" not in _classes:
        _classes["figure"] = _shared_class(go.FigureWidget, plotly.__version__)
    cls = _classes["figure"]
    if cls is not go.FigureWidget:
        _ensure_loader(plotly.__version__, str(go.FigureWidget._esm))
    return cls(*args, **kwargs)


def _shared_class(base: Any, version: str) -> Any:
    """``base`` with the small front end, or ``base`` itself where it is not an anywidget."""
    try:
        import anywidget
    except ImportError:
        return base
    if not issubclass(base, anywidget.AnyWidget):
        return base
    return type(
        base.__name__, (base,), {"__module__": __name__, "_esm": FIGURE_JS % json.dumps(version)}
    )


def _ensure_loader(version: str, bundle: str) -> None:
    """Create the kernel's loader widget (again, if something closed it)."""
    global _loader
    if _loader is not None and _loader.comm is not None:
        return
    if "loader" not in _classes:
        import anywidget
        import traitlets

        _classes["loader"] = type(
            "PlotlyLoader",
            (anywidget.AnyWidget,),
            {
                "__module__": __name__,
                "__doc__": "Never displayed: its model in the browser loads plotly.js once.",
                "_esm": LOADER_JS,
                "version": traitlets.Unicode().tag(sync=True),
                "bundle": traitlets.Unicode().tag(sync=True),
            },
        )
    _loader = _classes["loader"](version=version, bundle=bundle)
