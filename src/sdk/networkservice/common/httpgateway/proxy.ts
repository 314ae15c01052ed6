// SPDX-License-Identifier: Apache-2.0
/**
 * A small HTTP reverse proxy on node:http: every request goes to `backend():targetPort` with
 * the same method, path, headers (hop-by-hop ones dropped) and body, plus `X-Forwarded-For`,
 * `X-Forwarded-Host` and `X-Forwarded-Proto`; the answer comes back as it is. No backend is 503,
 * a backend that cannot be reached or does not answer in time is 502 / 504, each with a one-line
 * text body. Written on node:http directly: the forwarding is a few lines, and the proxy
 * libraries on npm bring features (websockets, rewriting) this gateway does not offer.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../../../core/logger.js";

/** Headers that belong to one hop (RFC 9110 §7.6.1), never forwarded. */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authorization"];

export interface HttpReverseProxyOptions {
  /** The backend for the next request (an address), or undefined when there is none. */
  readonly backend: () => string | undefined;
  readonly targetPort: number;
  /** How long a backend may take to answer (ms). @default 10000 */
  readonly timeoutMs?: number;
  readonly log: Logger;
}

export interface HttpReverseProxy {
  /** Listens on `host:port` (port 0: any free one); resolves with the address bound. */
  listen(port: number, host: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

function forwardedHeaders(req: http.IncomingMessage): http.OutgoingHttpHeaders {
  const headers: http.OutgoingHttpHeaders = { ...req.headers };
  for (const h of HOP_BY_HOP) delete headers[h];
  const from = req.socket.remoteAddress ?? "";
  const prior = req.headers["x-forwarded-for"];
  headers["x-forwarded-for"] = prior ? `${prior}, ${from}` : from;
  if (req.headers.host) headers["x-forwarded-host"] = req.headers.host;
  headers["x-forwarded-proto"] = "http";
  return headers;
}

function fail(res: http.ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
  res.end(`${message}\n`);
}

function forward(options: HttpReverseProxyOptions, req: http.IncomingMessage, res: http.ServerResponse): void {
  const backend = options.backend();
  if (!backend) {
    fail(res, 503, "no HTTP server is connected to the gateway");
    return;
  }
  const upstream = http.request({
    host: backend,
    port: options.targetPort,
    method: req.method,
    path: req.url,
    headers: forwardedHeaders(req),
    timeout: options.timeoutMs ?? 10_000,
  });
  upstream.on("response", (answer) => {
    const headers = { ...answer.headers };
    for (const h of HOP_BY_HOP) delete headers[h];
    res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
    answer.pipe(res);
  });
  upstream.on("timeout", () => {
    upstream.destroy();
    fail(res, 504, `${backend}:${options.targetPort} did not answer in time`);
  });
  upstream.on("error", (err) => {
    options.log.debug({ backend, err: String(err) }, "backend failed");
    fail(res, 502, `cannot reach ${backend}:${options.targetPort}: ${err.message}`);
  });
  req.pipe(upstream);
}

/** A reverse proxy to the backends `options.backend` names (see the module doc). */
export function httpReverseProxy(options: Readonly<HttpReverseProxyOptions>): HttpReverseProxy {
  const server = http.createServer((req, res) => forward(options, req, res));
  return {
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
