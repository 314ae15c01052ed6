// SPDX-License-Identifier: Apache-2.0
/**
 * The dashboard page: the mesh as a cytoscape graph (nodes as boxes holding their nsmgr,
 * forwarder and pods; services beside; one edge per hop of every connection, coloured by its
 * state), the connection table with traffic rates, the detail of the selected connection (the
 * `nsm describe connection` text) and the events as they come. Data arrives over server-sent
 * events (`/events`): a snapshot, then deltas. Every name is rendered as text (textContent, or
 * cytoscape's canvas labels), never as markup.
 *
 * Positions are computed here (a preset layout: one column per kind inside each node) rather than
 * by a force layout, so that a thousand connections lay out in linear time and nothing moves
 * when one connection changes.
 */
import cytoscape from "cytoscape";
import type { ConnectionRow, Delta, GraphElement, MeshEvent, Snapshot } from "../../src/local/dashboard/model.js";

const GREEN = "#2e9d4f";
const RED = "#d62728";
const NODE_WIDTH = 1000;
const ROW = 46;
const COLUMN: Record<string, number> = { client: 0, pod: 0, nsmgr: 250, forwarder: 500, endpoint: 750 };

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const cy = cytoscape({
  container: byId("graph"),
  minZoom: 0.02,
  maxZoom: 4,
  style: [
    {
      selector: "node",
      style: {
        label: "data(label)",
        "font-size": 11,
        "text-valign": "bottom",
        "text-margin-y": 3,
        width: 26,
        height: 26,
        "background-color": "#9aa3b2",
      },
    },
    {
      selector: 'node[kind = "node"]',
      style: {
        "text-valign": "top",
        "font-size": 14,
        "font-weight": "bold",
        "background-color": "#eef0f4",
        "border-color": "#b7bfcc",
        "border-width": 1,
        padding: "24px",
        shape: "round-rectangle",
      },
    },
    { selector: 'node[kind = "nsmgr"]', style: { "background-color": "#2f6fdf", shape: "round-rectangle" } },
    { selector: 'node[kind = "forwarder"]', style: { "background-color": "#7a4bd1", shape: "round-rectangle" } },
    { selector: 'node[kind = "endpoint"]', style: { "background-color": "#e07b00", shape: "hexagon" } },
    { selector: 'node[kind = "client"]', style: { "background-color": "#129c9c", shape: "ellipse" } },
    { selector: 'node[kind = "service"]', style: { "background-color": "#d4a017", shape: "diamond" } },
    { selector: 'node[status = "failed"]', style: { "border-color": RED, "border-width": 4 } },
    {
      selector: 'edge[kind = "hop"]',
      style: { width: 3, "curve-style": "haystack", "line-color": "#9aa3b2", "z-index": 1 },
    },
    { selector: 'edge[status = "ok"]', style: { "line-color": GREEN } },
    { selector: 'edge[status = "failed"]', style: { "line-color": RED, "z-index": 2 } },
    { selector: "edge.chosen", style: { width: 7, "z-index": 3, "line-opacity": 0.9 } },
    {
      selector: 'edge[kind = "offers"]',
      style: {
        width: 1,
        "line-style": "dashed",
        "line-color": "#c2c8d2",
        "curve-style": "bezier",
        "target-arrow-shape": "triangle",
        "target-arrow-color": "#c2c8d2",
      },
    },
  ],
});

interface PageState {
  seq: number;
  applied: { seq: number; at: number }[];
  rows: Map<string, ConnectionRow>;
  trs: Map<string, HTMLTableRowElement>;
  chosen?: string;
  userMoved: boolean;
}

const page: PageState = { seq: 0, applied: [], rows: new Map(), trs: new Map(), userMoved: false };

/** For tests and the benchmark: the graph, and what was applied when. */
(window as unknown as { nsmDashboard: unknown }).nsmDashboard = {
  cy,
  page,
  edgeStatus: (conn: string) =>
    cy
      .edges(`[kind = "hop"]`)
      .filter((e) => e.data("conn") === conn)
      .map((e) => e.data("status")),
};

