// SPDX-License-Identifier: Apache-2.0
/**
 * A small secure mesh of real processes for the security tests: the identity provider
 * (`nsm identity-provider`, the embedded CA serving the Workload API), a registry, one node
 * (netns with nsmgr and forwarder) and any number of endpoints, each process with its SVID from
 * the Workload API. The test process plays clients and attackers with SVIDs it issues itself from
 * the mesh's CA, and names its netns through "holder" processes (`sleep`) it registers in the
 * process identity file under the identity it wants them to have.
 *
 * Everything it makes (processes by pid, netns by name, the temp dir) goes in `close()`
 * (`NSM_TEST_KEEP_LOGS=1` keeps the temp dir with the processes' logs, for debugging).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { registry } from "../../src/api/index.js";
import { loadNativeBinding } from "../../src/kernel/index.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { closeChannel, type DialOptions, dialChannel } from "../../src/sdk/grpc/dial.js";
import { registryClients } from "../../src/sdk/grpc/registry.js";
import {
  type CertificateAuthority,
  createCa,
  createCaX509Source,
  createTokenGenerator,
  type ProcessIdentity,
  processIdentity,
  secureDialOptions,
  type TokenGenerator,
  workloadSpiffeId,
  writeProcessIdentities,
  type X509Source,
} from "../../src/security/index.js";
import { exitOrKill } from "../helpers/process.js";

const REPO = join(import.meta.dirname, "..", "..");
const BIN = join(REPO, "bin", "nsm.js");

/** Why these tests cannot run here, or undefined. */
export function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces, peer attestation)";
  try {
    loadNativeBinding();
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

export interface MeshOptions {
  /** Extra env of every process. */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra env of nsmgr. */
  readonly nsmgrEnv?: Readonly<Record<string, string>>;
  /** NSM_SVID_TTL of the identity provider. @default "1h" */
  readonly svidTtl?: string;
}

export interface Identity {
  readonly id: string;
  readonly source: X509Source;
  /** mTLS and path tokens for dialing (tokens from `tokens` if given). */
  dial(tokens?: TokenGenerator): DialOptions;
}

export class Mesh {
  readonly dir: string;
  readonly trustDomain: string;
  readonly node: string;
  readonly registryUrl: string;
  readonly nsmgrUrl: string;
  readonly forwarderUrl: string;
  readonly #tag: string;
  #ca!: CertificateAuthority;
  readonly #children: ChildProcess[] = [];
  readonly #netns: string[] = [];
  readonly #listed: ProcessIdentity[] = [];
  readonly #sources: X509Source[] = [];
  #identitiesFile = "";
  readonly logs = new Map<string, string>();

  private constructor(readonly options: MeshOptions) {
    this.#tag = Math.random().toString(16).slice(2, 8);
    this.dir = mkdtempSync(join(tmpdir(), "nsm-sec-mesh-"));
    this.trustDomain = `mesh-${this.#tag}.test`;
    this.node = `nsms-${this.#tag}-node`;
    this.registryUrl = `unix://${this.dir}/registry.sock`;
    this.nsmgrUrl = `unix://${this.dir}/nsm.io.sock`;
    this.forwarderUrl = `unix://${this.dir}/forwarder.sock`;
  }

  /** Starts the identity provider, registry, nsmgr and forwarder; resolves when all serve. */
  static async start(options: MeshOptions = {}): Promise<Mesh> {
    const m = new Mesh(options);
    try {
      await m.#start();
    } catch (err) {
      await m.close();
      throw err;
    }
    return m;
  }

  get ca(): CertificateAuthority {
    return this.#ca;
  }

  async #start(): Promise<void> {
    this.#ca = await createCa({ trustDomain: this.trustDomain });
    const caFile = join(this.dir, "ca.json");
    writeFileSync(caFile, JSON.stringify(this.#ca.export()), { mode: 0o600 });
    this.#identitiesFile = join(this.dir, "identities.json");
    this.#writeIdentities();
    const agent = join(this.dir, "agent.sock");
    this.spawnRole("identity-provider", undefined, ["identity-provider"], undefined, {
      NSM_LISTEN_ON: `unix://${agent}`,
      NSM_CA_FILE: caFile,
      NSM_PROCESS_IDENTITIES: this.#identitiesFile,
      NSM_SVID_TTL: this.options.svidTtl ?? "1h",
    });
    await this.#waitSocket(agent);
    this.addNetns(this.node);
    this.spawnRole("registry", undefined, ["registry"], this.component("registry"), {
      NSM_LISTEN_ON: this.registryUrl,
    });
    await this.#waitSocket(`${this.dir}/registry.sock`);
    this.spawnRole("nsmgr", this.node, ["nsmgr"], this.component("nsmgr"), {
      NSM_NAME: "nsmgr-1",
      NSM_LISTEN_ON: this.nsmgrUrl,
      NSM_REGISTRY_URL: this.registryUrl,
      ...this.options.nsmgrEnv,
    });
    await this.#waitSocket(`${this.dir}/nsm.io.sock`);
    this.spawnRole("forwarder", this.node, ["forwarder"], this.component("forwarder"), {
      NSM_NAME: "forwarder-1",
      NSM_LISTEN_ON: this.forwarderUrl,
      NSM_CONNECT_TO: this.nsmgrUrl,
      NSM_PROCESS_IDENTITIES: this.#identitiesFile,
    });
    const admin = await this.identity("admin");
    await this.waitRegistered("forwarder-1", admin);
  }

  /** `spiffe://<td>/ns/nsm-system/component/<name>` */
  component(name: string): string {
    return `spiffe://${this.trustDomain}/ns/nsm-system/component/${name}`;
  }

  /** `spiffe://<td>/ns/<ns>/pod/<pod>` */
  pod(pod: string, ns = "default"): string {
    return workloadSpiffeId(this.trustDomain, ns, pod);
  }

  /** An identity of the test process: an SVID issued from the mesh's CA. */
  async identity(pod: string, options: { ttlMs?: number } = {}): Promise<Identity> {
    const id = this.pod(pod);
    const source = await createCaX509Source(this.#ca, id, { ttlMs: options.ttlMs });
    this.#sources.push(source);
    return {
      id,
      source,
      dial: (tokens) => secureDialOptions(source, { tokenGenerator: tokens ?? createTokenGenerator(source) }),
    };
  }

  #writeIdentities(): void {
    writeProcessIdentities(this.#identitiesFile, {
      version: 1,
      trustDomain: this.trustDomain,
      processes: this.#listed,
    });
  }

  /** Lists `pid` as `spiffeId` in the process identity file. */
  list(pid: number, spiffeId: string): void {
    const entry = processIdentity(pid, spiffeId);
    if (!entry) throw new Error(`process ${pid} is gone`);
    this.#listed.push(entry);
    this.#writeIdentities();
  }

  /** Starts `nsm <args>` (in `netns` if given) as `spiffeId`, output to `<dir>/<name>.log`. */
  spawnRole(
    name: string,
    netns: string | undefined,
    args: string[],
    spiffeId: string | undefined,
    env: Record<string, string>,
  ): ChildProcess {
    const log = join(this.dir, `${name}.log`);
    this.logs.set(name, log);
    const fd = openSync(log, "a");
    const cmd = [process.execPath, BIN, ...args];
    const argv = netns ? ["ip", "netns", "exec", netns, ...cmd] : cmd;
    const child = spawn(argv[0]!, argv.slice(1), {
      env: {
        PATH: process.env.PATH,
        HOME: "/root",
        TMPDIR: this.dir,
        NSM_LOG_LEVEL: "debug",
        SPIFFE_ENDPOINT_SOCKET: `unix://${this.dir}/agent.sock`,
        ...this.options.env,
        ...env,
      },
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    this.#children.push(child);
    if (spiffeId) this.list(child.pid!, spiffeId);
    return child;
  }

  /** A new netns, deleted by close(). */
  addNetns(name: string): string {
    execFileSync("ip", ["netns", "add", name]);
    this.#netns.push(name);
    execFileSync("ip", ["-n", name, "link", "set", "lo", "up"]);
    return name;
  }

  /** A process sitting in a new netns `<tag>-<name>`, listed as `spiffeId`; its pid names the netns. */
  holder(name: string, spiffeId: string): { netns: string; pid: number; url: string } {
    const netns = this.addNetns(`nsms-${this.#tag}-${name}`);
    const child = spawn("ip", ["netns", "exec", netns, "sleep", "infinity"], { stdio: "ignore" });
    this.#children.push(child);
    this.list(child.pid!, spiffeId);
    return { netns, pid: child.pid!, url: `file:///proc/${child.pid}/ns/net` };
  }

  /** Starts an icmp-responder endpoint in its own netns, as the pod `name`; waits until registered. */
  async endpoint(name: string, service: string, cidr: string, admin: Identity): Promise<string> {
    const netns = this.addNetns(`nsms-${this.#tag}-${name}`);
    this.spawnRole(name, netns, ["nse", "icmp-responder"], this.pod(name), {
      NSM_NAME: name,
      NSM_CONNECT_TO: this.nsmgrUrl,
      NSM_SERVICE_NAMES: service,
      NSM_CIDR_PREFIX: cidr,
    });
    await this.waitRegistered(name, admin);
    return netns;
  }

  async #waitSocket(path: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect(path);
        s.once("connect", () => {
          s.destroy();
          resolve(true);
        });
        s.once("error", () => resolve(false));
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nothing serves ${path} after ${timeoutMs} ms\n${this.tails()}`);
  }

  /** Waits until the registry has the NSE `name`. */
  async waitRegistered(name: string, who: Identity, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.findNse(name, who)).length > 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${name} did not register in ${timeoutMs} ms\n${this.tails()}`);
  }

  async findNse(name: string, who: Identity): Promise<registry.NetworkServiceEndpoint[]> {
    const channel = dialChannel(this.registryUrl, who.dial());
    try {
      const out: registry.NetworkServiceEndpoint[] = [];
      const q = create(registry.NetworkServiceEndpointQuerySchema, {
        networkServiceEndpoint: create(registry.NetworkServiceEndpointSchema, { name }),
      });
      for await (const r of registryClients(channel).nse.find(q, CallContext.create({ deadline: Date.now() + 3000 })))
        if (r.networkServiceEndpoint?.name === name && !r.deleted) out.push(r.networkServiceEndpoint);
      return out;
    } catch {
      return [];
    } finally {
      closeChannel(channel);
    }
  }

  /** The log of a process. */
  log(name: string): string {
    try {
      return readFileSync(this.logs.get(name) ?? "", "utf8");
    } catch {
      return "";
    }
  }

  /** The last lines of every log (for failure messages). */
  tails(lines = 12): string {
    return [...this.logs.keys()]
      .map((n) => `--- ${n} ---\n${this.log(n).split("\n").slice(-lines).join("\n")}`)
      .join("\n");
  }

  /** Links of a netns other than lo. */
  links(netns: string): { ifname: string; ifalias?: string }[] {
    const out = execFileSync("ip", ["-n", netns, "-j", "link", "show"], { encoding: "utf8" });
    return (out.trim() ? (JSON.parse(out) as { ifname: string; ifalias?: string }[]) : []).filter(
      (l) => l.ifname !== "lo",
    );
  }

  /** Every netns this mesh made. */
  get namespaces(): readonly string[] {
    return this.#netns;
  }

  async close(): Promise<void> {
    for (const s of this.#sources) s.close();
    const children = this.#children.splice(0);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
    await Promise.all(children.map((c) => exitOrKill(c)));
    for (const n of this.#netns.splice(0).reverse()) {
      try {
        execFileSync("ip", ["netns", "del", n], { stdio: "ignore" });
      } catch {
        // already gone
      }
    }
    if (!process.env.NSM_TEST_KEEP_LOGS) rmSync(this.dir, { recursive: true, force: true });
  }
}
