// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm identity-provider` (internal; `nsm up` starts it): the embedded CA serving the SPIFFE
 * Workload API on a unix socket, as a SPIRE agent would, to the processes of the local runtime
 * (or of a test or bench harness).
 *
 * Callers are attested by their unix peer credentials (the pids holding the other end of the
 * connection, root only) and resolved through the process identity file that the runtime writes
 * (pid → nearest listed ancestor → SPIFFE ID, start times checked); never by what they claim.
 * SVIDs are short-lived and rotated at half of their lifetime.
 *
 * Env: NSM_LISTEN_ON (the socket, unix:///path; required), NSM_CA_FILE (JSON
 * `{certificatePem, privateKeyPem}` as `CertificateAuthority.export()` writes it; required),
 * NSM_PROCESS_IDENTITIES (the process identity file; required), NSM_SVID_TTL (1h),
 * NSM_LOG_LEVEL.
 */
import { readFileSync } from "node:fs";
import { parseNsmUrl } from "../sdk/grpc/dial.js";
import { type CertificateAuthority, loadCa } from "../security/ca.js";
import { processIdentityResolver } from "../security/workloadapi/processes.js";
import { serveWorkloadApi } from "../security/workloadapi/server.js";
import { ConfigError, Env } from "./env.js";
import { roleLogger, untilSignal } from "./serve.js";

export async function runIdentityProvider(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const socket = env.parsed("NSM_LISTEN_ON", "", (v) => {
    const u = parseNsmUrl(v);
    if (u.scheme !== "unix") throw new Error("the Workload API listens on a unix socket (unix:///path)");
    return u.address;
  });
  const caFile = env.required("NSM_CA_FILE");
  const identities = env.required("NSM_PROCESS_IDENTITIES");
  const svidTtlMs = env.duration("NSM_SVID_TTL", "1h");
  if (svidTtlMs < 2000) throw new ConfigError("NSM_SVID_TTL", env.raw("NSM_SVID_TTL") ?? "", "must be at least 2s");
  const log = roleLogger(env, "identity-provider");
  let ca: CertificateAuthority;
  try {
    const saved = JSON.parse(readFileSync(caFile, "utf8")) as { certificatePem: string; privateKeyPem: string };
    ca = await loadCa({ ...saved, svidTtlMs });
  } catch (err) {
    throw new ConfigError("NSM_CA_FILE", caFile, (err as Error).message.replace(/^\[\w+\] /, ""));
  }
  const server = await serveWorkloadApi({
    ca,
    socket,
    svidTtlMs,
    // The runtime writes the file just after it spawns a process, which may ask first.
    resolveIdentity: processIdentityResolver(identities, { waitMs: 3000 }),
    log,
  });
  log.info({ socket: server.endpoint, trustDomain: ca.trustDomain, svidTtlMs }, "identity provider serving");
  await untilSignal();
  await server.close();
  log.info("identity provider stopped");
  return 0;
}
