// SPDX-License-Identifier: Apache-2.0
/**
 * Command-line front of the local runtime (src/local): `nsm up|apply|get|exec|logs|delete|down`
 * and `nsm stop|start|restart TARGET [--kill]` (fault injection: see src/local/components.ts).
 *
 * This is the runtime's CLI layer: it parses the flags, reads the environment into a
 * {@link LocalConfig}, and owns the console (progress on stdout, warnings and errors on stderr).
 * Every subcommand accepts `--state-dir DIR` (default `$NSM_LOCAL_STATE_DIR` or /run/nsm-local).
 * Errors are one line on stderr (`nsm <command>: error: …`, followed by a log tail when a process
 * died) and exit code 1; usage errors exit 2.
 */
import { INHERITED_VARIABLES, type LocalConfig, localConfig } from "../local/config.js";
import { describeConnection, hopConnections, topTable } from "../local/describe.js";
import { LocalError } from "../local/errors.js";
import { followPodLogs } from "../local/follow.js";
import { execInPod, findPod, GET_KINDS, getTable, podLogs } from "../local/inspect.js";
import { describeObjects } from "../local/kubectl/describe.js";
import { KINDS, SYSTEM_NAMESPACE, stateCrds } from "../local/kubectl/objects.js";
import { render } from "../local/kubectl/output.js";
import { noResources, parseTargets, type Query, selectObjects } from "../local/kubectl/query.js";
import { parseDuration as parseKubectlDuration, parseWaitFor, waitFor } from "../local/kubectl/wait.js";
import { isAlive } from "../local/proc.js";
import type { Progress } from "../local/progress.js";
import { LocalRuntime } from "../local/runtime.js";
import { DEFAULT_STATE_DIR, loadState, type RuntimePaths, requireUp, runtimePaths } from "../local/state.js";
import { connectionsDocument, pickConnection, runtimeConnections, wideTable } from "../local/views.js";
import { createLogger, parseLogLevel } from "../sdk/tools/logger.js";
import { Env, parseDuration } from "./env.js";

export class UsageError extends Error {}

interface Parsed {
  flags: Map<string, string[]>;
  positional: string[];
  /** Everything after `--`. */
  rest: string[];
}

/**
 * Reads the flag at `args[i]` into `flags`; returns the index of the last argument it used (the
 * flag's value may be the next one).
 */
function readFlag(
  args: readonly string[],
  i: number,
  flags: Map<string, string[]>,
  spec: { withValue: readonly string[]; booleans: readonly string[] },
): number {
  const a = args[i]!;
  const eq = a.indexOf("=");
  const key = eq > 0 ? a.slice(0, eq) : a;
  const add = (v: string) => flags.set(key, [...(flags.get(key) ?? []), v]);
  if (spec.booleans.includes(key)) {
    add("true");
    return i;
  }
  if (!spec.withValue.includes(key)) throw new UsageError(`unknown option ${a}`);
  const v = eq > 0 ? a.slice(eq + 1) : args[i + 1];
  if (v === undefined) throw new UsageError(`${key} needs a value`);
  add(v);
  return eq > 0 ? i : i + 1;
}

/** Parses `args` given which flags take a value and which are booleans. */
export function parseArgs(args: readonly string[], withValue: readonly string[], booleans: readonly string[]): Parsed {
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  let i = 0;
  for (; i < args.length && args[i] !== "--"; i++) {
    const a = args[i]!;
    if (a.startsWith("-") && a !== "-") i = readFlag(args, i, flags, { withValue, booleans });
    else positional.push(a);
  }
  return { flags, positional, rest: args.slice(i + 1) as string[] };
}

const last = (p: Parsed, ...keys: string[]) => keys.flatMap((k) => p.flags.get(k) ?? []).at(-1);
const all = (p: Parsed, ...keys: string[]) => keys.flatMap((k) => p.flags.get(k) ?? []);

/** What every subcommand gets: the environment, and the console. */
interface Cli {
  readonly env: Env;
  readonly out: Progress;
}

function stateDir(cli: Cli, p: Parsed): string {
  return last(p, "--state-dir") ?? cli.env.raw("NSM_LOCAL_STATE_DIR") ?? DEFAULT_STATE_DIR;
}

function paths(cli: Cli, p: Parsed): RuntimePaths {
  return runtimePaths(stateDir(cli, p));
}

/** The runtime's configuration from the CLI's environment. */
export function localConfigFrom(env: Env): LocalConfig {
  const inherited: Record<string, string> = {};
  for (const k of INHERITED_VARIABLES) {
    const v = env.raw(k);
    if (v !== undefined) inherited[k] = v;
  }
  const defaults = localConfig();
  return {
    hostPath: env.string("PATH", defaults.hostPath),
    inherited,
    svidTtl: env.string("NSM_SVID_TTL", defaults.svidTtl),
  };
}

