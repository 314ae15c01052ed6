// SPDX-License-Identifier: Apache-2.0
/**
 * What the dashboard shows, as plain data: a {@link Mesh} (nodes, components, endpoints, clients,
 * services and connections, as a source reads them) becomes graph elements and connection rows;
 * {@link MeshTracker} compares each reading with the previous one and tells what changed (the
 * elements and rows to add, change or remove, and the events: a connection failing, healing, its
 * endpoint reselected, an endpoint dying, a component going down). Pure: no I/O, no clock.
 *
 * A connection that disappears while its client pod still exists is kept, as `healing`, with its
 * last path: the client is expected to heal it, and the page shows it red meanwhile.
 */

/** A connection as a source reads it (one per client-side connection). */
export interface MeshConnection {
  /** The client-side id (first path segment). */
  readonly id: string;
  readonly node: string;
  readonly service: string;
  readonly endpoint: string;
  /** `UP`, `DOWN` or `REFRESH_REQUESTED`. */
  readonly state: string;
  /** Path segment names, client first. */
  readonly path: readonly string[];
  /** Client interface receive and transmit rates, bytes per second, when known. */
  readonly rxRate?: number;
  readonly txRate?: number;
}

export interface MeshNode {
  readonly name: string;
  readonly nsmgrUp: boolean;
  readonly forwarderUp: boolean;
}

export interface MeshPod {
  readonly name: string;
  readonly namespace: string;
  readonly node: string;
  /** True for a pod with client NSURLs. */
  readonly client: boolean;
}

/** Everything a source reads at one time. */
export interface Mesh {
  readonly nodes: readonly MeshNode[];
  readonly pods: readonly MeshPod[];
  readonly services: readonly { readonly name: string; readonly payload: string }[];
  readonly endpoints: readonly { readonly name: string; readonly services: readonly string[] }[];
  readonly connections: readonly MeshConnection[];
  /** Why part of the mesh could not be read (e.g. the registry is down); shown on the page. */
  readonly problems: readonly string[];
}

export type ElementKind =
  | "node"
  | "nsmgr"
  | "forwarder"
  | "endpoint"
  | "client"
  | "pod"
  | "service"
  | "component"
  | "hop"
  | "offers";

/** `ok` (green), `failed` (red: down, healing or gone), `unknown`. */
export type Status = "ok" | "failed" | "unknown";

/** One cytoscape element, as data. Edges have `source` and `target`. */
export interface GraphElement {
  readonly id: string;
  readonly kind: ElementKind;
  readonly label: string;
  readonly parent?: string;
  readonly source?: string;
  readonly target?: string;
  readonly status?: Status;
  /** The connection a hop edge belongs to. */
  readonly conn?: string;
  /** Position of a hop along its path (0: client to nsmgr). */
  readonly hop?: number;
}

/** One row of the page's connection table. */
export interface ConnectionRow extends MeshConnection {
  readonly status: Status;
  /** `UP`, `DOWN`, … or `HEALING` for a connection the nsmgrs lost while its client lives. */
  readonly shownState: string;
}

export type EventKind =
  | "connected"
  | "closed"
  | "failed"
  | "healed"
  | "reselected"
  | "endpoint-registered"
  | "endpoint-died"
  | "component-down"
  | "component-up";

export interface MeshEvent {
  readonly at: number;
  readonly kind: EventKind;
  readonly text: string;
  readonly conn?: string;
}

/** What the page needs to start from. */
export interface Snapshot {
  readonly seq: number;
  readonly at: number;
  readonly elements: readonly GraphElement[];
  readonly connections: readonly ConnectionRow[];
  readonly events: readonly MeshEvent[];
  readonly problems: readonly string[];
}

/** What changed since the previous reading. */
export interface Delta {
  readonly seq: number;
  readonly at: number;
  readonly upsert: readonly GraphElement[];
  readonly remove: readonly string[];
  readonly connections: readonly ConnectionRow[];
  readonly removeConnections: readonly string[];
  readonly events: readonly MeshEvent[];
  readonly problems: readonly string[];
}

export const nodeId = (name: string) => `node:${name}`;
export const componentId = (name: string) => `c:${name}`;
export const serviceId = (name: string) => `svc:${name}`;
export const hopId = (conn: string, i: number) => `hop:${conn}:${i}`;

function nodeElements(n: MeshNode): GraphElement[] {
  const component = (kind: "nsmgr" | "forwarder", up: boolean): GraphElement => ({
    id: componentId(`${kind}-${n.name}`),
    kind,
    label: `${kind}-${n.name}`,
    parent: nodeId(n.name),
    status: up ? "ok" : "failed",
  });
  return [
    { id: nodeId(n.name), kind: "node", label: n.name },
    component("nsmgr", n.nsmgrUp),
    component("forwarder", n.forwarderUp),
  ];
}

