// SPDX-License-Identifier: Apache-2.0
/**
 * SPIFFE IDs: parsing and validation (SPIFFE ID specification), and the ID shapes NSM uses.
 *
 * An ID is `spiffe://<trust domain><path>`: the trust domain is lower-case letters, digits,
 * `.`, `-` and `_`; the path is `/`-separated segments of letters, digits, `.`, `-` and `_`,
 * never empty, `.` or `..`, with no trailing `/`; no query, fragment, port or user info.
 * IDs travel as plain strings (`spiffe://example.org/ns/default/pod/web-0`); these helpers
 * check them once where they enter (certificates, tokens, configuration).
 */
import { invalidArgument } from "../sdk/core/errors.js";

const SCHEME = "spiffe://";
const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;
const MAX_ID_LENGTH = 2048;

/** A parsed SPIFFE ID. */
export interface SpiffeIdParts {
  readonly trustDomain: string;
  /** The path with its leading `/`, or `""` for a trust domain's own ID. */
  readonly path: string;
}

/** Why `value` is not a valid SPIFFE ID, or undefined when it is one. */
export function spiffeIdProblem(value: string): string | undefined {
  if (value.length > MAX_ID_LENGTH) return `longer than ${MAX_ID_LENGTH} bytes`;
  if (!value.startsWith(SCHEME)) return `the scheme must be "spiffe://"`;
  const rest = value.slice(SCHEME.length);
  const slash = rest.indexOf("/");
  const td = slash < 0 ? rest : rest.slice(0, slash);
  if (td === "") return "the trust domain is empty";
  if (!TRUST_DOMAIN_RE.test(td)) return `the trust domain "${td}" has characters other than a-z 0-9 . - _`;
  if (slash < 0) return undefined;
  const path = rest.slice(slash);
  if (path === "/") return "the path has a trailing slash";
  for (const segment of path.slice(1).split("/")) {
    if (segment === "") return "the path has an empty segment or a trailing slash";
    if (segment === "." || segment === "..") return `the path has a "${segment}" segment`;
    if (!SEGMENT_RE.test(segment)) return `the path segment "${segment}" has characters other than A-Z a-z 0-9 . - _`;
  }
  return undefined;
}

/** Parses a SPIFFE ID; anything else is InvalidArgument naming the problem. */
export function parseSpiffeId(value: string): SpiffeIdParts {
  const problem = spiffeIdProblem(value);
  if (problem) throw invalidArgument(`"${value}" is not a SPIFFE ID: ${problem}`, { reason: "bad-spiffe-id" });
  const rest = value.slice(SCHEME.length);
  const slash = rest.indexOf("/");
  return slash < 0 ? { trustDomain: rest, path: "" } : { trustDomain: rest.slice(0, slash), path: rest.slice(slash) };
}

/** Whether `value` is a valid SPIFFE ID. */
export function isSpiffeId(value: string): boolean {
  return spiffeIdProblem(value) === undefined;
}

/** The trust domain of a SPIFFE ID (InvalidArgument if it is not one). */
export function trustDomainOf(id: string): string {
  return parseSpiffeId(id).trustDomain;
}

/** Checks a bare trust domain name (`example.org`); returns it. */
export function checkTrustDomain(trustDomain: string): string {
  if (!TRUST_DOMAIN_RE.test(trustDomain)) {
    throw invalidArgument(`"${trustDomain}" is not a trust domain: use lower-case a-z 0-9 . - _ only`, {
      reason: "bad-trust-domain",
    });
  }
  return trustDomain;
}

/** The SPIFFE ID of a trust domain itself (`spiffe://example.org`), as used to key bundles. */
export function trustDomainId(trustDomain: string): string {
  return SCHEME + checkTrustDomain(trustDomain);
}

function checkSegment(what: string, value: string): string {
  if (!SEGMENT_RE.test(value) || value === "." || value === "..") {
    throw invalidArgument(`${what} "${value}" cannot be a SPIFFE ID path segment (A-Z a-z 0-9 . - _)`);
  }
  return value;
}

/**
 * The ID of a workload pod, as the SPIRE controller template in NSM deployments makes it:
 * `spiffe://<trust domain>/ns/<namespace>/pod/<pod>`.
 */
export function workloadSpiffeId(trustDomain: string, namespace: string, pod: string): string {
  return `${trustDomainId(trustDomain)}/ns/${checkSegment("namespace", namespace)}/pod/${checkSegment("pod", pod)}`;
}

/**
 * A stable ID for an NSM system component (registry, nsmgr of a node, forwarder of a node):
 * `spiffe://<trust domain>/ns/nsm-system/component/<name>`. Stable across restarts, so the
 * registry's `client_allowed` policy keeps recognising a restarted component as the owner of
 * what it registered.
 */
export function componentSpiffeId(trustDomain: string, name: string): string {
  return `${trustDomainId(trustDomain)}/ns/nsm-system/component/${checkSegment("component name", name)}`;
}
