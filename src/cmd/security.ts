// SPDX-License-Identifier: Apache-2.0
/**
 * Identity and authorization of a role process (DESIGN.md §7): the X.509 source from the SPIFFE
 * Workload API, the token generator, and the policies chosen by env.
 *
 * Env (upstream names first):
 * - `SPIFFE_ENDPOINT_SOCKET`: the Workload API (`unix:///run/spire/sockets/agent.sock` with SPIRE;
 *   the local runtime's embedded identity provider otherwise). Required unless insecure.
 * - `NSM_MAX_TOKEN_LIFETIME` (10m): longest path-token lifetime (negative: already expired).
 * - `NSM_REGISTRY_SERVER_POLICIES` / `NSM_REGISTRY_CLIENT_POLICIES`: registry policies
 *   (defaults common+registry+server / common+registry+client).
 * - ours: `NSM_SERVER_POLICIES` (NetworkService authorize server, default common+server),
 *   `NSM_CLIENT_POLICIES` (authorize client, default common+client), `NSM_MONITOR_POLICIES`
 *   (MonitorConnections, default none as upstream; `etc/nsm/opa/monitor/.*.rego` enables
 *   service_connection).
 * - ours: `NSM_INSECURE=true`: plaintext gRPC, no tokens, no policies. For debugging only; it is
 *   logged loudly at start and by every component that would have checked something.
 * Policy values are comma-separated upstream file masks or paths of user policy modules (see
 * src/security/README.md).
 */

import type { Logger } from "../sdk/core/logger.js";
import { DEFAULT_POLICY_MASKS, loadPolicies, type Policy } from "../security/policy/index.js";
import { createSecurity, type Security } from "../security/setup.js";
import { ConfigError, type Env } from "./env.js";
import { observeSvid } from "./observe.js";
import { startupMark } from "./serve.js";

export type PolicyRole = keyof typeof DEFAULT_POLICY_MASKS;

const POLICY_VARS: Record<PolicyRole, string> = {
  server: "NSM_SERVER_POLICIES",
  client: "NSM_CLIENT_POLICIES",
  registryServer: "NSM_REGISTRY_SERVER_POLICIES",
  registryClient: "NSM_REGISTRY_CLIENT_POLICIES",
  monitor: "NSM_MONITOR_POLICIES",
};

/** A role's security: the library's {@link Security} plus policies read from env. */
export interface RoleSecurity extends Security {
  /** The policies of `role` from its env var (or the upstream defaults). */
  policies(role: PolicyRole): Promise<Policy[]>;
}

/** Builds the security of a role process from env; fails at start with the variable named. */
export async function roleSecurity(env: Env, log: Logger): Promise<RoleSecurity> {
  const insecure = env.bool("NSM_INSECURE", false);
  const socket = env.raw("SPIFFE_ENDPOINT_SOCKET");
  const maxTokenLifetimeMs = env.duration("NSM_MAX_TOKEN_LIFETIME", "10m");
  if (!insecure && !socket) {
    throw new ConfigError(
      "SPIFFE_ENDPOINT_SOCKET",
      "",
      "is required: the SPIFFE Workload API socket (e.g. unix:///run/spire/sockets/agent.sock); NSM_INSECURE=true runs without mTLS, for debugging only",
    );
  }
  if (insecure) {
    log.warn(
      "INSECURE MODE (NSM_INSECURE=true): no mTLS, no path tokens, no authorization policies, no netns ownership checks. Debugging only.",
    );
  }
  // Ours, not upstream's: upstream always passes namespaces as descriptors; here it is opt-in
  // (NSM_PASS_FDS=true) until a descriptor reliably reaches the forwarder when many clients
  // (re)connect at once (see the README).
  const passFds = env.bool("NSM_PASS_FDS", false);
  const sec = await createSecurity({ socket, maxTokenLifetimeMs, insecure, passFds, log });
  await observeSvid(sec.source);
  startupMark("svid");
  if (!insecure) {
    const id = sec.source!.current().svid.spiffeId;
    log.info({ spiffeId: id, trustDomain: sec.source!.current().bundle.trustDomain, maxTokenLifetimeMs }, "mTLS on");
  }
  return Object.assign(sec, {
    async policies(role: PolicyRole): Promise<Policy[]> {
      const name = POLICY_VARS[role];
      const value = env.raw(name);
      try {
        // MonitorConnections has no policy unless asked for (as upstream cmd-nsmgr).
        return await loadPolicies(value ?? (role === "monitor" ? [] : DEFAULT_POLICY_MASKS[role]), { log });
      } catch (err) {
        throw new ConfigError(name, value ?? "", (err as Error).message.replace(/^\[\w+\] /, ""));
      }
    },
  });
}
