// SPDX-License-Identifier: Apache-2.0
/**
 * Identities in the local runtime (DESIGN.md §7).
 *
 * - `nsm up` creates the runtime's CA (`ca.json`, root only) and starts the identity provider
 *   (`nsm identity-provider`), which serves the SPIFFE Workload API on `agent.sock`; every process
 *   gets `SPIFFE_ENDPOINT_SOCKET` pointing there and fetches its SVID like it would from SPIRE.
 * - Who is who: the state already records every process the runtime started (pid and start
 *   time); after every change the runtime derives `identities.json` from it (root only):
 *   pod containers → `spiffe://<td>/ns/<namespace>/pod/<pod>` (as SPIRE's ClusterSPIFFEID
 *   template in NSM deployments), system components → `spiffe://<td>/ns/nsm-system/component/
 *   <registry | nsmgr-<node> | forwarder-<node>>`. The identity provider attests callers by unix
 *   peer pid against it, and forwarders resolve netns owners from it.
 * - The CLI itself talks to the registry and nsmgrs over mTLS too: being root, it issues itself a
 *   short-lived SVID (`…/component/cli`) from the CA file.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import type { DialOptions } from "../sdk/grpc/dial.js";
import { type CertificateAuthority, createCa, loadCa } from "../security/ca.js";
import { staticX509Source } from "../security/source.js";
import { componentSpiffeId, workloadSpiffeId } from "../security/spiffeid.js";
import { secureDialOptions } from "../security/tls.js";
import { createTokenGenerator } from "../security/token.js";
import {
  type ProcessIdentities,
  type ProcessIdentity,
  writeProcessIdentities,
} from "../security/workloadapi/processes.js";
import { LocalError } from "./errors.js";
import type { ManagedProc, RuntimePaths, State } from "./state.js";

/** The trust domain of a local runtime unless `nsm up --trust-domain` says otherwise. */
export const DEFAULT_TRUST_DOMAIN = "nsm.local";

/** The SPIFFE ID of the CLI's own (short-lived) SVID. */
export const CLI_COMPONENT = "cli";

/** Every process of the runtime with its SPIFFE ID. */
export function processIdentitiesOf(state: State): ProcessIdentities {
  const td = state.trustDomain!;
  const processes: ProcessIdentity[] = [];
  const add = (proc: ManagedProc | undefined, spiffeId: string) => {
    if (proc && proc.pid > 0) processes.push({ pid: proc.pid, start: proc.start, spiffeId });
  };
  add(state.registry, componentSpiffeId(td, "registry"));
  for (const n of state.nodes) {
    add(n.nsmgr, componentSpiffeId(td, `nsmgr-${n.name}`));
    add(n.forwarder, componentSpiffeId(td, `forwarder-${n.name}`));
  }
  for (const p of state.pods) {
    const id = workloadSpiffeId(td, p.namespace, p.name);
    for (const c of p.containers) add(c.proc, id);
  }
  return { version: 1, trustDomain: td, processes };
}

/** Rewrites `identities.json` from the state (secure runtimes only). */
export function writeIdentities(paths: RuntimePaths, state: State): void {
  if (state.insecure || !state.trustDomain) return;
  writeProcessIdentities(paths.identitiesFile, processIdentitiesOf(state));
}

/** Creates the runtime's CA and saves it in `ca.json` (mode 0600). */
export async function createRuntimeCa(paths: RuntimePaths, trustDomain: string): Promise<CertificateAuthority> {
  const ca = await createCa({ trustDomain });
  writeFileSync(paths.caFile, `${JSON.stringify(ca.export())}\n`, { mode: 0o600 });
  return ca;
}

/** The CLI's SVID lives 15 minutes; a long-running CLI (`nsm dashboard`) gets a new one after 10. */
const CLI_SVID_TTL_MS = 15 * 60_000;
const CLI_SVID_RENEW_MS = 10 * 60_000;

let cliDial: { promise: Promise<DialOptions>; at: number; ca: string; caMtime: number } | undefined;

function caMtime(paths: RuntimePaths): number {
  try {
    return statSync(paths.caFile).mtimeMs;
  } catch {
    return 0;
  }
}

async function issueCliDial(paths: RuntimePaths): Promise<DialOptions> {
  let saved: { certificatePem: string; privateKeyPem: string };
  try {
    saved = JSON.parse(readFileSync(paths.caFile, "utf8")) as typeof saved;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "EACCES" ? "permission denied: run as root" : e.message;
    throw new LocalError(`cannot read the runtime's CA ${paths.caFile} (${why})`);
  }
  const ca = await loadCa(saved);
  const svid = await ca.issue(componentSpiffeId(ca.trustDomain, CLI_COMPONENT), { ttlMs: CLI_SVID_TTL_MS });
  const source = staticX509Source(svid, ca.bundle);
  return secureDialOptions(source, { tokenGenerator: createTokenGenerator(source) });
}

/**
 * How the CLI dials the runtime's components: plaintext for an insecure runtime, otherwise mTLS
 * and path tokens with an SVID the CLI issues itself from the CA file (root only). The SVID is
 * issued again when it nears its expiry or when the CA file changed (a new runtime).
 */
export function cliDialOptions(paths: RuntimePaths, state: Pick<State, "insecure">): Promise<DialOptions> {
  if (state.insecure) return Promise.resolve({});
  const mtime = caMtime(paths);
  const stale =
    !cliDial || cliDial.ca !== paths.caFile || cliDial.caMtime !== mtime || Date.now() - cliDial.at > CLI_SVID_RENEW_MS;
  if (stale) {
    const entry = { promise: issueCliDial(paths), at: Date.now(), ca: paths.caFile, caMtime: mtime };
    entry.promise.catch(() => {
      if (cliDial === entry) cliDial = undefined;
    });
    cliDial = entry;
  }
  return cliDial!.promise;
}
