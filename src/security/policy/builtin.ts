// SPDX-License-Identifier: Apache-2.0
/**
 * The seven default NSM policies as predicates, named by the upstream file each replaces.
 *
 * | name (upstream file) | allows when |
 * |---|---|
 * | `etc/nsm/opa/common/tokens_valid.rego` | the path is empty, or every segment's token decodes as a JWT |
 * | `etc/nsm/opa/common/tokens_chained.rego` | fewer than 2 segments, or for each adjacent pair the first token's `aud` (a list) holds the second token's `sub` |
 * | `etc/nsm/opa/common/tokens_expired.rego` | every segment's token decodes and `now < exp` |
 * | `etc/nsm/opa/server/prev_token_signed.rego` | the token at `index - 1` has a valid ES256 signature by the peer certificate's key |
 * | `etc/nsm/opa/client/next_token_signed.rego` | the token at `index + 1` has a valid ES256 signature by the peer certificate's key |
 * | `etc/nsm/opa/registry/client_allowed.rego` | the resource name has no recorded path ids, or the first recorded id is the requester (`resourceId`) |
 * | `etc/nsm/opa/monitor/service_connection.rego` | the monitoring peer requested at least one of the connections the selector names |
 */
import { decodeTokenClaims, verifyTokenSignature } from "../token.js";
import type { Policy, PolicyInput } from "./policy.js";

function decodes(token: string): boolean {
  try {
    decodeTokenClaims(token);
    return true;
  } catch {
    return false;
  }
}

function claims(token: string) {
  try {
    return decodeTokenClaims(token);
  } catch {
    return undefined;
  }
}

/** Every token decodes (vacuously true for an empty path). */
export const tokensValid: Policy = {
  name: "etc/nsm/opa/common/tokens_valid.rego",
  check: (input) => input.pathSegments.every((s) => decodes(s.token)),
};

/** Each token names the next hop as its audience, and the next token's subject is that hop. */
export const tokensChained: Policy = {
  name: "etc/nsm/opa/common/tokens_chained.rego",
  check: (input) => {
    const segs = input.pathSegments;
    for (let i = 0; i + 1 < segs.length; i++) {
      const aud = claims(segs[i]!.token)?.aud;
      const sub = claims(segs[i + 1]!.token)?.sub;
      if (!Array.isArray(aud) || sub === undefined || !aud.some((a) => a === sub)) return false;
    }
    return true;
  },
};

/** No token has expired. */
export const tokensExpired: Policy = {
  name: "etc/nsm/opa/common/tokens_expired.rego",
  check: (input) => {
    const now = input.now.getTime() / 1000;
    return input.pathSegments.every((s) => {
      const exp = claims(s.token)?.exp;
      return typeof exp === "number" && now < exp;
    });
  },
};

async function signedBy(input: PolicyInput, index: number): Promise<boolean> {
  if (index < 0 || index >= input.pathSegments.length) return false;
  return verifyTokenSignature(input.pathSegments[index]!.token, input.peerCertificate, input.trustBundle);
}

/** The previous hop's token was signed by the peer that called us. */
export const prevTokenSigned: Policy = {
  name: "etc/nsm/opa/server/prev_token_signed.rego",
  check: (input) => signedBy(input, input.index - 1),
};

/** The next hop's token was signed by the server we called. */
export const nextTokenSigned: Policy = {
  name: "etc/nsm/opa/client/next_token_signed.rego",
  check: (input) => signedBy(input, input.index + 1),
};

/** Only the identity that first registered a name may re-register or unregister it. */
export const registryClientAllowed: Policy = {
  name: "etc/nsm/opa/registry/client_allowed.rego",
  check: (input) => {
    if (input.resourceName === undefined) return true;
    const ids = input.resourcePathIdsMap?.[input.resourceName];
    if (ids === undefined) return true;
    return ids.length > 0 && ids[0] === input.resourceId;
  },
};

/** A monitoring peer may watch only connections it requested. */
export const monitorServiceConnection: Policy = {
  name: "etc/nsm/opa/monitor/service_connection.rego",
  check: (input) => {
    const owned = new Set(input.spiffeIdConnectionMap?.[input.serviceSpiffeId ?? ""] ?? []);
    const wanted = new Set(input.selectorConnectionIds ?? []);
    if (owned.size === 0 || wanted.size === 0) return false;
    for (const id of wanted) if (owned.has(id)) return true;
    return false;
  },
};

/** Every built-in policy, keyed by its upstream file name (sorted as upstream lists them). */
export const BUILTIN_POLICIES: ReadonlyMap<string, Policy> = new Map(
  [
    tokensChained,
    tokensExpired,
    tokensValid,
    nextTokenSigned,
    prevTokenSigned,
    registryClientAllowed,
    monitorServiceConnection,
  ]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((p) => [p.name, p]),
);
