// SPDX-License-Identifier: Apache-2.0
/**
 * A networkservice chain served over gRPC on a unix socket in a temporary directory (a fake
 * next hop or endpoint for tests of client elements: dial, connect, heal). The server also
 * serves MonitorConnection for the chain's connections.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import { addService } from "../../api/grpc.js";
import { MonitorConnection, NetworkService } from "../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../core/chain.js";
import { metadataServer } from "../networkservice/common/metadata/index.js";
import { ConnectionMonitor, monitorConnectionService, monitorServer } from "../networkservice/common/monitor/index.js";
import { RestartableServer } from "./sandbox.js";

export interface ServedChain {
  readonly url: string;
  readonly server: RestartableServer;
  /** The connections of the served chain, for MonitorConnection and assertions. */
  readonly monitor: ConnectionMonitor;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

/** Serves `elements` (after metadata and monitor) as a NetworkService on a fresh unix socket. */
export async function serveChain(name: string, ...elements: NetworkServiceElement[]): Promise<ServedChain> {
  const dir = mkdtempSync(join(tmpdir(), `nsm-${name}-`));
  const url = `unix://${join(dir, `${name}.sock`)}`;
  const monitor = new ConnectionMonitor();
  const handler = bind(chain(metadataServer(), monitorServer(monitor), ...elements));
  const server = new RestartableServer(name, url, (s) => {
    addService(s, NetworkService, {
      request: (req, ctx) => handler.request(req, ctx),
      close: async (conn, ctx) => {
        await handler.close(conn, ctx);
        return create(EmptySchema);
      },
    });
    addService(s, MonitorConnection, monitorConnectionService(monitor));
  });
  await server.start();
  return {
    url,
    server,
    monitor,
    stop: async () => {
      await server.stop();
      monitor.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