function podElements(mesh: Mesh): GraphElement[] {
  const endpoints = new Set(mesh.endpoints.map((e) => e.name));
  const pods = new Set(mesh.pods.map((p) => p.name));
  return [
    ...mesh.pods.map((p): GraphElement => {
      const kind = endpoints.has(p.name) ? "endpoint" : p.client ? "client" : "pod";
      return { id: componentId(p.name), kind, label: p.name, parent: p.node ? nodeId(p.node) : undefined };
    }),
    ...mesh.endpoints
      .filter((e) => !pods.has(e.name))
      .map((e): GraphElement => ({ id: componentId(e.name), kind: "endpoint", label: e.name })),
  ];
}

function componentElements(mesh: Mesh): GraphElement[] {
  return [
    ...mesh.nodes.flatMap(nodeElements),
    ...podElements(mesh),
    ...mesh.services.map((s): GraphElement => ({ id: serviceId(s.name), kind: "service", label: s.name })),
    ...mesh.endpoints.flatMap((e) =>
      e.services.map(
        (s): GraphElement => ({
          id: `offers:${e.name}:${s}`,
          kind: "offers",
          label: "",
          source: componentId(e.name),
          target: serviceId(s),
        }),
      ),
    ),
  ];
}

function hopElements(rows: Iterable<ConnectionRow>): GraphElement[] {
  const out: GraphElement[] = [];
  for (const r of rows)
    for (let i = 0; i + 1 < r.path.length; i++)
      out.push({
        id: hopId(r.id, i),
        kind: "hop",
        label: "",
        source: componentId(r.path[i]!),
        target: componentId(r.path[i + 1]!),
        status: r.status,
        conn: r.id,
        hop: i,
      });
  return out;
}

/** Every element of the graph: components, services, and one edge per hop of every connection. */
export function graphElements(mesh: Mesh, rows: Iterable<ConnectionRow>): GraphElement[] {
  const base = componentElements(mesh);
  const known = new Set(base.map((e) => e.id));
  const all = [...rows];
  const hops = hopElements(all);
  // A path may name something the mesh does not list (a cluster's components, a pod that just
  // went away): it gets a node of the kind its place in the path and its name tell.
  const extra: GraphElement[] = [];
  for (const r of all)
    r.path.forEach((name, i) => {
      const id = componentId(name);
      if (known.has(id)) return;
      known.add(id);
      extra.push({ id, kind: guessKind(name, i, r.path.length), label: name });
    });
  const offers = base.filter((e) => e.kind !== "offers" || (known.has(e.source!) && known.has(e.target!)));
  return [...offers, ...extra, ...hops];
}

function guessKind(name: string, index: number, length: number): ElementKind {
  if (index === 0) return "client";
  if (index === length - 1) return "endpoint";
  if (name.startsWith("nsmgr")) return "nsmgr";
  if (name.startsWith("forwarder")) return "forwarder";
  return "component";
}

/**
 * A connection an nsmgr holds has been established by a Request that succeeded: it is failed only
 * when its state says DOWN (what heal and the monitors set on a broken path). Any other state
 * (e.g. RESELECT_REQUESTED from an older nsmgr, before its monitor reported a reselect UP) is ok.
 */
function rowOf(c: MeshConnection): ConnectionRow {
  return { ...c, status: c.state === "DOWN" ? "failed" : "ok", shownState: c.state };
}

/** Keeps the last reading; turns each new one into a {@link Delta}. See the module doc. */
export class MeshTracker {
  private seq = 0;
  private rows = new Map<string, ConnectionRow>();
  private elements = new Map<string, string>();
  private mesh: Mesh | undefined;
  private readonly recent: MeshEvent[] = [];
  /** Endpoints whose pod went away while their registry record stays. */
  private readonly dead = new Set<string>();

  constructor(private readonly keepEvents = 200) {}

  /** The current state, for a page that connects now. */
  snapshot(at: number): Snapshot {
    return {
      seq: this.seq,
      at,
      elements: [...this.elements.values()].map((e) => JSON.parse(e) as GraphElement),
      connections: [...this.rows.values()],
      events: [...this.recent],
      problems: this.mesh?.problems ?? [],
    };
  }

  /** The connection row of `id`, if any. */
  row(id: string): ConnectionRow | undefined {
    return this.rows.get(id);
  }

