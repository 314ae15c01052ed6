// SPDX-License-Identifier: Apache-2.0
/**
 * A mixed mesh for the interop tests: each role (registry, nsmgr, forwarder, icmp-responder, NSC,
 * NSC init) is either ours (`nsm <role>`) or upstream's own command built by scripts/peers.sh, on
 * the same environment variables (upstream's names, which ours share). Every process gets its
 * X.509-SVID from OUR identity provider (`nsm identity-provider`, attesting callers by pid from the
 * process identity file this harness writes), so the upstream commands are attested by it too.
 *
 * One node netns holds nsmgr and forwarder; each NSE and NSC has its own netns. Everything made
 * (processes by pid, netns, the temp dir) goes in `close()`.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { registry } from "../../src/api/index.js";
import { socketAccepts } from "../../src/local/cluster.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { closeChannel, dialChannel } from "../../src/sdk/grpc/dial.js";
import { registryClients } from "../../src/sdk/grpc/registry.js";
import {
  type CertificateAuthority,
  createCa,
  createCaX509Source,
  createTokenGenerator,
  type ProcessIdentity,
  processIdentity,
  secureDialOptions,
  writeProcessIdentities,
  type X509Source,
} from "../../src/security/index.js";
import { ipJson, NetnsSet } from "../helpers/netns.js";
import { peerPath } from "../helpers/peers.js";
import { stopChild } from "../helpers/process.js";

const REPO = join(import.meta.dirname, "..", "..");
const BIN = join(REPO, "bin", "nsm.js");

export type Impl = "ours" | "upstream";

/** Our `nsm` arguments and upstream's command for each role. */
const COMMANDS = {
  registry: { ours: ["registry"], upstream: "cmd-registry-memory" },
  nsmgr: { ours: ["nsmgr"], upstream: "cmd-nsmgr" },
  forwarder: { ours: ["forwarder"], upstream: undefined },
  nse: { ours: ["nse", "icmp-responder"], upstream: "cmd-nse-icmp-responder" },
  nsc: { ours: ["nsc"], upstream: "cmd-nsc" },
  "nsc-init": { ours: ["nsc", "--init"], upstream: "cmd-nsc-init" },
} as const;
export type Role = keyof typeof COMMANDS;

/** The upstream peers a set of choices needs (for `missingPeers`). */
export function upstreamPeers(choices: Partial<Record<Role, Impl>>): string[] {
  return Object.entries(choices)
    .filter(([, impl]) => impl === "upstream")
    .map(([role]) => COMMANDS[role as Role].upstream)
    .filter((c): c is NonNullable<typeof c> => c !== undefined);
}

export class MixedMesh {
  readonly dir = mkdtempSync(join(tmpdir(), "nsm-mixed-"));
  readonly trustDomain = `mixed-${Math.random().toString(16).slice(2, 8)}.test`;
  readonly netns = new NetnsSet(`nsmx-${this.trustDomain.slice(6, 12)}`);
  readonly node: string;
  readonly #children: ChildProcess[] = [];
  readonly #listed: ProcessIdentity[] = [];
  readonly logs = new Map<string, string>();
  #ca!: CertificateAuthority;
  #admin!: X509Source;

  constructor() {
    this.node = this.netns.add("node");
  }

  get registryUrl(): string {
    return `unix://${this.dir}/registry.sock`;
  }
  get nsmgrUrl(): string {
    return `unix://${this.dir}/nsm.io.sock`;
  }
  #identities = () => join(this.dir, "identities.json");
  #spiffeId = (path: string) => `spiffe://${this.trustDomain}/${path}`;

  /** Our identity provider and an SVID for the test process. */
  async startIdentityProvider(): Promise<void> {
    this.#ca = await createCa({ trustDomain: this.trustDomain });
    writeFileSync(join(this.dir, "ca.json"), JSON.stringify(this.#ca.export()), { mode: 0o600 });
    this.#writeIdentities();
    this.#spawn("identity-provider", undefined, [process.execPath, BIN, "identity-provider"], {
      NSM_LISTEN_ON: `unix://${this.dir}/agent.sock`,
      NSM_CA_FILE: join(this.dir, "ca.json"),
      NSM_PROCESS_IDENTITIES: this.#identities(),
      NSM_SVID_TTL: "1h",
    });
    await this.until("identity provider", () => socketAccepts(`${this.dir}/agent.sock`));
    this.#admin = await createCaX509Source(this.#ca, this.#spiffeId("ns/default/pod/admin"));
  }

  #writeIdentities(): void {
    writeProcessIdentities(this.#identities(), { version: 1, trustDomain: this.trustDomain, processes: this.#listed });
  }

