"""The dashboard's eyes in the browser: says when the kernel behind it has gone.

A widget's front end cannot run Python once its kernel is gone, so the old dashboard would go
on saying "running · ETA 15s" while its buttons silently do nothing. This small anywidget
watches from the browser side instead: the kernel's status where the front end exposes it
(JupyterLab, Notebook 7: restarting, dead, or replaced), else a heartbeat the kernel answers.
When the kernel has gone it dims the dashboard and says how to get a live one again.

It also forwards clicks on a runs-table row (``tr[data-run]``) to the kernel, which shows that
run's detail, and tells the kernel the dashboard's width (``width``), to which it sizes the
plotly figures: a FigureWidget does not follow its cell's width by itself.

And it keeps the saved notebook current. Where the front end says when it saves (JupyterLab
and Notebook 7: their document context's ``saveState``, emitted just before the notebook is
serialized, in the same turn), it writes the kernel's latest snapshot (``snapshot``, with
``figures`` in place of ``_static.FIGURES_MARK``) into the ``text/html`` of the dashboard's
output (the one showing ``view_id``), so the file holds the header and runs table of the
moment of the save. Then it asks the kernel for figures drawn now; when they come, and the
notebook has no other unsaved change, it saves once more, so the file holds them too. In
the file the widget view is parked under ``application/vnd.nbsweep.widget-view+json``, a type
no reader draws: JupyterLab prefers a widget view to any HTML, and without the widget's model
(a colleague's JupyterLab, a restarted kernel) it would say "model not found" instead of
showing the snapshot. When the notebook is opened again while its kernel still has the
dashboard (a page reload), the watch's ``initialize`` puts the widget view back, and the live
dashboard draws there. These writes go to the notebook's shared model only
("silent-change"), so the live view is not redrawn. Other front ends (VS Code, Colab, classic
Notebook) get the snapshot of the display's last update: the sweep's start, pause, resume and
end.
"""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets

