// SPDX-License-Identifier: Apache-2.0
/**
 * Pods as processes: a pod gets its netns, runs its init containers to completion (the injected
 * `cmd-nsc-init` again until it connects), starts its app containers and waits until they are
 * ready (an endpoint registered, the client sidecar connected, anything else still running a
 * moment later). Stopping a pod stops its processes and anything else left in its netns, deletes
 * the interfaces its connections did not close, then the netns.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { findEndpoints } from "./cluster.js";
import { type RuntimeContext, save } from "./context.js";
import { LocalError } from "./errors.js";
import { cliDialOptions } from "./identity.js";
import { lendLockWhile } from "./lock-lend.js";
import { addNetns, deleteLinks, deleteNetns } from "./netns.js";
import { ensurePodResolvConf, podResolvConf } from "./pod-files.js";
import { assignPodIP } from "./pod-network.js";
import { INIT_CLIENT_NAME, roleOf, SIDECAR_CLIENT_NAME } from "./pods.js";
import type { ContainerState, ManagedProc, PodState, State } from "./state.js";
import {
  killNetnsProcesses,
  logTail,
  readFileSafe,
  type Started,
  sleep,
  startProcess,
  stopProcess,
  waitReady,
  within,
} from "./supervisor.js";
import { bindMounts, containerFiles, mountScript, podDir, removePodDir, writeVolumes } from "./volumes.js";

/** How long `cmd-nsc-init` may keep trying to connect (ms). */
const NSC_INIT_DEADLINE = 60_000;
/** How long any other init container may run (ms). */
const INIT_CONTAINER_TIMEOUT = 120_000;
/** The line the client sidecar logs once connected (src/cmd/nsc.ts). */
const CLIENT_CONNECTED = "connection established";

function startContainer(ctx: RuntimeContext, pod: PodState, c: ContainerState): Started {
  return startProcess(ctx, { netns: pod.netns, argv: c.argv, env: c.env, log: c.log });
}

/** Runs an init container; its exit code, or a LocalError after `timeoutMs`. */
async function runToCompletion(
  ctx: RuntimeContext,
  state: State,
  pod: PodState,
  c: ContainerState,
  timeoutMs: number,
): Promise<number> {
  const s = startContainer(ctx, pod, c);
  c.proc = s.proc;
  save(ctx, state);
  const code = await within(s.spawned.exited, timeoutMs);
  if (code === undefined) {
    await stopProcess(ctx, s.proc, 2000);
    throw new LocalError(`init container "${c.name}" did not finish in ${timeoutMs / 1000}s${logTail(c.log)}`);
  }
  c.exitCode = code;
  c.proc = undefined;
  save(ctx, state);
  return code;
}

/** `nsm nsc --init`, again until it connects (the endpoint may still be registering), up to a minute. */
async function runClientInit(ctx: RuntimeContext, state: State, pod: PodState, c: ContainerState): Promise<void> {
  const deadline = Date.now() + NSC_INIT_DEADLINE;
  for (let attempt = 1; ; attempt++) {
    const code = await runToCompletion(ctx, state, pod, c, Math.max(5000, deadline - Date.now() + 5000));
    if (code === 0) return;
    if (Date.now() + 1000 > deadline) {
      throw new LocalError(
        `${INIT_CLIENT_NAME} could not connect ${pod.nsurls} in ${NSC_INIT_DEADLINE / 1000}s (${attempt} attempts)${logTail(c.log)}`,
      );
    }
    await sleep(1000);
  }
}

async function runInitContainers(ctx: RuntimeContext, state: State, pod: PodState): Promise<void> {
  for (const c of pod.containers.filter((c) => c.type === "init")) {
    if (c.injected) {
      // The connection may need an endpoint another command starts (a supplier's apply): lend it the lock.
      const init = runClientInit(ctx, state, pod, c);
      await (ctx.serveLent ? lendLockWhile(ctx.paths, ctx.serveLent, init) : init);
      continue;
    }
    const code = await runToCompletion(ctx, state, pod, c, INIT_CONTAINER_TIMEOUT);
    if (code !== 0) throw new LocalError(`init container "${c.name}" exited with code ${code}${logTail(c.log)}`);
  }
}

/** Waits until one app container is ready; a note for the pod's line, if any. */
async function waitContainerReady(
  ctx: RuntimeContext,
  state: State,
  c: ContainerState,
  started: Started,
): Promise<string | undefined> {
  const role = c.injected ? undefined : roleOf(c.image);
  const component = `container "${c.name}"`;
  if (role?.[0] === "nse" || role?.[0] === "forwarder") {
    const nseName = c.env.NSM_NAME || (role[0] === "nse" ? "icmp-server" : "forwarder");
    const { paths } = ctx;
    await waitReady(
      component,
      started,
      async () => (await findEndpoints(paths.registrySocket, await cliDialOptions(paths, state), nseName)).length > 0,
    );
    return `endpoint ${nseName} registered`;
  }
  if (c.name === SIDECAR_CLIENT_NAME && c.injected) {
    await waitReady(component, started, async () => readFileSafe(c.log).includes(CLIENT_CONNECTED));
    return undefined;
  }
  const early = await within(started.spawned.exited, 300);
  if (early !== undefined && early !== 0)
    throw new LocalError(`container "${c.name}" exited with code ${early}${logTail(c.log)}`);
  return undefined;
}

