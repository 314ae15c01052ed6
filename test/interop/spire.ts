// SPDX-License-Identifier: Apache-2.0
/**
 * A real SPIRE for the interop tests: spire-server (SQLite data store, join-token node
 * attestation, in-memory keys, loopback only) and one spire-agent (unix workload attestation)
 * serving the Workload API on `<dir>/agent.sock`, both built by scripts/peers.sh.
 *
 * Every process runs as root, so workloads are told apart by group: `entry(spiffeId, gid)`
 * registers `unix:uid:0` + `unix:gid:<gid>`, and the process started with that gid (spawn's `gid`
 * option; uid 0 keeps its capabilities) gets that SVID. Entries are made before the agent starts,
 * so its first sync has them.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { peerPath } from "../helpers/peers.js";
import { stopChild } from "../helpers/process.js";

const run = promisify(execFile);

/** A free loopback TCP port (for spire-server's agent API). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

function serverConfig(dir: string, trustDomain: string, port: number): string {
  return `server {
  bind_address = "127.0.0.1"
  bind_port = "${port}"
  socket_path = "${dir}/server.sock"
  trust_domain = "${trustDomain}"
  data_dir = "${dir}/server-data"
  log_level = "DEBUG"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${dir}/server-data/datastore.sqlite3"
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
}
`;
}

function agentConfig(dir: string, trustDomain: string, port: number): string {
  return `agent {
  data_dir = "${dir}/agent-data"
  log_level = "DEBUG"
  server_address = "127.0.0.1"
  server_port = "${port}"
  socket_path = "${dir}/agent.sock"
  trust_domain = "${trustDomain}"
  insecure_bootstrap = true
}
plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`;
}

export class Spire {
  readonly #children: ChildProcess[] = [];
  readonly logs = new Map<string, string>();
  #nodeId = "";

  constructor(
    readonly dir: string,
    readonly trustDomain: string,
  ) {}

  /** `unix://<dir>/agent.sock`, the value of SPIFFE_ENDPOINT_SOCKET. */
  get socket(): string {
    return `unix://${this.dir}/agent.sock`;
  }

  #spawn(name: string, args: string[]): ChildProcess {
    const log = join(this.dir, `${name}.log`);
    this.logs.set(name, log);
    const fd = openSync(log, "a");
    const child = spawn(peerPath(name), args, { stdio: ["ignore", fd, fd], cwd: this.dir });
    closeSync(fd);
    this.#children.push(child);
    return child;
  }

  async #server(...args: string[]): Promise<string> {
    const { stdout } = await run(peerPath("spire-server"), [...args, "-socketPath", `${this.dir}/server.sock`]);
    return stdout;
  }

  /** Starts spire-server and waits until it is healthy. */
  async startServer(): Promise<void> {
    const port = await freePort();
    mkdirSync(join(this.dir, "server-data"), { recursive: true });
    mkdirSync(join(this.dir, "agent-data"), { recursive: true });
    writeFileSync(join(this.dir, "server.conf"), serverConfig(this.dir, this.trustDomain, port));
    writeFileSync(join(this.dir, "agent.conf"), agentConfig(this.dir, this.trustDomain, port));
    this.#spawn("spire-server", ["run", "-config", join(this.dir, "server.conf")]);
    await this.#until("spire-server healthy", async () => {
      await this.#server("healthcheck");
      return true;
    });
    this.#nodeId = `spiffe://${this.trustDomain}/node/node-1`;
  }

  /** Registers `spiffeId` for root processes of group `gid`, under the agent's node. */
  async entry(spiffeId: string, gid: number): Promise<void> {
    await this.#server(
      "entry",
      "create",
      "-parentID",
      this.#nodeId,
      "-spiffeID",
      spiffeId,
      "-selector",
      "unix:uid:0",
      "-selector",
      `unix:gid:${gid}`,
    );
  }

  /** Starts spire-agent with a fresh join token and waits until it serves the Workload API. */
  async startAgent(): Promise<void> {
    const out = await this.#server("token", "generate", "-spiffeID", this.#nodeId, "-ttl", "600");
    const token = /Token:\s*(\S+)/.exec(out)?.[1];
    if (!token) throw new Error(`spire-server token generate printed no token: ${out}`);
    this.#spawn("spire-agent", ["run", "-config", join(this.dir, "agent.conf"), "-joinToken", token]);
    await this.#until("spire-agent healthy", async () => {
      await run(peerPath("spire-agent"), ["healthcheck", "-socketPath", `${this.dir}/agent.sock`]);
      return true;
    });
  }

  async #until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if (await check()) return;
      } catch {
        // not yet
      }
      for (const c of this.#children)
        if (c.exitCode !== null)
          throw new Error(`a SPIRE process exited (${c.exitCode}) before ${what}\n${this.tails()}`);
      if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms\n${this.tails()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  tails(lines = 15): string {
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

  /** Ends the agent then the server, by pid. */
  async close(): Promise<void> {
    for (const c of this.#children.splice(0).reverse()) await stopChild(c);
  }
}
