// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm stop|start|restart TARGET [--kill]`: stops and/or starts the processes of a target (see
 * ./components.ts) with the command and environment they were first started with: fault
 * injection for heal tests and a way to pick up a rebuilt `nsm`. `kill` stops with SIGKILL at
 * once (a crash) instead of SIGTERM.
 */
import { rmSync } from "node:fs";
import { type Component, resolveComponents } from "./components.js";
import { type RuntimeContext, save, withLock } from "./context.js";
import { LocalError } from "./errors.js";
import { roleOf, SIDECAR_CLIENT_NAME } from "./pods.js";
import { isAlive } from "./proc.js";
import { registerServicesAgain } from "./services.js";
import { requireUp, type State } from "./state.js";
import { fileSize, isReady, killProcess, startProcess, stopProcess, waitReady } from "./supervisor.js";

export type ControlAction = "stop" | "start" | "restart";

export interface ControlOptions {
  /** Stop with SIGKILL (a crash) instead of SIGTERM. */
  readonly kill?: boolean;
  /** Namespace of a `pod/NAME` target. @default "default" */
  readonly namespace?: string;
  /** One container of a `pod/NAME` target. @default every app container */
  readonly container?: string;
}

async function stopComponent(ctx: RuntimeContext, c: Component, kill: boolean): Promise<void> {
  const p = c.proc;
  if (!p || !isAlive(p)) {
    ctx.out.say(`${c.label} was not running`);
    return;
  }
  const t = Date.now();
  const how = kill ? await killProcess(ctx, p) : await stopProcess(ctx, p);
  ctx.out.say(`${c.label} ${how === "killed" ? "killed (SIGKILL)" : "stopped"}, pid ${p.pid} ${ctx.out.took(t)}`);
}

/** Starts the component again as it was first started, and waits until it is ready. */
async function startComponent(ctx: RuntimeContext, state: State, c: Component): Promise<void> {
  const old = c.proc;
  if (old && isAlive(old)) {
    ctx.out.say(`${c.label} is already running (pid ${old.pid})`);
    return;
  }
  if (!old?.env) throw new LocalError(`${c.label}: no record of how it was started; run \`nsm down\` and \`nsm up\``);
  const t = Date.now();
  const offset = fileSize(old.log);
  // The socket of the process just stopped may still accept connections for a moment (the kernel
  // queues them though nobody will take them): only the new process's socket means ready.
  if (c.readiness.kind === "socket") rmSync(c.readiness.path, { force: true });
  const s = startProcess(ctx, { netns: old.netns, argv: old.argv, env: old.env, log: old.log });
  c.setProc(s.proc);
  save(ctx, state);
  await waitReady(c.label, s, () => isReady(c.readiness, s.proc, offset));
  ctx.out.say(`${c.label} started, pid ${s.proc.pid} ${ctx.out.took(t)}`);
}

/** `nsm stop|start|restart TARGET`. */
export async function control(
  ctx: RuntimeContext,
  action: ControlAction,
  target: string,
  options: ControlOptions = {},
): Promise<void> {
  requireUp(ctx.paths);
  await withLock(ctx, `${action} ${target}`, async () => {
    const state = requireUp(ctx.paths);
    const components = resolveComponents(state, target, {
      paths: ctx.paths,
      namespace: options.namespace,
      container: options.container,
      roleOfContainer: (c) =>
        c.injected ? (c.name === SIDECAR_CLIENT_NAME ? "nsc" : undefined) : roleOf(c.image)?.[0],
    });
    if (action !== "start") await Promise.all(components.map((c) => stopComponent(ctx, c, options.kill === true)));
    if (action === "stop") return;
    for (const c of components) await startComponent(ctx, state, c);
    // A registry that starts empty gets the NetworkServices again; endpoints and forwarders
    // register again by themselves.
    if (target === "registry") await registerServicesAgain(ctx, state);
  });
}
