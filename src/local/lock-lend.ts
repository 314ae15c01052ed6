// SPDX-License-Identifier: Apache-2.0
/**
 * Lending the runtime's lock. A command holding the lock while a pod's injected `cmd-nsc-init`
 * waits for its connection would deadlock with a scale-from-zero supplier, whose `nsm apply`
 * (./supplier.ts) must start the endpoint that connection needs. So while it waits, the holder
 * serves requests: another `nsm apply` finding the lock held by a lending process writes its
 * request (`<state dir>/tmp/lock-lend/req-<id>.json`: files and namespace) and waits for the result
 * (`req-<id>.result.json`: the lines it would have printed, or its error); the holder performs
 * it with its own state in memory, so the state file still has one writer.
 *
 * Written by hand: a protocol between our own commands over the state directory.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LocalError } from "./errors.js";
import type { RuntimePaths } from "./state.js";

/** What a command asks the lock's holder to apply. */
export interface LentRequest {
  readonly files: readonly string[];
  readonly namespace?: string;
}

/** What the holder answers: the lines of the apply, and its error if it failed. */
export interface LentResult {
  readonly lines: readonly string[];
  readonly error?: string;
}

/** Performs one request for its sender; resolves with the lines to give back, rejects on failure. */
export type LentServer = (request: LentRequest, lines: string[]) => Promise<void>;

const POLL_MS = 200;
/** How long a sender waits for its result. */
const RESULT_TIMEOUT_MS = 180_000;

const lendDir = (paths: RuntimePaths) => join(paths.tmpDir, "lock-lend");
const markerOf = (paths: RuntimePaths, pid: number) => join(lendDir(paths), `lending-${pid}`);

/** True if process `pid` (the lock's holder) serves requests now. */
export function isLending(paths: RuntimePaths, pid: number): boolean {
  return existsSync(markerOf(paths, pid));
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function writeAtomic(file: string, value: unknown): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(value));
  renameSync(`${file}.tmp`, file);
}

/** Sends `request` to the lending holder `pid`; the lines it printed, or a LocalError with its error. */
export async function requestFromLender(paths: RuntimePaths, pid: number, request: LentRequest): Promise<string[]> {
  const base = join(lendDir(paths), `req-${randomBytes(6).toString("hex")}`);
  writeAtomic(`${base}.json`, request);
  const deadline = Date.now() + RESULT_TIMEOUT_MS;
  try {
    for (;;) {
      if (existsSync(`${base}.result.json`)) {
        const result = JSON.parse(readFileSync(`${base}.result.json`, "utf8")) as LentResult;
        if (result.error !== undefined) throw new LocalError(result.error);
        return [...result.lines];
      }
      if (!running(pid) || Date.now() > deadline)
        throw new LocalError(`the nsm command holding the lock (pid ${pid}) did not perform this apply`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    for (const f of [`${base}.json`, `${base}.taken`, `${base}.result.json`]) rmSync(f, { force: true });
  }
}

/** Takes the requests waiting in the directory (renamed, so each is served once). */
function takeRequests(paths: RuntimePaths): { base: string; request: LentRequest }[] {
  const dir = lendDir(paths);
  const taken: { base: string; request: LentRequest }[] = [];
  for (const f of readdirSync(dir).filter((n) => /^req-[0-9a-f]+\.json$/.test(n))) {
    const base = join(dir, f.slice(0, -".json".length));
    try {
      renameSync(`${base}.json`, `${base}.taken`);
      taken.push({ base, request: JSON.parse(readFileSync(`${base}.taken`, "utf8")) as LentRequest });
    } catch {
      // Gone (its sender gave up) or half written: skip it.
    }
  }
  return taken;
}

async function serveOne(serve: LentServer, base: string, request: LentRequest): Promise<void> {
  const lines: string[] = [];
  let error: string | undefined;
  try {
    await serve(request, lines);
  } catch (err) {
    error = (err as Error).message;
  }
  writeAtomic(`${base}.result.json`, error === undefined ? { lines } : { lines, error });
}

let lending = 0;

/**
 * Serves lent requests with `serve` until `during` settles (and the requests taken meanwhile are
 * done); resolves or rejects as `during` does. Calls may nest or overlap within one process.
 */
export async function lendLockWhile<T>(paths: RuntimePaths, serve: LentServer, during: Promise<T>): Promise<T> {
  mkdirSync(lendDir(paths), { recursive: true });
  if (lending++ === 0) writeFileSync(markerOf(paths, process.pid), "");
  let done = false;
  const settled = during.finally(() => {
    done = true;
  });
  const serving: Promise<void>[] = [];
  try {
    while (!done) {
      for (const { base, request } of takeRequests(paths)) serving.push(serveOne(serve, base, request));
      await Promise.race([settled.catch(() => {}), new Promise((r) => setTimeout(r, POLL_MS))]);
    }
    await Promise.all(serving);
    return await settled;
  } finally {
    if (--lending === 0) rmSync(markerOf(paths, process.pid), { force: true });
  }
}
