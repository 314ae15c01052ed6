// SPDX-License-Identifier: Apache-2.0
/**
 * The element contract, as a reusable test suite: {@link elementContract} registers node:test
 * cases that every networkservice element must pass ({@link registryElementContract}: the same
 * for registry elements, on Register and Unregister).
 *
 * (a) A downstream error reaches the caller with its gRPC code unchanged.
 * (b) A failed Request leaves no per-connection state: after it, a Request for another
 *     connection and a Request for the same id give what they give on a fresh element
 *     (same connection returned, same request seen downstream).
 * (c) Close after a failed Request is harmless: it resolves and changes nothing for (b).
 *
 * A {@link ContractFactory} builds the chain to test around a `downstream` element the harness
 * controls (usually last; inside a served next hop for elements that talk gRPC). It is called
 * once per run, so each run starts from fresh instances.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { toJson } from "@bufbuild/protobuf";
import {
  type Connection,
  ConnectionSchema,
  clone,
  type NetworkServiceRequest,
  NetworkServiceRequestSchema,
} from "../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../core/chain.js";
import { CallContext } from "../core/context.js";
import { Code, NsmError } from "../core/errors.js";
import type { RegistryElement, RegistryHandler } from "../registry/core/chain.js";
import {
  bindRegistry,
  collectRecords,
  type RegistryKind,
  type RegistryTypes,
  registryChain,
} from "../registry/core/index.js";

export interface ContractSetup {
  /** The chain, in call order, with the harness's `downstream` element placed in it. */
  readonly elements: readonly NetworkServiceElement[];
  /** A request for connection `id` that the chain accepts. */
  request(id: string): NetworkServiceRequest;
  /** The context of each call (client URL, candidates...). @default a fresh root context */
  context?(): CallContext;
  /**
   * Removes what else legitimately differs between two runs (random keys) before comparing;
   * generated UUIDs and path expiry times are already normalized.
   */
  normalize?(value: unknown): unknown;
  cleanup?(): Promise<void> | void;
}

export type ContractFactory = (downstream: NetworkServiceElement, lifetime: AbortSignal) => Promise<ContractSetup>;

/** The downstream the harness controls: fails the next Request when armed, records what it sees. */
export interface ContractDownstream extends NetworkServiceElement {
  failNext: boolean;
  readonly seen: unknown[];
}

/** A code no element produces by itself, so that (a) proves the error came from downstream. */
export const CONTRACT_ERROR_CODE = Code.DataLoss;

export function contractDownstream(normalize: (v: unknown) => unknown = (v) => v): ContractDownstream {
  const d: ContractDownstream = {
    name: "contractDownstream",
    failNext: false,
    seen: [],
    async request(req) {
      if (d.failNext) {
        d.failNext = false;
        throw new NsmError("injected downstream failure", CONTRACT_ERROR_CODE);
      }
      d.seen.push(normalize(toJson(NetworkServiceRequestSchema, req)));
      return clone(ConnectionSchema, req.connection!);
    },
    close: async () => {},
  };
  return d;
}

