"""The dashboard's eyes in the browser: says when the kernel behind it has gone.

A widget's front end cannot run Python once its kernel is gone, so the old dashboard would go
on saying "running · ETA 15s" while its buttons silently do nothing. This small anywidget
watches from the browser side instead: the kernel's status where the front end exposes it
(JupyterLab, Notebook 7: restarting, dead, or replaced), else a heartbeat the kernel answers.
When the kernel has gone it dims the dashboard and says how to get a live one again.

It also forwards clicks on a runs-table row (``tr[data-run]``) to the kernel, which shows that
run's detail, and tells the kernel the dashboard's width (``width``), to which it sizes the
plotly figures: a FigureWidget does not follow its cell's width by itself.
"""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets

# Plain ES module, no build step. ``el`` is a zero-height element at the dashboard's top.
WATCH_JS = r"""
const PLOTS = ".js-plotly-plot, .plot-container";
const GONE = new Set(["restarting", "autorestarting", "dead", "terminating"]);

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

  return () => {
    clearInterval(timer);
    clearTimeout(pending);
    if (observer) observer.disconnect();
    if (added) added.disconnect();
    if (root) root.removeEventListener("click", onClick);
  };
}
export default { render };
"""


class KernelWatch(anywidget.AnyWidget):
    """Zero-size widget inside a dashboard: kernel-gone banner, row clicks, resize nudges."""

    _esm = WATCH_JS
    sweep_id = traitlets.Unicode("").tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)  # the dashboard's width in the page, in px

    def __init__(self, sweep_id: str, on_run: Any) -> None:
        super().__init__(sweep_id=sweep_id)
        self._on_run = on_run
        self.on_msg(self._answer)

    def _answer(self, _: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if "ping" in content:
            self.send({"pong": content["ping"]})
        elif isinstance(content.get("run"), str):
            self._on_run(content["run"])
