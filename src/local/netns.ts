// SPDX-License-Identifier: Apache-2.0
/**
 * Network namespaces of the local runtime, through iproute2 (`ip netns …`). Only names that
 * start with the runtime's prefix are ever created or deleted here.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { LocalError } from "./errors.js";

/** Longest netns name we make (a file name in /run/netns; kept short for readability). */
const MAX_NETNS_NAME = 60;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("ip", args, { encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === "number"
          ? (err as { code: number }).code
          : 1
        : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ip(args: string[]): Promise<string> {
  const r = await run(args);
  if (r.code !== 0) throw new LocalError(`ip ${args.join(" ")}: ${r.stderr.trim() || `exit code ${r.code}`}`);
  return r.stdout;
}

/** `<prefix>-<parts joined by ->`, shortened with a hash when too long. */
export function netnsName(prefix: string, ...parts: string[]): string {
  const full = `${prefix}-${parts.join("-")}`;
  if (full.length <= MAX_NETNS_NAME) return full;
  const h = createHash("sha256").update(full).digest("hex").slice(0, 8);
  return `${full.slice(0, MAX_NETNS_NAME - 9)}-${h}`;
}

/** Every netns name (from `ip netns list`). */
export async function listNetns(): Promise<string[]> {
  const out = await ip(["netns", "list"]);
  return out
    .split("\n")
    .map((l) => l.trim().split(" ")[0] ?? "")
    .filter(Boolean);
}

/** The netns names that start with `prefix-`. */
export async function listOwnNetns(prefix: string): Promise<string[]> {
  return (await listNetns()).filter((n) => n.startsWith(`${prefix}-`));
}

/** Creates a namespace with its loopback up. */
export async function addNetns(name: string): Promise<void> {
  await ip(["netns", "add", name]);
  try {
    await ip(["-n", name, "link", "set", "lo", "up"]);
  } catch (err) {
    await deleteNetns(name);
    throw err;
  }
}

/** Adds `address` (with its prefix length) to a link of a namespace. */
export async function addAddress(name: string, link: string, address: string): Promise<void> {
  await ip(["-n", name, "addr", "add", address, "dev", link]);
}

/** Deletes a namespace; an absent one counts as deleted. */
export async function deleteNetns(name: string): Promise<void> {
  const r = await run(["netns", "del", name]);
  if (r.code !== 0 && !/No such file|not exist/i.test(r.stderr)) {
    throw new LocalError(`cannot delete network namespace ${name}: ${r.stderr.trim()}`);
  }
}

/** Pids of the processes inside a namespace (`ip netns pids`). */
export async function netnsPids(name: string): Promise<number[]> {
  const r = await run(["netns", "pids", name]);
  if (r.code !== 0) return [];
  return r.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n));
}

/** The links of a namespace (`ip -n NAME -j link`), [] if the namespace is gone. */
export async function netnsLinks(name: string): Promise<{ ifname: string; ifalias?: string }[]> {
  const r = await run(["-n", name, "-j", "link", "show"]);
  if (r.code !== 0 || !r.stdout.trim()) return [];
  return JSON.parse(r.stdout) as { ifname: string; ifalias?: string }[];
}

/**
 * Deletes every link of a namespace except lo. Deleting one end of a veth pair deletes the other,
 * wherever it is; so a pod's interfaces leave their peers too even when something else (a
 * netlink socket opened inside the namespace) keeps the namespace itself alive after `netns del`.
 */
export async function deleteLinks(name: string): Promise<string[]> {
  const deleted: string[] = [];
  for (const l of await netnsLinks(name)) {
    if (l.ifname === "lo") continue;
    const r = await run(["-n", name, "link", "del", l.ifname]);
    if (r.code === 0) deleted.push(l.ifname);
  }
  return deleted;
}

/** The underlay: 198.18.0.0/15 (RFC 2544 benchmarking range), never the host's network. */
export const UNDERLAY_PREFIX_LEN = 24;
/** The fabric netns's bridge every node's underlay veth is attached to. */
export const FABRIC_BRIDGE = "br0";
/** The node's end of its underlay veth. */
export const NODE_UNDERLAY_LINK = "eth0";

/** The underlay address of node number `index` (1-based): 198.18.0.<index>. */
export function underlayAddress(index: number): string {
  if (!Number.isInteger(index) || index < 1 || index > 254)
    throw new LocalError(`no underlay address for node ${index}`);
  return `198.18.0.${index}`;
}

/**
 * Creates the fabric: a namespace holding one bridge (up, no STP, so ports forward at once)
 * that joins the nodes' underlay veths. Nothing is added to the root namespace.
 */
export async function addFabric(name: string): Promise<void> {
  await addNetns(name);
  await ip(["-n", name, "link", "add", FABRIC_BRIDGE, "type", "bridge", "stp_state", "0"]);
  await ip(["-n", name, "link", "set", FABRIC_BRIDGE, "up"]);
}

/**
 * Joins a node to the fabric: a veth created in the fabric netns, its fabric end (`port`, e.g.
 * `node-1`) on the bridge, its other end moved into the node's netns as
 * {@link NODE_UNDERLAY_LINK} with `address`/24, both up.
 */
export async function attachToFabric(fabric: string, node: string, port: string, address: string): Promise<void> {
  await ip(["-n", fabric, "link", "add", port, "type", "veth", "peer", "name", NODE_UNDERLAY_LINK, "netns", node]);
  await ip(["-n", fabric, "link", "set", port, "master", FABRIC_BRIDGE, "up"]);
  await ip(["-n", node, "addr", "add", `${address}/${UNDERLAY_PREFIX_LEN}`, "dev", NODE_UNDERLAY_LINK]);
  await ip(["-n", node, "link", "set", NODE_UNDERLAY_LINK, "up"]);
}
