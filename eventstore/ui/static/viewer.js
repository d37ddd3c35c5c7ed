// eventstore viewer: builds the list and execution pages from the JSON API.
//
// Every piece of stored data goes into the document as a text node or an
// attribute value set through the DOM (h() below), never as markup: a payload
// holding "<script>" shows as those characters. No innerHTML anywhere.
"use strict";

const POLL_MS = 1000;
const EVENTS_AT_ONCE = 500;
const BARS_AT_ONCE = 300;
const STATUSES = ["running", "completed", "failed", "continued_as_new", "cancelled"];

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function utc(ms) {
  const moment = new Date(ms);
  // a stored timestamp past what a Date holds is shown as the number it is
  if (Number.isNaN(moment.getTime())) return `${ms} ms since the epoch`;
  return moment.toISOString().replace("T", " ").replace("Z", "");
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(3)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1048576) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1048576).toFixed(2)} MiB`;
}

function noTime() {
  return h("span", { class: "no-time", title: "this event was stored without a timestamp (legacy row)" }, "no time");
}

function statusBadge(status) {
  return h("span", { class: `status status-${status}` }, status.replace(/_/g, " "));
}

function executionHref(instance, execution) {
  const params = new URLSearchParams({ instance });
  if (execution !== null && execution !== undefined) params.set("execution", String(execution));
  return `/execution?${params}`;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${response.status}`);
  return body;
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.filter((node) => node !== null && node !== undefined));
}

function showError(error) {
  show(h("p", { class: "error", id: "error" }, String(error.message || error)));
}

// A long list shows its first `step` items and a button for the next ones, so
// a 5,000-event execution opens as fast as a small one.
function batched(tag, attrs, items, render, step, noun) {
  const list = h(tag, attrs);
  const more = h("button", { type: "button", class: "more" });
  let shown = 0;
  const grow = (upTo) => {
    const next = items.slice(shown, upTo);
    list.append(...next.map(render));
    shown += next.length;
    const left = items.length - shown;
    more.hidden = left === 0;
    more.textContent = `show ${Math.min(step, left)} more ${noun} (${left} not shown)`;
  };
  more.addEventListener("click", () => grow(shown + step));
  grow(step);
  const box = h("div", {}, list, more);
  box.showThrough = (index) => grow(Math.max(index + 1, shown));
  return box;
}

// -- the list page -----------------------------------------------------------

function filterForm(params) {
  const field = (label, input) => h("label", {}, label, input);
  const status = h("select", { name: "status" }, h("option", { value: "" }, "any"),
    STATUSES.map((s) => h("option", { value: s, selected: params.get("status") === s }, s.replace(/_/g, " "))));
  const text = (name, placeholder) => h("input", { name, value: params.get(name) || "", placeholder });
  return h("form", { id: "filters", method: "get", action: "/" },
    field("status", status),
    field("orchestration", text("name", "name")),
    field("started since (UTC)", text("since", "2026-12-07T00:00")),
    field("until (UTC)", text("until", "")),
    field("instance id", text("q", "contains…")),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "all", value: "1", checked: params.get("all") === "1" }), "every execution"),
    h("button", { type: "submit" }, "Apply"),
    h("a", { href: "/", class: "reset" }, "reset"));
}

function listRow(row) {
  const took = row.duration_ms === null ? "" : duration(row.duration_ms);
  return h("tr", { class: `row-${row.status}` },
    h("td", {}, h("a", { class: "instance-link", href: executionHref(row.instance_id, row.execution_id) }, row.instance_id)),
    h("td", { class: "num" }, row.execution_id),
    h("td", {}, row.name ? `${row.name} ${row.version || ""}` : h("span", { class: "muted" }, "?")),
    h("td", { class: "when" }, statusBadge(row.status)),
    h("td", { class: "when" }, row.started_ms ? utc(row.started_ms) : noTime()),
    h("td", { class: "num" }, took),
    h("td", { class: "num" }, row.event_count),
    h("td", { class: "num" }, size(row.bytes)));
}

function pager(params, result) {
  const link = (page, label) => {
    const next = new URLSearchParams(params);
    next.set("page", String(page));
    return h("a", { href: `/?${next}`, class: "page-link" }, label);
  };
  return h("nav", { class: "pager" },
    result.page > 1 ? link(result.page - 1, "← previous") : null,
    h("span", { class: "muted" }, ` page ${result.page} `),
    result.has_next ? link(result.page + 1, "next →") : null);
}