function layout(): void {
  const columns = new Map<string, number>();
  const nodes = cy
    .nodes('[kind = "node"]')
    .map((n) => n.id())
    .sort();
  const place = (key: string, x: number) => {
    const i = columns.get(key) ?? 0;
    columns.set(key, i + 1);
    return { x, y: i * ROW };
  };
  cy.batch(() => {
    for (const n of cy.nodes().sort((a, b) => (a.data("label") < b.data("label") ? -1 : 1))) {
      const kind = n.data("kind") as string;
      if (kind === "node") continue;
      const parent = n.data("parent") as string | undefined;
      const block = parent ? nodes.indexOf(parent) : -1;
      if (block >= 0) {
        const col = COLUMN[kind] ?? 0;
        n.position(place(`${parent}/${col}`, block * NODE_WIDTH + col));
      } else {
        n.position(place("outside", Math.max(1, nodes.length) * NODE_WIDTH + (kind === "service" ? 200 : 0)));
      }
    }
  });
}

function elementDefinition(e: GraphElement): cytoscape.ElementDefinition {
  const group = e.source ? "edges" : "nodes";
  return { group, data: { ...e } as cytoscape.ElementDataDefinition & { id: string } };
}

const order = (e: GraphElement) => (e.source ? 2 : e.kind === "node" ? 0 : 1);

/** Adds or changes elements; true when a node was added (positions to compute again). */
function upsert(elements: readonly GraphElement[]): boolean {
  let added = false;
  for (const e of [...elements].sort((a, b) => order(a) - order(b))) {
    const existing = cy.getElementById(e.id);
    if (existing.nonempty()) {
      const moved = existing.data("source") !== e.source || existing.data("target") !== e.target;
      if (existing.isEdge() && moved) existing.remove();
      else {
        if (existing.isNode() && (existing.data("parent") ?? null) !== (e.parent ?? null))
          existing.move({ parent: e.parent ?? null });
        existing.data({ ...e, parent: undefined });
        continue;
      }
    }
    cy.add(elementDefinition(e));
    added ||= !e.source;
  }
  return added;
}

function remove(ids: readonly string[]): boolean {
  let nodes = false;
  for (const id of ids) {
    const e = cy.getElementById(id);
    nodes ||= e.isNode();
    e.remove();
  }
  return nodes;
}

function rate(bytes: number | undefined): string {
  if (bytes === undefined) return "";
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB/s`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB/s`;
  return `${bytes.toFixed(0)} B/s`;
}

function fillRow(tr: HTMLTableRowElement, r: ConnectionRow): void {
  const cells = [r.id, r.service, r.endpoint, r.shownState, rate(r.rxRate), rate(r.txRate)];
  while (tr.cells.length < cells.length) tr.insertCell();
  cells.forEach((text, i) => {
    const td = tr.cells[i]!;
    if (td.textContent !== text) td.textContent = text;
    td.title = text;
  });
  tr.cells[3]!.className = "state";
  tr.dataset.id = r.id;
  tr.dataset.status = r.status;
  tr.dataset.state = r.shownState;
}

function showRows(rows: readonly ConnectionRow[], removed: readonly string[]): void {
  const body = (byId<HTMLTableElement>("connections").tBodies[0] ?? null) as HTMLTableSectionElement;
  for (const id of removed) {
    page.trs.get(id)?.remove();
    page.trs.delete(id);
    page.rows.delete(id);
  }
  for (const r of rows) {
    page.rows.set(r.id, r);
    let tr = page.trs.get(r.id);
    if (!tr) {
      tr = body.insertRow();
      tr.addEventListener("click", () => void choose(r.id));
      page.trs.set(r.id, tr);
    }
    fillRow(tr, r);
  }
}