interface Run {
  readonly setup: ContractSetup;
  readonly downstream: ContractDownstream;
  readonly handler: ReturnType<typeof bind>;
  readonly lifetime: AbortController;
  readonly opened: Connection[];
  readonly normalize: (v: unknown) => unknown;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * What differs between two runs by design: generated ids (UUIDs, numbered in order of first
 * appearance within one run) and the expiry times of path segments.
 */
function runNormalizer(): (v: unknown) => unknown {
  const ids = new Map<string, string>();
  return (value) =>
    JSON.parse(JSON.stringify(value), (k, v: unknown) => {
      if (k === "expires") return undefined;
      if (typeof v === "string" && UUID.test(v)) {
        if (!ids.has(v)) ids.set(v, `uuid#${ids.size}`);
        return ids.get(v);
      }
      return v;
    });
}

async function start(factory: ContractFactory): Promise<Run> {
  const lifetime = new AbortController();
  const byRun = runNormalizer();
  let normalize: (v: unknown) => unknown = byRun;
  const downstream = contractDownstream((v) => normalize(v));
  const setup = await factory(downstream, lifetime.signal);
  const own = setup.normalize;
  if (own) normalize = (v) => own(byRun(v));
  return { setup, downstream, handler: bind(chain(...setup.elements)), lifetime, opened: [], normalize };
}

async function stop(run: Run): Promise<void> {
  for (const conn of run.opened) {
    await run.handler.close(conn, ctxOf(run)).catch(() => {});
  }
  run.lifetime.abort();
  await run.setup.cleanup?.();
}

const ctxOf = (run: Run) => run.setup.context?.() ?? CallContext.create();

async function requestOk(run: Run, id: string): Promise<unknown> {
  const conn = await run.handler.request(run.setup.request(id), ctxOf(run));
  run.opened.push(conn);
  return run.normalize(toJson(ConnectionSchema, conn));
}

/** Registers the three contract cases for one element. */
export function elementContract(name: string, factory: ContractFactory): void {
  it(`${name}: a downstream error reaches the caller with its code`, async () => {
    const run = await start(factory);
    try {
      run.downstream.failNext = true;
      await assert.rejects(run.handler.request(run.setup.request("contract-a"), ctxOf(run)), (err: unknown) => {
        assert.equal(NsmError.from(err).code, CONTRACT_ERROR_CODE, `got ${String(err)}`);
        return true;
      });
    } finally {
      await stop(run);
    }
  });

  it(`${name}: a failed Request leaves no state and a Close after it is harmless`, async () => {
    const fresh = await start(factory);
    const failed = await start(factory);
    try {
      const expected = [await requestOk(fresh, "contract-b"), await requestOk(fresh, "contract-a")];
      failed.downstream.failNext = true;
      await assert.rejects(failed.handler.request(failed.setup.request("contract-a"), ctxOf(failed)));
      const closing = failed.setup.request("contract-a").connection!;
      await failed.handler.close(closing, ctxOf(failed));
      const actual = [await requestOk(failed, "contract-b"), await requestOk(failed, "contract-a")];
      assert.deepEqual(actual, expected, "the connections returned after a failure differ from a fresh element's");
      assert.deepEqual(failed.downstream.seen, fresh.downstream.seen, "downstream saw different requests");
    } finally {
      await stop(fresh);
      await stop(failed);
    }
  });
}

/** What a registry contract run needs: the chain around the harness's downstream, and records. */
export interface RegistryContractSetup<T extends RegistryTypes> {
  readonly kind: RegistryKind<T>;
  /** The chain, in call order, with the harness's `downstream` element placed in it. */
  readonly elements: readonly RegistryElement<T>[];
  /** A record named `name` that the chain accepts. */
  record(name: string): T["record"];
  cleanup?(): Promise<void> | void;
}

export type RegistryContractFactory<T extends RegistryTypes> = (
  downstream: RegistryElement<T>,
  lifetime: AbortSignal,
) => Promise<RegistryContractSetup<T>>;

interface RegistryDownstream<T extends RegistryTypes> extends RegistryElement<T> {
  failNext: boolean;
  readonly seen: string[];
}

function registryDownstream<T extends RegistryTypes>(): RegistryDownstream<T> {
  const d: RegistryDownstream<T> = {
    name: "contractDownstream",
    failNext: false,
    seen: [],
    async register(rec, ctx, next) {
      if (d.failNext) {
        d.failNext = false;
        throw new NsmError("injected downstream failure", CONTRACT_ERROR_CODE);
      }
      d.seen.push(`register ${(rec as { name: string }).name}`);
      return next.register(rec, ctx);
    },
    find: (query, ctx, next) => next.find(query, ctx),
    async unregister(rec, ctx, next) {
      d.seen.push(`unregister ${(rec as { name: string }).name}`);
      return next.unregister(rec, ctx);
    },
  };
  return d;
}

/** The names a non-watch Find of everything returns (what the chain keeps). */
async function namesFound<T extends RegistryTypes>(kind: RegistryKind<T>, h: RegistryHandler<T>): Promise<string[]> {
  const records = await collectRecords(kind, h, kind.query(undefined, false), CallContext.create());
  return records.map((r) => kind.nameOf(r)).sort();
}

/** Registers the contract cases for one registry element (Register/Unregister). */
export function registryElementContract<T extends RegistryTypes>(name: string, factory: RegistryContractFactory<T>) {
  const start = async () => {
    const lifetime = new AbortController();
    const downstream = registryDownstream<T>();
    const setup = await factory(downstream, lifetime.signal);
    const handler = bindRegistry(registryChain(...setup.elements));
    const stop = async () => {
      lifetime.abort();
      await setup.cleanup?.();
    };
    return { setup, downstream, handler, stop };
  };

  it(`${name}: a downstream Register error reaches the caller with its code`, async () => {
    const run = await start();
    try {
      run.downstream.failNext = true;
      await assert.rejects(
        run.handler.register(run.setup.record("contract-a"), CallContext.create()),
        (err: unknown) => {
          assert.equal(NsmError.from(err).code, CONTRACT_ERROR_CODE, `got ${String(err)}`);
          return true;
        },
      );
    } finally {
      await run.stop();
    }
  });

  it(`${name}: a failed Register leaves no state and an Unregister after it is harmless`, async () => {
    const fresh = await start();
    const failed = await start();
    try {
      const ctx = () => CallContext.create();
      for (const n of ["contract-b", "contract-a"]) await fresh.handler.register(fresh.setup.record(n), ctx());
      failed.downstream.failNext = true;
      await assert.rejects(failed.handler.register(failed.setup.record("contract-a"), ctx()));
      assert.deepEqual(await namesFound(failed.setup.kind, failed.handler), [], "a failed Register left a record");
      await failed.handler.unregister(failed.setup.record("contract-a"), ctx());
      for (const n of ["contract-b", "contract-a"]) await failed.handler.register(failed.setup.record(n), ctx());
      assert.deepEqual(
        await namesFound(failed.setup.kind, failed.handler),
        await namesFound(fresh.setup.kind, fresh.handler),
      );
      const downstreamOf = (d: RegistryDownstream<T>) => d.seen.filter((s) => !s.startsWith("unregister"));
      assert.deepEqual(downstreamOf(failed.downstream), downstreamOf(fresh.downstream));
    } finally {
      await fresh.stop();
      await failed.stop();
    }
  });
}