async function listPage() {
  const params = new URLSearchParams(location.search);
  const result = await getJSON(`/api/executions?${params}`);
  document.getElementById("store").textContent = result.store || "";
  document.title = "executions · eventstore viewer";
  const head = h("tr", {}, ["instance", "execution", "orchestration", "status", "started (UTC)",
    "took", "events", "size"].map((c) => h("th", {}, c)));
  const body = result.rows.length
    ? result.rows.map(listRow)
    : [h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No executions match."))];
  show(h("h1", {}, "Executions"), filterForm(params),
    h("table", { id: "executions", class: "list" }, h("thead", {}, head), h("tbody", {}, body)),
    pager(params, result));
}

// -- the execution page ------------------------------------------------------

function chainNav(view) {
  const items = [];
  if (view.previous_execution !== null) {
    items.push(h("a", { id: "previous-execution", href: executionHref(view.instance_id, view.previous_execution) },
      `← execution ${view.previous_execution}`));
  }
  items.push(h("span", { class: "muted" }, ` execution ${view.execution_id} of ${view.executions.length} `));
  if (view.next_execution !== null) {
    items.push(h("a", { id: "next-execution", href: executionHref(view.instance_id, view.next_execution) },
      `execution ${view.next_execution} →`));
  }
  return h("nav", { class: "chain" }, items);
}

function barRow(bar, range) {
  const label = h("div", { class: "bar-label", title: bar.label }, h("span", { class: "kind" }, bar.kind), " ", bar.label);
  const track = h("div", { class: "track" });
  if (!bar.timed || range === null) {
    track.append(noTime());
  } else {
    const end = bar.end_ms === null ? range.end : bar.end_ms;
    const node = h("a", {
      class: `bar bar-${bar.kind} outcome-${bar.outcome}`, href: `#event-${bar.start_event_id}`,
      dataset: { event: bar.start_event_id },
      title: `${bar.label}: ${bar.outcome}${bar.end_ms === null ? "" : `, ${duration(end - bar.start_ms)}`}`,
    });
    place(node, bar.start_ms, end, range);
    for (const segment of bar.segments) {
      const part = h("span", { class: `segment segment-${segment.what}`, title: `${segment.what} ${duration(segment.end_ms - segment.start_ms)}` });
      const whole = Math.max(end - bar.start_ms, 1);
      part.style.left = `${((segment.start_ms - bar.start_ms) / whole) * 100}%`;
      part.style.width = `${((segment.end_ms - segment.start_ms) / whole) * 100}%`;
      node.append(part);
    }
    track.append(node);
    track.append(h("span", { class: "bar-time" }, bar.end_ms === null ? bar.outcome : duration(end - bar.start_ms)));
  }
  if (bar.child) {
    // first, so a long label cannot hide it
    label.prepend(h("a", { class: "child-link", href: executionHref(bar.child.instance, bar.child.execution) }, "child →"), " ");
  }
  return h("div", { class: `timeline-row${bar.outcome === "failed" ? " failed" : ""}` }, label, track);
}

function place(node, start, end, range) {
  // kept inside the track even when clocks disagree (an end stamped before its start)
  const span = Math.max(range.end - range.start, 1);
  const left = Math.min(Math.max(((start - range.start) / span) * 100, 0), 99.6);
  const width = Math.max(((Math.max(end, start) - start) / span) * 100, 0.4);
  node.style.left = `${left}%`;
  node.style.width = `${Math.min(width, 100 - left)}%`;
}

function timeline(view) {
  // A running execution's timeline runs to now: what it still waits for shows as waiting.
  const end = view.status === "running" ? Math.max(view.end_ms, view.now_ms) : view.end_ms;
  const range = view.start_ms === null ? null : { start: view.start_ms, end };
  const whole = { kind: "orchestration", label: view.name || view.instance_id, start_event_id: view.events[0]?.event_id ?? 0,
    start_ms: view.start_ms, end_ms: view.status === "running" ? null : end,
    outcome: view.status === "running" ? "open" : view.status, timed: range !== null, segments: [], child: null };
  const rows = batched("div", { class: "rows" }, [whole, ...view.bars], (bar) => barRow(bar, range), BARS_AT_ONCE, "bars");
  const axis = range === null
    ? h("div", { class: "axis muted" }, "no event of this execution has a timestamp")
    : h("div", { class: "axis" }, h("span", {}, utc(range.start)), h("span", {}, duration(range.end - range.start)), h("span", {}, utc(range.end)));
  const legend = h("div", { class: "legend muted" },
    h("span", { class: "swatch segment-wait" }), " waiting ",
    h("span", { class: "swatch segment-run" }), " running ",
    h("span", { class: "swatch segment-late" }), " timer late ",
    h("span", { class: "swatch outcome-failed" }), " failed ",
    h("span", { class: "swatch outcome-open" }), " open");
  return h("section", { id: "timeline" }, h("h2", {}, "Timeline"), axis, rows, legend);
}

function fieldBlock(field) {
  const body = h("pre", { class: field.json ? "json" : "text" }, field.text);
  if (!field.large) return h("div", { class: "field" }, h("span", { class: "field-name" }, field.name), body);
  const lines = field.text.split("\n").length;
  return h("details", { class: "field large" },
    h("summary", {}, h("span", { class: "field-name" }, field.name), ` (${lines} ${lines === 1 ? "line" : "lines"}, ${field.text.length} characters)`), body);
}

function eventRow(event) {
  const when = event.timestamp_ms === null
    ? noTime()
    : h("span", { class: "time" }, utc(event.timestamp_ms), h("span", { class: "offset" }, ` +${duration(event.offset_ms)}`));
  const refs = [];
  if (event.source_event_id !== null) refs.push(h("a", { class: "source-link", href: `#event-${event.source_event_id}` }, `for #${event.source_event_id}`));
  if (event.answered_by !== null && event.answered_by !== undefined) refs.push(h("a", { class: "answer-link", href: `#event-${event.answered_by}` }, `answered by #${event.answered_by}`));
  for (const link of event.links) refs.push(h("a", { class: `link-${link.label.replace(/ /g, "-")}`, href: executionHref(link.instance, link.execution) }, `${link.label}: ${link.instance}`));
  const chips = event.metadata.map((m) => h("span", { class: "chip" }, `${m.name} ${m.value}`));
  return h("li", { id: `event-${event.event_id}`, class: `event${event.failed ? " failed" : ""}${event.timestamp_ms === null ? " untimed" : ""}` },
    h("div", { class: "event-head" },
      h("span", { class: "event-id" }, `#${event.event_id}`), h("span", { class: "event-type" }, event.event_type),
      h("span", { class: "event-title" }, event.title), when),
    h("div", { class: "event-refs" }, refs, chips),
    event.fields.map(fieldBlock));
}

let revealEvent = () => {};

function figures(view) {
  const parts = [`${view.events.length} ${view.events.length === 1 ? "event" : "events"}`];
  if (view.bytes !== null) parts.push(size(view.bytes));
  if (view.duration_ms !== null) parts.push(`took ${duration(view.duration_ms)}`);
  return `· ${parts.join(" · ")}`;
}

function executionView(view) {
  document.title = `${view.instance_id} · eventstore viewer`;
  const started = view.name ? `${view.name} ${view.version || ""}` : "";
  const live = view.status === "running" ? h("span", { id: "live", class: "live" }, "live: new events appear as they are stored") : null;
  const untimed = view.untimed_events
    ? h("p", { id: "untimed-note", class: "note" }, `${view.untimed_events} of ${view.events.length} events have no timestamp (legacy rows): they are listed in order, marked “no time”, and not placed on the timeline.`)
    : null;
  const events = batched("ol", { class: "events" }, view.events, eventRow, EVENTS_AT_ONCE, "events");
  // a link to an event not shown yet (#event-N) shows the list through it
  revealEvent = (id) => {
    const index = view.events.findIndex((event) => `event-${event.event_id}` === id);
    if (index >= 0) events.showThrough(index);
    document.getElementById(id)?.scrollIntoView();
  };
  return [
    h("p", {}, h("a", { href: "/" }, "← executions")),
    h("h1", { id: "instance" }, view.instance_id),
    h("p", { class: "summary" }, h("span", { id: "status" }, statusBadge(view.status)), " ", started, " ",
      h("span", { id: "figures", class: "muted" }, figures(view)), " ", live),
    chainNav(view),
    untimed,
    timeline(view),
    h("section", { id: "events" }, h("h2", {}, `Events (${view.events.length})`), events),
  ];
}

async function executionPage() {
  const params = new URLSearchParams(location.search);
  const instance = params.get("instance") || "";
  const execution = params.get("execution");
  const query = new URLSearchParams({ instance });
  if (execution) query.set("execution", execution);
  let view = await getJSON(`/api/execution?${query}`);
  document.getElementById("store").textContent = view.store || "";
  show(...executionView(view));
  if (location.hash) revealEvent(location.hash.slice(1));
  addEventListener("hashchange", () => revealEvent(location.hash.slice(1)));
  while (view.status === "running") {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const pinned = new URLSearchParams({ instance, execution: String(view.execution_id) });
    const last = await getJSON(`/api/execution/last?${pinned}`).catch(() => null);
    if (last === null) continue;
    if (last.last_event_id === view.last_event_id && last.executions.length === view.executions.length) continue;
    view = await getJSON(`/api/execution?${pinned}`);
    show(...executionView(view));
  }
}

async function start() {
  try {
    if (location.pathname === "/execution") await executionPage();
    else await listPage();
  } catch (error) {
    showError(error);
  }
}

document.addEventListener("DOMContentLoaded", start);