  /** Takes a new reading; returns what changed (empty arrays when nothing did). */
  update(input: Mesh, at: number): Delta {
    const mesh = this.withoutDeadEndpoints(input);
    const previousRows = this.rows;
    const rows = this.nextRows(mesh);
    const events = [...connectionEvents(previousRows, rows, at), ...(this.mesh ? meshEvents(this.mesh, mesh, at) : [])];
    const changedRows = [...rows.values()].filter((r) => JSON.stringify(previousRows.get(r.id)) !== JSON.stringify(r));
    const removeConnections = [...previousRows.keys()].filter((id) => !rows.has(id));
    const { upsert, remove } = this.nextElements(graphElements(mesh, rows.values()));
    const problemsChanged = JSON.stringify(this.mesh?.problems ?? []) !== JSON.stringify(mesh.problems);
    this.rows = rows;
    this.mesh = mesh;
    this.recent.push(...events);
    this.recent.splice(0, Math.max(0, this.recent.length - this.keepEvents));
    const changed = upsert.length + remove.length + changedRows.length + removeConnections.length + events.length;
    if (changed > 0 || problemsChanged) this.seq++;
    return {
      seq: this.seq,
      at,
      upsert,
      remove,
      connections: changedRows,
      removeConnections,
      events,
      problems: mesh.problems,
    };
  }

  /**
   * The mesh without the endpoints whose pod is gone but whose registry record is still there
   * (until it expires or is unregistered): to the page they are dead as soon as their pod is.
   */
  private withoutDeadEndpoints(mesh: Mesh): Mesh {
    const registered = new Set(mesh.endpoints.map((e) => e.name));
    const pods = new Set(mesh.pods.map((p) => p.name));
    for (const p of this.mesh?.pods ?? []) if (registered.has(p.name) && !pods.has(p.name)) this.dead.add(p.name);
    for (const name of this.dead) if (!registered.has(name) || pods.has(name)) this.dead.delete(name);
    if (this.dead.size === 0) return mesh;
    return { ...mesh, endpoints: mesh.endpoints.filter((e) => !this.dead.has(e.name)) };
  }

  /** The rows of this reading, with the lost connections whose client still runs kept as healing. */
  private nextRows(mesh: Mesh): Map<string, ConnectionRow> {
    const rows = new Map(mesh.connections.map((c) => [c.id, rowOf(c)]));
    const pods = new Set(mesh.pods.map((p) => p.name));
    for (const [id, old] of this.rows)
      if (!rows.has(id) && pods.has(old.path[0] ?? ""))
        rows.set(id, { ...old, status: "failed", shownState: "HEALING", rxRate: undefined, txRate: undefined });
    return rows;
  }

  private nextElements(next: GraphElement[]): { upsert: GraphElement[]; remove: string[] } {
    const now = new Map(next.map((e) => [e.id, JSON.stringify(e)]));
    const upsert = next.filter((e) => this.elements.get(e.id) !== now.get(e.id));
    const remove = [...this.elements.keys()].filter((id) => !now.has(id));
    this.elements = now;
    return { upsert, remove };
  }
}

function connectionEvent(old: ConnectionRow | undefined, row: ConnectionRow, at: number): MeshEvent[] {
  const ev = (kind: EventKind, text: string): MeshEvent => ({ at, kind, text, conn: row.id });
  if (!old) return [ev("connected", `${row.id} connected to ${row.endpoint} (${row.service})`)];
  const out: MeshEvent[] = [];
  if (old.status === "ok" && row.status === "failed") out.push(ev("failed", `${row.id} is ${row.shownState}: healing`));
  if (old.endpoint !== row.endpoint)
    out.push(ev("reselected", `${row.id} reselected: ${old.endpoint} → ${row.endpoint}`));
  if (old.status === "failed" && row.status === "ok") out.push(ev("healed", `${row.id} healed (${row.endpoint})`));
  return out;
}

function connectionEvents(before: Map<string, ConnectionRow>, after: Map<string, ConnectionRow>, at: number) {
  const out: MeshEvent[] = [];
  for (const row of after.values()) out.push(...connectionEvent(before.get(row.id), row, at));
  for (const id of before.keys()) if (!after.has(id)) out.push({ at, kind: "closed", text: `${id} closed`, conn: id });
  return out;
}

function componentEvents(before: Mesh, after: Mesh, at: number): MeshEvent[] {
  const up = (m: Mesh) =>
    new Map(
      m.nodes.flatMap((n) => [
        [`nsmgr-${n.name}`, n.nsmgrUp] as const,
        [`forwarder-${n.name}`, n.forwarderUp] as const,
      ]),
    );
  const was = up(before);
  return [...up(after)]
    .filter(([name, is]) => was.has(name) && was.get(name) !== is)
    .map(([name, is]) => ({ at, kind: is ? "component-up" : "component-down", text: `${name} ${is ? "up" : "down"}` }));
}

function meshEvents(before: Mesh, after: Mesh, at: number): MeshEvent[] {
  const was = new Set(before.endpoints.map((e) => e.name));
  const is = new Set(after.endpoints.map((e) => e.name));
  const out = componentEvents(before, after, at);
  for (const e of is) if (!was.has(e)) out.push({ at, kind: "endpoint-registered", text: `endpoint ${e} registered` });
  for (const e of was) if (!is.has(e)) out.push({ at, kind: "endpoint-died", text: `endpoint ${e} gone` });
  return out;
}