function needRoot(): void {
  if (process.getuid?.() !== 0)
    throw new LocalError("the local runtime needs root (network namespaces and veth need CAP_NET_ADMIN)");
}

/**
 * The runtime, after checking that we are root. Its structured log (processes started and
 * stopped, at debug level) goes to stderr at NSM_LOG_LEVEL, default warn.
 */
function runtime(cli: Cli, p: Parsed): LocalRuntime {
  needRoot();
  const level = parseLogLevel(cli.env.raw("NSM_LOG_LEVEL") ?? "warn") ?? "warn";
  const log = createLogger({ name: "nsm-local", level });
  return new LocalRuntime(paths(cli, p), cli.out, { config: localConfigFrom(cli.env), log });
}

const COMMON = ["--state-dir"];

function noPositional(p: Parsed, hint = ""): void {
  if (p.positional.length) throw new UsageError(`unexpected argument ${p.positional[0]}${hint}`);
}

async function upCommand(cli: Cli, args: readonly string[]): Promise<number> {
  const p = parseArgs(args, [...COMMON, "--nodes", "--trust-domain"], ["--insecure"]);
  noPositional(p);
  const nodes = Number(last(p, "--nodes") ?? "1");
  await runtime(cli, p).up(nodes, { insecure: p.flags.has("--insecure"), trustDomain: last(p, "--trust-domain") });
  return 0;
}

async function applyOrDeleteCommand(cli: Cli, command: "apply" | "delete", args: readonly string[]): Promise<number> {
  const del = command === "delete";
  const p = parseArgs(
    args,
    [...COMMON, "-f", "--filename", "-k", "--kustomize", "-n", "--namespace", ...(del ? DELETE_FLAGS : [])],
    del ? DELETE_BOOLEANS : [],
  );
  if (del && p.positional.length > 0) return deleteByName(cli, p);
  noPositional(p, " (use -f FILE|DIR)");
  const files = all(p, "-f", "--filename", "-k", "--kustomize");
  if (files.length === 0) throw new UsageError("give the manifests with -f FILE|DIR");
  const rt = runtime(cli, p);
  const ns = last(p, "-n", "--namespace");
  await (command === "apply" ? rt.apply(files, ns) : rt.delete(files, ns));
  return 0;
}

async function downCommand(cli: Cli, args: readonly string[]): Promise<number> {
  const p = parseArgs(args, COMMON, []);
  noPositional(p);
  await runtime(cli, p).down();
  return 0;
}

const GET_FLAGS = [
  ...COMMON,
  "-n",
  "--namespace",
  "-l",
  "--selector",
  "--field-selector",
  "-o",
  "--output",
  "--template",
];

async function getCommand(cli: Cli, args: readonly string[]): Promise<number> {
  const p = parseArgs(args, GET_FLAGS, ["-A", "--all-namespaces", "--no-headers", "--show-kind"]);
  const kind = p.positional[0];
  if (kind && GET_KINDS[kind] === "connections") return getConnections(cli, p);
  if (kind && usesKubectlGet(p)) return kubectlGet(cli, p);
  if (!kind || p.positional.length > 1) {
    const kinds = Object.keys(GET_KINDS).filter((k) => k.endsWith("s"));
    throw new UsageError(
      `usage: nsm get ${kinds.join("|")} [NAME] [-n NS] [-l SEL] [--field-selector F==V] [-o FORMAT]`,
    );
  }
  const state = requireUp(paths(cli, p));
  process.stdout.write(await getTable(state, kind, last(p, "-n", "--namespace")));
  return 0;
}

/** `nsm get connections [-o wide|json|yaml]`: the runtime's connections, hop by hop. */
async function getConnections(cli: Cli, p: Parsed): Promise<number> {
  if (p.positional.length > 1) throw new UsageError("usage: nsm get connections [-o wide|json|yaml]");
  const output = last(p, "-o", "--output");
  if (output === undefined) {
    process.stdout.write(await getTable(requireUp(paths(cli, p)), "connections", undefined));
    return 0;
  }
  if (!["wide", "json", "yaml"].includes(output)) throw new UsageError(`-o ${output}: expected wide, json or yaml`);
  const list = await runtimeConnections(requireUp(paths(cli, p)));
  process.stdout.write(output === "wide" ? wideTable(list) : connectionsDocument(list, output as "json" | "yaml"));
  return 0;
}

