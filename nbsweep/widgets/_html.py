"""HTML for the header, the runs table, the agents, the bands and importance tables.

Shared by the widget dashboard (inside ``HTML`` widgets), the display-handle dashboard for
front ends without a widget manager, and the standalone report: one look everywhere.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from nbsweep import views
from nbsweep._states import AgentState, SweepState

STYLE = """
<style>
.nbsweep { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  font-size: 13px; color: #212121; }
.nbsweep .nbs-title { font-size: 16px; font-weight: 600; }
.nbsweep .nbs-muted { color: #757575; }
.nbsweep .nbs-state { display: inline-block; padding: 1px 8px; border-radius: 10px;
  color: white; font-size: 12px; font-weight: 600; }
.nbsweep .nbs-bar { background: #e0e0e0; border-radius: 4px; height: 8px; width: 220px;
  display: inline-block; vertical-align: middle; overflow: hidden; }
.nbsweep .nbs-bar > div { background: #1e88e5; height: 100%; }
.nbsweep table { border-collapse: collapse; margin: 4px 0; }
.nbsweep th { text-align: left; font-weight: 600; border-bottom: 2px solid #bdbdbd;
  padding: 3px 10px 3px 4px; white-space: nowrap; }
.nbsweep td { border-bottom: 1px solid #eeeeee; padding: 2px 10px 2px 4px; white-space: nowrap;
  font-variant-numeric: tabular-nums; }
.nbsweep .nbs-dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%;
  margin-right: 5px; }
.nbsweep pre { background: #fafafa; border: 1px solid #eeeeee; padding: 6px; max-height: 300px;
  overflow: auto; font-size: 12px; white-space: pre-wrap; }
.nbsweep .nbs-orphan { color: #c62828; }
.nbsweep .nbs-scroll { max-width: 100%; overflow-x: auto; }
.nbsweep img { max-width: 100%; height: auto; }
.nbsweep-dashboard { box-sizing: border-box; max-width: 100%; min-width: 0; }
.nbsweep-dashboard .widget-html-content { max-width: 100%; }
.nbsweep-dashboard .widget-box { min-width: 0; }
.nbsweep-dashboard .js-plotly-plot { width: 100%; min-width: 0; }
.nbsweep-dashboard tr[data-run] { cursor: pointer; }
.nbsweep-dashboard tr[data-run]:hover td { background: #0000000a; }
.nbsweep-dashboard.nbs-kernel-gone > :not(.nbs-kernel-banner) { opacity: 0.45;
  pointer-events: none; }
.nbs-kernel-banner { background: #fdecea; border: 1px solid #e53935; color: #b71c1c;
  padding: 6px 10px; margin-bottom: 6px; font-weight: 600; white-space: pre-wrap; }
</style>
"""

SWEEP_STATE_COLOURS = {
    SweepState.PENDING: "#9e9e9e",
    SweepState.RUNNING: "#1e88e5",
    SweepState.PAUSED: "#fb8c00",
    SweepState.FINISHED: "#43a047",
    SweepState.CANCELLED: "#6d4c41",
}


def escape(value: Any) -> str:
    return html.escape(str(value))


def state_badge(state: str, colours: dict[str, str] | None = None) -> str:
    """A coloured pill with the state's name."""
    colour = (colours or SWEEP_STATE_COLOURS).get(state, "#9e9e9e")
    return f'<span class="nbs-state" style="background:{colour}">{escape(state)}</span>'


def header_html(
    info: views.HeaderInfo, now: float | None = None, controller_alive: bool = True
) -> str:
    """Name, id, method, state, progress bar, elapsed (at ``now``), ETA, warm start, best value
    and config; a live sweep whose controller has gone says so, with the command to resume."""
    fraction = info.done / info.total if info.total else 0.0
    bar = (
        f'<span class="nbs-bar"><div style="width:{100 * min(1.0, fraction):.0f}%"></div></span> '
        if info.total
        else ""
    )
    orphan = info.live and not controller_alive
    counts = ", ".join(f"{n} {s}" for s, n in sorted(info.counts.items()))
    # A sweep nobody runs has no clock and no ETA: it moves on only once resumed.
    elapsed = info.elapsed_s if orphan or now is None else info.elapsed_at(now)
    eta = None
    if info.eta_s is not None and not orphan:
        eta = max(0.0, info.eta_s - max(0.0, (now or info.taken_at) - info.taken_at))
    badge = state_badge(info.state)
    if orphan:
        badge += ' <span class="nbs-state" style="background:#e53935">no controller</span>'
    lines = [
        f'<span class="nbs-title">{escape(info.name or info.id)}</span> '
        f'<span class="nbs-muted">{escape(info.id)} · {escape(info.method)}'
        + (f" · created {escape(info.created_text)}" if info.created_text else "")
        + f"</span> {badge}",
        f"{bar}<b>{escape(info.progress_text)}</b>"
        + (f' <span class="nbs-muted">({escape(counts)})</span>' if counts else "")
        + f' · elapsed <span class="nbs-elapsed">{views.format_duration(elapsed)}</span>'
        + (f" · ETA {views.format_duration(eta)}" if eta is not None else ""),
    ]
    if orphan:
        lines.append(
            '<span class="nbs-orphan">no live controller: the kernel or process that ran this'
            " sweep has gone, so nothing starts or ends its runs. Resume it with"
            f" <code>%sweep resume {escape(info.id)}</code> in a notebook or"
            f" <code>nbsweep resume {escape(info.id)}</code> in a terminal.</span>"
        )
    if info.message:
        lines.append(f'<span class="nbs-muted">{escape(info.message)}</span>')
    if info.warm_start_text is not None:
        lines.append(escape(info.warm_start_text))
    if info.metric is not None:
        lines.append(_best_html(info))
    if info.cost is not None and info.cost.gpu_runs:
        lines.append(escape(str(info.cost)))
    return '<div class="nbsweep">' + "<br>".join(lines) + "</div>"


def _best_html(info: views.HeaderInfo) -> str:
    head = f"best {escape(info.metric)} ({escape(info.goal)}): "
    if info.best_value is None:
        best = head + "—"
    else:
        config = ", ".join(
            f"{escape(k)}={escape(views.format_value(v))}" for k, v in info.best_config.items()
        )
        best = (
            f"{head}<b>{escape(views.format_value(info.best_value))}</b> "
            f'<span class="nbs-muted">run {escape(info.best_run_id)} · {config}</span>'
        )
    if info.best_running is not None:
        best += (
            f' <span class="nbs-muted">(running: {escape(views.format_value(info.best_running))}'
            f" in run {escape(info.best_running_id)})</span>"
        )
    return best


def runs_table_html(info: views.RunsTableInfo, limit: int = 200) -> str:
    """The runs, one coloured row each, best first unless sorted otherwise."""
    if not info.rows:
        return '<div class="nbsweep nbs-muted">no runs yet</div>'
    gpu = any(row.gpu_seconds is not None for row in info.rows)
    heads = ["run", "state", info.metric or "metric", "runtime", "steps", "agent"]
    heads += ["GPU util", "GPU memory", "GPU at start", "GPU-s"] if gpu else []
    heads += info.parameters + ["error"]
    out = ['<div class="nbsweep"><div class="nbs-scroll"><table><tr>']
    out += [f"<th>{escape(h)}</th>" for h in heads]
    out.append("</tr>")
    for row in info.rows[:limit]:
        error = row.error.strip().splitlines()[-1] if row.error.strip() else ""
        cells = [
            escape(row.run_id),
            f'<span class="nbs-dot" style="background:{row.colour}"></span>{escape(row.state)}',
            escape(views.format_value(row.metric)),
            escape(views.format_duration(row.runtime_s)),
            escape(views.format_value(row.steps)),
            escape(row.agent),
        ]
        if gpu:
            cells += [
                "—" if row.gpu_util is None else f"{row.gpu_util:.0f}%",
                "—" if row.gpu_mem_mb is None else f"{row.gpu_mem_mb / 1024:.1f} GiB",
                # Memory earlier runs of its agent left behind (+0.0 GiB on a clean one).
                "—" if row.gpu_mem_start_mb is None else f"{row.gpu_mem_start_mb / 1024:+.1f} GiB",
                "CPU" if row.gpu_seconds is None else f"{row.gpu_seconds:.1f}",
            ]
        cells += [escape(views.format_value(row.params.get(p))) for p in info.parameters]
        cells.append(f'<span style="color:#e53935">{escape(error[:80])}</span>')
        tint = row.colour + "14"  # the state's colour at 8% opacity
        out.append(
            f'<tr data-run="{escape(row.run_id)}" style="background:{tint}">'
            + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )
    out.append("</table></div>")
    more = info.total - min(limit, len(info.rows))
    notes = []
    if more > 0:
        notes.append(f"{more} more runs not shown")
    if info.hidden:
        notes.append(f"{info.hidden} runs hidden by the parallel-coordinates filter")
    if info.not_plotted:
        notes.append(f"{info.not_plotted} runs without {info.metric or 'a line'} yet not shown")
    if notes:
        out.append(f'<span class="nbs-muted">{escape("; ".join(notes))}</span>')
    out.append("</div>")
    return "".join(out)


def bands_table_html(info: views.BandsInfo) -> str:
    """Per band: the iteration, the threshold, and runs reached / stopped / continued."""
    if not info.enabled:
        return '<div class="nbsweep nbs-muted">this sweep has no hyperband early_terminate</div>'
    reachable = max((len(c.x) for c in info.curves), default=0)
    bands = [b for b in info.bands if b.reached or b.iteration <= max(1, reachable)]
    if not bands:
        return '<div class="nbsweep nbs-muted">no band reached yet</div>'
    rows = "".join(
        f"<tr><td>{b.iteration}</td>"
        f"<td>{escape(views.format_value(b.threshold) if math.isfinite(b.threshold) else '—')}</td>"
        f"<td>{b.reached}</td><td>{b.stopped}</td><td>{b.continued}</td></tr>"
        for b in bands
    )
    return (
        '<div class="nbsweep"><table><tr><th>band (iteration)</th>'
        f"<th>threshold ({escape(info.metric)})</th><th>reached</th><th>stopped</th>"
        f"<th>continued</th></tr>{rows}</table></div>"
    )


def importance_html(info: views.ImportanceInfo) -> str:
    """W&B's importance panel: an importance bar and a signed correlation bar per parameter."""
    if not info.rows:
        return f'<div class="nbsweep nbs-muted">{escape(info.note)}</div>'
    top = max((r.importance for r in info.rows), default=1.0) or 1.0
    rows = []
    for r in info.rows:
        width = 120 * r.importance / top
        corr = r.correlation if math.isfinite(r.correlation) else 0.0
        colour = "#43a047" if corr > 0 else "#e53935"
        corr_bar = (
            f'<div style="width:120px;height:10px;position:relative;background:#f5f5f5">'
            f'<div style="position:absolute;left:{60 + min(0.0, corr) * 60:.0f}px;'
            f'width:{abs(corr) * 60:.0f}px;height:10px;background:{colour}"></div></div>'
        )
        rows.append(
            f"<tr><td>{escape(r.parameter)}</td>"
            f'<td><div style="width:{width:.0f}px;height:10px;background:#5c6bc0;'
            f'display:inline-block"></div> {r.importance:.3f}</td>'
            f"<td>{corr_bar}</td><td>{views.format_value(r.correlation)}</td></tr>"
        )
    return (
        f'<div class="nbsweep"><table><tr><th>parameter</th><th>importance '
        f"({escape(info.metric)})</th><th colspan=2>correlation</th></tr>{''.join(rows)}"
        "</table></div>"
    )


def present_agents(agents: pd.DataFrame | None) -> tuple[pd.DataFrame, int]:
    """The agents still there, and how many have exited.

    An agent's row says ``dead`` once its process has ended, whether it left cleanly (the
    sweep ended, it was drained) or was killed, and rows stay from before a restart: listed,
    they would show a sweep that ended well as a row of dead agents. A run cut short by its
    agent's end is ``crashed`` in the runs table, with why.
    """
    if agents is None or not len(agents) or "state" not in agents.columns:
        return (agents if agents is not None else pd.DataFrame()), 0
    gone = agents["state"].astype(str) == AgentState.DEAD
    return agents[~gone], int(gone.sum())


def exited_html(count: int) -> str:
    """The line under the agents that counts those that have exited ("" for none)."""
    if not count:
        return ""
    agents = "agent has" if count == 1 else "agents have"
    return f'<div class="nbsweep nbs-muted">{count} {agents} exited</div>'


def agents_html(agents: pd.DataFrame, gpu_stats: dict[str, dict[str, float]]) -> str:
    """One row per agent still there: its GPU (name, utilisation, memory) and what it is
    running; then how many have exited."""
    agents, exited = present_agents(agents)
    if not len(agents):
        return exited_html(exited) or '<div class="nbsweep nbs-muted">no agents</div>'
    rows = []
    for _, agent in agents.iterrows():
        rows.append(
            "<tr>"
            + "".join(f"<td>{escape(c)}</td>" for c in agent_cells(agent, gpu_stats))
            + "</tr>"
        )
    heads = "".join(f"<th>{h}</th>" for h in AGENT_HEADS)
    table = f'<div class="nbsweep"><table><tr>{heads}</tr>{"".join(rows)}</table></div>'
    return table + exited_html(exited)


AGENT_HEADS = ("agent", "state", "GPU", "util", "memory", "run")


def gpu_pool_html(pool: pd.DataFrame | None, sweep_id: str) -> str:
    """Which sweep holds each GPU of the shared pool and which sweeps wait ("" when alone)."""
    if pool is None or not len(pool) or set(pool["sweep_id"]) == {sweep_id}:
        return ""

    def who(row: Any) -> str:
        if row["sweep_id"] == sweep_id:
            return "<b>this sweep</b>"
        return f"{escape(row['sweep'] or row['sweep_id'])} ({escape(row['priority'])})"

    held = [
        f"{escape(row['gpu'])} → {who(row)}"
        for _, row in pool.iterrows()
        if row["state"] == "holds"
    ]
    waits = [
        f"{who(row)} for {int(row['wanted'])} GPU(s)"
        for _, row in pool.iterrows()
        if row["state"] == "waits" and row["wanted"] > 0
    ]
    text = "GPU pool: " + (" · ".join(held) or "no GPU held")
    if waits:
        text += " · waiting: " + ", ".join(waits)
    return f'<div class="nbsweep nbs-muted">{text}</div>'


def agent_cells(agent: Any, gpu_stats: dict[str, dict[str, float]]) -> list[str]:
    """The text cells of one agent row (shared with the widget rows).

    ``agent["gpu"]`` holds the UUIDs of the agent's GPUs, comma-separated (empty on CPU).
    """
    uuids = [u for u in str(agent.get("gpu") or "").split(",") if u and u != "nan"]
    stats = [gpu_stats[u] for u in uuids if u in gpu_stats]
    name = agent.get("gpu_name")
    gpu_text = (name if isinstance(name, str) and name else ",".join(uuids)) if uuids else "CPU"
    util = " / ".join(f"{s['util']:.0f}%" for s in stats) if stats else "—"
    memory = "—"
    if stats:
        used = sum(s["mem_used"] for s in stats) / 2**30
        total = sum(s["mem_total"] for s in stats) / 2**30
        memory = f"{used:.1f} / {total:.0f} GiB"
    run = agent.get("run_id")
    return [
        str(agent.get("agent", "")),
        str(agent.get("state", "")),
        gpu_text,
        util,
        memory,
        run if isinstance(run, str) and run else "—",
    ]


def run_view_html(info: views.RunDetailInfo) -> str:
    """A run as the Run tab shows it: state, timing, config, summary, GPU, traceback, log."""
    facts = [
        ("agent", info.agent or "—"),
        ("started", info.started_text),
        ("ended", info.ended_text),
        ("runtime", views.format_duration(info.runtime_s)),
    ]
    if info.metric is not None:
        facts.insert(0, (info.metric, views.format_value(info.metric_value)))
    facts += list(info.gpu.items())
    parts = [
        f'<div class="nbsweep"><b>run {escape(info.run_id)}</b> '
        f'{state_badge(info.state, views.STATE_COLOURS)} <span class="nbs-muted">'
        + " · ".join(f"{escape(k)} {escape(v)}" for k, v in facts)
        + "</span>",
        _pairs_table("config", info.config),
    ]
    if info.summary:
        parts.append(_pairs_table("summary", info.summary))
    if info.error:
        parts.append(f"<b>traceback</b><pre>{escape(info.error)}</pre>")
    if info.log_tail:
        tail = escape(info.log_tail)
        parts.append(f"<b>log</b> <span class='nbs-muted'>(last lines)</span><pre>{tail}</pre>")
    parts.append("</div>")
    return "".join(parts)


def _pairs_table(title: str, pairs: dict[str, Any]) -> str:
    cells = "".join(
        f"<tr><td>{escape(k)}</td><td>{escape(views.format_value(v))}</td></tr>"
        for k, v in pairs.items()
    )
    return (
        f'<div class="nbs-scroll"><table><tr><th>{escape(title)}</th><th></th></tr>'
        f"{cells}</table></div>"
    )
