// SPDX-License-Identifier: Apache-2.0
/**
 * Throwaway network namespaces for root tests, and `ip`-based inspection of what the kernel
 * reports (tests only: the code under test never runs `ip`). Every namespace made here is
 * deleted by `deleteAll()` (call it in an after hook) or, as a last resort, on process exit.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { loadNativeBinding } from "../../src/kernel/index.js";

/** Why root kernel tests cannot run here, or undefined when they can. */
export function kernelSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root to create network namespaces";
  try {
    loadNativeBinding();
  } catch (err) {
    return `the netlink addon is not available: ${(err as Error).message}`;
  }
  return undefined;
}

/** Namespaces named `<prefix>-<random>[-role]`, all deleted together. */
export class NetnsSet {
  readonly #created = new Set<string>();
  readonly #onExit = () => this.deleteAll();

  constructor(readonly prefix: string) {
    process.on("exit", this.#onExit);
  }

  add(role = ""): string {
    const name = `${this.prefix}-${randomBytes(3).toString("hex")}${role ? `-${role}` : ""}`;
    execFileSync("ip", ["netns", "add", name]);
    this.#created.add(name);
    execFileSync("ip", ["-n", name, "link", "set", "lo", "up"]);
    return name;
  }

  /** Creates (again) a namespace with a given name, tracked like the others. */
  addNamed(name: string): string {
    execFileSync("ip", ["netns", "add", name]);
    this.#created.add(name);
    return name;
  }

  delete(name: string): void {
    spawnSync("ip", ["netns", "del", name], { stdio: "ignore" });
    this.#created.delete(name);
  }

  deleteAll(): void {
    for (const name of [...this.#created]) this.delete(name);
    process.off("exit", this.#onExit);
  }
}

export const nsPath = (name: string) => `/var/run/netns/${name}`;

/** `ip -n NS -d -j ARGS` parsed. */
export function ipJson(ns: string, ...args: string[]): any[] {
  const out = execFileSync("ip", ["-n", ns, "-d", "-j", ...args], { encoding: "utf8" });
  return out.trim() ? JSON.parse(out) : [];
}

export const linkNames = (ns: string): string[] => ipJson(ns, "link").map((l) => l.ifname as string);

/**
 * One ping from inside `ns`, retried up to `tries` times (the first packet over a new tunnel may
 * wait for ARP or a WireGuard handshake); true when answered. IPv6 is chosen by the address.
 */
export function ping(ns: string, address: string, tries = 3): boolean {
  for (let i = 0; i < tries; i++) {
    const r = spawnSync("ip", ["netns", "exec", ns, "ping", "-c", "1", "-W", "2", address], { stdio: "ignore" });
    if (r.status === 0) return true;
  }
  return false;
}

export const havePing = spawnSync("ping", ["-V"], { stdio: "ignore" }).status === 0;
