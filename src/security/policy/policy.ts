// SPDX-License-Identifier: Apache-2.0
/**
 * Authorization policies: predicates over what a hop knows about a call.
 *
 * Upstream evaluates Rego modules (`package nsm`, query `valid`) over a JSON input; there is no
 * Rego engine for Node, so a policy here is a TypeScript predicate over {@link PolicyInput},
 * which carries the same facts under camelCase names (see {@link toOpaInput} for the exact
 * upstream JSON). Every policy in a list must pass; the first that does not ends the check
 * with PermissionDenied "no sufficient privileges", and the log names it. A predicate that
 * throws is an evaluation error: Internal (as a Rego evaluation error is upstream).
 */
import type { X509Certificate } from "node:crypto";
import { Code, NsmError } from "../../sdk/core/errors.js";
import type { Logger } from "../../sdk/core/logger.js";
import type { X509Bundle } from "../x509.js";

/** One path segment as policies see it. */
export interface PolicyPathSegment {
  readonly token: string;
  readonly name?: string;
  readonly id?: string;
  readonly expires?: Date;
}

/**
 * The input of a policy check. Which fields are set depends on where the check runs:
 * - networkservice (authorize server/client): `index`, `pathSegments` (name, id, token,
 *   expires), `peerCertificate`;
 * - registry (authorize server/client): `index`, `pathSegments` (token only), `resourceId`,
 *   `resourceName`, `resourcePathIdsMap`, `peerCertificate`;
 * - monitor (MonitorConnections): `spiffeIdConnectionMap`, `selectorConnectionIds`,
 *   `serviceSpiffeId`, `peerCertificate`, and an empty path.
 */
export interface PolicyInput {
  /** The index of the hop doing the check in `pathSegments`. */
  readonly index: number;
  /** The segments the check covers (server: up to and including its own; client: all). */
  readonly pathSegments: readonly PolicyPathSegment[];
  /**
   * The TLS peer's leaf certificate (upstream `auth_info.certificate`): the caller on a server,
   * the server on a client. Undefined without TLS.
   */
  readonly peerCertificate?: X509Certificate;
  /**
   * The verifier's trust bundle: lets the signature policies accept a token signed by a rotated
   * SVID of the peer's identity (the token's `x5c`; see `verifyTokenSignature`). Not part of the
   * upstream input.
   */
  readonly trustBundle?: X509Bundle;
  /** Registry: the SPIFFE ID of the original requester (`sub` of the first path token). */
  readonly resourceId?: string;
  /** Registry: the NS or NSE name. */
  readonly resourceName?: string;
  /** Registry: name → `path_ids` recorded when the name was registered through this element. */
  readonly resourcePathIdsMap?: Readonly<Record<string, readonly string[]>>;
  /** Monitor: SPIFFE ID → ids of the connections that peer requested. */
  readonly spiffeIdConnectionMap?: Readonly<Record<string, readonly string[]>>;
  /** Monitor: the connection ids named by the MonitorScopeSelector. */
  readonly selectorConnectionIds?: readonly string[];
  /** Monitor: the SPIFFE ID of the monitoring peer. */
  readonly serviceSpiffeId?: string;
  /** The evaluation time. */
  readonly now: Date;
}

/** A named predicate. `check` returns true to allow. */
export interface Policy {
  /** Upstream file name for built-ins (`etc/nsm/opa/common/tokens_valid.rego`), or the module path. */
  readonly name: string;
  check(input: PolicyInput): boolean | Promise<boolean>;
}

/** The message of every denial (upstream `opa.AuthorizationPolicy.Check`). */
export const PERMISSION_DENIED_MESSAGE = "no sufficient privileges";

/**
 * Runs `policies` in order; resolves when all allow. A denial is NsmError PermissionDenied
 * "no sufficient privileges" (reason `policy-denied`, details `{ policy }`); a predicate that
 * throws is NsmError Internal. Both are logged at error level with the policy's name and `what`
 * (`networkservice`, `registry`, `monitor`).
 */
export async function checkPolicies(
  policies: readonly Policy[],
  input: PolicyInput,
  log: Logger,
  what: string,
): Promise<void> {
  for (const policy of policies) {
    let allowed: boolean;
    try {
      allowed = await policy.check(input);
    } catch (err) {
      log.error({ policy: policy.name, err: String(err) }, `${what}: policy evaluation failed`);
      throw new NsmError(
        `policy ${policy.name} could not be evaluated: ${(err as Error).message ?? err}`,
        Code.Internal,
        {
          cause: err,
          reason: "policy-error",
          details: { policy: policy.name },
        },
      );
    }
    if (allowed !== true) {
      log.error({ policy: policy.name }, `${what}: policy failed`);
      throw new NsmError(PERMISSION_DENIED_MESSAGE, Code.PermissionDenied, {
        reason: "policy-denied",
        details: { policy: policy.name },
      });
    }
  }
}

/**
 * The input as upstream's Rego policies receive it (snake_case, `auth_info.certificate` as
 * PEM, expires as `{seconds, nanos}`), for porting a Rego policy line by line.
 */
export function toOpaInput(input: PolicyInput): Record<string, unknown> {
  const out: Record<string, unknown> = {
    auth_info: { certificate: input.peerCertificate?.toString() ?? "" },
  };
  if (input.index !== 0) out.index = input.index;
  if (input.pathSegments.length > 0) {
    out.path_segments = input.pathSegments.map((s) => {
      const seg: Record<string, unknown> = {};
      if (s.name) seg.name = s.name;
      if (s.id) seg.id = s.id;
      seg.token = s.token;
      if (s.expires) {
        const ms = s.expires.getTime();
        seg.expires = { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
      }
      return seg;
    });
  }
  if (input.resourceId !== undefined) out.resource_id = input.resourceId;
  if (input.resourceName !== undefined) out.resource_name = input.resourceName;
  if (input.resourcePathIdsMap !== undefined) out.resource_path_ids_map = input.resourcePathIdsMap;
  if (input.spiffeIdConnectionMap !== undefined) out.spiffe_id_connection_map = input.spiffeIdConnectionMap;
  if (input.selectorConnectionIds !== undefined) out.selector_connection_ids = input.selectorConnectionIds;
  if (input.serviceSpiffeId !== undefined) out.service_spiffe_id = input.serviceSpiffeId;
  return out;
}
