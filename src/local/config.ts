// SPDX-License-Identifier: Apache-2.0
/**
 * The configuration of the local runtime. The runtime never reads the environment: `src/cmd`
 * reads it (and the flags) and passes a {@link LocalConfig} in.
 */

/** PATH of the runtime's processes when the CLI has none. */
export const DEFAULT_HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Lifetime of the SVIDs the identity provider issues (rotated at half). */
export const RUNTIME_SVID_TTL = "1h";

/**
 * Settings every NSM process of the runtime takes from the environment of `nsm up` / `nsm apply`
 * (e.g. `NSM_MAX_TOKEN_LIFETIME=20s NSM_REQUEST_TIMEOUT=5s nsm up` for quick expiry in heal
 * tests, as upstream's extended heal test sets them).
 */
export const INHERITED_VARIABLES = [
  "NSM_LOG_LEVEL",
  "NSM_MAX_TOKEN_LIFETIME",
  "NSM_REQUEST_TIMEOUT",
  "NSM_PROMETHEUS",
  "NSM_PASS_FDS",
  "NSM_FROM_SOURCE",
  "TELEMETRY",
  "NSM_OPEN_TELEMETRY_ENDPOINT",
] as const;

/**
 * Where the system components serve Prometheus metrics when `NSM_PROMETHEUS=true` reaches them:
 * nsmgr and forwarder on the node's underlay address (reachable from the node netns), the
 * registry on a free loopback port of the root netns (never on the host's addresses). Pods use
 * upstream's default `:9090` inside their own netns.
 */
export const PROMETHEUS_PORTS = { nsmgr: 9090, forwarder: 9091 } as const;
export const REGISTRY_PROMETHEUS_LISTEN_ON = "127.0.0.1:0";

export interface LocalConfig {
  /** PATH of every process the runtime starts (the CLI's own PATH). */
  readonly hostPath: string;
  /** The {@link INHERITED_VARIABLES} that are set, passed on to every NSM process. */
  readonly inherited: Readonly<Record<string, string>>;
  /** `NSM_SVID_TTL` of the identity provider (a Go duration). */
  readonly svidTtl: string;
}

/** A configuration with the defaults, for callers (and tests) that set only some of it. */
export function localConfig(overrides: Partial<LocalConfig> = {}): LocalConfig {
  return { hostPath: DEFAULT_HOST_PATH, inherited: {}, svidTtl: RUNTIME_SVID_TTL, ...overrides };
}
