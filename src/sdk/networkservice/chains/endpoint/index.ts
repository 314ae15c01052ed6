// SPDX-License-Identifier: Apache-2.0
/**
 * The endpoint chain: the base of every NSM server (NSE, nsmgr, forwarder).
 *
 * Order (upstream, after our metrics and connlog): validate → updatepath(name) → begin → updatetoken slot → authorize slot →
 * metadata → timeout slot → monitor → trimpath → additional…
 * The security and timeout slots are pass-through until those features are configured.
 * `register(server)` serves `networkservice.NetworkService` and `connection.MonitorConnection`.
 */

import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import {
  type ConnectionEvent,
  MonitorConnection,
  type MonitorScopeSelector,
  NetworkService,
} from "../../../../api/index.js";
import {
  bind,
  chain,
  type NetworkServiceElement,
  type NetworkServiceHandler,
  passThrough,
} from "../../../core/chain.js";
import type { CallContext } from "../../../core/context.js";
import { type Logger, silentLogger } from "../../../core/logger.js";
import { addService } from "../../../grpc/service.js";
import { beginServer } from "../../common/begin/index.js";
import { connLogServer } from "../../common/connlog/index.js";
import { metadataServer } from "../../common/metadata/index.js";
import { ConnectionMonitor, monitorConnectionService, monitorServer } from "../../common/monitor/index.js";
import { timeoutServer } from "../../common/timeout/index.js";
import { trimpathServer } from "../../common/trimpath/index.js";
import { updatePathServer } from "../../common/updatepath/index.js";
import { validateServer } from "../../common/validate/index.js";

/** Options of {@link createEndpoint}. */
export interface EndpointOptions {
  /** This hop's name in the path (NSM_NAME). */
  name: string;
  /** Elements after the base chain (IPAM, mechanisms, connect…). @default [] */
  additional?: NetworkServiceElement[];
  /** Runs first, before validate (e.g. the metrics element, which then counts refused Requests too). @default none */
  observe?: NetworkServiceElement;
  /** Slot for updatetoken. @default pass-through */
  updateToken?: NetworkServiceElement;
  /** Slot for the authorize server. @default pass-through */
  authorize?: NetworkServiceElement;
  /** Slot for the timeout server. @default timeoutServer() (acts only on paths with token expiry times) */
  timeout?: NetworkServiceElement;
  /**
   * Wraps the served MonitorConnection service (e.g. with a MonitorConnections authorization).
   * @default served as is
   */
  monitorService?: (service: MonitorConnectionService) => MonitorConnectionService;
  /** Logger for served calls. @default silent */
  log?: Logger;
}

/** The MonitorConnection service as `register` serves it. */
export interface MonitorConnectionService {
  monitorConnections(selector: MonitorScopeSelector, ctx: CallContext): AsyncIterable<ConnectionEvent>;
}

/** An endpoint chain, ready to serve. */
export interface Endpoint extends NetworkServiceHandler {
  /** Its name in the path. */
  readonly name: string;
  /** The connections it serves, for MonitorConnections. */
  readonly monitor: ConnectionMonitor;
  /** Serves NetworkService and MonitorConnection on a grpc-js server. */
  register(server: grpc.Server): void;
  /** Stops background work (downstream monitor streams). */
  dispose(): void;
}

export function endpointChain(
  options: EndpointOptions,
  monitor: ConnectionMonitor,
  lifetime?: AbortSignal,
): NetworkServiceElement {
  return chain(
    ...(options.observe ? [options.observe] : []),
    connLogServer(),
    validateServer(),
    updatePathServer(options.name),
    beginServer(),
    options.updateToken ?? passThrough("updatetoken"),
    options.authorize ?? passThrough("authorize"),
    metadataServer(),
    options.timeout ?? timeoutServer({ signal: lifetime }),
    monitorServer(monitor),
    trimpathServer(),
    ...(options.additional ?? []),
  );
}

/** The standard endpoint chain (upstream order) with `options.additional` before its tail. */
export function createEndpoint(options: EndpointOptions): Endpoint {
  const log = options.log ?? silentLogger;
  const monitor = new ConnectionMonitor(log);
  const lifetime = new AbortController();
  const handler = bind(endpointChain(options, monitor, lifetime.signal));
  return {
    name: options.name,
    monitor,
    request: (req, ctx) => handler.request(req, ctx),
    close: (conn, ctx) => handler.close(conn, ctx),
    register(server) {
      addService(
        server,
        NetworkService,
        {
          request: (req, ctx) => handler.request(req, ctx),
          close: async (conn, ctx) => {
            await handler.close(conn, ctx);
            return create(EmptySchema);
          },
        },
        { log },
      );
      const service = monitorConnectionService(monitor);
      addService(server, MonitorConnection, options.monitorService?.(service) ?? service, { log });
    },
    dispose: () => {
      lifetime.abort();
      monitor.close();
    },
  };
}
