// SPDX-License-Identifier: Apache-2.0
// Test helper: one etcd server (Debian's etcd-server, /usr/bin/etcd) on loopback random ports
// with a temporary data dir; stopped by its PID and its dir removed by stop().
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ETCD_BINARY = process.env.NSM_TEST_ETCD ?? "/usr/bin/etcd";

/** Why etcd cannot run here, or undefined. */
export function missingEtcd(): string | undefined {
  return existsSync(ETCD_BINARY) ? undefined : `${ETCD_BINARY} not installed (apt-get install etcd-server)`;
}

export interface EtcdServer {
  readonly endpoint: string;
  readonly pid: number;
  /** Stops etcd (SIGTERM to its PID, SIGKILL after 5 s) and removes its data dir. */
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

async function waitHealthy(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${endpoint}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`etcd at ${endpoint} not healthy after ${timeoutMs} ms`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.pid && process.kill(child.pid, "SIGKILL"), 5000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    if (child.pid) process.kill(child.pid, "SIGTERM");
  });
}

/** Starts one etcd member; `dataDir` may be reused to restart on the same data. */
export async function startEtcd(dataDir?: string): Promise<EtcdServer> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "nsm-etcd-"));
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${client}`;
  const child = spawn(
    ETCD_BINARY,
    [
      "--data-dir",
      dir,
      "--listen-client-urls",
      endpoint,
      "--advertise-client-urls",
      endpoint,
      "--listen-peer-urls",
      `http://127.0.0.1:${peer}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${peer}`,
      "--initial-cluster",
      `default=http://127.0.0.1:${peer}`,
      "--log-level",
      "error",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  try {
    await waitHealthy(endpoint, child, 20_000);
  } catch (err) {
    await stopChild(child);
    if (!dataDir) rmSync(dir, { recursive: true, force: true });
    throw new Error(`${String(err)}: ${stderr}`);
  }
  return {
    endpoint,
    pid: child.pid ?? 0,
    async stop() {
      await stopChild(child);
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
