// SPDX-License-Identifier: Apache-2.0
/** Registry look-ups shared by discover and discoverforwarder. */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  type NetworkService,
  type NetworkServiceEndpoint,
  NetworkServiceEndpointQuerySchema,
  NetworkServiceEndpointSchema,
  NetworkServiceQuerySchema,
  NetworkServiceSchema,
} from "../../../../api/gen/registry_pb.js";
import { create } from "../../../../api/index.js";
import type { CallContext } from "../../../core/context.js";
import { Code, NsmError, notFound } from "../../../core/errors.js";
import type { NseRegistry, NsRegistry } from "../../../registry/api.js";

/** Wraps a registry failure, keeping its code (Unavailable for anything that is not an NsmError). */
function registryError(err: unknown, what: string): NsmError {
  const e = NsmError.from(err, Code.Unavailable);
  return new NsmError(`failed to find ${what}: ${e.rawMessage}`, e.code, { cause: e, reason: "registry" });
}

async function collect<R extends { deleted: boolean }>(stream: () => AsyncIterable<R>, what: string): Promise<R[]> {
  const out: R[] = [];
  try {
    for await (const r of stream()) if (!r.deleted) out.push(r);
  } catch (err) {
    throw registryError(err, what);
  }
  return out;
}

/** The network service named `name` (and `payload`, when set). NotFound if the registry has none. */
export async function findNetworkService(
  registry: NsRegistry,
  name: string,
  payload: string,
  ctx: CallContext,
): Promise<NetworkService> {
  const query = create(NetworkServiceQuerySchema, { networkService: create(NetworkServiceSchema, { name, payload }) });
  const what = `network service "${name}"`;
  const found = await collect(() => registry.find(query, ctx), what);
  const ns = found.map((r) => r.networkService).find((n) => n?.name === name);
  if (!ns) throw notFound(`network service "${name}" is not found`, { reason: "no-network-service" });
  return ns;
}

/** Endpoints matching `filter` as the registry's Find does (name exact, service names ⊆, URL substring). */
export async function findEndpoints(
  registry: NseRegistry,
  filter: { name?: string; networkServiceNames?: string[]; url?: string },
  ctx: CallContext,
): Promise<NetworkServiceEndpoint[]> {
  const query = create(NetworkServiceEndpointQuerySchema, {
    networkServiceEndpoint: create(NetworkServiceEndpointSchema, {
      name: filter.name ?? "",
      networkServiceNames: filter.networkServiceNames ?? [],
      url: filter.url ?? "",
    }),
  });
  const what = filter.name ? `network service endpoint "${filter.name}"` : `endpoints of ${JSON.stringify(filter)}`;
  const found = await collect(() => registry.find(query, ctx), what);
  // The registry already filters; name and services are checked again to stay right with any
  // registry. The URL is not: nsmgr's localbypass matches on its own URL and then hands back
  // the endpoint's real one.
  return found
    .map((r) => r.networkServiceEndpoint)
    .filter((nse): nse is NetworkServiceEndpoint => nse !== undefined)
    .filter((nse) => !filter.name || nse.name === filter.name)
    .filter((nse) => (filter.networkServiceNames ?? []).every((n) => nse.networkServiceNames.includes(n)));
}

/** The endpoint named `name`. NotFound if the registry has none. */
export async function findEndpointByName(
  registry: NseRegistry,
  name: string,
  ctx: CallContext,
): Promise<NetworkServiceEndpoint> {
  const [nse] = await findEndpoints(registry, { name }, ctx);
  if (!nse) throw notFound(`network service endpoint "${name}" is not found`, { reason: "no-endpoint" });
  return nse;
}

/** Drops endpoints whose registration expired (expiration_time before `nowMs`). */
export function dropExpired(nses: readonly NetworkServiceEndpoint[], nowMs: number): NetworkServiceEndpoint[] {
  return nses.filter((nse) => !nse.expirationTime || timestampMs(nse.expirationTime) > nowMs);
}
