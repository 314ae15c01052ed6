// SPDX-License-Identifier: Apache-2.0
// Where the Go-built test peers live (scripts/peers.sh) and why one is missing.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const peersDir = process.env.NSM_PEERS_DIR ?? "/var/cache/nsm-peers";

/** The absolute path of a built peer binary. */
export function peerPath(name: string): string {
  return join(peersDir, "bin", name);
}

/**
 * Why the named peers cannot be used, or undefined when all are built. A test passes the result
 * to `skip`, so a missing peer is reported with the build command and its error, never silently.
 */
export function missingPeers(...names: string[]): string | undefined {
  const reasons: string[] = [];
  for (const name of names) {
    const failed = join(peersDir, "failed", name);
    if (existsSync(failed)) reasons.push(`${name} failed to build: ${readFileSync(failed, "utf8").trim()}`);
    else if (!existsSync(peerPath(name))) reasons.push(`${name} is not built (run bash scripts/peers.sh)`);
  }
  return reasons.length ? reasons.join("; ") : undefined;
}
