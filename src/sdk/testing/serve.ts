// SPDX-License-Identifier: Apache-2.0
/**
 * Servers for tests, each on a unix socket in its own temporary directory: any service set
 * ({@link serveOnUnixSocket}, e.g. a real endpoint's `register`), or a networkservice chain with
 * MonitorConnection ({@link serveChain}: a fake next hop or endpoint for tests of client
 * elements and chains).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { MonitorConnection, type MonitorScopeSelector, NetworkService } from "../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../core/chain.js";
import type { CallContext } from "../core/context.js";
import { addService } from "../grpc/service.js";
import { metadataServer } from "../networkservice/common/metadata/index.js";
import { ConnectionMonitor, monitorConnectionService, monitorServer } from "../networkservice/common/monitor/index.js";
import { RestartableServer } from "./sandbox.js";

export interface ServedChain {
  readonly url: string;
  readonly server: RestartableServer;
  /** The connections of the served chain, for MonitorConnection and assertions. */
  readonly monitor: ConnectionMonitor;
  /** MonitorConnections streams open now whose subscription is live. */
  openWatches(): number;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

export interface Served {
  readonly url: string;
  readonly server: RestartableServer;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

/** Serves what `register` adds to a grpc-js server (e.g. `endpoint.register`) on a fresh unix socket. */
export async function serveOnUnixSocket(name: string, register: (server: grpc.Server) => void): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), `nsm-${name}-`));
  const url = `unix://${join(dir, `${name}.sock`)}`;
  const server = new RestartableServer(name, url, register);
  await server.start();
  return {
    url,
    server,
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Serves `elements` (after metadata and monitor) as a NetworkService on a fresh unix socket. */
export async function serveChain(name: string, ...elements: NetworkServiceElement[]): Promise<ServedChain> {
  const monitor = new ConnectionMonitor();
  const handler = bind(chain(metadataServer(), monitorServer(monitor), ...elements));
  const served = await serveOnUnixSocket(name, (s) => {
    addService(s, NetworkService, {
      request: (req, ctx) => handler.request(req, ctx),
      close: async (conn, ctx) => {
        await handler.close(conn, ctx);
        return create(EmptySchema);
      },
    });
    const service = monitorConnectionService(monitor);
    addService(s, MonitorConnection, {
      monitorConnections: (selector: MonitorScopeSelector, ctx: CallContext) =>
        counted(service.monitorConnections(selector, ctx)),
    });
  });
  let watches = 0;
  /** Counts a MonitorConnections stream as open once its subscription is live (first event sent). */
  async function* counted<E>(stream: AsyncIterable<E>): AsyncGenerator<E> {
    let open = false;
    try {
      for await (const event of stream) {
        if (!open) {
          open = true;
          watches++;
        }
        yield event;
      }
    } finally {
      if (open) watches--;
    }
  }
  return {
    ...served,
    monitor,
    openWatches: () => watches,
    stop: async () => {
      await served.stop();
      monitor.close();
    },
  };
}
