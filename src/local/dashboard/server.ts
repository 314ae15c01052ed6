// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm dashboard`'s web server (node:http): the page (see ./assets.ts), a server-sent events
 * stream (`/events`: a `snapshot` when the page connects, then a `delta` for every change) and
 * two JSON/text endpoints (`/api/snapshot`, `/api/connections/ID`: the `nsm describe connection`
 * text). The mesh is read every `pollMs` and at once when the source signals a change; each
 * reading goes through a {@link MeshTracker} and only what changed is pushed.
 *
 * Every name reaches the page as JSON data and is rendered as text (never as markup); the page
 * is served with a Content-Security-Policy that allows only its own script (inline styles are
 * allowed: cytoscape sets style attributes on its canvas).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { LocalError } from "../errors.js";
import type { Assets } from "./assets.js";
import { type Delta, MeshTracker } from "./model.js";
import type { MeshSource } from "./source.js";

export interface DashboardOptions {
  /** @default "127.0.0.1" */
  readonly host?: string;
  /** 0: any free port. */
  readonly port: number;
  /** @default 1000 */
  readonly pollMs?: number;
  readonly assets: Assets;
  /** Told about a failure that does not stop the server (a reading that threw). */
  readonly onError?: (err: Error) => void;
}

export interface Dashboard {
  readonly url: string;
  /** Reads the mesh now (and pushes what changed); resolves when that reading is applied. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/** Serialized readings: one in flight, and one more queued if asked for meanwhile. */
class Refresher {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(private readonly step: () => Promise<void>) {}

  run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running.then(() => this.running ?? Promise.resolve());
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.step();
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }
}

function sse(res: ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

interface Routes {
  readonly assets: Assets;
  readonly tracker: MeshTracker;
  readonly source: MeshSource;
  readonly streams: Set<ServerResponse>;
}

function openStream(req: IncomingMessage, res: ServerResponse, r: Routes): void {
  res.writeHead(200, { ...SECURITY_HEADERS, "content-type": "text/event-stream", connection: "keep-alive" });
  res.write("retry: 1000\n\n");
  sse(res, "snapshot", r.tracker.snapshot(Date.now()));
  r.streams.add(res);
  req.on("close", () => r.streams.delete(res));
}

async function describeRoute(res: ServerResponse, r: Routes, id: string): Promise<void> {
  try {
    send(res, 200, TEXT, await r.source.describe(id));
  } catch (err) {
    const known = err instanceof LocalError;
    send(res, known ? 404 : 500, TEXT, `${(err as Error).message}\n`);
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse, r: Routes) => void;

const TEXT = "text/plain; charset=utf-8";

const ROUTES: Record<string, Handler> = {
  "/": (_req, res, r) => send(res, 200, "text/html; charset=utf-8", r.assets.html),
  "/app.js": (_req, res, r) => send(res, 200, "text/javascript; charset=utf-8", r.assets.js),
  "/style.css": (_req, res, r) => send(res, 200, "text/css; charset=utf-8", r.assets.css),
  "/favicon.ico": (_req, res) => send(res, 204, "image/x-icon", ""),
  "/events": openStream,
  "/api/snapshot": (_req, res, r) => send(res, 200, "application/json", JSON.stringify(r.tracker.snapshot(Date.now()))),
};

const CONNECTIONS = "/api/connections/";

function route(req: IncomingMessage, res: ServerResponse, r: Routes): void {
  if (req.method !== "GET" && req.method !== "HEAD") {
    send(res, 405, TEXT, "method not allowed\n");
    return;
  }
  const path = new URL(req.url ?? "/", "http://dashboard").pathname;
  const handler = ROUTES[path === "/index.html" ? "/" : path];
  if (handler) handler(req, res, r);
  else if (!path.startsWith(CONNECTIONS)) send(res, 404, TEXT, "not found\n");
  else {
    let id: string;
    try {
      id = decodeURIComponent(path.slice(CONNECTIONS.length));
    } catch {
      send(res, 400, TEXT, "bad connection id\n");
      return;
    }
    void describeRoute(res, r, id);
  }
}

function listen(server: ReturnType<typeof createServer>, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new LocalError(`cannot listen on ${host}:${port}: ${err.code ?? err.message}`)),
    );
    server.listen(port, host, () => resolve(server.address() as AddressInfo));
  });
}

/** Serves the dashboard of `source` (see the module doc). */
export async function serveDashboard(source: MeshSource, options: DashboardOptions): Promise<Dashboard> {
  const r: Routes = { assets: options.assets, tracker: new MeshTracker(), source, streams: new Set() };
  const push = (delta: Delta) => {
    for (const res of r.streams) sse(res, "delta", delta);
  };
  let lastSeq = 0;
  const refresher = new Refresher(async () => {
    const delta = r.tracker.update(await source.read(), Date.now());
    if (delta.seq !== lastSeq) push(delta);
    lastSeq = delta.seq;
  });
  const refresh = () => refresher.run().catch((err: Error) => options.onError?.(err));
  await refresh();
  const server = createServer((req, res) => route(req, res, r));
  const host = options.host ?? "127.0.0.1";
  const address = await listen(server, host, options.port);
  const stop = new AbortController();
  const poll = setInterval(() => void refresh(), options.pollMs ?? 1000);
  const heartbeat = setInterval(() => {
    for (const res of r.streams) res.write(": keep-alive\n\n");
  }, 15_000);
  let soon: NodeJS.Timeout | undefined;
  source.watch(() => {
    soon ??= setTimeout(() => {
      soon = undefined;
      void refresh();
    }, 10);
  }, stop.signal);
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${address.port}/`,
    refresh,
    async close() {
      stop.abort();
      clearInterval(poll);
      clearInterval(heartbeat);
      clearTimeout(soon);
      for (const res of r.streams) res.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
