// SPDX-License-Identifier: Apache-2.0
/**
 * The `nsm nsc` sidecar's local DNS (upstream cmd-nsc's `NSM_LOCAL_DNS_SERVER_*`): a DNS proxy in
 * the pod's network namespace that asks the DNS servers the endpoints sent in their DNSContext,
 * then the pod's original resolver; the pod's resolv.conf points at it while the client runs.
 *
 * Env: NSM_LOCAL_DNS_SERVER_ENABLED (true), NSM_LOCAL_DNS_SERVER_ADDRESS (127.0.0.1:53), and ours,
 * NSM_RESOLV_CONF: the pod's resolv.conf to rewrite. Without it, /etc/resolv.conf is rewritten only
 * when it is a mount point of this process's mount namespace (as in every container, where the
 * kubelet mounts it) and that namespace is not its parent's (a container's first process has no
 * visible parent): a client started from a shell or a test on a host filesystem never rewrites the
 * host's resolver configuration. A file that does not exist yet starts from the content of
 * /etc/resolv.conf.
 */
import { readFileSync, readlinkSync } from "node:fs";
import type { NetworkServiceElement } from "../sdk/core/chain.js";
import type { Logger } from "../sdk/core/logger.js";
import {
  DnsConfigStore,
  DnsProxy,
  dnsContextClient,
  parseServer,
  ResolvConfFile,
} from "../sdk/networkservice/common/dnscontext/index.js";
import type { Env } from "./env.js";

const ETC_RESOLV_CONF = "/etc/resolv.conf";

/** The running local DNS: the client element feeding it, and how to stop it. */
export interface LocalDns {
  readonly element: NetworkServiceElement;
  close(): Promise<void>;
}

/** True if `path` is a mount point in this process's mount namespace. */
function isMountPoint(path: string): boolean {
  try {
    return readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .some((line) => line.split(" ")[4] === path);
  } catch {
    return false;
  }
}

function readOr(path: string, def: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return def;
  }
}

/** True unless the parent process is visible and shares our mount namespace (a test runner, a shell on a host). */
function ownMountNamespace(): boolean {
  const ppid = process.ppid;
  if (!ppid) return true;
  try {
    return readlinkSync(`/proc/${ppid}/ns/mnt`) !== readlinkSync("/proc/self/ns/mnt");
  } catch {
    return true;
  }
}

/** The resolv.conf this client may rewrite, or undefined (local DNS stays off). */
function resolvConfPath(env: Env): string | undefined {
  const explicit = env.raw("NSM_RESOLV_CONF");
  if (explicit) return explicit;
  return isMountPoint(ETC_RESOLV_CONF) && ownMountNamespace() ? ETC_RESOLV_CONF : undefined;
}

/** Starts the local DNS when the env asks for it and the pod has a resolv.conf of its own. */
export async function startLocalDns(env: Env, log: Logger): Promise<LocalDns | undefined> {
  if (!env.bool("NSM_LOCAL_DNS_SERVER_ENABLED", true)) return undefined;
  const listen = env.parsed("NSM_LOCAL_DNS_SERVER_ADDRESS", "127.0.0.1:53", parseServer);
  const path = resolvConfPath(env);
  if (!path) {
    log.info(`local DNS off: ${ETC_RESOLV_CONF} is not this pod's own (set NSM_RESOLV_CONF to the pod's resolv.conf)`);
    return undefined;
  }
  const file = new ResolvConfFile(path, readOr(ETC_RESOLV_CONF, ""));
  const self = (s: { address: string; port: number }) => s.address === listen.address && s.port === listen.port;
  const fallback = file
    .parsed()
    .nameservers.flatMap((n) => {
      try {
        return [parseServer(n)];
      } catch {
        return [];
      }
    })
    .filter((s) => !self(s));
  const store = new DnsConfigStore();
  const proxy = new DnsProxy({ store, fallback, address: listen.address, port: listen.port, log });
  try {
    await proxy.start();
  } catch (err) {
    log.error({ err: (err as Error).message }, `local DNS off: cannot listen on ${listen.address}:${listen.port}`);
    return undefined;
  }
  const point = () => file.point(listen.address, store.searchDomains());
  point();
  store.onChange(point);
  log.info({ resolvConf: path, fallback: fallback.map((s) => s.address) }, "local DNS serving the pod");
  return {
    element: dnsContextClient({ store }),
    async close() {
      await proxy.close();
      file.restore();
    },
  };
}