function showEvents(events: readonly MeshEvent[]): void {
  const list = byId<HTMLOListElement>("events");
  for (const e of events) {
    const li = document.createElement("li");
    li.className = e.kind;
    const time = document.createElement("time");
    time.textContent = new Date(e.at).toLocaleTimeString();
    li.append(time, document.createTextNode(e.text));
    if (e.conn) li.addEventListener("click", () => void choose(e.conn!));
    list.prepend(li);
  }
  while (list.children.length > 200) list.lastElementChild?.remove();
}

function showProblems(problems: readonly string[]): void {
  const list = byId<HTMLUListElement>("problems");
  list.replaceChildren(
    ...problems.map((p) => {
      const li = document.createElement("li");
      li.textContent = p;
      return li;
    }),
  );
}

function showSummary(): void {
  const rows = [...page.rows.values()];
  const failed = rows.filter((r) => r.status !== "ok").length;
  const nodes = cy.nodes('[kind = "node"]').length;
  byId("summary").textContent = `${nodes} node(s), ${rows.length} connection(s)${failed ? `, ${failed} failing` : ""}`;
}

/** Shows the `describe` text of a connection and highlights its path. */
async function choose(id: string): Promise<void> {
  page.chosen = id;
  cy.edges(".chosen").removeClass("chosen");
  cy.edges('[kind = "hop"]')
    .filter((e) => e.data("conn") === id)
    .addClass("chosen");
  for (const [rid, tr] of page.trs) tr.classList.toggle("selected", rid === id);
  byId("detail-id").textContent = id;
  const detail = byId("detail");
  detail.textContent = "loading…";
  try {
    const res = await fetch(`/api/connections/${encodeURIComponent(id)}`);
    const text = await res.text();
    if (page.chosen === id) detail.textContent = text;
  } catch (err) {
    if (page.chosen === id) detail.textContent = `cannot load: ${(err as Error).message}`;
  }
}

function fit(): void {
  if (!page.userMoved) cy.fit(undefined, 30);
}

function applied(seq: number): void {
  page.seq = seq;
  page.applied.push({ seq, at: Date.now() });
  if (page.applied.length > 100) page.applied.shift();
  document.body.dataset.seq = String(seq);
}

function applySnapshot(s: Snapshot): void {
  cy.batch(() => {
    cy.elements().remove();
    upsert(s.elements);
  });
  layout();
  showRows(s.connections, [...page.rows.keys()]);
  byId<HTMLOListElement>("events").replaceChildren();
  showEvents(s.events);
  showProblems(s.problems);
  showSummary();
  fit();
  applied(s.seq);
}

function applyDelta(d: Delta): void {
  let relayout = false;
  cy.batch(() => {
    relayout = remove(d.remove) || upsert(d.upsert);
  });
  if (relayout) {
    layout();
    fit();
  }
  if (page.chosen && d.upsert.some((e) => e.conn === page.chosen))
    cy.edges('[kind = "hop"]')
      .filter((e) => e.data("conn") === page.chosen)
      .addClass("chosen");
  showRows(d.connections, d.removeConnections);
  showEvents(d.events);
  showProblems(d.problems);
  showSummary();
  applied(d.seq);
}

function setLive(state: "ok" | "connecting" | "lost", text: string): void {
  const live = byId("live");
  live.className = `live-${state}`;
  live.textContent = text;
}

function connect(): void {
  const events = new EventSource("/events");
  events.addEventListener("open", () => setLive("ok", "live"));
  events.addEventListener("error", () => setLive("lost", "reconnecting…"));
  events.addEventListener("snapshot", (m) => applySnapshot(JSON.parse((m as MessageEvent<string>).data) as Snapshot));
  events.addEventListener("delta", (m) => applyDelta(JSON.parse((m as MessageEvent<string>).data) as Delta));
}

cy.on("tap", "edge", (e) => {
  const conn = e.target.data("conn") as string | undefined;
  if (conn) void choose(conn);
});
const graph = byId("graph");
for (const kind of ["wheel", "mousedown", "touchstart"]) graph.addEventListener(kind, () => (page.userMoved = true));
byId("fit").addEventListener("click", () => {
  page.userMoved = false;
  fit();
});
connect();