# Plain ES module, no build step. ``el`` is a zero-height element at the dashboard's top.
WATCH_JS = r"""
const PLOTS = ".js-plotly-plot, .plot-container";
const WIDGET = "application/vnd.jupyter.widget-view+json";
// Where a saved file keeps the widget view, so that every reader draws the snapshot.
const PARKED = "application/vnd.nbsweep.widget-view+json";
const FIGURES_MARK = "<!--nbsweep-figures-->";
const GONE = new Set(["restarting", "autorestarting", "dead", "terminating"]);

// Calls ``visit(cell, output, index, view)`` for each output of the notebook that shows the
// dashboard ``id``, live (its widget view) or saved (parked).
function eachOutput(context, id, visit) {
  const notebook = context && context.model && context.model.sharedModel;
  if (!id || !notebook || !notebook.cells) return;
  for (const cell of notebook.cells) {
    if (cell.cell_type !== "code" || typeof cell.updateOutputs !== "function") continue;
    cell.getOutputs().forEach((output, index) => {
      const data = output.data;
      const view = data && (data[WIDGET] || data[PARKED]);
      if (view && view.model_id === id) visit(cell, output, index, view);
    });
  }
}

// The kernel still has this dashboard (a page reload, the notebook opened again): its saved
// output shows the snapshot; put the widget view back, so the live dashboard draws there.
async function initialize({ model }) {
  const context = model.widget_manager && model.widget_manager.context;
  if (!context || !context.model) return;
  await context.ready;
  eachOutput(context, model.get("view_id"), (cell, output, index, view) => {
    if (output.data[WIDGET]) return;
    const { [PARKED]: _, ...rest } = output.data;
    cell.updateOutputs(index, index + 1, [{ ...output, data: { ...rest, [WIDGET]: view } }]);
  });
}

function render({ model, el }) {
  // The view may render before the box around it is in the page: found on the first tick.
  let root = null;
  let gone = false;
  let unanswered = 0;
  const banner = document.createElement("div");
  banner.className = "nbs-kernel-banner";

  function show(text, sticky) {
    if (gone || !root) return;
    gone = sticky;
    root.classList.add("nbs-kernel-gone");
    banner.textContent = text;
    if (!banner.isConnected) root.prepend(banner);
  }
  function hide() {
    if (gone || !root) return;
    root.classList.remove("nbs-kernel-gone");
    banner.remove();
  }
  const id = () => model.get("sweep_id");
  const goneText = () =>
    "kernel gone: this dashboard is no longer live and its buttons do nothing. " +
    "Restart the kernel and run  %sweep resume " + id() + "  to see the sweep live again.";
  const silentText = () =>
    "kernel not answering: busy with a cell, or gone. If it was restarted, run  " +
    "%sweep resume " + id() + "  for a live dashboard.";

  const manager = model.widget_manager;
  const kernelOf = () => (manager && "kernel" in manager ? manager.kernel : undefined);
  const kernel = kernelOf();
  function check() {
    if (!root) attach();
    if (kernel === undefined) {
      // No kernel object in this front end: a heartbeat the kernel answers decides.
      unanswered += 1;
      if (unanswered > 4) show(silentText(), false);
      model.send({ ping: Date.now() });
      return;
    }
    const now = kernelOf();
    if (!kernel || now !== kernel || kernel.isDisposed || GONE.has(kernel.status)) {
      show(goneText(), true);
    }
  }
  model.on("msg:custom", (msg) => {
    if (msg && msg.pong) { unanswered = 0; hide(); }
  });
  if (kernel && kernel.statusChanged) {
    kernel.statusChanged.connect((_, status) => { if (GONE.has(status)) show(goneText(), true); });
  }
  const timer = setInterval(check, kernel === undefined ? 5000 : 1000);

  // A click on a runs-table row shows that run (the table is plain HTML).
  function onClick(event) {
    const row = event.target.closest && event.target.closest("tr[data-run]");
    if (row && !gone) model.send({ run: row.dataset.run });
  }
  // plotly fits its figures on window resizes only; a cell changes width without one.
  let width = 0;
  let pending = null;
  let observer = null;
  let added = null;
  function attach() {
    root = el.closest(".nbsweep-dashboard");
    if (!root) return;
    root.addEventListener("click", onClick);
    width = root.clientWidth;
    if (typeof ResizeObserver !== "function") return;
    observer = new ResizeObserver(() => {
      if (root.clientWidth === width) return;
      width = root.clientWidth;
      fit();
    });
    fit();
    observer.observe(root);
    // A figure drawn into a tab (or redrawn anew) sizes itself to a default 700 px.
    added = new MutationObserver((records) => {
      const plots = records.some((r) => Array.from(r.addedNodes).some((n) =>
        n.nodeType === 1 && (n.matches(PLOTS) || n.querySelector(PLOTS))));
      if (plots) fit();
    });
    added.observe(root, { childList: true, subtree: true });
  }
  function fit() {
    clearTimeout(pending);
    pending = setTimeout(() => {
      // The kernel sizes its plotly figures to this (they do not follow a cell by themselves).
      if (!gone && root && root.clientWidth !== model.get("width")) {
        model.set("width", root.clientWidth);
        model.save_changes();
      }
      window.dispatchEvent(new Event("resize"));
    }, 150);
  }
  setTimeout(attach, 0);

  // Saves (see the module's docstring). ``manager.context``: @jupyter-widgets/jupyterlab-manager.
  const context = manager && manager.context;
  const saves = context && context.saveState && context.model ? context.saveState : null;
  let asked = false; // figures asked for after a save, not yet come
  function snapshotHtml() {
    const html = model.get("snapshot");
    return html ? html.replace(FIGURES_MARK, model.get("figures")) : "";
  }
  // Puts the snapshot into the dashboard's saved output, its widget view parked beside it;
  // says whether it found the output and whether that changed it.
  function writeSnapshot() {
    const html = snapshotHtml();
    const result = { found: false, changed: false };
    if (!html) return result;
    eachOutput(context, model.get("view_id"), (cell, output, index, view) => {
      result.found = true;
      const data = output.data;
      if (data["text/html"] === html && !data[WIDGET]) return;
      result.changed = true;
      const { [WIDGET]: _, ...rest } = data;
      const updated = { ...output, data: { ...rest, "text/html": html, [PARKED]: view } };
      cell.updateOutputs(index, index + 1, [updated], "silent-change");
    });
    return result;
  }
  let ours = false; // the save under way is the one that adds the figures
  function onSave(_, state) {
    if (state !== "started") return;
    const found = writeSnapshot().found;
    if (ours) {
      ours = false;
      return;
    }
    if (found && !gone && !asked) {
      asked = true;
      model.send({ saved: true });
    }
  }
  function onFigures(msg) {
    if (!msg || !msg.figures || !asked) return;
    asked = false;
    const clean = !context.model.dirty; // nothing else waits to be saved
    if (writeSnapshot().changed && clean && !context.isDisposed) {
      ours = true;
      context.save().catch(() => { ours = false; });
    }
  }
  model.on("msg:custom", onFigures);
  if (saves) {
    saves.connect(onSave);
    if (!model.get("saves")) {
      model.set("saves", true);
      model.save_changes();
    }
  }

  return () => {
    clearInterval(timer);
    if (saves) saves.disconnect(onSave);
    clearTimeout(pending);
    if (observer) observer.disconnect();
    if (added) added.disconnect();
    if (root) root.removeEventListener("click", onClick);
  };
}
export default { initialize, render };
"""


class KernelWatch(anywidget.AnyWidget):
    """Zero-size widget inside a dashboard: kernel-gone banner, row clicks, resize nudges."""

    _esm = WATCH_JS
    sweep_id = traitlets.Unicode("").tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)  # the dashboard's width in the page, in px
    view_id = traitlets.Unicode("").tag(sync=True)  # the model id the dashboard displays as
    saves = traitlets.Bool(False).tag(sync=True)  # the front end writes snapshots at saves
    snapshot = traitlets.Unicode("").tag(sync=True)  # HTML without figures (FIGURES_MARK)
    figures = traitlets.Unicode("").tag(sync=True)  # the figures' HTML, drawn at saves

    def __init__(self, sweep_id: str, on_run: Any, on_saved: Any) -> None:
        super().__init__(sweep_id=sweep_id)
        self._on_run = on_run
        self._on_saved = on_saved
        self.on_msg(self._answer)

    def _answer(self, _: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if "ping" in content:
            self.send({"pong": content["ping"]})
        elif isinstance(content.get("run"), str):
            self._on_run(content["run"])
        elif content.get("saved"):
            self._on_saved()
