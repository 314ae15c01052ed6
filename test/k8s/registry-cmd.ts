// SPDX-License-Identifier: Apache-2.0
// Test helper: `nsm registry` processes (bin/nsm.js) on a loopback TCP port, insecure, with the
// backend env given; stopped by PID.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { NetworkServiceQuerySchema } from "../../src/api/gen/registry_pb.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { type Registries, registryClients } from "../../src/sdk/grpc/registry.js";

const NSM = join(import.meta.dirname, "../../bin/nsm.js");

export interface RegistryProcess {
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly clients: Registries;
  readonly output: () => string;
  stop(): Promise<void>;
}

async function waitServing(clients: Registries, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nsm exited ${child.exitCode}: ${output()}`);
    try {
      const ctx = CallContext.create({ deadline: Date.now() + 1000 });
      for await (const _ of clients.ns.find(create(NetworkServiceQuerySchema, {}), ctx)) break;
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`nsm not serving the registry API: ${String(err)}: ${output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** A started `nsm <role>` process: its output so far, and stop() (SIGTERM by PID, SIGKILL after 5 s). */
export interface NsmProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly output: () => string;
  stop(): Promise<void>;
}

/** Spawns `nsm ...args` with `env` added to this process's environment. */
export function spawnNsm(args: string[], env: Record<string, string>): NsmProcess {
  const child = spawn(process.execPath, [NSM, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-50_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.pid && process.kill(child.pid, "SIGKILL"), 5000);
      child.once("exit", () => {
        clearTimeout(kill);
        resolve();
      });
      if (child.pid) process.kill(child.pid, "SIGTERM");
    });
  };
  return { pid: child.pid ?? 0, child, output: () => out, stop };
}

/**
 * Starts `nsm registry` (or another role serving the registry API, e.g. `nsmgr`) on
 * 127.0.0.1:`port` with `env` added (NSM_REGISTRY_BACKEND etc.).
 */
export async function startRegistryProcess(
  port: number,
  env: Record<string, string>,
  role = "registry",
): Promise<RegistryProcess> {
  const url = `127.0.0.1:${port}`;
  const proc = spawnNsm([role], {
    NSM_LISTEN_ON: `tcp://${url}`,
    NSM_INSECURE: "true",
    NSM_LOG_LEVEL: "info",
    ...env,
  });
  const channel = new grpc.Client(url, grpc.credentials.createInsecure());
  const clients = registryClients(channel);
  const stop = async () => {
    channel.close();
    await proc.stop();
  };
  const child = proc.child;
  try {
    await waitServing(clients, child, proc.output);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, pid: proc.pid, child: proc.child, clients, output: proc.output, stop };
}
