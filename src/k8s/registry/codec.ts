// SPDX-License-Identifier: Apache-2.0
/**
 * The custom-resource form of registry records, as upstream's registry-k8s writes it: the spec
 * of a `networkservicemesh.io/v1` NetworkService or NetworkServiceEndpoint is the record as Go's
 * `encoding/json` prints the generated struct: snake_case keys, zero values left out,
 * timestamps as `{seconds, nanos}` objects (not protobuf JSON's RFC 3339 strings). Reading
 * also accepts protobuf JSON (camelCase keys, RFC 3339 timestamps), so hand-written resources
 * work. A spec without a name takes the resource's `metadata.name`.
 */
import { type DescMessage, fromJson, type JsonObject, type MessageShape, toJson } from "@bufbuild/protobuf";

/** Keys that hold a google.protobuf.Timestamp in NS and NSE records. */
const TIMESTAMP_KEYS = new Set([
  "expiration_time",
  "initial_registration_time",
  "expirationTime",
  "initialRegistrationTime",
]);

/** Converts an RFC 3339 timestamp string to Go's `{seconds, nanos}` form. */
function goTimestamp(rfc3339: string): { seconds: number; nanos?: number } {
  const m = /\.(\d+)Z$/.exec(rfc3339);
  const seconds = Math.floor(Date.parse(rfc3339) / 1000);
  const nanos = m ? Number(m[1]!.padEnd(9, "0")) : 0;
  return nanos ? { seconds, nanos } : { seconds };
}

/** Converts Go's `{seconds, nanos}` form to an RFC 3339 string (throws on a malformed one). */
function rfc3339(value: unknown): string {
  if (typeof value === "string") return value;
  const v = value as { seconds?: unknown; nanos?: unknown } | null;
  const seconds = Number(v?.seconds ?? 0);
  const nanos = Number(v?.nanos ?? 0);
  if (!Number.isSafeInteger(seconds) || !Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) {
    throw new Error(`bad timestamp ${JSON.stringify(value)}`);
  }
  const base = new Date(seconds * 1000).toISOString().slice(0, 19);
  return nanos ? `${base}.${String(nanos).padStart(9, "0")}Z` : `${base}Z`;
}

/** The spec upstream stores for `record`. */
export function recordToSpec<S extends DescMessage>(schema: S, record: MessageShape<S>): JsonObject {
  const json = toJson(schema, record, { useProtoFieldName: true }) as JsonObject;
  for (const key of Object.keys(json)) {
    if (TIMESTAMP_KEYS.has(key) && typeof json[key] === "string") json[key] = goTimestamp(json[key] as string);
  }
  return json;
}

/** The record in a spec; throws (with the reason) when the spec is not one. */
export function specToRecord<S extends DescMessage>(schema: S, spec: unknown, metadataName: string): MessageShape<S> {
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) throw new Error("spec is not an object");
  const json: JsonObject = { ...(spec as JsonObject) };
  for (const key of Object.keys(json)) {
    if (TIMESTAMP_KEYS.has(key)) json[key] = rfc3339(json[key]);
  }
  const record = fromJson(schema, json, { ignoreUnknownFields: true });
  const named = record as unknown as { name: string };
  if (named.name === "") named.name = metadataName;
  return record;
}
