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
const NODE_WIDTH = 900;
const ROW = 46;
const COLUMN: Record<string, number> = { client: 0, pod: 0, nsmgr: 220, forwarder: 440, endpoint: 660 };

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const cy = cytoscape({
  container: byId("graph"),
  minZoom: 0.02,
  // Cheaper frames for large meshes: one canvas pixel per CSS pixel, and no edges while the
  // user pans or zooms.
  pixelRatio: 1,
  hideEdgesOnViewport: true,
  maxZoom: 4,
  style: [
    {
      selector: "node",
      style: {
        label: "data(label)",
        "font-size": 12,
        // Labels too small to read are not drawn (most of them, zoomed out on a large mesh).
        "min-zoomed-font-size": 5,
        "text-valign": "bottom",
        "text-margin-y": 3,
        width: 26,
        height: 26,
        "background-color": "#9aa3b2",
      },
    },
    // Boxes (z 0) under the edges (1 to 3) under the components (10).
    { selector: "node", style: { "z-index": 10, "z-index-compare": "manual" } },
    { selector: "edge", style: { "z-index-compare": "manual" } },
    {
      selector: 'node[kind = "node"]',
      style: {
        "text-valign": "top",
        "text-margin-y": -4,
        "font-size": 14,
        "font-weight": "bold",
        "background-color": "#eef0f4",
        "border-color": "#b7bfcc",
        "border-width": 1,
        width: "data(w)",
        height: "data(h)",
        shape: "round-rectangle",
        "z-index": 0,
        events: "no",
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
  applied: { seq: number; at: number; painted?: number }[];
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
  edgeStatus: (conn: string) => hopsOf(conn).map((e) => e.data("status") as string),
};

/** The hop edges of a connection (looked up by id: no scan of every edge). */
function hopsOf(conn: string): cytoscape.EdgeSingular[] {
  const out: cytoscape.EdgeSingular[] = [];
  for (let i = 0; ; i++) {
    const e = cy.getElementById(`hop:${conn}:${i}`);
    if (e.empty()) return out;
    out.push(e as cytoscape.EdgeSingular);
  }
}

/** Where a component goes: its node's block and its kind's column, or the column outside. */
function placeAll(blocks: string[]): void {
  const columns = new Map<string, number>();
  const place = (key: string, x: number) => {
    const i = columns.get(key) ?? 0;
    columns.set(key, i + 1);
    // The middle columns (nsmgr, forwarder) sit half a row lower, so that hops along a row show.
    return { x, y: i * ROW + (x % NODE_WIDTH === COLUMN.nsmgr || x % NODE_WIDTH === COLUMN.forwarder ? ROW / 2 : 0) };
  };
  for (const n of cy.nodes().sort((a, b) => (a.data("label") < b.data("label") ? -1 : 1))) {
    const kind = n.data("kind") as string;
    if (kind === "node") continue;
    const box = n.data("box") as string | undefined;
    const block = box ? blocks.indexOf(box) : -1;
    if (block >= 0) {
      const col = COLUMN[kind] ?? 0;
      n.position(place(`${box}/${col}`, block * NODE_WIDTH + col));
    } else n.position(place("outside", Math.max(1, blocks.length) * NODE_WIDTH + (kind === "service" ? 200 : 0)));
  }
}

/**
 * Positions every element. A node's box is a plain node drawn under its components, sized to
 * hold them: cytoscape's compound nodes would do it for us, but recompute their bounds on every
 * frame, which costs a large mesh most of its update time.
 */
function layout(): void {
  const boxes = cy.nodes('[kind = "node"]');
  const blocks = boxes.map((n) => n.id()).sort();
  cy.batch(() => {
    placeAll(blocks);
    for (const box of boxes) {
      const inside = cy.nodes().filter((n) => n.data("box") === box.id());
      const bb = inside.nonempty() ? inside.boundingBox({ includeLabels: false }) : { x1: 0, y1: 0, x2: 0, y2: 0 };
      const [x1, y1, x2, y2] = [bb.x1 - 40, bb.y1 - 40, bb.x2 + 40, bb.y2 + 40];
      box.position({ x: (x1 + x2) / 2, y: (y1 + y2) / 2 });
      box.data({ w: x2 - x1, h: y2 - y1 });
    }
  });
}

/** The cytoscape element of a graph element (its `parent` kept as `box`: see {@link layout}). */
function elementDefinition(e: GraphElement): cytoscape.ElementDefinition {
  const group = e.source ? "edges" : "nodes";
  const { parent, ...data } = e;
  return { group, data: { ...data, box: parent } as cytoscape.ElementDataDefinition & { id: string } };
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
        const moved = existing.isNode() && existing.data("box") !== e.parent;
        existing.data(elementDefinition(e).data);
        if (moved) added = true;
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
  for (const e of hopsOf(id)) e.addClass("chosen");
  for (const [rid, tr] of page.trs) tr.classList.toggle("selected", rid === id);
  byId("detail-id").textContent = id;
  byId("detail").textContent = "loading…";
  await loadDetail(id);
}

/** Fetches the detail text of `id` into the detail pane (if `id` is still the one chosen). */
async function loadDetail(id: string): Promise<void> {
  const detail = byId("detail");
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

/** Records when update `seq` was applied, and when the frame showing it was drawn. */
function applied(seq: number): void {
  page.seq = seq;
  const entry: { seq: number; at: number; painted?: number } = { seq, at: Date.now() };
  // The frame after the next one: by then the frame showing this update has been drawn.
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      entry.painted = Date.now();
    }),
  );
  page.applied.push(entry);
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
    const removedNodes = remove(d.remove);
    relayout = upsert(d.upsert) || removedNodes;
  });
  if (relayout) {
    layout();
    fit();
  }
  if (page.chosen && d.upsert.some((e) => e.conn === page.chosen))
    for (const e of hopsOf(page.chosen)) e.addClass("chosen");
  showRows(d.connections, d.removeConnections);
  // The chosen connection changed (not just its rates): its detail is read again.
  const chosen = d.connections.find((r) => r.id === page.chosen);
  if (chosen && d.upsert.some((e) => e.conn === chosen.id)) void loadDetail(chosen.id);
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
