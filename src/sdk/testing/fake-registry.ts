// SPDX-License-Identifier: Apache-2.0
/**
 * Test-only in-memory registries with the NsRegistry/NseRegistry shapes. `find` matches as the
 * upstream memory registry does (NS: name exact, payload exact when set; NSE: name exact,
 * network_service_names ⊆, URL substring) and ignores `watch`. Never imported by production code.
 */
import { create } from "@bufbuild/protobuf";
import {
  type NetworkService,
  type NetworkServiceEndpoint,
  type NetworkServiceEndpointQuery,
  NetworkServiceEndpointResponseSchema,
  type NetworkServiceQuery,
  NetworkServiceResponseSchema,
} from "../../api/gen/registry_pb.js";
import type { NseRegistry, NsRegistry } from "../registry/api.js";

export interface FakeRegistry<T, Q> {
  /** The stored records; tests may change it between calls. */
  records: T[];
  /** Every query received, in order. */
  readonly queries: Q[];
  /** When set, `find` throws this after yielding nothing. */
  failWith: Error | undefined;
}

export function fakeNsRegistry(
  records: NetworkService[] = [],
): NsRegistry & FakeRegistry<NetworkService, NetworkServiceQuery> {
  const r = {
    records,
    queries: [] as NetworkServiceQuery[],
    failWith: undefined as Error | undefined,
    async register(ns: NetworkService) {
      r.records = [...r.records.filter((x) => x.name !== ns.name), ns];
      return ns;
    },
    async *find(query: NetworkServiceQuery) {
      r.queries.push(query);
      if (r.failWith) throw r.failWith;
      const q = query.networkService;
      for (const ns of r.records) {
        if (q?.name && q.name !== ns.name) continue;
        if (q?.payload && q.payload !== ns.payload) continue;
        yield create(NetworkServiceResponseSchema, { networkService: ns });
      }
    },
    async unregister(ns: NetworkService) {
      r.records = r.records.filter((x) => x.name !== ns.name);
      return {};
    },
  };
  return r;
}

/** Whether `nse` answers a query template: same name, all its services, its URL. */
function nseMatches(nse: NetworkServiceEndpoint, q: NetworkServiceEndpoint | undefined): boolean {
  if (!q) return true;
  if (q.name && q.name !== nse.name) return false;
  if (!q.networkServiceNames.every((n) => nse.networkServiceNames.includes(n))) return false;
  return !q.url || nse.url.includes(q.url);
}

export function fakeNseRegistry(
  records: NetworkServiceEndpoint[] = [],
): NseRegistry & FakeRegistry<NetworkServiceEndpoint, NetworkServiceEndpointQuery> {
  const r = {
    records,
    queries: [] as NetworkServiceEndpointQuery[],
    failWith: undefined as Error | undefined,
    async register(nse: NetworkServiceEndpoint) {
      r.records = [...r.records.filter((x) => x.name !== nse.name), nse];
      return nse;
    },
    async *find(query: NetworkServiceEndpointQuery) {
      r.queries.push(query);
      if (r.failWith) throw r.failWith;
      const q = query.networkServiceEndpoint;
      for (const nse of r.records) {
        if (nseMatches(nse, q)) yield create(NetworkServiceEndpointResponseSchema, { networkServiceEndpoint: nse });
      }
    },
    async unregister(nse: NetworkServiceEndpoint) {
      r.records = r.records.filter((x) => x.name !== nse.name);
      return {};
    },
  };
  return r;
}