/** Writes the pod's resolv.conf (a pod with the client), volumes and the mount script of each container that mounts them. */
function preparePodFiles(ctx: RuntimeContext, pod: PodState): void {
  if (pod.nsurls) ensurePodResolvConf(podResolvConf(ctx.paths, pod.namespace, pod.name));
  const mounted = pod.containers.filter((c) => c.mounts && c.mounts.length > 0);
  if (mounted.length === 0 && !pod.containers.some((c) => c.volumeEnv)) return;
  const dir = podDir(ctx.paths.dir, pod.namespace, pod.name);
  if (!removePodDir(dir)) throw new LocalError(`${dir} still has mounts: cannot prepare the pod's volumes`);
  mkdirSync(dir, { recursive: true });
  writeVolumes(dir, pod.volumes ?? []);
  for (const c of mounted) {
    const { script, root } = containerFiles(dir, c.name);
    writeFileSync(script, mountScript(root, bindMounts(dir, pod.volumes ?? [], c.mounts!), c.workingDir));
  }
}

/** Starts one pod (recorded in the state first, so a failure leaves it for `delete`/`down`). */
async function startPod(ctx: RuntimeContext, state: State, pod: PodState): Promise<void> {
  const t = Date.now();
  state.pods.push(pod);
  save(ctx, state);
  // A pod's logs start empty (a Pod applied again after a delete has the same log files).
  for (const c of pod.containers) writeFileSync(c.log, "");
  preparePodFiles(ctx, pod);
  await addNetns(pod.netns);
  await assignPodIP(pod);
  await runInitContainers(ctx, state, pod);
  const started: { c: ContainerState; s: Started }[] = [];
  for (const c of pod.containers.filter((c) => c.type === "app")) {
    const s = startContainer(ctx, pod, c);
    c.proc = s.proc;
    started.push({ c, s });
    save(ctx, state);
  }
  const notes = (await Promise.all(started.map(({ c, s }) => waitContainerReady(ctx, state, c, s)))).filter(
    (n): n is string => n !== undefined,
  );
  pod.phase = "Running";
  save(ctx, state);
  const conn = pod.nsurls ? `, connected ${pod.nsurls}` : "";
  const { out } = ctx;
  out.say(
    `  pod ${pod.namespace}/${pod.name} running on ${pod.node}${conn}${notes.length ? `, ${notes.join(", ")}` : ""} ${out.took(t)}`,
  );
}

/**
 * Starts `pods` side by side; a pod that fails is marked Failed and its error returned (the
 * others go on).
 */
export async function startPods(ctx: RuntimeContext, state: State, pods: readonly PodState[]): Promise<string[]> {
  const failures: string[] = [];
  const results = await Promise.allSettled(pods.map((p) => startPod(ctx, state, p)));
  results.forEach((r, i) => {
    if (r.status !== "rejected") return;
    const p = pods[i]!;
    const msg = r.reason instanceof Error ? r.reason.message : String(r.reason);
    p.phase = "Failed";
    p.message = msg.split("\n")[0];
    failures.push(`pod ${p.namespace}/${p.name}: ${msg}`);
  });
  save(ctx, state);
  return failures;
}

async function deletePod(ctx: RuntimeContext, pod: PodState): Promise<void> {
  const t = Date.now();
  const procs = pod.containers.map((c) => c.proc).filter((p): p is ManagedProc => p !== undefined);
  const results = await Promise.all(procs.map((p) => stopProcess(ctx, p)));
  // Anything else still inside the pod's netns (children of a container) is the pod's too.
  await killNetnsProcesses(pod.netns);
  // Interfaces still there were not closed by their connection (e.g. a sidecar killed by
  // SIGKILL): delete them, so their veth peers in other pods go too.
  const leftover = await deleteLinks(pod.netns);
  await deleteNetns(pod.netns);
  const kept = removePodDir(podDir(ctx.paths.dir, pod.namespace, pod.name))
    ? ""
    : "pod directory left in place: it still has mounts";
  const killed = results.filter((r) => r === "killed").length;
  const notes = [
    killed ? `${killed} process(es) did not stop on SIGTERM and were killed` : "",
    leftover.length ? `removed interface(s) left open: ${leftover.join(", ")}` : "",
    kept,
  ].filter(Boolean);
  ctx.out.say(
    `  pod ${pod.namespace}/${pod.name} stopped${notes.length ? ` (${notes.join("; ")})` : ""} ${ctx.out.took(t)}`,
  );
}

/** Stops pods (clients first, so their sidecars close connections while the endpoints still run) and deletes their namespaces. */
export async function deletePods(ctx: RuntimeContext, state: State, pods: readonly PodState[]): Promise<void> {
  const clients = pods.filter((p) => p.nsurls);
  const others = pods.filter((p) => !p.nsurls);
  for (const batch of [clients, others]) {
    await Promise.all(batch.map((p) => deletePod(ctx, p)));
    state.pods = state.pods.filter((p) => !batch.includes(p));
    save(ctx, state);
  }
}
