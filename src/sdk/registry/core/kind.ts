// SPDX-License-Identifier: Apache-2.0
/**
 * Registry kinds: what lets one element implementation serve both registries.
 *
 * The NetworkService (NS) and NetworkServiceEndpoint (NSE) registries have the same three
 * operations over different messages. A {@link RegistryKind} names those messages (record,
 * query, response) and the few facts an element needs about them: the record's name, how a
 * query selects records (upstream matching rules, reference §7.1), and how to build queries
 * and responses. Elements that only make sense for one registry (expire, setpayload…) are
 * typed with {@link NseTypes} or {@link NsTypes} directly.
 */
import { create, equals } from "@bufbuild/protobuf";
import {
  MatchSchema,
  type NetworkService,
  type NetworkServiceEndpoint,
  type NetworkServiceEndpointQuery,
  NetworkServiceEndpointQuerySchema,
  type NetworkServiceEndpointResponse,
  NetworkServiceEndpointResponseSchema,
  NetworkServiceEndpointSchema,
  type NetworkServiceQuery,
  NetworkServiceQuerySchema,
  type NetworkServiceResponse,
  NetworkServiceResponseSchema,
  NetworkServiceSchema,
} from "../../../api/gen/registry_pb.js";
import { clone } from "../../../api/index.js";

/** The three message types of one registry. */
export interface RegistryTypes {
  readonly record: object;
  readonly query: object;
  readonly response: object;
}

/** The NetworkService registry (`registry.NetworkServiceRegistry`). */
export interface NsTypes extends RegistryTypes {
  readonly record: NetworkService;
  readonly query: NetworkServiceQuery;
  readonly response: NetworkServiceResponse;
}

/** The NetworkServiceEndpoint registry (`registry.NetworkServiceEndpointRegistry`). */
export interface NseTypes extends RegistryTypes {
  readonly record: NetworkServiceEndpoint;
  readonly query: NetworkServiceEndpointQuery;
  readonly response: NetworkServiceEndpointResponse;
}

export type RecordOf<T extends RegistryTypes> = T["record"];
export type QueryOf<T extends RegistryTypes> = T["query"];
export type ResponseOf<T extends RegistryTypes> = T["response"];

/** Describes one registry for generic elements. */
export interface RegistryKind<T extends RegistryTypes> {
  /** `"ns"` or `"nse"`; used in logs and error messages. */
  readonly id: "ns" | "nse";
  /** A readable name of the record type, e.g. `NetworkServiceEndpoint`. */
  readonly recordTypeName: string;
  /** The record's name (the registry key). */
  nameOf(record: T["record"]): string;
  /** The record's URL, for kinds that have one (NSE). */
  urlOf?(record: T["record"]): string;
  /** When the record's registration runs out (ms since the epoch), for kinds that have one (NSE). */
  expiresAt?(record: T["record"]): number | undefined;
  /** A deep copy of a record. */
  cloneRecord(record: T["record"]): T["record"];
  /** A deep copy of a query. */
  cloneQuery(query: T["query"]): T["query"];
  /** Builds a query; `template` selects records (see {@link RegistryKind.matches}). */
  query(template: T["record"] | undefined, watch: boolean): T["query"];
  /** The record template of a query (undefined selects everything). */
  queryTemplate(query: T["query"]): T["record"] | undefined;
  /** Whether the query asks to follow changes. */
  isWatch(query: T["query"]): boolean;
  response(record: T["record"], deleted: boolean): T["response"];
  /** The record carried by a response. */
  responseRecord(response: T["response"]): T["record"] | undefined;
  isDeleted(response: T["response"]): boolean;
  /** Whether `record` is selected by `template` (upstream matching rules). */
  matches(template: T["record"] | undefined, record: T["record"]): boolean;
}

function labelsContained(
  where: NetworkServiceEndpoint["networkServiceLabels"],
  what: NetworkServiceEndpoint["networkServiceLabels"],
): boolean {
  for (const [service, wanted] of Object.entries(what)) {
    const have = where[service];
    if (!have) return false;
    for (const [k, v] of Object.entries(wanted.labels)) {
      if (have.labels[k] !== v) return false;
    }
  }
  return true;
}

/**
 * NSE matching (reference §7.1). An empty field of the template does not constrain:
 * `name` exact; every `network_service_labels` entry of the template contained in the
 * record's entry for the same service; `expiration_time.seconds` equal when set;
 * `network_service_names` a subset of the record's; `url` a substring of the record's.
 */
export function matchNetworkServiceEndpoint(
  template: NetworkServiceEndpoint | undefined,
  record: NetworkServiceEndpoint,
): boolean {
  if (!template) return true;
  if (template.name !== "" && template.name !== record.name) return false;
  if (!labelsContained(record.networkServiceLabels, template.networkServiceLabels)) return false;
  if (template.expirationTime && template.expirationTime.seconds !== (record.expirationTime?.seconds ?? 0n)) {
    return false;
  }
  if (!template.networkServiceNames.every((n) => record.networkServiceNames.includes(n))) return false;
  return template.url === "" || record.url.includes(template.url);
}

/**
 * NS matching (reference §7.1): `name` exact and `payload` exact when set; `matches`
 * deep-equal (same length, element by element) when the template has any.
 */
export function matchNetworkService(template: NetworkService | undefined, record: NetworkService): boolean {
  if (!template) return true;
  if (template.name !== "" && template.name !== record.name) return false;
  if (template.payload !== "" && template.payload !== record.payload) return false;
  if (template.matches.length === 0) return true;
  return (
    template.matches.length === record.matches.length &&
    template.matches.every((m, i) => equals(MatchSchema, m, record.matches[i]!))
  );
}

/** The NetworkService registry kind. */
export const nsKind: RegistryKind<NsTypes> = {
  id: "ns",
  recordTypeName: "NetworkService",
  nameOf: (r) => r.name,
  cloneRecord: (r) => clone(NetworkServiceSchema, r),
  cloneQuery: (q) => clone(NetworkServiceQuerySchema, q),
  query: (template, watch) => create(NetworkServiceQuerySchema, { networkService: template, watch }),
  queryTemplate: (q) => q.networkService,
  isWatch: (q) => q.watch,
  response: (r, deleted) => create(NetworkServiceResponseSchema, { networkService: r, deleted }),
  responseRecord: (p) => p.networkService,
  isDeleted: (p) => p.deleted,
  matches: matchNetworkService,
};

/** The NetworkServiceEndpoint registry kind. */
export const nseKind: RegistryKind<NseTypes> = {
  id: "nse",
  recordTypeName: "NetworkServiceEndpoint",
  nameOf: (r) => r.name,
  urlOf: (r) => r.url,
  expiresAt: (r) =>
    r.expirationTime ? Number(r.expirationTime.seconds) * 1000 + Math.floor(r.expirationTime.nanos / 1e6) : undefined,
  cloneRecord: (r) => clone(NetworkServiceEndpointSchema, r),
  cloneQuery: (q) => clone(NetworkServiceEndpointQuerySchema, q),
  query: (template, watch) => create(NetworkServiceEndpointQuerySchema, { networkServiceEndpoint: template, watch }),
  queryTemplate: (q) => q.networkServiceEndpoint,
  isWatch: (q) => q.watch,
  response: (r, deleted) => create(NetworkServiceEndpointResponseSchema, { networkServiceEndpoint: r, deleted }),
  responseRecord: (p) => p.networkServiceEndpoint,
  isDeleted: (p) => p.deleted,
  matches: matchNetworkServiceEndpoint,
};