async function describeConnectionCommand(cli: Cli, args: readonly string[]): Promise<number> {
  const p = parseArgs(args, COMMON, []);
  const [kind, id] = p.positional;
  if (!kind || GET_KINDS[kind] !== "connections" || !id || p.positional.length > 2)
    throw new UsageError("usage: nsm describe connection ID");
  needRoot();
  const state = requireUp(paths(cli, p));
  const x = pickConnection(await runtimeConnections(state), id);
  process.stdout.write(await describeConnection(x, await hopConnections(state, x.conn)));
  return 0;
}

async function topCommand(cli: Cli, args: readonly string[]): Promise<number> {
  const p = parseArgs(args, [...COMMON, "--interval"], ["--once"]);
  if (p.positional.length !== 1 || GET_KINDS[p.positional[0]!] !== "connections")
    throw new UsageError("usage: nsm top connections [--once] [--interval 1s]");
  const intervalMs = parseDuration(last(p, "--interval") ?? "1s");
  if (intervalMs === undefined || intervalMs <= 0)
    throw new UsageError("--interval needs a positive duration (1s, 500ms)");
  needRoot();
  const state = requireUp(paths(cli, p));
  for (;;) {
    const screen = await topTable(await runtimeConnections(state), intervalMs);
    if (p.flags.has("--once")) {
      process.stdout.write(screen);
      return 0;
    }
    process.stdout.write(`\x1b[H\x1b[2J${new Date().toISOString()}  every ${intervalMs}ms (Ctrl-C to stop)\n${screen}`);
  }
}

async function execCommand(cli: Cli, args: readonly string[]): Promise<number> {
  const p = parseArgs(
    args,
    [...COMMON, "-n", "--namespace", "-c", "--container"],
    ["-i", "-t", "-it", "-ti", "--stdin", "--tty"],
  );
  const target = p.positional[0];
  if (!target || p.rest.length === 0) throw new UsageError("usage: nsm exec POD|deployments/NAME [-n NS] -- CMD...");
  if (p.positional.length > 1)
    throw new UsageError(`put the command after --: nsm exec ${target} -- ${p.positional.slice(1).join(" ")}`);
  needRoot();
  const state = requireUp(paths(cli, p));
  const pod = findPod(state, target, last(p, "-n", "--namespace"));
  return execInPod(pod, p.rest, {
    container: last(p, "-c", "--container"),
    hostPath: localConfigFrom(cli.env).hostPath,
    onSpawnError: (message) => process.stderr.write(`nsm exec: ${message}\n`),
  });
}

/** `nsmgr/NODE`, `forwarder/NODE`, `registry`, `identity-provider` (as `nsm stop` names them) → their nsm-system pod. */
function componentPod(target: string, namespace: string | undefined): { name: string; namespace: string | undefined } {
  const m = /^(nsmgr|forwarder)\/(.+)$/.exec(target);
  if (m) return { name: `${m[1]}-${m[2]}`, namespace: SYSTEM_NAMESPACE };
  if (namespace === undefined && (target === "registry" || target === "identity-provider"))
    return { name: target, namespace: SYSTEM_NAMESPACE };
  return { name: target, namespace };
}

async function logsCommand(cli: Cli, args: readonly string[]): Promise<number> {
  const p = parseArgs(
    args,
    [...COMMON, "-n", "--namespace", "-c", "--container", "--tail"],
    ["--raw", "--all-containers", "--prefix", "-f", "--follow"],
  );
  const target = p.positional[0];
  if (!target || p.positional.length > 1)
    throw new UsageError(
      "usage: nsm logs POD|deployments/NAME|registry|nsmgr/NODE|forwarder/NODE [-n NS] [-c CONTAINER] [-f]",
    );
  const state = loadState(paths(cli, p));
  if (!state) throw new LocalError(`the local runtime is not up (no state in ${stateDir(cli, p)})`);
  const component = componentPod(target, last(p, "-n", "--namespace"));
  const pod = findPod(state, component.name, component.namespace);
  const tail = last(p, "--tail");
  if (tail !== undefined && !/^\d+$/.test(tail)) throw new UsageError(`--tail needs a number of lines, not "${tail}"`);
  const options = { container: last(p, "-c", "--container"), raw: p.flags.has("--raw") };
  process.stdout.write(podLogs(pod, { ...options, tail: tail === undefined ? undefined : Number(tail) }));
  if (p.flags.has("-f") || p.flags.has("--follow")) {
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    await followPodLogs(pod, (text) => process.stdout.write(text), { ...options, signal: stop.signal });
  }
  return 0;
}

