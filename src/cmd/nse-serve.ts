// SPDX-License-Identifier: Apache-2.0
/**
 * What every `nsm nse <kind>` beyond icmp-responder shares: serve an endpoint chain on a unix
 * socket in a temp dir, register it through nsmgr (optionally its NetworkServices too), wait for
 * SIGTERM/SIGINT, then unwind in reverse.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { NetworkServiceEndpointSchema, NetworkServiceSchema } from "../api/gen/registry_pb.js";
import { Payload } from "../api/index.js";
import type { NetworkServiceElement } from "../sdk/core/chain.js";
import { CallContext } from "../sdk/core/context.js";
import type { Logger } from "../sdk/core/logger.js";
import { closeChannel, dialChannel, parseNsmUrl } from "../sdk/grpc/dial.js";
import { type Registries, registryClients } from "../sdk/grpc/registry.js";
import { createEndpoint } from "../sdk/networkservice/chains/endpoint/index.js";
import { sendFdServer } from "../sdk/networkservice/common/sendfd/index.js";
import { registryClient } from "../sdk/registry/chains/client/index.js";
import type { Env } from "./env.js";
import type { RoleSecurity } from "./security.js";
import { listen, shutdown, startupMilestones, untilSignal } from "./serve.js";

/** The registration and serving configuration of an endpoint role. */
export interface EndpointRole {
  readonly name: string;
  readonly connectTo: string;
  readonly services: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  /** Register the NetworkServices too (with this payload). @default not registered */
  readonly registerServices?: string;
  readonly expirationMs: number;
  readonly log: Logger;
  readonly sec: RoleSecurity;
  /** The chain's observe slot (metrics and spans of `roleObservability`). @default none */
  readonly observe?: NetworkServiceElement;
}

/** `NSM_CONNECT_TO`, checked. */
export function connectToOf(env: Env): string {
  return env.parsed("NSM_CONNECT_TO", "unix:///var/lib/networkservicemesh/nsm.io.sock", (v) => {
    parseNsmUrl(v);
    return v;
  });
}

/** A served and registered endpoint: its registry (through nsmgr) and how to stop it. */
export interface ServedEndpoint {
  readonly registry: Registries;
  /** Stops serving; with `unregister`, first removes the registration (NSM_UNREGISTER_ITSELF). */
  stop(unregister: boolean): Promise<void>;
}

/**
 * Serves `additional` behind the standard endpoint chain on a unix socket in a temp dir and
 * registers it (and its services, when asked) through nsmgr.
 */
export async function serveEndpoint(role: EndpointRole, additional: NetworkServiceElement[]): Promise<ServedEndpoint> {
  const { name, sec, log } = role;
  const monitorPolicies = await sec.policies("monitor");
  const endpoint = createEndpoint({
    name,
    log,
    observe: role.observe,
    ...sec.endpoint(await sec.policies("server")),
    monitorService: (service) => sec.monitor(service, monitorPolicies),
    // Our netns goes back to nsmgr as a descriptor (upstream's grpcfd), as `nsm nse` does.
    additional: [sendFdServer(), ...additional],
  });
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const server = new grpc.Server();
  endpoint.register(server);
  const [url] = await listen(server, [`unix://${dir}/listen.on`], sec, log);
  const lifetime = new AbortController();
  const channel = dialChannel(role.connectTo, sec.dialOptions());
  const registry = registryClients(channel);
  const registration = registryClient({
    registry,
    signal: lifetime.signal,
    security: sec.registryClient(await sec.policies("registryClient")),
  });
  const ctx = () => CallContext.create({ deadline: Date.now() + 15_000, log });
  if (role.registerServices) {
    const payload = role.registerServices === Payload.IP ? Payload.IP : Payload.ETHERNET;
    for (const svc of role.services)
      await registration.ns.register(create(NetworkServiceSchema, { name: svc, payload }), ctx());
  }
  const record = create(NetworkServiceEndpointSchema, {
    name,
    networkServiceNames: [...role.services],
    networkServiceLabels: Object.fromEntries(role.services.map((s) => [s, { labels: { ...role.labels } }])),
    url,
    expirationTime: { seconds: BigInt(Math.floor((Date.now() + role.expirationMs) / 1000)), nanos: 0 },
  });
  await registration.nse.register(record, ctx());
  log.info(
    { url, services: role.services, labels: role.labels, startupMs: startupMilestones("registered") },
    "endpoint serving and registered",
  );
  return {
    registry,
    async stop(unregister) {
      lifetime.abort();
      if (unregister)
        await registration.nse
          .unregister(record, ctx())
          .catch((err) => log.warn({ err: String(err) }, "could not unregister"));
      endpoint.dispose();
      await shutdown(server);
      closeChannel(channel);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Serves `additional` behind the standard endpoint chain until a signal; `stopped` runs last. */
export async function serveEndpointRole(
  role: EndpointRole,
  additional: NetworkServiceElement[],
  stopped: () => Promise<void> = async () => {},
): Promise<number> {
  const served = await serveEndpoint(role, additional);
  await untilSignal();
  await served.stop(false);
  await stopped();
  role.sec.close();
  role.log.info("endpoint stopped");
  return 0;
}