  #spawn(name: string, netns: string | undefined, cmd: string[], env: Record<string, string>): ChildProcess {
    const log = join(this.dir, `${name}.log`);
    this.logs.set(name, log);
    const fd = openSync(log, "a");
    const argv = netns ? ["ip", "netns", "exec", netns, ...cmd] : cmd;
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ["ignore", fd, fd],
      env: { PATH: process.env.PATH, HOME: "/root", TMPDIR: this.dir, NSM_LOG_LEVEL: "DEBUG", ...env },
    });
    closeSync(fd);
    this.#children.push(child);
    return child;
  }

  /** Starts `role` as `impl` (in `netns` if given) with its own SPIFFE ID, attested by our provider. */
  start(role: Role, impl: Impl, name: string, netns: string | undefined, env: Record<string, string>): ChildProcess {
    const upstream = COMMANDS[role].upstream;
    if (impl === "upstream" && !upstream) throw new Error(`no upstream command for ${role}`);
    const cmd = impl === "ours" ? [process.execPath, BIN, ...COMMANDS[role].ours] : [peerPath(upstream!)];
    const child = this.#spawn(name, netns, cmd, { SPIFFE_ENDPOINT_SOCKET: `unix://${this.dir}/agent.sock`, ...env });
    const ns = role === "registry" || role === "nsmgr" || role === "forwarder" ? "nsm-system/component" : "default/pod";
    const entry = processIdentity(child.pid!, this.#spiffeId(`ns/${ns}/${name}`));
    if (!entry) throw new Error(`${name} exited at once\n${this.tails()}`);
    this.#listed.push(entry);
    this.#writeIdentities();
    return child;
  }

  /** Registry, nsmgr and our forwarder (on the node netns), waiting until each serves. */
  async startControlPlane(registryImpl: Impl, nsmgrImpl: Impl): Promise<void> {
    this.start("registry", registryImpl, "registry", undefined, { NSM_LISTEN_ON: this.registryUrl });
    await this.until("registry socket", () => socketAccepts(`${this.dir}/registry.sock`));
    this.start("nsmgr", nsmgrImpl, "nsmgr-node-1", this.node, {
      NSM_NAME: "nsmgr-node-1",
      NSM_LISTEN_ON: this.nsmgrUrl,
      NSM_REGISTRY_URL: this.registryUrl,
    });
    await this.until("nsmgr socket", () => socketAccepts(`${this.dir}/nsm.io.sock`));
    this.start("forwarder", "ours", "forwarder-node-1", this.node, {
      NSM_NAME: "forwarder-node-1",
      NSM_LISTEN_ON: `unix://${this.dir}/forwarder.sock`,
      NSM_CONNECT_TO: this.nsmgrUrl,
      NSM_PROCESS_IDENTITIES: this.#identities(),
    });
    await this.until("forwarder registered", async () => (await this.findNse("forwarder-node-1")).length > 0);
  }

  /** An icmp-responder in a new netns serving `service` from `cidr`; waits until registered. */
  async endpoint(impl: Impl, name: string, service: string, cidr: string): Promise<string> {
    const ns = this.netns.add(name);
    this.start("nse", impl, name, ns, {
      NSM_NAME: name,
      NSM_CONNECT_TO: this.nsmgrUrl,
      NSM_SERVICE_NAMES: service,
      NSM_CIDR_PREFIX: cidr,
    });
    await this.until(`${name} registered`, async () => (await this.findNse(name)).length > 0);
    return ns;
  }

  /** A client (sidecar or init) in a new netns asking for `kernel://<service>/nsm-1`; waits for its address. */
  async client(role: "nsc" | "nsc-init", impl: Impl, name: string, service: string): Promise<string> {
    const ns = this.netns.add(name);
    this.start(role, impl, name, ns, {
      NSM_NAME: name,
      NSM_CONNECT_TO: this.nsmgrUrl,
      NSM_NETWORK_SERVICES: `kernel://${service}/nsm-1`,
    });
    await this.until(`nsm-1 with an address in ${name}'s netns`, () => ipv4Of(ns, "nsm-1").length > 0, 60_000);
    return ns;
  }

  async findNse(name: string): Promise<registry.NetworkServiceEndpoint[]> {
    const channel = dialChannel(
      this.registryUrl,
      secureDialOptions(this.#admin, { tokenGenerator: createTokenGenerator(this.#admin) }),
    );
    try {
      const q = create(registry.NetworkServiceEndpointQuerySchema, {
        networkServiceEndpoint: create(registry.NetworkServiceEndpointSchema, { name }),
      });
      const out: registry.NetworkServiceEndpoint[] = [];
      for await (const r of registryClients(channel).nse.find(q, CallContext.create({ deadline: Date.now() + 3000 })))
        if (r.networkServiceEndpoint?.name === name && !r.deleted) out.push(r.networkServiceEndpoint);
      return out;
    } finally {
      closeChannel(channel);
    }
  }

  async until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 45_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if (await check()) return;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms\n${this.tails()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  tails(lines = 12): string {
    return [...this.logs.entries()]
      .map(([n, f]) => {
        let text = "";
        try {
          text = readFileSync(f, "utf8");
        } catch {
          // none yet
        }
        return `--- ${n} ---\n${text.split("\n").slice(-lines).join("\n")}`;
      })
      .join("\n");
  }

  async close(): Promise<void> {
    this.#admin?.close();
    for (const c of this.#children.splice(0).reverse()) await stopChild(c);
    this.netns.deleteAll();
    if (!process.env.NSM_TEST_KEEP_LOGS) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `ping -c 3` from a netns; the status and output. */
export function ping(fromNetns: string, to: string): { ok: boolean; output: string } {
  const r = spawnSync("ip", ["netns", "exec", fromNetns, "ping", "-c", "3", "-i", "0.2", "-W", "2", to], {
    encoding: "utf8",
  });
  return { ok: r.status === 0 && /3 received/.test(r.stdout), output: r.stdout + r.stderr };
}

/** The IPv4 addresses (without prefix length) of a link, or of every non-lo link when `link` is omitted. */
export function ipv4Of(netns: string, link?: string): string[] {
  try {
    const links = link ? ipJson(netns, "addr", "show", "dev", link) : ipJson(netns, "addr", "show");
    return links
      .filter((l: { ifname: string }) => l.ifname !== "lo")
      .flatMap((l: { addr_info?: { family: string; local: string }[] }) => l.addr_info ?? [])
      .filter((a: { family: string }) => a.family === "inet")
      .map((a: { local: string }) => a.local);
  } catch {
    return [];
  }
}