async function controlCommand(cli: Cli, command: "stop" | "start" | "restart", args: readonly string[]) {
  const p = parseArgs(args, [...COMMON, "-n", "--namespace", "-c", "--container"], ["--kill"]);
  const target = p.positional[0];
  if (!target || p.positional.length > 1)
    throw new UsageError(
      `usage: nsm ${command} registry|identity-provider|nsmgr/NODE|forwarder/NODE|pod/NAME [-n NS] [-c CONTAINER]${command === "start" ? "" : " [--kill]"}`,
    );
  if (command === "start" && p.flags.has("--kill")) throw new UsageError("--kill is for stop and restart");
  await runtime(cli, p).control(command, target, {
    kill: p.flags.has("--kill"),
    namespace: last(p, "-n", "--namespace"),
    container: last(p, "-c", "--container"),
  });
  return 0;
}

// ---------------------------------------------------------------------------------------------
// kubectl-compatible verbs (logic in src/local/kubectl/)

const alive = (p: Parameters<typeof isAlive>[0] | undefined) => p !== undefined && isAlive(p);

/** `get` goes the kubectl way for its kinds when asked for a name, a selector, a format or nsm-system. */
function usesKubectlGet(p: Parsed): boolean {
  const word = p.positional[0]!;
  if (word.includes("/") || !GET_KINDS[word]) return true;
  if (!KINDS[word.toLowerCase()]) return false;
  const flags = ["-l", "--selector", "--field-selector", "-o", "--output", "--template", "--no-headers"];
  return (
    p.positional.length > 1 || flags.some((f) => p.flags.has(f)) || last(p, "-n", "--namespace") === SYSTEM_NAMESPACE
  );
}

/** The query of a kubectl-style command: targets, namespace (-A: all), selectors. */
function queryOf(cli: Cli, p: Parsed, words: readonly string[], allByDefault = false): Query {
  const { kind, names } = parseTargets(words, stateCrds(loadState(paths(cli, p))));
  const all = p.flags.has("-A") || p.flags.has("--all-namespaces") || (allByDefault && !p.flags.has("-n"));
  return {
    kind,
    names,
    namespace: all ? undefined : (last(p, "-n", "--namespace") ?? "default"),
    selector: last(p, "-l", "--selector"),
    fieldSelector: last(p, "--field-selector"),
  };
}

async function kubectlGet(cli: Cli, p: Parsed): Promise<number> {
  const state = requireUp(paths(cli, p));
  const q = queryOf(cli, p, p.positional);
  const objects = selectObjects(state, q, alive);
  const output = last(p, "-o", "--output");
  const template = last(p, "--template");
  if (objects.length === 0 && q.names.length === 0 && output === undefined && template === undefined) {
    process.stderr.write(`${noResources(q)}\n`);
    return 0;
  }
  let text = render(q.kind, objects, {
    crds: stateCrds(state),
    output,
    template,
    single: q.names.length === 1,
    allNamespaces: q.namespace === undefined,
  });
  if (p.flags.has("--no-headers") && output === undefined) text = text.split("\n").slice(1).join("\n");
  process.stdout.write(text);
  return 0;
}

const DELETE_FLAGS = ["-l", "--selector", "--field-selector", "--grace-period", "--timeout", "--wait", "--cascade"];
const DELETE_BOOLEANS = ["--all", "--now", "--force", "--ignore-not-found", "-A", "--all-namespaces"];

async function deleteByName(cli: Cli, p: Parsed): Promise<number> {
  if (all(p, "-f", "--filename", "-k", "--kustomize").length > 0)
    throw new UsageError("give either -f/-k or KIND NAME, not both");
  const q = queryOf(cli, p, p.positional);
  if (q.names.length === 0 && q.selector === undefined && q.fieldSelector === undefined && !p.flags.has("--all"))
    throw new UsageError(`resource(s) were provided, but no name was specified (give NAME, -l SELECTOR or --all)`);
  try {
    await runtime(cli, p).deleteSelected(q);
  } catch (err) {
    if (p.flags.has("--ignore-not-found") && err instanceof LocalError && / not found/.test(err.message)) return 0;
    throw err;
  }
  return 0;
}

async function waitCommand(cli: Cli, args: readonly string[]): Promise<number> {
  const p = parseArgs(args, [...GET_FLAGS, "--for", "--timeout"], ["-A", "--all-namespaces", "--all"]);
  const cond = parseWaitFor(last(p, "--for"));
  const timeout = parseKubectlDuration(last(p, "--timeout") ?? "30s");
  const q = queryOf(cli, p, p.positional);
  if (q.names.length === 0 && q.selector === undefined && q.fieldSelector === undefined && !p.flags.has("--all"))
    throw new UsageError("resource(s) were provided, but no name was specified (give NAME, -l SELECTOR or --all)");
  const lines = await waitFor(paths(cli, p), q, cond, timeout);
  for (const l of lines) process.stdout.write(`${l}\n`);
  return 0;
}

