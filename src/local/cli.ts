// SPDX-License-Identifier: Apache-2.0
/**
 * Command-line front of the local runtime: `nsm up|apply|get|exec|logs|delete|down` and
 * `nsm stop|start|restart TARGET [--kill]` (fault injection: see `components.ts`).
 *
 * Every subcommand accepts `--state-dir DIR` (default `$NSM_LOCAL_STATE_DIR` or /run/nsm-local).
 * Errors are one line on stderr (`nsm <command>: error: …`, followed by a log tail when a process
 * died) and exit code 1; usage errors exit 2.
 */
import { execInPod, findPod, GET_KINDS, getTable, podLogs } from "./inspect.js";
import { consoleProgress } from "./progress.js";
import { LocalRuntime } from "./runtime.js";
import { DEFAULT_STATE_DIR, LocalError, loadState, requireUp, runtimePaths } from "./state.js";

class UsageError extends Error {}

interface Parsed {
  flags: Map<string, string[]>;
  positional: string[];
  /** Everything after `--`. */
  rest: string[];
}

/** Parses `args` given which flags take a value and which are booleans. */
function parseArgs(args: readonly string[], withValue: readonly string[], booleans: readonly string[]): Parsed {
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  const add = (k: string, v: string) => flags.set(k, [...(flags.get(k) ?? []), v]);
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (a.startsWith("-") && a !== "-") {
      const eq = a.indexOf("=");
      const key = eq > 0 ? a.slice(0, eq) : a;
      if (withValue.includes(key)) {
        const v = eq > 0 ? a.slice(eq + 1) : args[++i];
        if (v === undefined) throw new UsageError(`${key} needs a value`);
        add(key, v);
      } else if (booleans.includes(key)) {
        add(key, "true");
      } else throw new UsageError(`unknown option ${a}`);
    } else positional.push(a);
  }
  return { flags, positional, rest: args.slice(i) as string[] };
}

const last = (p: Parsed, ...keys: string[]) => keys.flatMap((k) => p.flags.get(k) ?? []).at(-1);
const all = (p: Parsed, ...keys: string[]) => keys.flatMap((k) => p.flags.get(k) ?? []);

function stateDir(p: Parsed): string {
  return last(p, "--state-dir") ?? process.env.NSM_LOCAL_STATE_DIR ?? DEFAULT_STATE_DIR;
}

function needRoot(): void {
  if (process.getuid?.() !== 0)
    throw new LocalError("the local runtime needs root (network namespaces and veth need CAP_NET_ADMIN)");
}

const COMMON = ["--state-dir"];

async function run(command: string, args: readonly string[]): Promise<number> {
  const out = consoleProgress();
  switch (command) {
    case "up": {
      const p = parseArgs(args, [...COMMON, "--nodes", "--trust-domain"], ["--insecure"]);
      if (p.positional.length) throw new UsageError(`unexpected argument ${p.positional[0]}`);
      const nodes = Number(last(p, "--nodes") ?? "1");
      needRoot();
      await new LocalRuntime(runtimePaths(stateDir(p)), out).up(nodes, {
        insecure: p.flags.has("--insecure"),
        trustDomain: last(p, "--trust-domain"),
      });
      return 0;
    }
    case "apply":
    case "delete": {
      const p = parseArgs(args, [...COMMON, "-f", "--filename", "-k", "--kustomize", "-n", "--namespace"], []);
      if (p.positional.length) throw new UsageError(`unexpected argument ${p.positional[0]} (use -f FILE|DIR)`);
      const files = all(p, "-f", "--filename", "-k", "--kustomize");
      if (files.length === 0) throw new UsageError("give the manifests with -f FILE|DIR");
      needRoot();
      const rt = new LocalRuntime(runtimePaths(stateDir(p)), out);
      const ns = last(p, "-n", "--namespace");
      await (command === "apply" ? rt.apply(files, ns) : rt.delete(files, ns));
      return 0;
    }
    case "down": {
      const p = parseArgs(args, COMMON, []);
      if (p.positional.length) throw new UsageError(`unexpected argument ${p.positional[0]}`);
      needRoot();
      await new LocalRuntime(runtimePaths(stateDir(p)), out).down();
      return 0;
    }
    case "get": {
      const p = parseArgs(args, [...COMMON, "-n", "--namespace"], ["-A", "--all-namespaces"]);
      const kind = p.positional[0];
      if (!kind || p.positional.length > 1)
        throw new UsageError(
          `usage: nsm get ${Object.keys(GET_KINDS)
            .filter((k) => k.endsWith("s"))
            .join("|")} [-n NS]`,
        );
      const state = requireUp(runtimePaths(stateDir(p)));
      process.stdout.write(await getTable(state, kind, last(p, "-n", "--namespace")));
      return 0;
    }
    case "exec": {
      const p = parseArgs(
        args,
        [...COMMON, "-n", "--namespace", "-c", "--container"],
        ["-i", "-t", "-it", "-ti", "--stdin", "--tty"],
      );
      const target = p.positional[0];
      if (!target || p.rest.length === 0)
        throw new UsageError("usage: nsm exec POD|deployments/NAME [-n NS] -- CMD...");
      if (p.positional.length > 1)
        throw new UsageError(`put the command after --: nsm exec ${target} -- ${p.positional.slice(1).join(" ")}`);
      needRoot();
      const state = requireUp(runtimePaths(stateDir(p)));
      const pod = findPod(state, target, last(p, "-n", "--namespace"));
      return execInPod(pod, p.rest, last(p, "-c", "--container"));
    }
    case "logs": {
      const p = parseArgs(
        args,
        [...COMMON, "-n", "--namespace", "-c", "--container", "--tail"],
        ["--raw", "--all-containers", "--prefix"],
      );
      const target = p.positional[0];
      if (!target || p.positional.length > 1)
        throw new UsageError("usage: nsm logs POD|deployments/NAME [-n NS] [-c CONTAINER]");
      const state = loadState(runtimePaths(stateDir(p)));
      if (!state) throw new LocalError(`the local runtime is not up (no state in ${stateDir(p)})`);
      const pod = findPod(state, target, last(p, "-n", "--namespace"));
      const tail = last(p, "--tail");
      if (tail !== undefined && !/^\d+$/.test(tail))
        throw new UsageError(`--tail needs a number of lines, not "${tail}"`);
      process.stdout.write(
        podLogs(pod, {
          container: last(p, "-c", "--container"),
          raw: p.flags.has("--raw"),
          tail: tail === undefined ? undefined : Number(tail),
        }),
      );
      return 0;
    }
    case "stop":
    case "start":
    case "restart": {
      const p = parseArgs(args, [...COMMON, "-n", "--namespace", "-c", "--container"], ["--kill"]);
      const target = p.positional[0];
      if (!target || p.positional.length > 1)
        throw new UsageError(
          `usage: nsm ${command} registry|identity-provider|nsmgr/NODE|forwarder/NODE|pod/NAME [-n NS] [-c CONTAINER]${command === "start" ? "" : " [--kill]"}`,
        );
      if (command === "start" && p.flags.has("--kill")) throw new UsageError("--kill is for stop and restart");
      needRoot();
      await new LocalRuntime(runtimePaths(stateDir(p)), out).control(command, target, {
        kill: p.flags.has("--kill"),
        namespace: last(p, "-n", "--namespace"),
        container: last(p, "-c", "--container"),
      });
      return 0;
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

/** Runs one local-runtime subcommand; prints errors and returns the exit code. */
export async function runLocal(command: string, args: readonly string[]): Promise<number> {
  try {
    return await run(command, args);
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
