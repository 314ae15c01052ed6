// SPDX-License-Identifier: Apache-2.0
/**
 * The registry's private path: the token chain of a Register/Unregister, carried out of band.
 *
 * Registry records have no `path` field, so upstream sends the path as request metadata
 * `path` and returns it as the response header `path`, JSON encoded as Go encodes its
 * `grpcmetadata.Path` struct: `{"Index":1,"PathSegments":[{"token":"<JWT>"},…]}` (an empty list
 * is `null`). Go decodes JSON keys case-insensitively; so does {@link decodeRegistryPath}.
 * Inside a process the path lives in the call context under {@link registryPathKey}; the
 * elements update it in place, as upstream updates the `*Path` in its context.
 */
import { createContextKey } from "../../sdk/core/context.js";
import { invalidArgument } from "../../sdk/core/errors.js";

/** The metadata key (request) and header key (response) of the registry path. */
export const REGISTRY_PATH_METADATA_KEY = "path";

export interface RegistryPathSegment {
  token: string;
}

export interface RegistryPath {
  index: number;
  pathSegments: RegistryPathSegment[];
}

/** The path of the registry call being handled (set by the grpcmetadata and authorize elements). */
export const registryPathKey = createContextKey<RegistryPath | undefined>(undefined, "registryPath");

/** A new empty path. */
export function emptyRegistryPath(): RegistryPath {
  return { index: 0, pathSegments: [] };
}

/** Go's JSON of the path. */
export function encodeRegistryPath(path: RegistryPath): string {
  return JSON.stringify({
    Index: path.index,
    PathSegments: path.pathSegments.length === 0 ? null : path.pathSegments.map((s) => ({ token: s.token })),
  });
}

function field(obj: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(obj).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : obj[key];
}

/** Parses Go's JSON of the path; InvalidArgument when it is not one. */
export function decodeRegistryPath(json: string): RegistryPath {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw invalidArgument(`the registry path header is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidArgument("the registry path header is not a JSON object");
  }
  const index = field(value as Record<string, unknown>, "Index") ?? 0;
  const segments = field(value as Record<string, unknown>, "PathSegments") ?? null;
  if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index > 0xffffffff) {
    throw invalidArgument("the registry path Index is not a uint32");
  }
  if (segments !== null && !Array.isArray(segments)) throw invalidArgument("the registry PathSegments is not a list");
  const pathSegments = (segments ?? []).map((s: unknown) => {
    if (s === null) return { token: "" };
    if (typeof s !== "object" || Array.isArray(s)) throw invalidArgument("a registry path segment is not an object");
    const token = field(s as Record<string, unknown>, "token") ?? "";
    if (typeof token !== "string") throw invalidArgument("a registry path token is not a string");
    return { token };
  });
  return { index, pathSegments };
}