async function scaleCommand(cli: Cli, args: readonly string[]): Promise<number> {
  const p = parseArgs(args, [...COMMON, "-n", "--namespace", "-l", "--selector", "--replicas", "--timeout"], ["--all"]);
  const replicas = last(p, "--replicas");
  if (replicas === undefined || !/^\d+$/.test(replicas))
    throw new UsageError("--replicas=COUNT is required (a number)");
  await runtime(cli, p).scale(queryOf(cli, p, p.positional), Number(replicas));
  return 0;
}

async function metadataCommand(cli: Cli, field: "labels" | "annotations", args: readonly string[]): Promise<number> {
  const p = parseArgs(args, [...COMMON, "-n", "--namespace", "-l", "--selector"], ["--overwrite", "--all"]);
  const isChange = (w: string) => w.includes("=") || w.endsWith("-");
  const targets = p.positional.filter((w, i) => i === 0 || !isChange(w));
  const changes = p.positional.filter((w, i) => i > 0 && isChange(w));
  if (targets.length === 0 || changes.length === 0)
    throw new UsageError(
      `usage: nsm ${field === "labels" ? "label" : "annotate"} KIND NAME KEY=VALUE… [KEY-…] [--overwrite]`,
    );
  await runtime(cli, p).changeMetadata(queryOf(cli, p, targets), field, changes, p.flags.has("--overwrite"));
  return 0;
}

async function createCommand(cli: Cli, args: readonly string[]): Promise<number> {
  const p = parseArgs(args, COMMON, []);
  const [what, name, ...rest] = p.positional;
  if (what === undefined || !["namespace", "ns"].includes(what) || name === undefined || rest.length > 0)
    throw new UsageError("usage: nsm create namespace NAME (other objects: nsm apply -f FILE)");
  await runtime(cli, p).createNamespace(name);
  return 0;
}

async function describeCommand(cli: Cli, args: readonly string[]): Promise<number> {
  const p = parseArgs(args, [...COMMON, "-n", "--namespace", "-l", "--selector"], ["-A", "--all-namespaces"]);
  const state = requireUp(paths(cli, p));
  const q = queryOf(cli, p, p.positional);
  const objects = selectObjects(state, q, alive);
  if (objects.length === 0) process.stderr.write(`${noResources(q)}\n`);
  process.stdout.write(describeObjects(q.kind, objects));
  return 0;
}

const COMMANDS: Record<string, (cli: Cli, args: readonly string[]) => Promise<number>> = {
  wait: waitCommand,
  scale: scaleCommand,
  label: (cli, args) => metadataCommand(cli, "labels", args),
  annotate: (cli, args) => metadataCommand(cli, "annotations", args),
  describe: (cli, args) =>
    GET_KINDS[args[0] ?? ""] === "connections" ? describeConnectionCommand(cli, args) : describeCommand(cli, args),
  create: createCommand,
  up: upCommand,
  apply: (cli, args) => applyOrDeleteCommand(cli, "apply", args),
  delete: (cli, args) => applyOrDeleteCommand(cli, "delete", args),
  down: downCommand,
  get: getCommand,
  top: topCommand,
  exec: execCommand,
  logs: logsCommand,
  stop: (cli, args) => controlCommand(cli, "stop", args),
  start: (cli, args) => controlCommand(cli, "start", args),
  restart: (cli, args) => controlCommand(cli, "restart", args),
};

/** The runtime's progress on the console: results and progress on stdout, warnings on stderr. */
export function consoleProgress(out: NodeJS.WritableStream = process.stdout, err = process.stderr): Progress {
  return {
    say: (line) => out.write(`${line}\n`),
    warn: (line) => err.write(`warning: ${line}\n`),
    took: (since) => `(${((Date.now() - since) / 1000).toFixed(1)}s)`,
  };
}

/** Runs one local-runtime subcommand; prints errors and returns the exit code. */
export async function runLocal(command: string, args: readonly string[]): Promise<number> {
  try {
    const run = COMMANDS[command];
    if (!run) throw new UsageError(`unknown command ${command}`);
    return await run({ env: new Env(process.env), out: consoleProgress() }, args);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`nsm ${command}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof LocalError) {
      process.stderr.write(`nsm ${command}: error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
