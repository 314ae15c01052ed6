// SPDX-License-Identifier: Apache-2.0
/**
 * The local runtime as a scale-from-zero supplier's pod source ({@link PodLauncher} of the sdk's
 * createpod element): a pod is made as `nsm apply -f` makes it (in process, under the state
 * directory's lock, resolving once its endpoint registered), listed from the state file, and
 * deleted as `nsm delete pod NAME -n NS` deletes it. A supplied pod counts as completed when it
 * ran and none of its app containers is alive any more (an endpoint that stopped after
 * NSM_IDLE_TIMEOUT), the local equivalent of phase Succeeded.
 * The supplier runs inside a pod of the same runtime; it finds the runtime by the state directory
 * every role container is given (NSM_LOCAL_STATE_DIR).
 */
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import type { Logger } from "../sdk/core/logger.js";
import type { PodLauncher, PodManifest, SuppliedPod } from "../sdk/networkservice/common/createpod/index.js";
import { CREATED_BY_LABEL } from "../sdk/networkservice/common/createpod/index.js";
import type { LocalConfig } from "./config.js";
import { isAlive } from "./proc.js";
import type { Progress } from "./progress.js";
import { LocalRuntime } from "./runtime.js";
import { loadState, type PodState, type RuntimePaths } from "./state.js";

/** Progress lines of the runtime's commands, into the supplier's log. */
function logProgress(log: Logger): Progress {
  return {
    say: (line) => log.info({ runtime: line.trim() }, "local runtime"),
    warn: (line) => log.warn({ runtime: line.trim() }, "local runtime"),
    took: (since) => `(${((Date.now() - since) / 1000).toFixed(1)}s)`,
  };
}

function completed(pod: PodState): boolean {
  if (pod.phase === "Failed") return true;
  const apps = pod.containers.filter((c) => c.type === "app");
  return pod.phase === "Running" && apps.every((c) => !c.proc || !isAlive(c.proc));
}

export interface LocalPodLauncherOptions {
  readonly paths: RuntimePaths;
  readonly log: Logger;
  readonly config?: LocalConfig;
}

/** Pods of the local runtime at `paths` (see the module doc). */
export function localPodLauncher(options: Readonly<LocalPodLauncherOptions>): PodLauncher {
  const { paths, log } = options;
  const runtime = new LocalRuntime(paths, logProgress(log), { config: options.config, log });
  return {
    async nodeExists(name) {
      return loadState(paths)?.nodes.some((n) => n.name === name) ?? false;
    },
    async createPod(pod: PodManifest, namespace: string) {
      const file = join(paths.tmpDir, `supplied-${pod.metadata.name}-${randomBytes(4).toString("hex")}.yaml`);
      writeFileSync(file, stringify({ ...pod, apiVersion: "v1", metadata: { ...pod.metadata, namespace } }));
      try {
        await runtime.apply([file]);
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
      await runtime.deleteSelected({ kind: "pods", names: [name], namespace });
    },
  };
}
