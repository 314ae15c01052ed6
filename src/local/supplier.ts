// SPDX-License-Identifier: Apache-2.0
/**
 * The local runtime as a scale-from-zero supplier's pod source ({@link PodLauncher} of the sdk's
 * createpod element): a pod is made by `nsm apply -f` (resolving once it runs and its endpoint
 * registered), listed from the state file, and deleted by `nsm delete pod NAME -n NS`.
 * A supplied pod counts as completed when it ran and none of its app containers is alive any
 * more (an endpoint that stopped after NSM_IDLE_TIMEOUT), the local equivalent of phase Succeeded.
 *
 * The supplier runs inside a pod: `ip netns exec` gave it a mount namespace of its own, where a
 * network namespace it named (`ip netns add`) would stay invisible to the rest of the runtime.
 * So the commands run as a child `nsm` in the mount and network namespaces of the runtime's
 * registry (started by `nsm up`, in the namespaces of the CLI), through `nsenter`, with the
 * state directory every role container is given (NSM_LOCAL_STATE_DIR).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import type { Logger } from "../sdk/core/logger.js";
import type { PodLauncher, PodManifest, SuppliedPod } from "../sdk/networkservice/common/createpod/index.js";
import { CREATED_BY_LABEL } from "../sdk/networkservice/common/createpod/index.js";
import { type LocalConfig, localConfig } from "./config.js";
import { LocalError } from "./errors.js";
import { nsmArgv } from "./pods.js";
import { isAlive } from "./proc.js";
import { loadState, type PodState, type RuntimePaths } from "./state.js";

function completed(pod: PodState): boolean {
  if (pod.phase === "Failed") return true;
  const apps = pod.containers.filter((c) => c.type === "app");
  return pod.phase === "Running" && apps.every((c) => !c.proc || !isAlive(c.proc));
}

export interface LocalPodLauncherOptions {
  readonly paths: RuntimePaths;
  readonly log: Logger;
  /** PATH and inherited settings of the pods it makes. @default {@link localConfig}() */
  readonly config?: LocalConfig;
}

/** Runs `nsm ARGS` in the registry's namespaces; its stdout, or a LocalError with its stderr. */
function runNsm(options: Readonly<LocalPodLauncherOptions>, args: string[]): Promise<string> {
  const { paths, log } = options;
  const config = options.config ?? localConfig();
  const registry = loadState(paths)?.registry;
  if (!registry || !isAlive(registry))
    return Promise.reject(new LocalError("the local runtime's registry is not running"));
  const ns = (kind: string) => `--${kind}=/proc/${registry.pid}/ns/${kind === "mount" ? "mnt" : kind}`;
  const argv = ["nsenter", ns("mount"), ns("net"), "--", ...nsmArgv(...args)];
  const env = { ...config.inherited, PATH: config.hostPath, HOME: "/root", NSM_LOCAL_STATE_DIR: paths.dir };
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["ignore", "pipe", "pipe"], cwd: "/" });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("error", (e) => reject(new LocalError(`cannot run nsm ${args[0]}: ${e.message}`)));
    child.on("close", (code) => {
      for (const line of out.split("\n").filter(Boolean)) log.info({ runtime: line.trim() }, "local runtime");
      if (code === 0) resolve(out);
      else reject(new LocalError(`nsm ${args.join(" ")} exited with ${code}: ${err.trim() || out.trim()}`));
    });
  });
}

/** Pods of the local runtime at `options.paths` (see the module doc). */
export function localPodLauncher(options: Readonly<LocalPodLauncherOptions>): PodLauncher {
  const { paths } = options;
  return {
    async nodeExists(name) {
      return loadState(paths)?.nodes.some((n) => n.name === name) ?? false;
    },
    async createPod(pod: PodManifest, namespace: string) {
      const file = join(paths.tmpDir, `supplied-${pod.metadata.name}-${randomBytes(4).toString("hex")}.yaml`);
      writeFileSync(file, stringify({ ...pod, apiVersion: "v1", metadata: { ...pod.metadata, namespace } }));
      try {
        await runNsm(options, ["apply", "-f", file]);
      } finally {
        rmSync(file, { force: true });
      }
      return pod.metadata.name;
    },
    async listPods(namespace, owner): Promise<SuppliedPod[]> {
      const pods = loadState(paths)?.pods ?? [];
      return pods
        .filter((p) => p.namespace === namespace && p.labels[CREATED_BY_LABEL] === owner)
        .map((p) => ({ name: p.name, completed: completed(p) }));
    },
    async deletePod(namespace, name) {
      await runNsm(options, ["delete", "pod", name, "-n", namespace]);
    },
  };
}
