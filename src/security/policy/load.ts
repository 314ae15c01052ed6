// SPDX-License-Identifier: Apache-2.0
/**
 * Choosing policies the way the upstream env vars do (`NSM_REGISTRY_SERVER_POLICIES`,
 * `NSM_REGISTRY_CLIENT_POLICIES`, and the built-in defaults of the authorize elements).
 *
 * A policy list is comma-separated file masks, e.g.
 * `etc/nsm/opa/common/.*.rego,etc/nsm/opa/registry/.*.rego,etc/nsm/opa/server/.*.rego`.
 * Each mask is resolved like upstream `opa.PoliciesByFileMask`:
 * 1. a mask naming an existing file is that file;
 * 2. otherwise the mask is a regular expression (`^mask$`) matched against the built-in
 *    policy names (the upstream file names, {@link BUILTIN_POLICIES}) and against the files
 *    under the mask's directory on disk.
 *
 * A built-in name selects its TypeScript predicate. A file on disk ending in `.mjs`, `.js`,
 * `.mts` or `.ts` is a **user policy module**: an ES module whose default export (or export
 * named `valid`, or `policy`) is a function `(input: PolicyInput) => boolean | Promise<boolean>`
 * — see {@link PolicyInput} and {@link toOpaInput}; its name in logs is its path. Example
 * (`/etc/nsm/policies/only-web.mjs`):
 *
 * ```js
 * export default function (input) {
 *   return input.pathSegments.length > 0 && input.peerCertificate?.subjectAltName?.includes("/ns/web/") === true;
 * }
 * ```
 * used as `NSM_REGISTRY_SERVER_POLICIES=etc/nsm/opa/common/.*.rego,/etc/nsm/policies/only-web.mjs`.
 * A `.rego` file on disk cannot be evaluated: if its path is a built-in name (an upstream
 * image's `etc/nsm/opa/...` layout) the built-in predicate is used, otherwise loading fails with
 * InvalidArgument. An empty list means no policy (upstream `authorize.Any()`).
 */
import { readdirSync, statSync } from "node:fs";
import { dirname, extname, isAbsolute, join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { invalidArgument } from "../../sdk/core/errors.js";
import type { Logger } from "../../sdk/core/logger.js";
import { silentLogger } from "../../sdk/core/logger.js";
import { BUILTIN_POLICIES } from "./builtin.js";
import type { Policy, PolicyInput } from "./policy.js";

const COMMON = "etc/nsm/opa/common/.*.rego";
const SERVER = "etc/nsm/opa/server/.*.rego";
const CLIENT = "etc/nsm/opa/client/.*.rego";
const REGISTRY = "etc/nsm/opa/registry/.*.rego";
const MONITOR = "etc/nsm/opa/monitor/.*.rego";

/** Default masks per role, as upstream sets them. */
export const DEFAULT_POLICY_MASKS = {
  /** networkservice authorize server (`authorize.NewServer()`). */
  server: [COMMON, SERVER],
  /** networkservice authorize client (`authorize.NewClient()`). */
  client: [COMMON, CLIENT],
  /** registry authorize server (cmds' NSM_REGISTRY_SERVER_POLICIES default). */
  registryServer: [COMMON, REGISTRY, SERVER],
  /** registry authorize client (cmds' NSM_REGISTRY_CLIENT_POLICIES default). */
  registryClient: [COMMON, REGISTRY, CLIENT],
  /** MonitorConnections (available upstream, not enabled by default there). */
  monitor: [MONITOR],
} as const satisfies Record<string, readonly string[]>;

/** Splits an env var value into masks (commas; blanks dropped). */
export function parsePolicyList(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

const MODULE_EXTENSIONS = new Set([".mjs", ".js", ".mts", ".ts"]);

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function compileMask(mask: string): RegExp {
  try {
    return new RegExp(`^(?:${mask})$`);
  } catch (err) {
    throw invalidArgument(`policy mask "${mask}" is not a valid regular expression: ${(err as Error).message}`);
  }
}

function filesUnder(dir: string): string[] {
  try {
    if (!statSync(dir).isDirectory()) return [];
    return (readdirSync(dir, { recursive: true }) as string[])
      .map((f) => join(dir, f))
      .filter(isFile)
      .sort();
  } catch {
    return [];
  }
}

/** What a mask resolves to: built-in names and files on disk, in order, without duplicates. */
function resolveMask(mask: string, cwd: string): string[] {
  const asPath = isAbsolute(mask) ? mask : resolve(cwd, mask);
  if (isFile(asPath)) return [mask];
  const re = compileMask(mask);
  const out = [...BUILTIN_POLICIES.keys()].filter((n) => re.test(n));
  const dir = dirname(mask);
  const absDir = isAbsolute(dir) ? dir : resolve(cwd, dir);
  for (const f of filesUnder(absDir)) {
    const name = isAbsolute(mask) ? f : join(dir, relative(absDir, f));
    if (re.test(name) && !out.includes(name)) out.push(name);
  }
  return out;
}

type Predicate = (input: PolicyInput) => boolean | Promise<boolean>;

async function loadModule(path: string): Promise<Policy> {
  const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  const fn = [mod.default, mod.valid, mod.policy].find((f) => typeof f === "function") as Predicate | undefined;
  if (!fn) {
    throw invalidArgument(`policy module ${path} exports no predicate (default, "valid" or "policy" function)`);
  }
  return { name: path, check: (input) => fn(input) };
}

export interface LoadPoliciesOptions {
  /** Directory relative masks are resolved against. @default process.cwd() */
  readonly cwd?: string;
  readonly log?: Logger;
}

/**
 * Resolves masks (an array, or a comma-separated env value) to policies: built-in predicates
 * and user policy modules. A mask that matches nothing is logged and skipped, as upstream.
 */
export async function loadPolicies(
  masks: string | readonly string[],
  options: Readonly<LoadPoliciesOptions> = {},
): Promise<Policy[]> {
  const list = typeof masks === "string" ? parsePolicyList(masks) : masks;
  const cwd = options.cwd ?? process.cwd();
  const log = options.log ?? silentLogger;
  const out: Policy[] = [];
  const seen = new Set<string>();
  for (const mask of list) {
    const names = resolveMask(mask, cwd);
    if (names.length === 0) log.warn({ mask }, "policy mask matches no policy");
    for (const name of names) {
      if (seen.has(name)) continue;
      seen.add(name);
      out.push(await loadPolicy(name, cwd));
    }
  }
  return out;
}

/** A built-in policy by name, or a policy module (InvalidArgument for Rego or another file type). */
async function loadPolicy(name: string, cwd: string): Promise<Policy> {
  const builtin = BUILTIN_POLICIES.get(name);
  if (builtin) return builtin;
  const ext = extname(name);
  if (ext === ".rego") {
    throw invalidArgument(
      `policy ${name} is Rego, which this implementation cannot evaluate: write it as an ES module exporting a predicate`,
    );
  }
  if (!MODULE_EXTENSIONS.has(ext)) {
    throw invalidArgument(`policy ${name}: expected a .mjs/.js/.mts/.ts module or a built-in policy name`);
  }
  return loadModule(isAbsolute(name) ? name : resolve(cwd, name));
}

/** The built-in policies selected by `masks` (no files are read): for defaults and tests. */
export function builtinPolicies(masks: readonly string[]): Policy[] {
  const out: Policy[] = [];
  for (const mask of masks) {
    const re = compileMask(mask);
    for (const [name, p] of BUILTIN_POLICIES) if (re.test(name) && !out.includes(p)) out.push(p);
  }
  return out;
}
